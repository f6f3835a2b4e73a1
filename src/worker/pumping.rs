//! The worker's side of the SMS-pumping guard ([`crate::domain::abuse::pumping`]): codes sent
//! per number prefix (of the number as the send limits count it, whatever the tenant), counted
//! in this process over a sliding hour. A code is counted when it is judged ([`judge`]), so a
//! batch cannot slip past the threshold, and taken back when it turns out not to be sent
//! ([`release`]: rate limited, already served), so refused and rate-limited requests never trip
//! the guard. Memory: a few words per prefix seen in the last
//! two hours; older prefixes are swept out as the map grows.
//!
//! [`judge`]: PumpingCheck::judge
//! [`release`]: PumpingCheck::release

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::abuse::pumping::{sliding_count, PumpingGuard, PumpingVerdict};
use crate::domain::abuse::send_limits::limit_identity;
use crate::domain::abuse::HOUR;
use crate::telemetry::Masked;

/// Prefixes held before idle ones are swept out.
const SWEEP_ABOVE: usize = 100_000;

/// Codes of one prefix in the fixed hour `hour` and the one before.
#[derive(Debug, Clone, Copy)]
struct Windows {
    hour: u64,
    current: u32,
    previous: u32,
}

impl Windows {
    /// The counts as of fixed hour `hour` (rolled forward).
    fn at(self, hour: u64) -> Self {
        match hour.saturating_sub(self.hour) {
            0 => self,
            1 => Self {
                hour,
                current: 0,
                previous: self.current,
            },
            _ => Self {
                hour,
                current: 0,
                previous: 0,
            },
        }
    }
}

/// The guard with its counters.
pub(crate) struct PumpingCheck {
    guard: PumpingGuard,
    started: Instant,
    counts: Mutex<HashMap<String, Windows>>,
}

impl PumpingCheck {
    pub(crate) fn new(guard: PumpingGuard) -> Self {
        Self {
            guard,
            started: Instant::now(),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Judges the next code to `mobile` and, unless it is refused, counts it at once (so one
    /// batch cannot slip past the threshold); a code that then is not sent is taken back with
    /// [`Self::release`]. Logs a tripped guard (the number masked, never in full).
    pub(crate) fn judge(&self, mobile: &str) -> PumpingVerdict {
        let Some(prefix) = self.prefix(mobile) else {
            return PumpingVerdict::Send;
        };
        let (hour, into) = self.clock();
        let Ok(mut counts) = self.counts.lock() else {
            return PumpingVerdict::Send;
        };
        if counts.len() >= SWEEP_ABOVE {
            counts.retain(|_, w| w.hour + 1 >= hour);
        }
        let windows = counts.entry(prefix).or_insert(Windows {
            hour,
            current: 0,
            previous: 0,
        });
        *windows = windows.at(hour);
        let verdict = self
            .guard
            .judge(sliding_count(windows.previous, windows.current, into));
        if verdict != PumpingVerdict::Refuse {
            windows.current = windows.current.saturating_add(1);
        }
        drop(counts);
        if verdict != PumpingVerdict::Send {
            tracing::warn!(
                mobile = %Masked(mobile),
                mode = self.guard.mode.as_str(),
                limit_per_hour = self.guard.limit_per_hour,
                "SMS-pumping guard: codes to this number prefix are over the threshold"
            );
        }
        verdict
    }

    /// Takes back the count of a code [`Self::judge`] let through that was not sent after all
    /// (rate limited, already served, refused by PostgreSQL).
    pub(crate) fn release(&self, mobile: &str) {
        let Some(prefix) = self.prefix(mobile) else {
            return;
        };
        let (hour, _) = self.clock();
        if let Ok(mut counts) = self.counts.lock() {
            if let Some(windows) = counts.get_mut(&prefix) {
                *windows = windows.at(hour);
                windows.current = windows.current.saturating_sub(1);
            }
        }
    }

    fn prefix(&self, mobile: &str) -> Option<String> {
        if !self.guard.is_active() {
            return None;
        }
        self.guard
            .prefix(&limit_identity(mobile))
            .map(str::to_owned)
    }

    /// The fixed hour (since start) and how far into it we are.
    fn clock(&self) -> (u64, Duration) {
        let elapsed = self.started.elapsed();
        let hour = elapsed.as_secs() / HOUR.as_secs();
        (
            hour,
            elapsed - HOUR * u32::try_from(hour).unwrap_or(u32::MAX),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::abuse::pumping::PumpingMode;

    fn check(mode: PumpingMode) -> PumpingCheck {
        PumpingCheck::new(PumpingGuard {
            mode,
            prefix_length: 5,
            limit_per_hour: 3,
        })
    }

    #[test]
    fn only_codes_sent_count_and_other_prefixes_flow() {
        let check = check(PumpingMode::Enforce);
        // Codes taken back (not sent after all) never trip the guard.
        for _ in 0..10 {
            assert_eq!(check.judge("9876500000"), PumpingVerdict::Send);
            check.release("9876500000");
        }
        // Three let through in one batch: the fourth is refused before any is recorded.
        for i in 0..3 {
            assert_eq!(check.judge(&format!("98765{i:05}")), PumpingVerdict::Send);
        }
        assert_eq!(check.judge("9876599999"), PumpingVerdict::Refuse);
        assert_eq!(
            check.judge("919876599999"),
            PumpingVerdict::Refuse,
            "spelled with 91"
        );
        assert_eq!(check.judge("9123400000"), PumpingVerdict::Send);
    }

    #[test]
    fn shadow_mode_flags_and_off_ignores() {
        let shadow = check(PumpingMode::Shadow);
        let off = check(PumpingMode::Off);
        for i in 0..3 {
            shadow.judge(&format!("98765{i:05}"));
            off.judge(&format!("98765{i:05}"));
        }
        assert_eq!(shadow.judge("9876500009"), PumpingVerdict::SendFlagged);
        assert_eq!(off.judge("9876500009"), PumpingVerdict::Send);
    }

    #[test]
    fn windows_roll_forward() {
        let w = Windows {
            hour: 5,
            current: 7,
            previous: 2,
        };
        assert_eq!((w.at(5).current, w.at(5).previous), (7, 2));
        assert_eq!((w.at(6).current, w.at(6).previous), (0, 7));
        assert_eq!((w.at(9).current, w.at(9).previous), (0, 0));
    }
}
