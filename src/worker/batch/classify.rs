//! The classify step: what to do with each event of a batch, before any user lookup.
//!
//! Each event is parsed (or dead-lettered with the reason) and keyed by (request id,
//! fingerprint) ([`crate::domain::request_id`]). The outcomes already recorded for its request
//! id decide the rest:
//! - the same key recorded and final: a redelivery, sending nothing again (its outcome is
//!   announced again, marked redelivered);
//! - the same key recorded as `sms_pending` (a run that did not finish): recovered, unless its
//!   code's validity has passed (then closed as `expired`, never resent);
//! - only other fingerprints recorded under the id: another request reusing the id; logged as a
//!   collision and served as a new request with its own outcome;
//! - a row recorded before fingerprints existed (empty fingerprint, migration 0002) within a
//!   code's validity counts as this request's, so an event redelivered across the upgrade is not
//!   served twice;
//! - nothing recorded: served, or recorded `stale` when the event is older than a code's
//!   validity.
//!
//! A key seen twice within one batch is served once. A pending request another worker recorded
//! moments ago may still be in flight there (it owned the partition until a rebalance), and one
//! this process recorded may still be in its producer (a copy under another message key, in
//! another batch): it gets
//! the pending grace ([`pending_grace`], measured by PostgreSQL's clock) before it counts as
//! abandoned. Its event is *deferred* for the rest of that grace: handed back to the
//! dispatcher, which serves it again later while holding its key, so only that key waits; the
//! other events of the batch go on.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::abuse::country::{CountryAllowList, NOT_ALLOWED_CODE};
use crate::domain::request_id::fingerprint;
use crate::domain::unix_time::unix_ms;
use crate::domain::{OtpRequest, RawOtpRequest};
use crate::retry::Cancelled;
use crate::store::{Outcome, Recorded, RequestKey};
use crate::worker::dead_letter::{Reason, Verdict};
use crate::worker::incoming::Incoming;
use crate::worker::pipeline::Pipeline;
use crate::worker::retrying::until_done;

/// The shortest pending grace (with the default 5 s send timeout it is the grace).
const MIN_PENDING_GRACE: Duration = Duration::from_secs(10);

/// Margin over the send timeout: a worker notices a revocation within 0.1 s, and the clocks of
/// PostgreSQL (which measures the age) and of the worker need not agree to the millisecond.
const PENDING_GRACE_MARGIN: Duration = Duration::from_secs(5);

/// How old another worker's pending outcome must be before it counts as abandoned, given
/// `send_timeout` (`USER_OTP_KAFKA_SEND_TIMEOUT_MS`): longer than that worker needs to notice a
/// revocation plus the longest an SMS it already handed to librdkafka can still be delivered,
/// so `send_timeout` + 5 s, at least 10 s (10 s with the default 5 s timeout; 305 s at the
/// largest allowed timeout, 300 s).
pub(crate) fn pending_grace(send_timeout: Duration) -> Duration {
    (send_timeout + PENDING_GRACE_MARGIN).max(MIN_PENDING_GRACE)
}

/// How long after a batch starts recording its outcomes it may still hand an SMS to the
/// producer, given `send_timeout`: the [`pending_grace`] less the send timeout (librdkafka's
/// `message.timeout.ms`, the longest a handed-over SMS may still be delivered) and 1 s. Every SMS
/// a run produced has then been delivered or failed before another run (or this one, a copy
/// under another message key) may recover its request, so a recovery's scan of the SMS topic
/// sees it and no second code goes out. 4 s with the default 5 s send timeout; past it the
/// batch stops, its events wait out the grace and are recovered.
pub(crate) fn sms_send_window(send_timeout: Duration) -> Duration {
    pending_grace(send_timeout).saturating_sub(send_timeout + Duration::from_secs(1))
}

/// A parsed request and the event it came in.
pub(super) struct Request<'a> {
    pub event: &'a Incoming,
    pub request: OtpRequest,
    pub fingerprint: Vec<u8>,
}

impl Request<'_> {
    /// The idempotency key: (request id, fingerprint).
    pub(super) fn key(&self) -> RequestKey {
        (self.event.request_id.clone(), self.fingerprint.clone())
    }
}

/// A request recorded `sms_pending` by a run that did not finish it.
pub(super) struct Pending {
    pub code_id: Uuid,
    /// How long ago it was recorded.
    pub age: Duration,
    /// When it was recorded, as stored (the recovery's claim compares it).
    pub recorded_at: SystemTime,
    /// Where its stored code's SMS goes: recovery sends nowhere else.
    pub code_identity: Option<String>,
}

