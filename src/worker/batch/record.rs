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
//!
//! Only the requests this step recorded (won) get an SMS: a key someone recorded before is
//! already served, a key a send limit refused is recorded `rate_limited` and sent nothing, and
//! an outcome PostgreSQL refuses alone sends its event to the dead-letter topic. A delivery that
//! will not be sent gives its pumping-guard count back.

use std::collections::HashSet;
use std::ops::Range;

use tokio_util::sync::CancellationToken;

use super::plan::Plan;
use crate::domain::abuse::send_limits::{SendLimits, SendRefusal};
use crate::retry::{Backoff, Cancelled, RetryPolicy};
use crate::store::{NewOutcome, OtpStore, RequestKey, StoreError};
use crate::worker::dead_letter::{Reason, Verdict, SQLSTATE_HEADER};
use crate::worker::pipeline::Pipeline;
use crate::worker::retrying::until_settled;

/// What recording a batch achieved.
#[derive(Debug, Default)]
pub(super) struct Recorded {
    /// Keys recorded by this call (not recorded before by anyone).
    pub won: HashSet<RequestKey>,
    /// Keys of outcomes PostgreSQL refused alone, with the error.
    pub refused: Vec<(RequestKey, StoreError)>,
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
                    Ok(()) => {
                        // `part` is the one outcome PostgreSQL refuses.
                        if let Some(outcome) = part.first() {
                            recorded.refused.push((outcome.key(), error));
                        }
                    }
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

impl Pipeline {
    /// Records the outcomes of `plan` and keeps in its deliveries only what this call won and
    /// no send limit refused; refused outcomes become dead letters (see the module
    /// documentation).
    ///
    /// # Errors
    /// [`Cancelled`] when `cancel` fires first.
    pub(super) async fn record_outcomes(
        &self,
        plan: &mut Plan<'_>,
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        let recorded = record(
            &self.store,
            &self.worker_id,
            &self.retry_policy,
            &plan.outcomes,
            &self.send_limits,
            cancel,
        )
        .await?;
        let mut refused = HashSet::new();
        for (key, error) in recorded.refused {
            let mut verdict = Verdict::new(
                Reason::DatabaseRejected,
                error.server_message().unwrap_or("refused by PostgreSQL"),
            );
            if let Some(sqlstate) = error.sqlstate() {
                verdict = verdict.with(SQLSTATE_HEADER, sqlstate);
            }
            if let Some(event) = plan.events.get(&key) {
                plan.dead_letters.push((*event, verdict));
            }
            refused.insert(key);
        }
        for (key, refusal) in &recorded.rate_limited {
            tracing::info!(
                request_id = ?key.0,
                limit = refusal.as_str(),
                retry_after_s = refusal.retry_after().as_secs(),
                "OTP not sent: the identity is over a send limit"
            );
        }
        plan.limited = recorded
            .rate_limited
            .iter()
            .map(|(key, refusal)| (key.clone(), refusal.as_str()))
            .collect();
        plan.tally.rate_limited += plan.limited.len();
        plan.won = recorded.won;
        let (won, limited) = (&plan.won, &plan.limited);
        let tally = &mut plan.tally;
        plan.deliveries.retain(|delivery| {
            let key = delivery.request.key();
            let recorded = won.contains(&key);
            if !recorded && !refused.contains(&key) {
                tally.already_served += 1;
            }
            let sent = recorded && !limited.contains_key(&key);
            if !sent {
                self.pumping.release(&delivery.plan.sms_to);
            }
            sent
        });
        Ok(())
    }
}
