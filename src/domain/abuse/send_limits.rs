//! Send limits per identity, the number the SMS goes to ([`limit_identity`]): a cooldown between
//! codes, and caps per rolling hour and rolling day. The issue named root tenant + mobile; the
//! count is kept per number across tenants instead, because a tenant id is whatever the caller
//! writes (a register request needs no user), so per-tenant counts could be multiplied by
//! inventing tenants (`pb`, `PB`, `xx`, …) while every SMS reaches the same phone. Only codes actually sent count: a
//! refused or rate-limited request adds nothing to the history, and does not retire the live
//! code (no new code is stored).
//!
//! Defaults (`USER_OTP_SEND_COOLDOWN_SECONDS=30`, `USER_OTP_SEND_LIMIT_PER_HOUR=5`,
//! `USER_OTP_SEND_LIMIT_PER_DAY=10`) follow DIGIT's OTP service 3.0 (30 s resend delay, a small
//! hourly cap per destination); OWASP ASVS 5.0 V6 asks for rate limiting of out-of-band codes.

use std::time::{Duration, SystemTime};

use super::{until_under, within, DAY, HOUR};

/// The number the limits (send limits, guess budget, pumping guard) count under: the digits of a
/// phone number (`+`, spaces and dashes dropped), the last 10 of them when there are more
/// (`09876543210`, `919876543210`, `+91 98765-43210` and `0919876543210` reach the same Indian
/// phone as `9876543210`; [§1](../../../docs/contract.md#1-the-send-request) accepts 10-13 digits and egov-user may store `+91…`); anything
/// else (a user name) as it is. Where the SMS goes is not changed; only the count is shared, so
/// spelling a number differently buys no extra SMS or guesses. `sql/validation_lookup.sql`
/// computes the same for the guess budget.
pub fn limit_identity(mobile: &str) -> String {
    match super::compact_number(mobile) {
        Some(digits) if digits.len() > 10 => digits[digits.len() - 10..].to_owned(),
        Some(digits) => digits,
        None => mobile.to_owned(),
    }
}

/// The send limits; `0` turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendLimits {
    /// Shortest time between two codes to one identity.
    pub cooldown: Duration,
    /// Most codes per identity in a rolling hour.
    pub per_hour: u32,
    /// Most codes per identity in a rolling day.
    pub per_day: u32,
}

/// Why a code is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefusal {
    /// The previous code was sent less than the cooldown ago.
    Cooldown { retry_after: Duration },
    /// The hourly cap is reached.
    HourlyLimit { retry_after: Duration },
    /// The daily cap is reached.
    DailyLimit { retry_after: Duration },
}

impl SendRefusal {
    /// A stable name for logs and outcome details: `cooldown`, `hourly_limit`, `daily_limit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cooldown { .. } => "cooldown",
            Self::HourlyLimit { .. } => "hourly_limit",
            Self::DailyLimit { .. } => "daily_limit",
        }
    }

    /// How long until a code could be sent again (if nothing else is sent meanwhile).
    pub fn retry_after(self) -> Duration {
        match self {
            Self::Cooldown { retry_after }
            | Self::HourlyLimit { retry_after }
            | Self::DailyLimit { retry_after } => retry_after,
        }
    }
}

impl SendLimits {
    /// True when every limit is off (no history needs to be kept or read).
    pub fn all_off(&self) -> bool {
        self.cooldown.is_zero() && self.per_hour == 0 && self.per_day == 0
    }

    /// The longest window any enabled limit looks back (history older than this is useless);
    /// zero when all are off.
    pub fn longest_window(&self) -> Duration {
        let mut longest = self.cooldown;
        if self.per_hour > 0 {
            longest = longest.max(HOUR);
        }
        if self.per_day > 0 {
            longest = longest.max(DAY);
        }
        longest
    }

    /// May another code be sent at `now` to an identity whose codes were sent at `history`
    /// (any order)? The first limit reached, in the order cooldown, hour, day, is the reason.
    ///
    /// # Errors
    /// The [`SendRefusal`] of the first limit reached.
    pub fn check(&self, history: &[SystemTime], now: SystemTime) -> Result<(), SendRefusal> {
        if !self.cooldown.is_zero() && within(history, now, self.cooldown) > 0 {
            return Err(SendRefusal::Cooldown {
                retry_after: until_under(history, now, self.cooldown, 1),
            });
        }
        if self.per_hour > 0 && within(history, now, HOUR) >= self.per_hour as usize {
            return Err(SendRefusal::HourlyLimit {
                retry_after: until_under(history, now, HOUR, self.per_hour),
            });
        }
        if self.per_day > 0 && within(history, now, DAY) >= self.per_day as usize {
            return Err(SendRefusal::DailyLimit {
                retry_after: until_under(history, now, DAY, self.per_day),
            });
        }
        Ok(())
    }

