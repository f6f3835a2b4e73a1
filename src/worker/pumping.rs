//! The worker's side of the SMS-pumping guard ([`crate::domain::abuse::pumping`]): codes per
//! (root tenant, prefix of the number as the send limits count it) counted in this process by governor's GCRA, a burst of the
//! hourly threshold refilled evenly over the hour. The guard's verdict comes from the pure
//! rule; this only answers "is this prefix over its threshold now".

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::abuse::pumping::{PumpingGuard, PumpingVerdict};
use crate::domain::abuse::send_limits::limit_identity;
use crate::telemetry::Masked;

/// The guard with its counters.
pub struct PumpingCheck {
    guard: PumpingGuard,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl PumpingCheck {
    pub fn new(guard: PumpingGuard) -> Self {
        let limiter = NonZeroU32::new(guard.limit_per_hour)
            .filter(|_| guard.is_active())
            .map(|limit| RateLimiter::keyed(Quota::per_hour(limit)));
        Self { guard, limiter }
    }

    /// Counts a code to `mobile` in `tenant` and judges it; logs a tripped guard (prefix
    /// masked, never the number).
    pub fn judge(&self, tenant: &str, mobile: &str) -> PumpingVerdict {
        let Some(limiter) = &self.limiter else {
            return PumpingVerdict::Send;
        };
        let Some(prefix) = self.guard.prefix(limit_identity(mobile)) else {
            return PumpingVerdict::Send;
        };
        let over = limiter.check_key(&format!("{tenant}:{prefix}")).is_err();
        let verdict = self.guard.verdict(over);
        if verdict != PumpingVerdict::Send {
            tracing::warn!(
                tenant = ?tenant,
                prefix_digits = prefix.len(),
                mobile = %Masked(mobile),
                mode = self.guard.mode.as_str(),
                limit_per_hour = self.guard.limit_per_hour,
                "SMS-pumping guard: codes to this number prefix are over the threshold"
            );
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::abuse::pumping::PumpingMode;

    #[test]
    fn a_burst_to_one_prefix_trips_the_guard_and_other_prefixes_flow() {
        let check = PumpingCheck::new(PumpingGuard {
            mode: PumpingMode::Enforce,
            prefix_length: 5,
            limit_per_hour: 3,
        });
        let verdicts: Vec<PumpingVerdict> = (0..5)
            .map(|i| check.judge("pb", &format!("98765{i:05}")))
            .collect();
        assert_eq!(&verdicts[..3], &[PumpingVerdict::Send; 3]);
        assert_eq!(verdicts[3], PumpingVerdict::Refuse);
        assert_eq!(check.judge("pb", "9123400000"), PumpingVerdict::Send);
        assert_eq!(check.judge("br", "9876500000"), PumpingVerdict::Send);
    }
}
