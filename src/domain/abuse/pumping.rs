//! The SMS-pumping guard: a velocity check per number prefix. SMS pumping (toll fraud) sends
//! codes to many numbers of one range the fraudster earns from; a burst of codes to one prefix
//! of a state's numbers is its signature. Codes sent per prefix (`USER_OTP_PUMPING_PREFIX_LENGTH`
//! first digits of the number the SMS goes to, as the send limits count it) are counted over a
//! sliding hour by the worker (only codes actually sent: refused and rate-limited requests do not
//! count); at `USER_OTP_PUMPING_LIMIT_PER_HOUR` the mode decides for the next code: `off` (not
//! checked), `shadow` (the default: logged, still sent), `enforce` (not sent, outcome
//! `rate_limited`, detail `pumping`). In `enforce` a tripped prefix refuses every number of its
//! range until the hour's count falls, which is why it starts in `shadow`. The count is kept per
//! worker process (with N workers the guard trips at up to N times the threshold); it is a
//! tripwire against bursts, not an exact cap.
//!
//! The hour slides by the usual two-window estimate: the codes of the current fixed hour plus
//! those of the previous hour weighted by how much of it still overlaps the sliding hour.

use std::time::Duration;

/// The estimated codes in the sliding hour ending `into_current` into the current fixed hour,
/// given the counts of the previous and the current fixed hour.
pub fn sliding_count(previous: u32, current: u32, into_current: Duration) -> f64 {
    let hour = super::HOUR.as_secs_f64();
    let overlap = (1.0 - into_current.as_secs_f64() / hour).clamp(0.0, 1.0);
    f64::from(previous) * overlap + f64::from(current)
}

/// What the guard does when a prefix is over its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PumpingMode {
    Off,
    #[default]
    Shadow,
    Enforce,
}

impl PumpingMode {
    /// `off`, `shadow` or `enforce`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "off" => Some(Self::Off),
            "shadow" => Some(Self::Shadow),
            "enforce" => Some(Self::Enforce),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Shadow => "shadow",
            Self::Enforce => "enforce",
        }
    }
}

/// The guard's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PumpingGuard {
    pub mode: PumpingMode,
    /// Digits of the number that form its prefix.
    pub prefix_length: usize,
    /// Codes per prefix in a rolling hour before the guard trips; `0` is off.
    pub limit_per_hour: u32,
}

/// What to do with one code, given whether its prefix is over the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpingVerdict {
    Send,
    /// Over the threshold in shadow mode: send, but log and count it.
    SendFlagged,
    /// Over the threshold in enforce mode: do not send.
    Refuse,
}

impl PumpingGuard {
    /// True when the guard checks anything at all.
    pub fn is_active(&self) -> bool {
        self.mode != PumpingMode::Off && self.limit_per_hour > 0
    }

    /// The prefix of `mobile` the guard counts, or `None` when the number is too short to have
    /// one (or not digits: a user name never reaches here, the SMS goes to a stored mobile).
    pub fn prefix<'a>(&self, mobile: &'a str) -> Option<&'a str> {
        let prefix = mobile.get(..self.prefix_length)?;
        prefix.bytes().all(|b| b.is_ascii_digit()).then_some(prefix)
    }

    /// The verdict for the next code to a prefix whose sliding-hour count is `count`.
    pub fn judge(&self, count: f64) -> PumpingVerdict {
        self.verdict(count >= f64::from(self.limit_per_hour))
    }

    /// The verdict for a code whose prefix is (`over`) or is not over the threshold.
    pub fn verdict(&self, over: bool) -> PumpingVerdict {
        match (self.is_active() && over, self.mode) {
            (false, _) | (true, PumpingMode::Off) => PumpingVerdict::Send,
            (true, PumpingMode::Shadow) => PumpingVerdict::SendFlagged,
            (true, PumpingMode::Enforce) => PumpingVerdict::Refuse,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(mode: PumpingMode) -> PumpingGuard {
        PumpingGuard {
            mode,
            prefix_length: 6,
            limit_per_hour: 200,
        }
    }

    #[test]
    fn the_prefix_is_the_first_digits() {
        assert_eq!(
            guard(PumpingMode::Shadow).prefix("9876543210"),
            Some("987654")
        );
        assert_eq!(guard(PumpingMode::Shadow).prefix("98765"), None);
        assert_eq!(guard(PumpingMode::Shadow).prefix("ab3456789"), None);
    }

    #[test]
    fn shadow_sends_and_flags_enforce_refuses_off_ignores() {
        assert_eq!(
            guard(PumpingMode::Shadow).verdict(true),
            PumpingVerdict::SendFlagged
        );
        assert_eq!(
            guard(PumpingMode::Enforce).verdict(true),
            PumpingVerdict::Refuse
        );
        assert_eq!(guard(PumpingMode::Off).verdict(true), PumpingVerdict::Send);
        for mode in [PumpingMode::Off, PumpingMode::Shadow, PumpingMode::Enforce] {
            assert_eq!(guard(mode).verdict(false), PumpingVerdict::Send);
        }
    }

    #[test]
    fn the_previous_hour_fades_out_of_the_sliding_count() {
        assert_eq!(sliding_count(100, 10, Duration::ZERO), 110.0);
        assert_eq!(sliding_count(100, 10, Duration::from_secs(1800)), 60.0);
        assert_eq!(sliding_count(100, 10, Duration::from_secs(3600)), 10.0);
        let guard = guard(PumpingMode::Enforce);
        assert_eq!(guard.judge(199.5), PumpingVerdict::Send);
        assert_eq!(guard.judge(200.0), PumpingVerdict::Refuse);
    }

    #[test]
    fn a_zero_threshold_is_off() {
        let zero = PumpingGuard {
            limit_per_hour: 0,
            ..guard(PumpingMode::Enforce)
        };
        assert!(!zero.is_active());
        assert_eq!(zero.verdict(true), PumpingVerdict::Send);
    }

    #[test]
    fn modes_parse() {
        for mode in [PumpingMode::Off, PumpingMode::Shadow, PumpingMode::Enforce] {
            assert_eq!(PumpingMode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(PumpingMode::parse("on"), None);
    }
}
