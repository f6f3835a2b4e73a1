//! Retrying a transient failure in place: capped exponential backoff with jitter, until the
//! operation finishes or a [`CancellationToken`] fires.
//!
//! There is no attempt limit on purpose. A request the worker is processing must not be skipped
//! because a dependency is down (DESIGN step 3), so the only ways out of [`retry`] are an
//! attempt that reports [`Attempt::Done`] (success *or* a permanent failure, the caller decides)
//! and cancellation (shutdown), which leaves the request unprocessed for a later run.
//!
//! Delays: the *nominal* delay starts at [`RetryPolicy::initial_backoff`] and doubles after every
//! failure up to [`RetryPolicy::max_backoff`]. Each actual delay is the nominal one moved by a
//! random factor of up to ±20 % (so that many workers hit by one outage do not retry in step),
//! and never more than `max_backoff`.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::config::UserServiceSettings;

/// How far the jitter may move a delay from its nominal value, as a fraction of it.
pub const JITTER: f64 = 0.2;

/// The smallest delay between two attempts (guards against a zero `initial_backoff`, which
/// would otherwise retry in a tight loop).
const MIN_BACKOFF: Duration = Duration::from_millis(1);

/// Timing of the attempts of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Upper bound on one attempt (connecting, sending and reading the whole answer).
    pub call_timeout: Duration,
    /// Nominal delay after the first failure.
    pub initial_backoff: Duration,
    /// Cap on every delay, jitter included.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 2 s per attempt; delays of about 100 ms, 200 ms, 400 ms, … up to 5 s.
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(2),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The default backoff with the configured bound on one call (`USER_OTP_USER_TIMEOUT_MS`).
    pub fn from_settings(settings: &UserServiceSettings) -> Self {
        Self {
            call_timeout: settings.call_timeout,
            ..Self::default()
        }
    }
}

/// The endless sequence of delays between attempts (see the module documentation).
#[derive(Debug, Clone)]
pub struct Backoff {
    nominal: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(policy: &RetryPolicy) -> Self {
        let max = policy.max_backoff.max(MIN_BACKOFF);
        Self {
            nominal: policy.initial_backoff.clamp(MIN_BACKOFF, max),
            max,
        }
    }

    /// The nominal delay the next call to [`Backoff::next_delay`] is based on.
    pub fn nominal(&self) -> Duration {
        self.nominal
    }

    /// The next delay, jittered; advances the sequence.
    pub fn next_delay(&mut self) -> Duration {
        let delay = jittered(
            self.nominal,
            self.max,
            rand::thread_rng().gen_range(-1.0..=1.0),
        );
        self.nominal = self.nominal.saturating_mul(2).min(self.max);
        delay
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    /// Never `None`: the sequence is endless.
    fn next(&mut self) -> Option<Duration> {
        Some(self.next_delay())
    }
}

/// `nominal` moved by `unit × JITTER × nominal` (`unit` in `[-1, 1]`), capped at `max`.
fn jittered(nominal: Duration, max: Duration, unit: f64) -> Duration {
    let factor = 1.0 + JITTER * unit.clamp(-1.0, 1.0);
    // try_from: no panic on overflow (a `max` near Duration::MAX); the cap applies then.
    Duration::try_from_secs_f64(nominal.as_secs_f64() * factor)
        .unwrap_or(max)
        .min(max)
}

/// What one attempt concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<T, E> {
    /// Finished: a result to hand back, success or permanent failure alike.
    Done(T),
    /// A transient failure: wait, then try again.
    Retry(E),
}

/// The token fired before the operation finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled after {attempts} attempt(s)")]
pub struct Cancelled {
    /// Attempts started, the interrupted one included (0 when the token had fired already).
    pub attempts: u32,
}

/// A transient failure about to be retried, as handed to the caller's logger.
#[derive(Debug)]
pub struct RetryNotice<'a, E> {
    /// The attempt that just failed, from 1.
    pub attempt: u32,
    pub failure: &'a E,
    /// How long until the next attempt.
    pub delay: Duration,
}

