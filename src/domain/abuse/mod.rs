//! Abuse controls as pure rules, free of I/O (issue 9; [NIST SP 800-63B §5.2.2](https://pages.nist.gov/800-63-3/sp800-63b.html), OWASP ASVS 5.0
//! V6): each takes an identity's recent history and the configuration and answers allow or
//! refuse, and why. The store supplies the history and applies a decision atomically, so any
//! number of workers and HTTP instances agree.
//!
//! - [`send_limits`]: cooldown, hourly and daily caps on codes sent to one number (however it
//!   is spelled, whatever tenant the request names).
//! - [`guess_budget`]: wrong codes per identity in a rolling hour, across all its codes.
//! - [`country`]: the country-code allow-list against SMS pumping.
//! - [`pumping`]: the per-number-prefix velocity guard (`off`, `shadow`, `enforce`).
//! - [`test_numbers`]: fixed codes for configured test numbers.
//!
//! A limit of `0` is off. Times are PostgreSQL's (`now()`), never compared across machines.

pub mod country;
pub mod guess_budget;
pub mod pumping;
pub mod send_limits;
pub mod test_numbers;

use std::time::{Duration, SystemTime};

/// The entries of `history` younger than `window` at `now` (an entry exactly `window` old is
/// out). Entries in the future (clock steps) count as young.
fn within(history: &[SystemTime], now: SystemTime, window: Duration) -> usize {
    history
        .iter()
        .filter(|at| now.duration_since(**at).map_or(true, |age| age < window))
        .count()
}

/// How long until the entry of `history` that makes the count reach `limit` leaves `window`:
/// the `limit`-th newest entry's remaining time in the window.
fn until_under(history: &[SystemTime], now: SystemTime, window: Duration, limit: u32) -> Duration {
    let mut young: Vec<SystemTime> = history
        .iter()
        .copied()
        .filter(|at| now.duration_since(*at).map_or(true, |age| age < window))
        .collect();
    young.sort_unstable_by(|a, b| b.cmp(a));
    let Some(oldest_counted) = young.get(limit.saturating_sub(1) as usize) else {
        return Duration::ZERO;
    };
    let age = now.duration_since(*oldest_counted).unwrap_or_default();
    window.saturating_sub(age)
}

/// The digits of a phone number written with `+`, spaces or dashes (`+91 98765-43210` →
/// `919876543210`), or `None` when what is left is not all ASCII digits (a user name).
pub fn compact_number(text: &str) -> Option<String> {
    let compact: String = text
        .chars()
        .filter(|c| !matches!(c, '+' | ' ' | '-'))
        .collect();
    (!compact.is_empty() && compact.bytes().all(|b| b.is_ascii_digit())).then_some(compact)
}

/// One hour.
pub const HOUR: Duration = Duration::from_secs(3600);
/// One day.
pub const DAY: Duration = Duration::from_secs(86_400);
