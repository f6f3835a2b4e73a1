//! Where message texts come from: egov-localization ([contract §6](../../docs/contract.md#6-message-texts)),
//! which modules and keys are looked up, how long an answer is kept, and the DLT template ids of
//! localized texts.
//!
//! DIGIT's names are accepted: `EGOV_LOCALISATION_HOST`, `EGOV_LOCALISATION_SEARCH_ENDPOINT`,
//! `EGOV_LOCALISATION_TENANTID_STRIP_SUFFIX_COUNT`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{keys, ConfigError, Key, PerType, Reader};

/// egov-localization, and what is asked of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalizationSettings {
    /// Base URL, e.g. `http://egov-localization:8080`; `None`: texts from configuration only.
    pub host: Option<String>,
    /// Path of the search, e.g. `/localization/messages/v1/_search`.
    pub search_path: String,
    /// Dot-separated parts cut off the end of a request's tenant to get the state tenant whose
    /// texts are used (`pb.amritsar` with 1: `pb`); a tenant is never cut to nothing.
    pub tenant_strip_suffix_count: usize,
    /// The `module` parameter as sent: one module or several, comma-separated.
    pub module: String,
    /// Keys of the SMS text per type, tried in order (DIGIT's, then mGramSeva's).
    pub sms_keys: PerType<Vec<String>>,
    /// How long an answer is used before it is fetched again (in the background; the old one
    /// is used meanwhile, and for as long as egov-localization is down).
    pub cache_ttl: Duration,
    /// Longest wait for egov-localization when a state and locale have no answer yet.
    pub timeout: Duration,
}

impl LocalizationSettings {
    /// The search URL without its query.
    pub fn search_url(&self) -> Option<String> {
        self.host
            .as_ref()
            .map(|host| format!("{}{}", host.trim_end_matches('/'), self.search_path))
    }
}

/// Most characters of a configured DLT template id.
const DLT_ID_MAX_CHARS: usize = 64;

impl Reader<'_> {
    pub(super) fn localization(&self) -> Result<LocalizationSettings, ConfigError> {
        let host = match self.optional(keys::LOCALIZATION_HOST) {
            Some(_) => Some(self.http_url(keys::LOCALIZATION_HOST)?),
            None => None,
        };
        let module = self.text(keys::LOCALIZATION_MODULE)?;
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ',');
        if !module.chars().all(legal) || module.split(',').any(str::is_empty) {
            return Err(self.invalid(
                keys::LOCALIZATION_MODULE,
                "expected module names (letters, digits, '-', '_', '.'), comma-separated",
            ));
        }
        Ok(LocalizationSettings {
            host,
            search_path: self.path(keys::LOCALIZATION_SEARCH_ENDPOINT)?,
            tenant_strip_suffix_count: self
                .number(keys::LOCALIZATION_TENANT_STRIP_SUFFIX_COUNT, 0..=8)?,
            module,
            sms_keys: PerType {
                register: self.key_list(keys::LOCALIZATION_SMS_KEYS_REGISTER)?,
                login: self.key_list(keys::LOCALIZATION_SMS_KEYS_LOGIN)?,
                password_reset: self.key_list(keys::LOCALIZATION_SMS_KEYS_PASSWORDRESET)?,
            },
            cache_ttl: Duration::from_secs(
                self.number(keys::LOCALIZATION_CACHE_TTL_SECONDS, 1..=86_400)?,
            ),
            timeout: Duration::from_millis(self.number(keys::LOCALIZATION_TIMEOUT_MS, 50..=2_000)?),
        })
    }

    /// A comma-separated list of localization keys, at least one.
    fn key_list(&self, key: Key) -> Result<Vec<String>, ConfigError> {
        let list: Vec<String> = self
            .text(key)?
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect();
        if list.is_empty() {
            return Err(self.invalid(key, "expected one or more keys, comma-separated"));
        }
        Ok(list)
    }

    /// `locale=id` pairs, comma-separated (`hi_IN=1007…,pa_IN=1007…`): the DLT template id of
    /// each locale's localized text.
    pub(super) fn dlt_ids_by_locale(
        &self,
        key: Key,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut ids = BTreeMap::new();
        let Some(text) = self.optional(key) else {
            return Ok(ids);
        };
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((locale, id)) = pair.split_once('=') else {
                return Err(self.invalid(key, &format!("{pair:?} is not locale=id")));
            };
            let (locale, id) = (locale.trim(), id.trim());
            let id_ok = !id.is_empty()
                && id.chars().count() <= DLT_ID_MAX_CHARS
                && id.chars().all(|c| c.is_ascii_graphic());
            if locale.is_empty() || !id_ok {
                return Err(self.invalid(key, &format!("{pair:?} is not locale=id")));
            }
            ids.insert(locale.to_owned(), id.to_owned());
        }
        Ok(ids)
    }
}