/// Runs `attempt(1)`, `attempt(2)`, … with a delay from `backoff` after each
/// [`Attempt::Retry`], until one returns [`Attempt::Done`]. Cancellation is honoured while an
/// attempt is in flight (the attempt's future is dropped) and while waiting; a token that has
/// already fired stops the loop before the first attempt starts. `on_retry` is called once per
/// transient failure, before the wait (the place to log it).
pub async fn retry<T, E, F, Fut, L>(
    mut backoff: Backoff,
    cancel: &CancellationToken,
    mut attempt: F,
    mut on_retry: L,
) -> Result<T, Cancelled>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
    L: FnMut(RetryNotice<'_, E>),
{
    if cancel.is_cancelled() {
        return Err(Cancelled { attempts: 0 });
    }
    let mut attempts: u32 = 1;
    loop {
        let outcome = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(Cancelled { attempts }),
            outcome = attempt(attempts) => outcome,
        };
        let failure = match outcome {
            Attempt::Done(result) => return Ok(result),
            Attempt::Retry(failure) => failure,
        };
        let delay = backoff.next_delay();
        on_retry(RetryNotice {
            attempt: attempts,
            failure: &failure,
            delay,
        });
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(Cancelled { attempts }),
            () = tokio::time::sleep(delay) => {}
        }
        attempts = attempts.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy(initial_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy {
            call_timeout: Duration::from_secs(1),
            initial_backoff: Duration::from_millis(initial_ms),
            max_backoff: Duration::from_millis(max_ms),
        }
    }

    fn nominals(backoff: &mut Backoff, n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| {
                let nominal = backoff.nominal().as_millis() as u64;
                backoff.next_delay();
                nominal
            })
            .collect()
    }

    #[test]
    fn default_policy_is_2s_per_call_100ms_to_5s() {
        let p = RetryPolicy::default();
        assert_eq!(p.call_timeout, Duration::from_secs(2));
        assert_eq!(p.initial_backoff, Duration::from_millis(100));
        assert_eq!(p.max_backoff, Duration::from_secs(5));
    }

    #[test]
    fn policy_from_settings_takes_the_configured_call_timeout() {
        let settings = UserServiceSettings {
            host: "http://egov-user:8080".into(),
            search_path: "/user/_search".into(),
            call_timeout: Duration::from_millis(750),
        };
        let p = RetryPolicy::from_settings(&settings);
        assert_eq!(p.call_timeout, Duration::from_millis(750));
        assert_eq!(p.initial_backoff, RetryPolicy::default().initial_backoff);
        assert_eq!(p.max_backoff, RetryPolicy::default().max_backoff);
    }

    #[test]
    fn nominal_delays_double_and_are_capped() {
        let mut backoff = Backoff::new(&RetryPolicy::default());
        assert_eq!(
            nominals(&mut backoff, 10),
            [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]
        );
    }

    #[test]
    fn initial_above_max_starts_at_max_and_zero_initial_still_waits() {
        let mut above = Backoff::new(&policy(900, 300));
        assert_eq!(nominals(&mut above, 3), [300, 300, 300]);
        let mut zero = Backoff::new(&policy(0, 10));
        assert_eq!(nominals(&mut zero, 6), [1, 2, 4, 8, 10, 10]);
        assert!(zero.next_delay() > Duration::ZERO);
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_under_the_cap() {
        let mut backoff = Backoff::new(&policy(100, 1000));
        let mut seen_below = false;
        let mut seen_above = false;
        for _ in 0..2000 {
            let nominal = backoff.nominal();
            let delay = backoff.next_delay();
            assert!(
                delay >= nominal.mul_f64(0.8),
                "{delay:?} < 80% of {nominal:?}"
            );
            assert!(
                delay <= nominal.mul_f64(1.2),
                "{delay:?} > 120% of {nominal:?}"
            );
            assert!(
                delay <= Duration::from_millis(1000),
                "{delay:?} above the cap"
            );
            seen_below |= delay < nominal;
            seen_above |= delay > nominal && nominal < Duration::from_millis(1000);
            if nominal == Duration::from_millis(1000) {
                backoff = Backoff::new(&policy(100, 1000));
            }
        }
        assert!(seen_below && seen_above, "the jitter never moved a delay");
    }

    #[test]
    fn jitter_extremes_and_cap() {
        let ms = Duration::from_millis;
        assert_eq!(jittered(ms(1000), ms(5000), -1.0), ms(800));
        assert_eq!(jittered(ms(1000), ms(5000), 1.0), ms(1200));
        assert_eq!(jittered(ms(1000), ms(5000), 7.0), ms(1200));
        assert_eq!(jittered(ms(5000), ms(5000), 1.0), ms(5000));
        assert_eq!(jittered(Duration::MAX, Duration::MAX, 1.0), Duration::MAX);
    }

    #[test]
    fn iterator_never_ends() {
        assert_eq!(Backoff::new(&policy(1, 2)).take(100).count(), 100);
    }

    #[tokio::test]
    async fn retries_transient_failures_until_done() {
        let cancel = CancellationToken::new();
        let mut notices = Vec::new();
        let result = retry(
            Backoff::new(&policy(1, 4)),
            &cancel,
            |n| async move {
                if n < 4 {
                    Attempt::Retry(format!("failure {n}"))
                } else {
                    Attempt::Done(n)
                }
            },
            |notice| notice_log(&mut notices, notice),
        )
        .await;
        assert_eq!(result, Ok(4));
        let attempts: Vec<_> = notices.iter().map(|(n, f, _)| (*n, f.as_str())).collect();
        assert_eq!(
            attempts,
            [(1, "failure 1"), (2, "failure 2"), (3, "failure 3")]
        );
        for (_, _, delay) in &notices {
            assert!(*delay <= Duration::from_millis(4));
        }
    }

    fn notice_log(log: &mut Vec<(u32, String, Duration)>, notice: RetryNotice<'_, String>) {
        log.push((notice.attempt, notice.failure.clone(), notice.delay));
    }

    #[tokio::test]
    async fn a_done_failure_is_returned_without_retry() {
        let cancel = CancellationToken::new();
        let result: Result<Result<(), &str>, _> = retry(
            Backoff::new(&policy(1, 1)),
            &cancel,
            |_| async { Attempt::<_, ()>::Done(Err("permanent")) },
            |_| panic!("no retry expected"),
        )
        .await;
        assert_eq!(result, Ok(Err("permanent")));
    }

    #[tokio::test]
    async fn cancellation_stops_the_wait() {
        let cancel = CancellationToken::new();
        let polled = AtomicU32::new(0);
        let trigger = cancel.clone();
        let result: Result<(), _> = retry(
            Backoff::new(&policy(60_000, 60_000)),
            &cancel,
            |_| {
                polled.fetch_add(1, Ordering::SeqCst);
                async { Attempt::Retry("down") }
            },
            |_| trigger.cancel(),
        )
        .await;
        assert_eq!(result, Err(Cancelled { attempts: 1 }));
        assert_eq!(polled.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn cancellation_interrupts_an_attempt_in_flight() {
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            trigger.cancel();
        });
        let result: Result<(), _> = retry(
            Backoff::new(&policy(1, 1)),
            &cancel,
            |_| std::future::pending::<Attempt<(), ()>>(),
            |_| {},
        )
        .await;
        assert_eq!(result, Err(Cancelled { attempts: 1 }));
    }

    #[tokio::test]
    async fn an_already_cancelled_token_starts_no_attempt() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let polled = AtomicU32::new(0);
        let result: Result<(), _> = retry(
            Backoff::new(&policy(1, 1)),
            &cancel,
            |_| async {
                polled.fetch_add(1, Ordering::SeqCst);
                Attempt::<(), ()>::Done(())
            },
            |_| {},
        )
        .await;
        assert_eq!(result, Err(Cancelled { attempts: 0 }));
        assert_eq!(polled.load(Ordering::SeqCst), 0);
    }
}
