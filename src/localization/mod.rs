//! SMS and email texts from egov-localization ([contract §6](../../docs/contract.md#6-message-texts)),
//! per state tenant and locale, with the configured (or built-in) texts behind them.
//!
//! Semantics, in the order a request meets them:
//! - The state tenant is the request's tenant with `USER_OTP_LOCALIZATION_TENANT_STRIP_SUFFIX_COUNT`
//!   parts cut off its end (`pb.amritsar` → `pb`). Tenants and locales that are not plain
//!   identifiers are never looked up (the configured texts are used).
//! - Each (state tenant, locale) has one cache slot. The first request of a slot waits for one
//!   search, at most `USER_OTP_LOCALIZATION_TIMEOUT_MS`; concurrent requests of that slot wait
//!   for the same search instead of sending their own.
//! - An answer is used for `USER_OTP_LOCALIZATION_CACHE_TTL_SECONDS`; after that it is still
//!   used while one background search replaces it. A failed search keeps the old answer (served
//!   stale for as long as egov-localization is down) and is retried [`RETRY_AFTER`] later; a
//!   slot that never had an answer uses the configured texts meanwhile. So egov-localization
//!   being down delays no request by more than the timeout once per slot per retry period, and
//!   fails none.
//! - A missing key, a text without `%s`/`{otp}` (SMS, email body) or over
//!   [`search::MAX_TEXT_CHARS`] means the configured text ([`texts`]).
//! - Made-up tenants and locales (a register request needs no user, so anyone can send any):
//!   first searches of new slots are limited to [`FIRST_SEARCHES_PER_SECOND`] (a burst of
//!   [`FIRST_SEARCH_BURST`]), so a flood costs egov-localization a few searches a second and its
//!   requests get the configured texts; at most [`MAX_SLOTS`] slots are kept, and a slot that
//!   holds texts is dropped only when every slot holds texts (least recently used first), so
//!   such a flood cannot push out the real states' answers.

mod search;
pub mod texts;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::Url;

use crate::config::LocalizationSettings;
pub use search::{Messages, SearchError, MAX_TEXT_CHARS};

/// Wait before a failed search of a slot is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Most (state tenant, locale) slots kept.
pub const MAX_SLOTS: usize = 1024;

/// First searches of new (state tenant, locale) slots per second, after the burst.
pub const FIRST_SEARCHES_PER_SECOND: u32 = 5;

/// First searches allowed at once (a restart meets every state and locale at once).
pub const FIRST_SEARCH_BURST: u32 = 50;

/// Longest state tenant or locale looked up, in bytes.
const MAX_NAME_BYTES: usize = 64;

/// The egov-localization client and its cache; cheap to clone (clones share both). Disabled
/// (no host configured) it answers `None` at once.
#[derive(Clone)]
pub struct Localizer {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    http: reqwest::Client,
    url: Url,
    module: String,
    strip_suffix_count: usize,
    wanted: Vec<String>,
    ttl: Duration,
    timeout: Duration,
    slots: Mutex<HashMap<(String, String), Arc<Slot>>>,
    first_searches: DefaultDirectRateLimiter,
}

#[derive(Default)]
struct Slot {
    state: tokio::sync::Mutex<SlotState>,
    refreshing: AtomicBool,
    /// Whether the slot holds an answer with at least one text (kept over those without).
    has_texts: AtomicBool,
    last_used: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct SlotState {
    messages: Option<Arc<Messages>>,
    fetched_at: Option<Instant>,
    /// No search before this (after a failure, or while a refresh is under way).
    not_before: Option<Instant>,
}

/// Why no localizer could be made.
#[derive(Debug, thiserror::Error)]
pub enum LocalizerError {
    #[error("USER_OTP_LOCALIZATION_HOST / _SEARCH_ENDPOINT: {0:?} is not a URL: {1}")]
    InvalidUrl(String, String),
    #[error("egov-localization client: {0}")]
    Client(String),
}

impl Localizer {
    /// One that never looks anything up (no `USER_OTP_LOCALIZATION_HOST`).
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// A localizer for `settings`, asking for the `wanted` keys.
    ///
    /// # Errors
    /// [`LocalizerError`]: the search URL does not parse, or the HTTP client cannot be built.
    pub fn new(
        settings: &LocalizationSettings,
        wanted: Vec<String>,
    ) -> Result<Self, LocalizerError> {
        let Some(text) = settings.search_url() else {
            return Ok(Self::disabled());
        };
        let url = Url::parse(&text).map_err(|e| LocalizerError::InvalidUrl(text, e.to_string()))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| LocalizerError::Client(e.to_string()))?;
        Ok(Self {
            inner: Some(Arc::new(Inner {
                http,
                url,
                module: settings.module.clone(),
                strip_suffix_count: settings.tenant_strip_suffix_count,
                wanted,
                ttl: settings.cache_ttl,
                timeout: settings.timeout,
                slots: Mutex::new(HashMap::new()),
                first_searches: RateLimiter::direct(
                    Quota::per_second(
                        NonZeroU32::new(FIRST_SEARCHES_PER_SECOND).unwrap_or(NonZeroU32::MIN),
                    )
                    .allow_burst(NonZeroU32::new(FIRST_SEARCH_BURST).unwrap_or(NonZeroU32::MIN)),
                ),
            })),
        })
    }

