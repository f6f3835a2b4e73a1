//! The announce step: one outcome event ([`OutcomeEvent`], `schemas/outcome-event.schema.json`)
//! per event of the batch that reached an outcome, on the outcome topic, each until the broker
//! acknowledges it.
//!
//! It runs together with the notify step: its events go to the producer right after the
//! batch's SMS (once every delivery's texts are chosen), in the same produce requests (a
//! produce round of its own per batch cost more CPU per request than everything else the
//! outcome topic adds), and both finish before the SMS are marked sent and the offsets stored,
//! so nothing is lost by a crash: a request whose final outcome was recorded but not yet
//! announced is announced again when its event is redelivered (`redelivered: true`, module
//! `classify`); a pending one is recovered and announced then. So `sent` means the SMS was
//! handed to the producer before it (the two topics' partitions are written independently); in
//! the rare case that the SMS is then not acknowledged (the broker refused it until the send
//! window passed, its first hand-over failed on a full local queue, or the worker died between
//! the two acknowledgements) the request is recovered after the pending grace and a later event
//! for it follows: `sent` again when recovery finds or sends the SMS, else `expired` or
//! `abandoned`. The latest event of a request id (one key, one partition) is its outcome, but
//! for one rare case: an outcome event still being retried by a run whose partition was revoked
//! may land after the new owner's. Outcome events are retried until acknowledged, without a
//! send window: a slow outcome topic delays a batch, never fails it. What is announced, in
//! event order:
//! - every outcome the record step recorded: its own (`user_exists`, `unknown_user`,
//!   `no_mobile_number`, `stale`, `rate_limited` with the guard), `sent` for a code it sent,
//!   `rate_limited` with the limit's name for a code a send limit refused;
//! - recovered requests (`sent`, whether the SMS went now or had gone before), and pending ones
//!   closed `expired` or `abandoned`;
//! - redelivered requests, with the outcome recorded before;
//! - dead letters (`dead_lettered`, with the reason).
//!
//! Outcomes another worker recorded first (it announces them), deferred events and second
//! copies within the batch are not announced. A refusal the broker would repeat (a topic
//! misconfigured for every event) is logged at error level and the event dropped: outcome
//! events are for observers, and they must not stop SMS from flowing.

use std::sync::{Mutex, PoisonError};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::classify::Request;
use super::plan::Plan;
use crate::domain::outcome_event::{OutcomeEvent, Subject, DEAD_LETTERED};
use crate::domain::request_event::{REPLY_TOKEN_HEADER, REQUEST_ID_HEADER};
use crate::domain::request_id::sensible_caller_id;
use crate::domain::unix_time::unix_ms;
use crate::failure::{Classify, FailureKind};
use crate::kafka::{GroupRecord, RecordHeader};
use crate::retry::Cancelled;
use crate::store::{Outcome, RequestKey};
use crate::worker::incoming::Incoming;
use crate::worker::pipeline::Pipeline;
use crate::worker::retrying::until_done;

/// What an outcome event says about its request, kept from the parsed request.
pub(crate) struct Facts {
    request_id: String,
    /// The `x-request-id` header: the caller's id, else the request id.
    header_id: String,
    /// The request event's `x-user-otp-reply-to` header, copied onto its outcome event.
    reply_token: Option<String>,
    correlation_id: Option<String>,
    tenant_id: String,
    otp_type: &'static str,
    /// Masked.
    identity: String,
    requested_at: Option<i64>,
}

impl Facts {
    /// The facts of a parsed request.
    pub(super) fn of(request: &Request<'_>) -> Self {
        let correlation_id = request
            .request
            .request_info
            .as_ref()
            .and_then(|info| info.get("correlationId"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        Self {
            request_id: request.event.request_id.clone(),
            header_id: request.event.correlation_id().to_owned(),
            reply_token: reply_token(request.event),
            correlation_id,
            tenant_id: request.request.root_tenant().to_owned(),
            otp_type: request.request.otp_type.as_str(),
            identity: OutcomeEvent::masked(&request.request.mobile_number),
            requested_at: request.event.timestamp_ms,
        }
    }

    fn event(
        &self,
        outcome: &'static str,
        detail: Option<&'static str>,
        redelivered: bool,
        now: i64,
    ) -> OutcomeEvent {
        OutcomeEvent {
            subject: Subject::Request,
            request_id: Some(self.request_id.clone()),
            correlation_id: self.correlation_id.clone(),
            tenant_id: Some(self.tenant_id.clone()),
            otp_type: Some(self.otp_type),
            identity: Some(self.identity.clone()),
            outcome,
            detail,
            code_id: None,
            redelivered,
            requested_at: self.requested_at,
            decided_at: now,
        }
    }
}

impl Pipeline {
    /// Writes the outcome events of `plan` (see the module documentation); `acknowledged_earlier`
    /// are the recovered requests whose SMS had gone before.
    ///
    /// They wait until every delivery's SMS went to the producer (`texts_ready`, one permit per
    /// delivery), then all go at once and are awaited as one group
    /// ([`EventProducer::send_all`](crate::kafka::EventProducer::send_all)); the ones not
    /// acknowledged (refused but not for good, or timed out) go again as a group with the retry
    /// policy's backoff until each is acknowledged or refused for good.
    ///
    /// # Errors
    /// [`Cancelled`] when `cancel` fires first.
    pub(super) async fn announce(
        &self,
        plan: &Plan<'_>,
        acknowledged_earlier: &[RequestKey],
        texts_ready: &Semaphore,
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        // Every delivery's SMS first (see `notify::TextsReady`).
        let deliveries = u32::try_from(plan.deliveries.len()).unwrap_or(u32::MAX);
        if deliveries > 0 {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Cancelled { attempts: 0 }),
                permits = texts_ready.acquire_many(deliveries) => drop(permits),
            }
        }
        let events = outcome_events(
            plan,
            acknowledged_earlier,
            unix_ms(std::time::SystemTime::now()),
        );
        if events.is_empty() {
            return Ok(());
        }
        let payloads: Vec<Vec<u8>> = events.iter().map(|a| a.event.to_json()).collect();
        let headers: Vec<Vec<RecordHeader<'_>>> = events.iter().map(Announced::headers).collect();
        let topic = self.topics.outcome.as_str();
        let unsettled = Mutex::new((0..events.len()).collect::<Vec<usize>>());
        let (events, payloads, headers, unsettled) = (&events, &payloads, &headers, &unsettled);
        until_done(
            &self.retry_policy,
            "produce outcome events",
            cancel,
            || async move {
                let indices = std::mem::take(&mut *lock(unsettled));
                let records: Vec<GroupRecord<'_>> = indices
                    .iter()
                    .map(|&i| GroupRecord {
                        topic,
                        key: events[i].key.as_deref().map(str::as_bytes),
                        payload: Some(&payloads[i]),
                        headers: &headers[i],
                    })
                    .collect();
                let answers = self.producer.send_all(&records).await;
                debug_assert_eq!(answers.len(), indices.len(), "one answer per record");
                let mut again = Vec::new();
                let mut first_failure = None;
                for (index, answer) in indices.into_iter().zip(answers) {
                    match answer {
                        Ok(()) => {}
                        Err(error) if error.kind() == FailureKind::Poison => {
                            tracing::error!(%error, "the broker refused an outcome event; dropped");
                        }
                        Err(error) => {
                            again.push(index);
                            first_failure.get_or_insert(error);
                        }
                    }
                }
                *lock(unsettled) = again;
                first_failure.map_or(Ok(()), Err)
            },
        )
        .await
    }
}

