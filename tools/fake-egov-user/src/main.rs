//! FAKE egov-user, for local runs, demos, load tests and fault drills only: never deploy it.
//! It listens on 127.0.0.1 only, has no authentication, and its control endpoints let anyone
//! on the machine make it fail.
//!
//! Answers `POST /user/_search` the way DIGIT's egov-user does for the two searches user-otp
//! makes ([contract §3](../../../docs/contract.md#3-egov-user-search)), from a JSON file of example users indexed once at start-up:
//! - `{"tenantId":"pb.amritsar","userType":"EMPLOYEE","mobileNumber":"…"}` (user type `EMPLOYEE`
//!   in any case) matches users of type `EMPLOYEE` of exactly that tenant with that mobile number;
//! - `{"tenantId":"pb","userType":"CITIZEN","userName":"…"}` (any other user type) matches the
//!   other users of that tenant or its cities (`pb.amritsar` is found under `pb`) with that user
//!   name.
//!
//! The answer is `{"responseInfo":{…},"user":[…]}`; an empty `user` array means "no such user".
//! A body that is not a JSON object of that shape is answered 400.
//!
//! Load tests: with `--synthetic-citizens-prefix PREFIX`, a search with user type `CITIZEN` (any
//! case) for a `userName` of exactly 10 ASCII digits starting with PREFIX that no file user
//! answers is answered with one made-up citizen: `id` 10_000_000_000 + the number, `uuid`
//! `5e7f0000-0000-4000-8000-00<number>`, `userName` = `mobileNumber` = the number, `emailId`
//! null, `tenantId` the searched tenant, `type` `CITIZEN`.
//!
//! Fault drills: `POST /fake/faults` `{"failRate":0.5,"maxDelayMs":2000,"seconds":60}` makes,
//! for the next `seconds` seconds, every `/user/_search` wait a uniform random 0..=maxDelayMs
//! ms and then, with probability `failRate`, answer 503
//! `{"Errors":[{"code":"SERVICE_UNAVAILABLE"}]}`. It replaces the faults in force (including
//! those of `--fail-rate`/`--max-delay-ms`, which last until replaced); all zeros clear them.
//! `GET /fake/faults` shows them; `GET /fake/stats` counts searches and injected failures.
//!
//! Also a FAKE egov-localization on the same port ([`localization`]), from
//! `dev/fake-localization.json`; faults do not apply to it.

#![forbid(unsafe_code)]

mod localization;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use clap::Parser;
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

/// FAKE egov-user for local development, load tests and fault drills (127.0.0.1 only).
#[derive(Parser)]
#[command(name = "fake-egov-user")]
struct Args {
    /// Port to listen on (127.0.0.1 only).
    #[arg(long, default_value_t = 8081)]
    port: u16,
    /// JSON array of users, in egov-user's user shape.
    #[arg(long, default_value = "dev/fake-egov-users.json")]
    users: PathBuf,
    /// JSON array of localized messages, served as egov-localization's search.
    #[arg(long, default_value = "dev/fake-localization.json")]
    localization: PathBuf,
    /// Answer citizen searches for any 10-digit userName starting with these digits.
    #[arg(long)]
    synthetic_citizens_prefix: Option<String>,
    /// Probability (0..=1) that a search answers 503, from start-up until replaced.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Delay every search by a uniform random 0..=N ms, from start-up until replaced.
    #[arg(long, default_value_t = 0)]
    max_delay_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Flags first: a typo should not wait for (or be hidden by) the users file.
    let faults = Faults::forever(args.fail_rate, args.max_delay_ms).map_err(anyhow::Error::msg)?;
    Directory::new(&[], args.synthetic_citizens_prefix.as_deref())?;
    let text = std::fs::read_to_string(&args.users)
        .with_context(|| format!("reading {}", args.users.display()))?;
    let users: Vec<Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} must be a JSON array of users", args.users.display()))?;
    let directory = Directory::new(&users, args.synthetic_citizens_prefix.as_deref())
        .with_context(|| format!("indexing {}", args.users.display()))?;
    let text = std::fs::read_to_string(&args.localization)
        .with_context(|| format!("reading {}", args.localization.display()))?;
    let catalogue = localization::Catalogue::parse(&text).with_context(|| {
        format!(
            "{} must be a JSON array of {{code, message, module, locale, tenantId}}",
            args.localization.display()
        )
    })?;
    let messages = catalogue.len();
    let localization = Router::new()
        .route(
            "/localization/messages/v1/_search",
            post(localization::search),
        )
        .with_state(Arc::new(catalogue));
    let app = Arc::new(App {
        directory,
        faults: RwLock::new(faults),
        searches: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let router = Router::new()
        .route("/user/_search", post(search))
        .route("/fake/faults", post(set_faults).get(show_faults))
        .route("/fake/stats", get(stats))
        .with_state(app)
        .merge(localization);
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}"))?;
    eprintln!(
        "fake-egov-user (FAKE, development only) listening on {address}: {} users, \
         {messages} localized messages, synthetic prefix {:?}, failRate {}, maxDelayMs {}",
        users.len(),
        args.synthetic_citizens_prefix,
        args.fail_rate,
        args.max_delay_ms
    );
    axum::serve(listener, router).await?;
    Ok(())
}

