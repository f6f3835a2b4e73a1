//! Retrying a worker step by the kind of its failure ([`crate::failure`]).
//!
//! Transient and systemic failures are retried in place with capped backoff until the step
//! succeeds or the batch is cancelled (shutdown, revoked partition); systemic ones are logged at
//! error level, since no amount of waiting fixes a missing privilege by itself. A poison failure
//! is handed back to the caller ([`until_settled`]), which isolates the event that caused it; in
//! steps whose data is the worker's own (request ids, code ids) a poison verdict cannot be an
//! event's fault and is retried like a systemic one ([`until_done`]).

use std::fmt::Display;
use std::future::Future;

use tokio_util::sync::CancellationToken;

use crate::failure::{Classify, FailureKind};
use crate::retry::{retry, Attempt, Backoff, Cancelled, RetryNotice, RetryPolicy};

/// Runs `step` until it succeeds (`Ok(Ok(_))`) or fails with a poison error (`Ok(Err(_))`),
/// retrying every other failure.
///
/// # Errors
/// [`Cancelled`] when `cancel` fires first.
pub(super) async fn until_settled<T, E, F, Fut>(
    policy: &RetryPolicy,
    what: &'static str,
    cancel: &CancellationToken,
    step: F,
) -> Result<Result<T, E>, Cancelled>
where
    E: Display + Classify,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    run(policy, what, cancel, step, true).await
}

/// Runs `step` until it succeeds, retrying every failure (poison included: see the module doc).
///
/// # Errors
/// [`Cancelled`] when `cancel` fires first.
pub(super) async fn until_done<T, E, F, Fut>(
    policy: &RetryPolicy,
    what: &'static str,
    cancel: &CancellationToken,
    step: F,
) -> Result<T, Cancelled>
where
    E: Display + Classify,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    match run(policy, what, cancel, step, false).await? {
        Ok(value) => Ok(value),
        // `run` hands back no error when poison is retried; kept total without a panic.
        Err(_) => Err(Cancelled { attempts: 0 }),
    }
}

/// The retry loop of both: a poison failure ends it only when `settle_poison`.
async fn run<T, E, F, Fut>(
    policy: &RetryPolicy,
    what: &'static str,
    cancel: &CancellationToken,
    mut step: F,
    settle_poison: bool,
) -> Result<Result<T, E>, Cancelled>
where
    E: Display + Classify,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    retry(
        Backoff::new(policy),
        cancel,
        |_| {
            let attempt = step();
            async move {
                match attempt.await {
                    Ok(value) => Attempt::Done(Ok(value)),
                    Err(error) if settle_poison && error.kind() == FailureKind::Poison => {
                        Attempt::Done(Err(error))
                    }
                    Err(error) => Attempt::Retry(error),
                }
            }
        },
        |notice: RetryNotice<'_, E>| log_retry(what, &notice),
    )
    .await
}

fn log_retry<E: Display + Classify>(what: &'static str, notice: &RetryNotice<'_, E>) {
    let delay_ms = u64::try_from(notice.delay.as_millis()).unwrap_or(u64::MAX);
    match notice.failure.kind() {
        FailureKind::Transient => tracing::warn!(
            step = what,
            attempt = notice.attempt,
            error = %notice.failure,
            delay_ms,
            "worker step failed; retrying"
        ),
        FailureKind::Poison | FailureKind::Systemic => tracing::error!(
            step = what,
            attempt = notice.attempt,
            error = %notice.failure,
            delay_ms,
            "worker step fails for every event (configuration or a bug?); retrying, nothing is dead-lettered"
        ),
    }
}
