//! The guess budget per identity: at most `USER_OTP_VALIDATE_FAILURES_PER_HOUR` (10) wrong codes
//! in a rolling hour, counted across every code of the identity (root tenant + the mobile the
//! code was sent to), so a resend brings no fresh guesses. Once the budget is spent, `_validate`
//! fails with its usual answer even for the right code until the oldest counted failure is an
//! hour old. Attempts refused by the budget are not counted, so a spent budget locks the
//! identity for at most an hour ([NIST SP 800-63B §5.2.2](https://pages.nist.gov/800-63-3/sp800-63b.html) limits failed attempts per account; the
//! per-code limit, `USER_OTP_MAX_FAILED_ATTEMPTS`, stays as well).

use std::time::{Duration, SystemTime};

use super::{until_under, within, HOUR};

/// The budget; `0` turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuessBudget {
    /// Wrong codes per identity in a rolling hour.
    pub failures_per_hour: u32,
}

/// The budget is spent; `retry_after` is when the oldest counted failure leaves the hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetExhausted {
    pub retry_after: Duration,
}

/// What a validation attempt comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The right code, live, within the budget: use it once.
    Right,
    /// A wrong code, or no live code: one more failure.
    Wrong,
    /// The budget is spent: fails whatever the code, counts nothing, changes no code.
    Refused,
}

impl GuessBudget {
    /// Judges an attempt at `now` by an identity with recent `failures` whose code matched
    /// (`code_matches`: right and live) or not; returns the verdict and the failures to store.
    pub fn judge(
        &self,
        failures: &[SystemTime],
        now: SystemTime,
        code_matches: bool,
    ) -> (Attempt, Vec<SystemTime>) {
        match (self.check(failures, now), code_matches) {
            (Err(_), _) => (Attempt::Refused, self.still_counted(failures, now)),
            (Ok(()), true) => (Attempt::Right, self.still_counted(failures, now)),
            (Ok(()), false) => (Attempt::Wrong, self.after_failure(failures, now)),
        }
    }

    /// May the identity whose recent wrong codes were at `failures` try a code at `now`?
    ///
    /// # Errors
    /// [`BudgetExhausted`] when `failures_per_hour` failures are within the last hour.
    pub fn check(&self, failures: &[SystemTime], now: SystemTime) -> Result<(), BudgetExhausted> {
        let limit = self.failures_per_hour;
        if limit > 0 && within(failures, now, HOUR) >= limit as usize {
            return Err(BudgetExhausted {
                retry_after: until_under(failures, now, HOUR, limit),
            });
        }
        Ok(())
    }

    /// The history to store after a wrong code at `now`: the failures still within the hour plus
    /// this one, at most the newest `failures_per_hour` of them (older ones can no longer
    /// matter). Off: nothing is kept.
    pub fn after_failure(&self, failures: &[SystemTime], now: SystemTime) -> Vec<SystemTime> {
        if self.failures_per_hour == 0 {
            return Vec::new();
        }
        let mut kept = self.still_counted(failures, now);
        kept.push(now);
        kept.sort_unstable();
        let excess = kept.len().saturating_sub(self.failures_per_hour as usize);
        kept.drain(..excess);
        kept
    }

    /// The history to store when nothing failed: the failures still within the hour.
    pub fn still_counted(&self, failures: &[SystemTime], now: SystemTime) -> Vec<SystemTime> {
        if self.failures_per_hour == 0 {
            return Vec::new();
        }
        failures
            .iter()
            .copied()
            .filter(|at| now.duration_since(*at).map_or(true, |age| age < HOUR))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: GuessBudget = GuessBudget {
        failures_per_hour: 10,
    };

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(5_000_000 + seconds)
    }

    #[test]
    fn nine_failures_leave_one_guess() {
        let failures: Vec<SystemTime> = (0..9).map(at).collect();
        assert_eq!(BUDGET.check(&failures, at(60)), Ok(()));
    }

    #[test]
    fn ten_failures_in_an_hour_spend_the_budget_until_the_oldest_is_an_hour_old() {
        let failures: Vec<SystemTime> = (0..10).map(|i| at(i * 60)).collect();
        assert_eq!(
            BUDGET.check(&failures, at(600)),
            Err(BudgetExhausted {
                retry_after: Duration::from_secs(3000)
            })
        );
        assert_eq!(BUDGET.check(&failures, at(3600)), Ok(()));
    }

    #[test]
    fn failures_of_different_codes_count_together() {
        // Three codes, four wrong guesses each: no code reaches its own cap of 5, the identity
        // spends its budget of 10 during the third round.
        let mut failures = Vec::new();
        let mut allowed = 0;
        for round in 0..3u64 {
            for guess in 0..4u64 {
                let now = at(round * 100 + guess);
                if BUDGET.check(&failures, now).is_ok() {
                    allowed += 1;
                    failures = BUDGET.after_failure(&failures, now);
                }
            }
        }
        assert_eq!(allowed, 10);
        assert!(BUDGET.check(&failures, at(400)).is_err());
    }

    #[test]
    fn the_stored_history_is_bounded_by_the_budget_and_the_hour() {
        let failures: Vec<SystemTime> = (0..30).map(|i| at(i * 10)).collect();
        let kept = BUDGET.after_failure(&failures, at(300));
        assert_eq!(kept.len(), 10);
        assert_eq!(kept.last(), Some(&at(300)));
        let old = [at(0), at(1)];
        assert!(BUDGET.still_counted(&old, at(3601)).is_empty());
    }

    #[test]
    fn judging_refuses_even_the_right_code_once_the_budget_is_spent() {
        let spent: Vec<SystemTime> = (0..10).map(at).collect();
        let (verdict, kept) = BUDGET.judge(&spent, at(20), true);
        assert_eq!(verdict, Attempt::Refused);
        assert_eq!(kept.len(), 10, "a refused attempt is not counted");
        let (verdict, kept) = BUDGET.judge(&spent[..9], at(20), false);
        assert_eq!((verdict, kept.len()), (Attempt::Wrong, 10));
        let (verdict, kept) = BUDGET.judge(&spent[..9], at(20), true);
        assert_eq!((verdict, kept.len()), (Attempt::Right, 9));
        let off = GuessBudget::default();
        assert_eq!(off.judge(&spent, at(20), true).0, Attempt::Right);
    }

    #[test]
    fn zero_turns_the_budget_off() {
        let off = GuessBudget::default();
        let failures: Vec<SystemTime> = (0..100).map(at).collect();
        assert_eq!(off.check(&failures, at(100)), Ok(()));
        assert!(off.after_failure(&failures, at(100)).is_empty());
    }
}