struct App {
    directory: Directory,
    faults: RwLock<Faults>,
    searches: AtomicU64,
    failed: AtomicU64,
}

// ---------------------------------------------------------------------------------------------
// The users, indexed.

/// A file user, serialised once at start-up.
struct Entry {
    tenant: Box<str>,
    json: Box<str>,
}

/// key → second key → users (nested so that lookups borrow the request's strings).
type Index = HashMap<Box<str>, HashMap<Box<str>, Vec<Entry>>>;

#[derive(Default)]
struct Directory {
    /// Users of type `EMPLOYEE`: tenant → mobileNumber → users.
    employees: Index,
    /// Everyone else: root tenant (up to the first `.`) → userName → users.
    others: Index,
    synthetic_prefix: Option<Box<str>>,
}

/// The fields of a search that matter; a field that is absent or not a string is `None`.
#[derive(Default)]
struct Search<'a> {
    tenant: &'a str,
    user_type: Option<&'a str>,
    mobile: Option<&'a str>,
    user_name: Option<&'a str>,
}

fn root_tenant(tenant: &str) -> &str {
    tenant.split('.').next().unwrap_or(tenant)
}

/// `tenant` itself or one of its cities (`pb.amritsar` within `pb`).
fn within(user_tenant: &str, tenant: &str) -> bool {
    user_tenant
        .strip_prefix(tenant)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

impl Directory {
    fn new(users: &[Value], synthetic_prefix: Option<&str>) -> anyhow::Result<Self> {
        let mut directory = Directory::default();
        if let Some(prefix) = synthetic_prefix {
            if prefix.len() > 10 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                bail!("--synthetic-citizens-prefix must be at most 10 digits, got {prefix:?}");
            }
            directory.synthetic_prefix = Some(prefix.into());
        }
        for (position, user) in users.iter().enumerate() {
            let Some(fields) = user.as_object() else {
                bail!("user {position} is not a JSON object");
            };
            let text = |key: &str| fields.get(key).and_then(Value::as_str);
            let tenant = text("tenantId").unwrap_or_default();
            let entry = || Entry {
                tenant: tenant.into(),
                json: user.to_string().into(),
            };
            let (index, outer, inner) = if text("type") == Some("EMPLOYEE") {
                (&mut directory.employees, tenant, text("mobileNumber"))
            } else {
                (&mut directory.others, root_tenant(tenant), text("userName"))
            };
            if let Some(inner) = inner {
                index
                    .entry(outer.into())
                    .or_default()
                    .entry(inner.into())
                    .or_default()
                    .push(entry());
            }
        }
        Ok(directory)
    }

    /// The users answering `search`, as JSON texts.
    fn find(&self, search: &Search<'_>) -> Vec<Cow<'_, str>> {
        let is = |wanted: &str| {
            search
                .user_type
                .is_some_and(|t| t.eq_ignore_ascii_case(wanted))
        };
        if is("EMPLOYEE") {
            return lookup(&self.employees, search.tenant, search.mobile)
                .iter()
                .map(|entry| Cow::Borrowed(&*entry.json))
                .collect();
        }
        let found: Vec<Cow<'_, str>> =
            lookup(&self.others, root_tenant(search.tenant), search.user_name)
                .iter()
                .filter(|entry| within(&entry.tenant, search.tenant))
                .map(|entry| Cow::Borrowed(&*entry.json))
                .collect();
        if !found.is_empty() || !is("CITIZEN") {
            return found;
        }
        match (&self.synthetic_prefix, search.user_name) {
            (Some(prefix), Some(name)) if is_synthetic(prefix, name) => {
                vec![Cow::Owned(synthetic_citizen(name, search.tenant))]
            }
            _ => found,
        }
    }
}

fn lookup<'a>(index: &'a Index, outer: &str, inner: Option<&str>) -> &'a [Entry] {
    inner
        .and_then(|inner| index.get(outer)?.get(inner))
        .map_or(&[], Vec::as_slice)
}

