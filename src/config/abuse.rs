//! The abuse controls' settings (issue 9): send limits, the guess budget, the per-client limit
//! at the shim, the country allow-list and the pumping guard, test numbers, and retention.
//! `0` turns a limit off. Start-up refuses combinations that would break a guarantee: a
//! retention shorter than the longest limit window or the code validity (a purged outcome could
//! then be replayed while its event is not yet stale), test numbers in production without
//! `USER_OTP_ALLOW_TEST_NUMBERS=true`.

use std::time::Duration;

use super::{keys, ConfigError, Profile, Reader};
use crate::domain::abuse::country::CountryAllowList;
use crate::domain::abuse::guess_budget::GuessBudget;
use crate::domain::abuse::pumping::{PumpingGuard, PumpingMode};
use crate::domain::abuse::send_limits::SendLimits;
use crate::domain::abuse::test_numbers::TestNumbers;

/// Every abuse control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbuseSettings {
    pub send_limits: SendLimits,
    pub guess_budget: GuessBudget,
    /// `_send` requests per client address per minute at the shim; `0` is off.
    pub client_limit_per_minute: u32,
    /// Header whose right-most address is the client's (set by the trusted gateway); `None`:
    /// the TCP peer address.
    pub client_address_header: Option<String>,
    pub allowed_country_codes: CountryAllowList,
    pub pumping: PumpingGuard,
    pub test_numbers: TestNumbers,
}

/// What is kept, and how the worker purges the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Codes, outcomes and limit history older than this are deleted.
    pub retention: Duration,
    /// How often the worker purges; zero: never (`user-otp purge` still does).
    pub purge_interval: Duration,
    /// Rows deleted per statement (short transactions, no long locks).
    pub purge_batch_rows: i64,
}

impl Reader<'_> {
    pub(super) fn abuse(&self, profile: Profile) -> Result<AbuseSettings, ConfigError> {
        let test_numbers = {
            let text = self.optional(keys::TEST_NUMBERS).unwrap_or_default();
            let parsed = TestNumbers::parse(&text)
                .map_err(|problem| self.invalid(keys::TEST_NUMBERS, &problem))?;
            let allowed = self.flag(keys::ALLOW_TEST_NUMBERS)?;
            if profile == Profile::Production && !parsed.is_empty() && !allowed {
                return Err(self.invalid(
                    keys::TEST_NUMBERS,
                    "test numbers get a fixed code: refused in the production profile unless USER_OTP_ALLOW_TEST_NUMBERS=true",
                ));
            }
            let short = parsed
                .shortest_code()
                .is_some_and(|len| len < usize::from(super::PRODUCTION_MIN_CODE_LENGTH));
            if profile == Profile::Production && short {
                return Err(self.invalid(
                    keys::TEST_NUMBERS,
                    "a fixed code shorter than 6 digits is refused in the production profile",
                ));
            }
            parsed
        };
        let countries = self
            .optional(keys::ALLOWED_COUNTRY_CODES)
            .unwrap_or_default();
        let allowed_country_codes = CountryAllowList::new(
            countries
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty()),
        )
        .map_err(|bad| {
            self.invalid(
                keys::ALLOWED_COUNTRY_CODES,
                &format!("{bad:?} is not a country calling code (1-3 digits, e.g. 91 or +91)"),
            )
        })?;
        let mode_text = self.text(keys::PUMPING_MODE)?;
        let mode = PumpingMode::parse(&mode_text)
            .ok_or_else(|| self.invalid(keys::PUMPING_MODE, "expected off, shadow or enforce"))?;
        Ok(AbuseSettings {
            send_limits: SendLimits {
                cooldown: Duration::from_secs(
                    self.number(keys::SEND_COOLDOWN_SECONDS, 0..=86_400)?,
                ),
                per_hour: self.number(keys::SEND_LIMIT_PER_HOUR, 0..=10_000)?,
                per_day: self.number(keys::SEND_LIMIT_PER_DAY, 0..=100_000)?,
            },
            guess_budget: GuessBudget {
                failures_per_hour: self.number(keys::VALIDATE_FAILURES_PER_HOUR, 0..=10_000)?,
            },
            client_limit_per_minute: self.number(keys::CLIENT_LIMIT_PER_MINUTE, 0..=1_000_000)?,
            client_address_header: self.header_name(keys::CLIENT_ADDRESS_HEADER)?,
            allowed_country_codes,
            pumping: PumpingGuard {
                mode,
                prefix_length: self.number(keys::PUMPING_PREFIX_LENGTH, 2..=12)?,
                limit_per_hour: self.number(keys::PUMPING_LIMIT_PER_HOUR, 0..=10_000_000)?,
            },
            test_numbers,
        })
    }

    pub(super) fn retention(
        &self,
        abuse: &AbuseSettings,
        code_ttl: Duration,
    ) -> Result<RetentionSettings, ConfigError> {
        let hours: u64 = self.number(keys::RETENTION_HOURS, 1..=87_600)?;
        let retention = Duration::from_secs(hours * 3600);
        let mut longest = abuse.send_limits.longest_window().max(code_ttl);
        if abuse.guess_budget.failures_per_hour > 0 {
            longest = longest.max(crate::domain::abuse::HOUR);
        }
        if retention < longest {
            return Err(self.invalid(
                keys::RETENTION_HOURS,
                &format!(
                    "{hours} h is shorter than the longest limit window or code validity ({} s): the limits and replay safety need that history",
                    longest.as_secs()
                ),
            ));
        }
        Ok(RetentionSettings {
            retention,
            purge_interval: Duration::from_secs(
                self.number(keys::PURGE_INTERVAL_SECONDS, 0..=86_400)?,
            ),
            purge_batch_rows: self.number(keys::PURGE_BATCH_ROWS, 10..=100_000)?,
        })
    }

    /// `true` or `false`.
    pub(super) fn flag(&self, key: keys::Key) -> Result<bool, ConfigError> {
        match self.text(key)?.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.invalid(key, "expected true or false")),
        }
    }

    /// An HTTP header name (token characters), or `None` when unset.
    fn header_name(&self, key: keys::Key) -> Result<Option<String>, ConfigError> {
        let Some(name) = self.optional(key) else {
            return Ok(None);
        };
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.len() <= 64 && name.chars().all(token) {
            Ok(Some(name.to_ascii_lowercase()))
        } else {
            Err(self.invalid(key, &format!("{name:?} is not an HTTP header name")))
        }
    }
}