    /// Decides the requests of one identity in event order: each allowed one is added to the
    /// history at `now` before the next is judged. Returns one verdict per request.
    pub fn check_in_order(
        &self,
        history: &mut Vec<SystemTime>,
        now: SystemTime,
        requests: usize,
    ) -> Vec<Result<(), SendRefusal>> {
        (0..requests)
            .map(|_| {
                let verdict = self.check(history, now);
                if verdict.is_ok() {
                    history.push(now);
                }
                verdict
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: SendLimits = SendLimits {
        cooldown: Duration::from_secs(30),
        per_hour: 5,
        per_day: 10,
    };

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + seconds)
    }

    #[test]
    fn a_first_code_is_always_allowed() {
        assert_eq!(DEFAULTS.check(&[], at(0)), Ok(()));
    }

    #[test]
    fn the_cooldown_refuses_a_second_code_until_it_has_passed() {
        let history = [at(0)];
        assert_eq!(
            DEFAULTS.check(&history, at(10)),
            Err(SendRefusal::Cooldown {
                retry_after: Duration::from_secs(20)
            })
        );
        assert_eq!(DEFAULTS.check(&history, at(30)), Ok(()));
    }

    #[test]
    fn the_hourly_cap_counts_a_rolling_hour() {
        let history: Vec<SystemTime> = (0..5).map(|i| at(i * 60)).collect();
        let refused = DEFAULTS.check(&history, at(600));
        assert_eq!(
            refused,
            Err(SendRefusal::HourlyLimit {
                retry_after: Duration::from_secs(3000)
            })
        );
        // The oldest leaves the hour at 3600: room for one again.
        assert_eq!(DEFAULTS.check(&history, at(3600)), Ok(()));
    }

    #[test]
    fn the_daily_cap_counts_a_rolling_day() {
        let history: Vec<SystemTime> = (0..10).map(|i| at(i * 3600)).collect();
        let now = at(10 * 3600);
        assert!(matches!(
            DEFAULTS.check(&history, now),
            Err(SendRefusal::DailyLimit { .. })
        ));
        assert_eq!(DEFAULTS.check(&history, at(86_400)), Ok(()));
    }

    #[test]
    fn zero_turns_each_limit_off() {
        let burst: Vec<SystemTime> = (0..50).map(|_| at(0)).collect();
        let off = SendLimits::default();
        assert!(off.all_off());
        assert_eq!(off.check(&burst, at(0)), Ok(()));
        let only_hour = SendLimits {
            per_hour: 5,
            ..SendLimits::default()
        };
        assert_eq!(only_hour.check(&burst[..4], at(0)), Ok(()));
        assert!(only_hour.check(&burst[..5], at(0)).is_err());
        assert_eq!(only_hour.longest_window(), HOUR);
        assert_eq!(DEFAULTS.longest_window(), DAY);
    }

    #[test]
    fn eight_requests_in_ten_seconds_send_one_code() {
        let mut history = Vec::new();
        let verdicts: Vec<bool> = (0..8)
            .map(|i| {
                let ok = DEFAULTS.check(&history, at(i)).is_ok();
                if ok {
                    history.push(at(i));
                }
                ok
            })
            .collect();
        assert_eq!(verdicts.iter().filter(|ok| **ok).count(), 1);
    }

    #[test]
    fn without_a_cooldown_the_hour_cap_allows_five_of_seven() {
        let limits = SendLimits {
            cooldown: Duration::ZERO,
            ..DEFAULTS
        };
        let mut history = Vec::new();
        let verdicts = limits.check_in_order(&mut history, at(0), 7);
        assert_eq!(verdicts.iter().filter(|v| v.is_ok()).count(), 5);
        assert!(matches!(verdicts[5], Err(SendRefusal::HourlyLimit { .. })));
        assert_eq!(history.len(), 5);
    }

    #[test]
    fn refusals_add_nothing_to_the_history() {
        let mut history = vec![at(0)];
        let verdicts = DEFAULTS.check_in_order(&mut history, at(1), 3);
        assert!(verdicts.iter().all(Result::is_err));
        assert_eq!(history, [at(0)]);
    }

    #[test]
    fn every_spelling_of_a_number_counts_as_one() {
        for spelled in [
            "9876543210",
            "09876543210",
            "919876543210",
            "0919876543210",
            "+919876543210",
            "+91 98765-43210",
        ] {
            assert_eq!(limit_identity(spelled), "9876543210", "{spelled}");
        }
        assert_eq!(limit_identity("ramesh-k"), "ramesh-k");
        assert_eq!(limit_identity("ramesh"), "ramesh");
        assert_eq!(limit_identity("98765"), "98765");
    }

    #[test]
    fn entries_from_a_clock_ahead_count_as_recent() {
        assert!(DEFAULTS.check(&[at(100)], at(0)).is_err());
    }
}