fn is_synthetic(prefix: &str, user_name: &str) -> bool {
    user_name.len() == 10
        && user_name.bytes().all(|b| b.is_ascii_digit())
        && user_name.starts_with(prefix)
}

/// The made-up citizen for a 10-digit number (see the module doc).
fn synthetic_citizen(number: &str, tenant: &str) -> String {
    let id = number.parse::<u64>().map_or(0, |n| 10_000_000_000 + n);
    // The tenant comes from the request: serialise it, never paste it.
    let tenant = Value::from(tenant);
    format!(
        r#"{{"emailId":null,"id":{id},"mobileNumber":"{number}","tenantId":{tenant},"type":"CITIZEN","userName":"{number}","uuid":"5e7f0000-0000-4000-8000-00{number}"}}"#
    )
}

// ---------------------------------------------------------------------------------------------
// Faults.

/// The faults in force: until `until` (`None`: until replaced).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Faults {
    fail_rate: f64,
    max_delay_ms: u64,
    until: Option<Instant>,
}

/// What one search suffers.
#[derive(Debug, Default, PartialEq)]
struct Decision {
    delay_ms: u64,
    fail: bool,
}

/// Body of `POST /fake/faults`; a missing member is 0.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultsRequest {
    #[serde(default)]
    fail_rate: f64,
    #[serde(default)]
    max_delay_ms: u64,
    #[serde(default)]
    seconds: u64,
}

const MAX_DELAY_MS: u64 = 600_000;

impl Faults {
    const NONE: Faults = Faults {
        fail_rate: 0.0,
        max_delay_ms: 0,
        until: None,
    };

    /// Faults lasting until replaced (the command-line ones).
    fn forever(fail_rate: f64, max_delay_ms: u64) -> Result<Faults, String> {
        if !(0.0..=1.0).contains(&fail_rate) {
            return Err(format!("failRate must be within 0..=1, got {fail_rate}"));
        }
        if max_delay_ms > MAX_DELAY_MS {
            return Err(format!("maxDelayMs must be at most {MAX_DELAY_MS}"));
        }
        Ok(Faults {
            fail_rate,
            max_delay_ms,
            until: None,
        })
    }

    /// The faults a `POST /fake/faults` asks for, from `now`.
    fn window(request: &FaultsRequest, now: Instant) -> Result<Faults, String> {
        let faults = Faults::forever(request.fail_rate, request.max_delay_ms)?;
        if request.seconds == 0 || (faults.fail_rate == 0.0 && faults.max_delay_ms == 0) {
            return Ok(Faults::NONE);
        }
        let until = now
            .checked_add(Duration::from_secs(request.seconds))
            .ok_or("seconds is too large")?;
        Ok(Faults {
            until: Some(until),
            ..faults
        })
    }