/// The lock of the events still to write (never poisoned: nothing panics while holding it).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One outcome event to write, with its Kafka key and headers.
struct Announced {
    key: Option<String>,
    /// The `x-request-id` header.
    header_id: String,
    /// The `x-user-otp-reply-to` header, when the request had one.
    reply_token: Option<String>,
    event: OutcomeEvent,
}

impl Announced {
    /// Its headers: `x-request-id`, and `x-user-otp-reply-to` when the request had one.
    fn headers(&self) -> Vec<RecordHeader<'_>> {
        let mut headers = Vec::with_capacity(2);
        headers.push((REQUEST_ID_HEADER, Some(self.header_id.as_bytes())));
        if let Some(token) = &self.reply_token {
            headers.push((REPLY_TOKEN_HEADER, Some(token.as_bytes())));
        }
        headers
    }
}

/// The request event's reply token, when it is a sensible one (1–128 visible ASCII).
fn reply_token(event: &Incoming) -> Option<String> {
    crate::kafka::headers::header_text(&event.headers, REPLY_TOKEN_HEADER)
        .and_then(sensible_caller_id)
        .map(str::to_owned)
}

/// The outcome events of `plan` in event order.
fn outcome_events(
    plan: &Plan<'_>,
    acknowledged_earlier: &[RequestKey],
    now: i64,
) -> Vec<Announced> {
    let mut events = Vec::new();
    let mut push = |key: &RequestKey, outcome, detail, redelivered| {
        if let Some(facts) = plan.facts.get(key) {
            events.push(Announced {
                key: Some(facts.request_id.clone()),
                header_id: facts.header_id.clone(),
                reply_token: facts.reply_token.clone(),
                event: facts.event(outcome, detail, redelivered, now),
            });
        }
    };
    for recorded in &plan.outcomes {
        let key = recorded.key();
        if !plan.won.contains(&key) {
            continue;
        }
        match (plan.limited.get(&key), recorded.outcome) {
            (Some(limit), _) => push(&key, Outcome::RateLimited.as_str(), Some(*limit), false),
            (None, Outcome::SmsPending) => push(&key, Outcome::Sent.as_str(), None, false),
            (None, outcome) => push(&key, outcome.as_str(), recorded.detail, false),
        }
    }
    for delivery in plan.deliveries.iter().filter(|d| d.send_by.is_some()) {
        push(&delivery.request.key(), Outcome::Sent.as_str(), None, false);
    }
    for key in acknowledged_earlier {
        push(key, Outcome::Sent.as_str(), None, false);
    }
    for key in &plan.expired {
        push(key, Outcome::Expired.as_str(), None, false);
    }
    for key in &plan.abandoned {
        push(key, Outcome::Abandoned.as_str(), None, false);
    }
    for (key, outcome) in &plan.redelivered {
        push(key, outcome.as_str(), None, true);
    }
    for (event, verdict) in &plan.dead_letters {
        events.push(dead_lettered(event, verdict.reason.as_str(), now));
    }
    events
}

/// The outcome event of a dead letter: what the event itself tells (it may be unreadable).
fn dead_lettered(event: &Incoming, reason: &'static str, now: i64) -> Announced {
    Announced {
        key: Some(event.request_id.clone()),
        header_id: event.correlation_id().to_owned(),
        reply_token: reply_token(event),
        event: OutcomeEvent {
            subject: Subject::Request,
            request_id: Some(event.request_id.clone()),
            correlation_id: None,
            tenant_id: None,
            otp_type: None,
            identity: None,
            outcome: DEAD_LETTERED,
            detail: Some(reason),
            code_id: None,
            redelivered: false,
            requested_at: event.timestamp_ms,
            decided_at: now,
        },
    }
}
