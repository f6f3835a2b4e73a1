//! The record step with poison isolation: a batch's outcomes go to PostgreSQL in one statement;
//! when PostgreSQL refuses a value (a poison failure: data exception, integrity, program limit),
//! the batch is split in halves, recorded in event order, until the refused outcome stands
//! alone. That one outcome is then checked against a canary (a benign row recorded in a
//! rolled-back transaction): if the canary is accepted, the event is poison and is returned for
//! the dead-letter topic; if the canary is refused too, the statement fails for every event (a
//! systemic error) and the outcome is retried with backoff, never dead-lettered.
//!
//! Send limits are enforced by the store inside each statement's transaction
//! ([`OtpStore::record_batch`]); a part of a split batch is limited like a batch of its own, in
//! event order.
//!
//! Cost: a batch of `n` with one poison event takes about `2·log2(n)` extra statements; batches
//! without poison take one.

use std::collections::HashSet;
use std::ops::Range;

use tokio_util::sync::CancellationToken;

use super::retrying::until_settled;
use crate::domain::abuse::send_limits::{SendLimits, SendRefusal};
use crate::retry::{Backoff, Cancelled, RetryPolicy};
use crate::store::{NewOutcome, OtpStore, RequestKey, StoreError};

/// What recording a batch achieved.
#[derive(Debug, Default)]
pub(super) struct Recorded {
    /// Keys recorded by this call (not recorded before by anyone).
    pub won: HashSet<RequestKey>,
    /// Indexes (into the outcomes given) of outcomes PostgreSQL refused alone, with the error.
    pub refused: Vec<(usize, StoreError)>,
    /// Keys a send limit refused (recorded `rate_limited`, no code), and why.
    pub rate_limited: Vec<(RequestKey, SendRefusal)>,
}

/// Records `outcomes` (see the module documentation).
///
/// # Errors
/// [`Cancelled`] when `cancel` fires first; what was recorded until then stays recorded.
pub(super) async fn record(
    store: &OtpStore,
    worker_id: &str,
    policy: &RetryPolicy,
    outcomes: &[NewOutcome],
    limits: &SendLimits,
    cancel: &CancellationToken,
) -> Result<Recorded, Cancelled> {
    let mut recorded = Recorded::default();
    // A stack of ranges still to record; the first half is pushed last so it is recorded first.
    let mut pending: Vec<Range<usize>> = Vec::new();
    pending.push(0..outcomes.len());
    let mut systemic = Backoff::new(policy);
    while let Some(range) = pending.pop() {
        if range.is_empty() {
            continue;
        }
        let part = &outcomes[range.clone()];
        let attempt = until_settled(policy, "record outcomes", cancel, || {
            store.record_batch(part, worker_id, limits)
        })
        .await?;
        match attempt {
            Ok(batch) => {
                recorded.won.extend(batch.won);
                recorded.rate_limited.extend(batch.rate_limited);
            }
            Err(_) if range.len() > 1 => {
                let middle = range.start + range.len() / 2;
                pending.push(middle..range.end);
                pending.push(range.start..middle);
            }
            Err(error) => {
                let canary = until_settled(policy, "record a canary outcome", cancel, || {
                    store.record_canary(worker_id)
                })
                .await?;
                match canary {
                    Ok(()) => recorded.refused.push((range.start, error)),
                    Err(canary_error) => {
                        let delay = systemic.next_delay();
                        tracing::error!(
                            error = %error,
                            canary = %canary_error,
                            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                            "PostgreSQL refuses every outcome (configuration?); retrying, nothing is dead-lettered"
                        );
                        tokio::select! {
                            _ = cancel.cancelled() => return Err(Cancelled { attempts: 0 }),
                            _ = tokio::time::sleep(delay) => {}
                        }
                        pending.push(range);
                    }
                }
            }
        }
    }
    Ok(recorded)
}