    fn active(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now < until)
    }

    fn decide(&self, now: Instant, rng: &mut impl Rng) -> Decision {
        if !self.active(now) {
            return Decision::default();
        }
        Decision {
            delay_ms: match self.max_delay_ms {
                0 => 0,
                max => rng.gen_range(0..=max),
            },
            fail: self.fail_rate > 0.0 && rng.gen::<f64>() < self.fail_rate,
        }
    }

    fn describe(&self, now: Instant) -> Value {
        let active = self.active(now) && (self.fail_rate > 0.0 || self.max_delay_ms > 0);
        let (fail_rate, max_delay_ms) = match active {
            true => (self.fail_rate, self.max_delay_ms),
            false => (0.0, 0),
        };
        let seconds_left = match (active, self.until) {
            (true, Some(until)) => {
                // Whole milliseconds, so that the number reads cleanly.
                let left = until.saturating_duration_since(now).as_millis();
                json!(u64::try_from(left).unwrap_or(u64::MAX) as f64 / 1000.0)
            }
            (true, None) => json!("forever"),
            (false, _) => json!(0),
        };
        json!({"failRate": fail_rate, "maxDelayMs": max_delay_ms, "secondsLeft": seconds_left})
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP.

const ANSWER_HEAD: &str =
    r#"{"responseInfo":{"apiId":"fake-egov-user","status":"successful"},"user":["#;
const NO_USER: &str =
    r#"{"responseInfo":{"apiId":"fake-egov-user","status":"successful"},"user":[]}"#;
const UNAVAILABLE: &str = r#"{"Errors":[{"code":"SERVICE_UNAVAILABLE"}]}"#;
const INVALID: &str =
    r#"{"Errors":[{"code":"INVALID_REQUEST","message":"a JSON object body is required"}]}"#;

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let content_type = HeaderValue::from_static("application/json");
    (status, [(header::CONTENT_TYPE, content_type)], body.into()).into_response()
}

/// The search answer for these users (JSON texts).
fn answer(users: &[Cow<'_, str>]) -> String {
    let length = users.iter().map(|user| user.len() + 1).sum::<usize>();
    let mut out = String::with_capacity(ANSWER_HEAD.len() + length + 2);
    out.push_str(ANSWER_HEAD);
    for (position, user) in users.iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        out.push_str(user);
    }
    out.push_str("]}");
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchBody {
    tenant_id: Option<Value>,
    user_type: Option<Value>,
    mobile_number: Option<Value>,
    user_name: Option<Value>,
}

impl SearchBody {
    fn search(&self) -> Search<'_> {
        Search {
            tenant: self
                .tenant_id
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or_default(),
            user_type: self.user_type.as_ref().and_then(Value::as_str),
            mobile: self.mobile_number.as_ref().and_then(Value::as_str),
            user_name: self.user_name.as_ref().and_then(Value::as_str),
        }
    }
}

async fn search(State(app): State<Arc<App>>, body: Bytes) -> Response {
    app.searches.fetch_add(1, Ordering::Relaxed);
    let faults = *app.faults.read().unwrap_or_else(PoisonError::into_inner);
    let decision = faults.decide(Instant::now(), &mut rand::thread_rng());
    if decision.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(decision.delay_ms)).await;
    }
    if decision.fail {
        app.failed.fetch_add(1, Ordering::Relaxed);
        return json_response(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE);
    }
    let Ok(query) = serde_json::from_slice::<SearchBody>(&body) else {
        return json_response(StatusCode::BAD_REQUEST, INVALID);
    };
    let found = app.directory.find(&query.search());
    if found.is_empty() {
        json_response(StatusCode::OK, NO_USER)
    } else {
        json_response(StatusCode::OK, answer(&found))
    }
}