    /// The texts of `tenant_id`'s state tenant in `locale`, as the module doc describes;
    /// `None`: use the configured texts (disabled, no answer yet, or not a name looked up).
    pub async fn messages(&self, tenant_id: &str, locale: &str) -> Option<Arc<Messages>> {
        let inner = self.inner.as_ref()?;
        let state = state_tenant(tenant_id, inner.strip_suffix_count);
        if !looked_up(state) || !looked_up(locale) {
            return None;
        }
        let slot = inner.slot(state, locale);
        let mut guard = slot.state.lock().await;
        let now = Instant::now();
        let may_search = guard.not_before.is_none_or(|at| now >= at);
        if let (Some(messages), Some(fetched_at)) = (&guard.messages, guard.fetched_at) {
            let messages = Arc::clone(messages);
            if now.duration_since(fetched_at) >= inner.ttl
                && may_search
                && !slot.refreshing.swap(true, Ordering::AcqRel)
            {
                guard.not_before = Some(now + RETRY_AFTER);
                let (inner, slot) = (Arc::clone(inner), Arc::clone(&slot));
                let (state, locale) = (state.to_owned(), locale.to_owned());
                tokio::spawn(async move { inner.refresh(&slot, &state, &locale).await });
            }
            return Some(messages);
        }
        if !may_search || inner.first_searches.check().is_err() {
            return None;
        }
        match inner.search(state, locale).await {
            Ok(messages) => {
                slot.has_texts
                    .store(!messages.is_empty(), Ordering::Release);
                let messages = Arc::new(messages);
                guard.messages = Some(Arc::clone(&messages));
                guard.fetched_at = Some(Instant::now());
                guard.not_before = None;
                Some(messages)
            }
            Err(error) => {
                tracing::warn!(
                    tenant = state,
                    locale,
                    %error,
                    "no localized texts yet, using the configured ones; retrying in {} s",
                    RETRY_AFTER.as_secs()
                );
                guard.not_before = Some(now + RETRY_AFTER.min(inner.ttl));
                None
            }
        }
    }
}

impl Inner {
    /// The slot of (`state`, `locale`), made (and the least recently used dropped) if needed.
    fn slot(&self, state: &str, locale: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let key = (state.to_owned(), locale.to_owned());
        let slot = match slots.get(&key) {
            Some(slot) => Arc::clone(slot),
            None => {
                if slots.len() >= MAX_SLOTS {
                    let oldest = slots
                        .iter()
                        .min_by_key(|(_, slot)| {
                            (
                                slot.has_texts.load(Ordering::Acquire),
                                *slot.last_used.lock().unwrap_or_else(|p| p.into_inner()),
                            )
                        })
                        .map(|(key, _)| key.clone());
                    if let Some(oldest) = oldest {
                        slots.remove(&oldest);
                    }
                }
                Arc::clone(slots.entry(key).or_default())
            }
        };
        *slot.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        slot
    }