/// What to do with one event.
pub(super) enum Work<'a> {
    /// Unreadable or refused by a rule: to the dead-letter topic with the verdict.
    DeadLetter(&'a Incoming, Verdict),
    /// A second copy within the batch (the first one serves it).
    AlreadyServed,
    /// Recorded and final already (a redelivery, a replay): nothing is sent; its outcome is
    /// announced again.
    Redelivered(Request<'a>, Outcome),
    /// Older than a code's validity: recorded `stale`, nothing sent.
    Stale(Request<'a>),
    /// New: look the user up, decide, send.
    Serve(Request<'a>),
    /// Recorded `sms_pending` by a run that did not finish it: send only what never left.
    Recover(Request<'a>, Pending),
    /// Pending, but its code's validity has passed: close as `expired`, send nothing.
    Expire(Request<'a>),
    /// Pending at another worker within the pending grace ([`pending_grace`]): serve again
    /// after the wait.
    Defer(&'a Incoming, Duration),
}

impl Pipeline {
    /// Parses every event and decides what to do with it (see the module documentation).
    ///
    /// # Errors
    /// [`Cancelled`] when `cancel` fires first.
    pub(super) async fn classify<'a>(
        &self,
        events: &'a [Incoming],
        cancel: &CancellationToken,
    ) -> Result<Vec<Work<'a>>, Cancelled> {
        let mut seen: HashSet<RequestKey> = HashSet::new();
        let mut parsed: Vec<Option<Result<Request<'a>, Verdict>>> =
            Vec::with_capacity(events.len());
        for event in events {
            let request = parse(event, &self.allowed_country_codes).map(|request| Request {
                fingerprint: fingerprint(&self.hasher, &request),
                event,
                request,
            });
            match request {
                Ok(request) if !seen.insert(request.key()) => parsed.push(None),
                other => parsed.push(Some(other)),
            }
        }
        // Unique already: duplicates within the batch were set aside above.
        let keys: Vec<RequestKey> = parsed
            .iter()
            .flatten()
            .flatten()
            .map(Request::key)
            .collect();
        let existing = self.existing(&keys, cancel).await?;
        let stale_before = unix_ms(SystemTime::now())
            .saturating_sub(i64::try_from(self.code_ttl.as_millis()).unwrap_or(i64::MAX));
        Ok(parsed
            .into_iter()
            .zip(events)
            .map(|(parsed, event)| match parsed {
                None => Work::AlreadyServed,
                Some(Err(verdict)) => Work::DeadLetter(event, verdict),
                Some(Ok(request)) => self.work_for(request, &existing, stale_before),
            })
            .collect())
    }

    fn work_for<'a>(
        &self,
        mut request: Request<'a>,
        existing: &HashMap<RequestKey, Recorded>,
        stale_before: i64,
    ) -> Work<'a> {
        let recorded = existing.get(&request.key());
        if let Some(found) = recorded.and_then(|r| r.outcome.as_ref()) {
            // A row recorded before fingerprints existed is this request's: keyed as stored.
            if found.fingerprint != request.fingerprint {
                request.fingerprint = found.fingerprint.clone();
            }
            let foreign = found.worker_id.as_deref() != Some(self.worker_id.as_str());
            return match (found.outcome, found.code_id) {
                (Outcome::SmsPending, Some(_)) if found.code_expired => Work::Expire(request),
                // A predecessor's pending request (this worker id, recorded before this process
                // started: static membership after a restart) needs no wait, its producer is
                // gone. One recorded by this process gets the grace like another worker's:
                // a copy with another message key may be in another batch here right now.
                (Outcome::SmsPending, Some(_))
                    if (foreign || found.age < self.started.elapsed())
                        && found.age < self.pending_grace =>
                {
                    Work::Defer(request.event, self.pending_grace - found.age)
                }
                (Outcome::SmsPending, Some(code_id)) => Work::Recover(
                    request,
                    Pending {
                        code_id,
                        age: found.age,
                        recorded_at: found.recorded_at,
                        code_identity: found.code_identity.clone(),
                    },
                ),
                (Outcome::SmsPending, None) => Work::AlreadyServed,
                (outcome, _) => Work::Redelivered(request, outcome),
            };
        }
        if recorded.is_some_and(|r| r.reused) {
            tracing::warn!(
                request_id = ?request.event.request_id,
                partition = request.event.source.partition,
                offset = request.event.source.offset,
                "request id reused by another request (other tenant, number or type): served as a new request"
            );
        }
        if request.event.timestamp_ms.is_some_and(|t| t < stale_before) {
            Work::Stale(request)
        } else {
            Work::Serve(request)
        }
    }

    /// What is recorded for `keys` (none when empty).
    async fn existing(
        &self,
        keys: &[RequestKey],
        cancel: &CancellationToken,
    ) -> Result<HashMap<RequestKey, Recorded>, Cancelled> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        until_done(&self.retry_policy, "read outcomes", cancel, || {
            self.store.existing_outcomes(keys, self.code_ttl)
        })
        .await
    }
}

/// The request in an event, or why it goes to the dead-letter topic (unreadable, failing a [§1](../../../docs/contract.md#1-the-send-request)
/// rule, or naming a country outside `countries`).
fn parse(event: &Incoming, countries: &CountryAllowList) -> Result<OtpRequest, Verdict> {
    if event.unreadable_headers > 0 {
        return Err(Verdict::new(
            Reason::UnreadableHeader,
            format!(
                "{} header name(s) are not UTF-8; the original is at the source offset",
                event.unreadable_headers
            ),
        ));
    }
    let payload = event
        .payload
        .as_deref()
        .ok_or_else(|| Verdict::new(Reason::Malformed, "the event has no value"))?;
    RawOtpRequest::from_json_bytes(payload)
        .map_err(|e| Verdict::new(Reason::Malformed, e.to_string()))?
        .validate()
        .map_err(|rules| {
            let codes: Vec<&str> = rules.iter().map(|rule| rule.code()).collect();
            Verdict::new(Reason::InvalidRequest, codes.join(","))
        })
        .and_then(|request| {
            if countries.allows_request(request.country_code.as_deref(), request.sms_number()) {
                Ok(request)
            } else {
                Err(Verdict::new(
                    Reason::CountryCodeNotAllowed,
                    NOT_ALLOWED_CODE,
                ))
            }
        })
}