async fn set_faults(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let now = Instant::now();
    let faults = serde_json::from_slice::<FaultsRequest>(&body)
        .map_err(|e| {
            format!("expected {{\"failRate\":0.5,\"maxDelayMs\":2000,\"seconds\":60}}: {e}")
        })
        .and_then(|request| Faults::window(&request, now));
    match faults {
        Ok(faults) => {
            *app.faults.write().unwrap_or_else(PoisonError::into_inner) = faults;
            eprintln!("fake-egov-user: faults now {}", faults.describe(now));
            json_response(StatusCode::OK, faults.describe(now).to_string())
        }
        Err(message) => {
            let body = json!({"Errors": [{"code": "INVALID_REQUEST", "message": message}]});
            json_response(StatusCode::BAD_REQUEST, body.to_string())
        }
    }
}

async fn show_faults(State(app): State<Arc<App>>) -> Response {
    let faults = *app.faults.read().unwrap_or_else(PoisonError::into_inner);
    json_response(StatusCode::OK, faults.describe(Instant::now()).to_string())
}

async fn stats(State(app): State<Arc<App>>) -> Response {
    let body = json!({
        "searches": app.searches.load(Ordering::Relaxed),
        "failed": app.failed.load(Ordering::Relaxed),
    });
    json_response(StatusCode::OK, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn directory(prefix: Option<&str>) -> Directory {
        let users = json!([
            {"id": 1, "userName": "9000000001", "mobileNumber": "9000000001",
             "tenantId": "pb", "type": "CITIZEN"},
            {"id": 2, "userName": "9000000002", "mobileNumber": "9000000002",
             "tenantId": "pb.amritsar", "type": "CITIZEN"},
            {"id": 3, "userName": "EMP-1", "mobileNumber": "9000000003",
             "tenantId": "pb.amritsar", "type": "EMPLOYEE"},
            {"id": 4, "userName": "9000000004", "mobileNumber": "9000000004",
             "tenantId": "mz", "type": "CITIZEN"},
            {"id": 5, "userName": "9000000003", "mobileNumber": null,
             "tenantId": "pb", "type": "SYSTEM"}
        ]);
        let users = users.as_array().cloned().unwrap_or_default();
        Directory::new(&users, prefix).expect("valid users")
    }

    /// The `id`s found by a search.
    fn ids(directory: &Directory, search: Search<'_>) -> Vec<i64> {
        directory
            .find(&search)
            .iter()
            .map(|user| {
                let user: Value = serde_json::from_str(user).expect("user JSON");
                user["id"].as_i64().expect("id")
            })
            .collect()
    }

    fn employee<'a>(tenant: &'a str, mobile: &'a str) -> Search<'a> {
        Search {
            tenant,
            user_type: Some("employee"),
            mobile: Some(mobile),
            ..Search::default()
        }
    }

    fn citizen<'a>(tenant: &'a str, user_name: &'a str) -> Search<'a> {
        Search {
            tenant,
            user_type: Some("CITIZEN"),
            user_name: Some(user_name),
            ..Search::default()
        }
    }

    #[test]
    fn employee_found_by_exact_tenant_and_mobile() {
        let d = directory(None);
        assert_eq!(ids(&d, employee("pb.amritsar", "9000000003")), [3]);
        assert!(ids(&d, employee("pb", "9000000003")).is_empty());
        assert!(ids(&d, employee("pb.jalandhar", "9000000003")).is_empty());
        assert!(ids(&d, employee("pb.amritsar", "9000000002")).is_empty());
        // An employee is not a citizen, whatever the key.
        assert!(ids(&d, citizen("pb", "EMP-1")).is_empty());
        let no_mobile = Search {
            mobile: None,
            ..employee("pb.amritsar", "")
        };
        assert!(ids(&d, no_mobile).is_empty());
    }

    #[test]
    fn citizen_found_by_root_tenant_and_user_name() {
        let d = directory(None);
        assert_eq!(ids(&d, citizen("pb", "9000000001")), [1]);
        assert_eq!(ids(&d, citizen("mz", "9000000004")), [4]);
        assert!(ids(&d, citizen("mz", "9000000001")).is_empty());
        assert!(ids(&d, citizen("pb", "9999999999")).is_empty());
        // Any non-employee type is searched the same way.
        let system = Search {
            user_type: Some("SYSTEM"),
            ..citizen("pb", "9000000003")
        };
        assert_eq!(ids(&d, system), [5]);
        // A citizen is not found by an employee search.
        assert!(ids(&d, employee("pb", "9000000001")).is_empty());
    }

    #[test]
    fn city_tenant_citizen_found_under_root_and_own_city_only() {
        let d = directory(None);
        assert_eq!(ids(&d, citizen("pb", "9000000002")), [2]);
        assert_eq!(ids(&d, citizen("pb.amritsar", "9000000002")), [2]);
        assert!(ids(&d, citizen("pb.jalandhar", "9000000002")).is_empty());
        // A state user is not within a city, nor is `pbx` within `pb`.
        assert!(ids(&d, citizen("pb.amritsar", "9000000001")).is_empty());
        assert!(within("pb.amritsar", "pb") && !within("pbx", "pb") && within("pb", "pb"));
    }

    #[test]
    fn synthetic_citizen_for_prefix_and_ten_digits() {
        let d = directory(Some("70"));
        let found = d.find(&citizen("pb.amritsar", "7012345678"));
        let user: Value = serde_json::from_str(&found[0]).expect("user JSON");
        assert_eq!(
            user,
            json!({"id": 17_012_345_678_i64, "uuid": "5e7f0000-0000-4000-8000-007012345678",
                   "userName": "7012345678", "mobileNumber": "7012345678", "emailId": null,
                   "tenantId": "pb.amritsar", "type": "CITIZEN"})
        );
        assert_eq!(found.len(), 1);
        assert_eq!(ids(&d, citizen("pb", "7000000000")), [17_000_000_000]);
    }

    #[test]
    fn synthetic_rules_reject_non_digits_wrong_length_prefix_and_type() {
        let d = directory(Some("70"));
        for name in [
            "70123456789",
            "701234567",
            "70123456a8",
            "7012345 78",
            "６０12345678",
        ] {
            assert!(ids(&d, citizen("pb", name)).is_empty(), "{name}");
        }
        assert!(ids(&d, citizen("pb", "7112345678")).is_empty());
        assert!(ids(&d, employee("pb", "7012345678")).is_empty());
        let system = Search {
            user_type: Some("SYSTEM"),
            ..citizen("pb", "7012345678")
        };
        assert!(ids(&d, system).is_empty());
        // No prefix, no synthetic users; an empty prefix means any 10 digits.
        assert!(ids(&directory(None), citizen("pb", "7012345678")).is_empty());
        assert_eq!(
            ids(&directory(Some("")), citizen("pb", "0000000001")).len(),
            1
        );
        assert!(Directory::new(&[], Some("7a")).is_err());
        assert!(Directory::new(&[], Some("12345678901")).is_err());
    }

    #[test]
    fn file_users_win_over_synthetic_ones() {
        let d = directory(Some("9"));
        assert_eq!(ids(&d, citizen("pb", "9000000001")), [1]);
        // Not within this city: the file user does not answer, so a synthetic one does.
        assert_eq!(
            ids(&d, citizen("pb.jalandhar", "9000000001")),
            [19_000_000_001]
        );
    }

    #[test]
    fn synthetic_tenant_is_escaped() {
        let user = synthetic_citizen("7000000000", "p\"b");
        let user: Value = serde_json::from_str(&user).expect("user JSON");
        assert_eq!(user["tenantId"], "p\"b");
    }

    #[test]
    fn dev_users_file_is_indexed() {
        let users: Vec<Value> =
            serde_json::from_str(include_str!("../../../dev/fake-egov-users.json")).expect("array");
        let d = Directory::new(&users, None).expect("valid users");
        assert_eq!(ids(&d, citizen("pb", "9999900001")), [101]);
        assert_eq!(ids(&d, citizen("pb", "9999900002")), [102]);
        assert_eq!(ids(&d, employee("pb.amritsar", "9999900003")), [201]);
        assert_eq!(ids(&d, citizen("pb", "9999900004")), [103]);
    }

    #[test]
    fn answers_are_json_in_the_contract_shape() {
        let answer: Value =
            serde_json::from_str(&answer(&[Cow::Borrowed(r#"{"id":1}"#), "{}".into()]))
                .expect("JSON");
        assert_eq!(answer["user"], json!([{"id": 1}, {}]));
        assert_eq!(answer["responseInfo"]["status"], "successful");
        let none: Value = serde_json::from_str(NO_USER).expect("JSON");
        assert_eq!(none["user"], json!([]));
        let body: SearchBody =
            serde_json::from_str(r#"{"tenantId":"pb","userName":5,"userType":null,"x":[]}"#)
                .expect("search body");
        let search = body.search();
        assert_eq!((search.tenant, search.user_name), ("pb", None));
    }

    fn request(fail_rate: f64, max_delay_ms: u64, seconds: u64) -> FaultsRequest {
        FaultsRequest {
            fail_rate,
            max_delay_ms,
            seconds,
        }
    }

    #[test]
    fn fault_window_expires() {
        let start = Instant::now();
        let faults = Faults::window(&request(1.0, 0, 60), start).expect("valid");
        let mut rng = StdRng::seed_from_u64(7);
        let failing = Decision {
            delay_ms: 0,
            fail: true,
        };
        assert_eq!(faults.decide(start, &mut rng), failing);
        let late = start + Duration::from_millis(59_999);
        assert_eq!(faults.decide(late, &mut rng), failing);
        let over = start + Duration::from_secs(60);
        assert_eq!(faults.decide(over, &mut rng), Decision::default());
        assert_eq!(faults.describe(over)["failRate"], 0.0);
    }

    #[test]
    fn zeros_clear_faults_and_command_line_faults_last() {
        let now = Instant::now();
        assert_eq!(Faults::window(&request(0.0, 0, 0), now), Ok(Faults::NONE));
        assert_eq!(Faults::window(&request(0.5, 10, 0), now), Ok(Faults::NONE));
        assert_eq!(Faults::window(&request(0.0, 0, 30), now), Ok(Faults::NONE));
        let forever = Faults::forever(1.0, 0).expect("valid");
        let years = now + Duration::from_secs(10 * 365 * 86_400);
        assert!(forever.decide(years, &mut StdRng::seed_from_u64(1)).fail);
        assert_eq!(forever.describe(now)["secondsLeft"], "forever");
        let none = Faults::forever(0.0, 0).expect("valid");
        assert_eq!(
            none.decide(now, &mut rand::thread_rng()),
            Decision::default()
        );
    }

    #[test]
    fn fault_rates_and_delays_are_bounded() {
        let now = Instant::now();
        let mut rng = StdRng::seed_from_u64(42);
        let faults = Faults::window(&request(0.25, 50, 10), now).expect("valid");
        let decisions: Vec<Decision> = (0..4000).map(|_| faults.decide(now, &mut rng)).collect();
        assert!(decisions.iter().all(|d| d.delay_ms <= 50));
        assert!(
            decisions.iter().any(|d| d.delay_ms == 50) && decisions.iter().any(|d| d.delay_ms == 0)
        );
        let failures = decisions.iter().filter(|d| d.fail).count();
        assert!((800..1200).contains(&failures), "{failures}");
        let never = Faults::window(&request(0.0, 50, 10), now).expect("valid");
        assert!((0..1000).all(|_| !never.decide(now, &mut rng).fail));
        for bad in [
            request(1.5, 0, 1),
            request(-0.1, 0, 1),
            request(0.0, MAX_DELAY_MS + 1, 1),
        ] {
            assert!(Faults::window(&bad, now).is_err());
        }
        assert!(Faults::window(&request(0.5, 0, u64::MAX), now).is_err());
    }
}