    /// One search, its answer read whole, bounded by the timeout (the only one: the client
    /// has none of its own).
    async fn search(&self, state: &str, locale: &str) -> Result<Messages, SearchError> {
        let search = search::search(
            &self.http,
            &self.url,
            (state, &self.module, locale),
            &self.wanted,
        );
        match tokio::time::timeout(self.timeout, search).await {
            Ok(result) => result,
            Err(_) => Err(SearchError::Transport(format!(
                "no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    /// Replaces the slot's answer in the background; a failure keeps the old one.
    async fn refresh(&self, slot: &Slot, state: &str, locale: &str) {
        let result = self.search(state, locale).await;
        let mut guard = slot.state.lock().await;
        match result {
            Ok(messages) => {
                slot.has_texts
                    .store(!messages.is_empty(), Ordering::Release);
                guard.messages = Some(Arc::new(messages));
                guard.fetched_at = Some(Instant::now());
                guard.not_before = None;
            }
            Err(error) => tracing::warn!(
                tenant = state,
                locale,
                %error,
                "localized texts not refreshed, still using the previous ones; retrying in {} s",
                RETRY_AFTER.as_secs()
            ),
        }
        slot.refreshing.store(false, Ordering::Release);
    }
}

/// `tenant_id` without its last `strip` dot-separated parts, never fewer than one part.
pub fn state_tenant(tenant_id: &str, strip: usize) -> &str {
    let mut state = tenant_id;
    for _ in 0..strip {
        match state.rsplit_once('.') {
            Some((rest, _)) if !rest.is_empty() => state = rest,
            _ => break,
        }
    }
    state
}

/// Whether `name` (a state tenant or a locale) is a plain identifier worth a search.
fn looked_up(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_tenant_keeps_at_least_one_part() {
        assert_eq!(state_tenant("pb.amritsar", 1), "pb");
        assert_eq!(state_tenant("pb", 1), "pb");
        assert_eq!(state_tenant("in.statea.cityb", 1), "in.statea");
        assert_eq!(state_tenant("in.statea.cityb", 5), "in");
        assert_eq!(state_tenant("pb.amritsar", 0), "pb.amritsar");
    }

    use wiremock::matchers::{method, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn settings(host: &str) -> LocalizationSettings {
        LocalizationSettings {
            host: Some(host.to_owned()),
            search_path: "/localization/messages/v1/_search".into(),
            tenant_strip_suffix_count: 1,
            module: "egov-user".into(),
            sms_keys: Default::default(),
            cache_ttl: Duration::from_secs(3600),
            timeout: Duration::from_millis(500),
        }
    }

    /// A flood of made-up locales (a register request needs no user) costs egov-localization
    /// at most the first-search burst plus the rate, and never pushes out a state's answer.
    #[tokio::test]
    async fn a_flood_of_made_up_locales_is_rate_limited_and_keeps_the_real_answers() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(query_param("locale", "hi_IN"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!(
                {"messages": [{"code": "sms.login.otp.msg", "message": "हिंदी %s"}]})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({"messages": []})),
            )
            .mount(&server)
            .await;
        let localizer = Localizer::new(&settings(&server.uri()), vec!["sms.login.otp.msg".into()])
            .expect("localizer");
        let hindi = localizer
            .messages("pb.amritsar", "hi_IN")
            .await
            .expect("an answer");
        assert_eq!(hindi.get("sms.login.otp.msg"), Some("हिंदी %s"));
        let started = Instant::now();
        for i in 0..(MAX_SLOTS + 200) {
            let _ = localizer.messages("pb", &format!("l{i:04}")).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let searches = server.received_requests().await.unwrap_or_default().len() - 1;
        let allowed =
            f64::from(FIRST_SEARCH_BURST) + f64::from(FIRST_SEARCHES_PER_SECOND) * (elapsed + 1.0);
        assert!(
            (searches as f64) <= allowed,
            "{searches} searches in {elapsed:.1} s for {} made-up locales",
            MAX_SLOTS + 200
        );
        let again = localizer
            .messages("pb", "hi_IN")
            .await
            .expect("still cached");
        assert_eq!(
            again.get("sms.login.otp.msg"),
            Some("हिंदी %s"),
            "not evicted, not searched again"
        );
        server.verify().await;
    }

    #[test]
    fn only_plain_names_are_looked_up() {
        assert!(looked_up("hi_IN"));
        assert!(looked_up("pb"));
        assert!(!looked_up(""));
        assert!(!looked_up("hi IN"));
        assert!(!looked_up("pb&module=x"));
        assert!(!looked_up(&"a".repeat(MAX_NAME_BYTES + 1)));
    }
}
