//! One batch of request events, end to end: parse → skip what is already served → look users up
//! → decide → record outcomes and codes (one statement) → emit SMS, email and dead-letter events
//! (all in flight at once) → mark SMS acknowledged. Only when this returns `Ok` may the batch's
//! offsets be stored.
//!
//! Failures of PostgreSQL, Kafka and egov-user are transient: each step retries in place with
//! capped backoff until it succeeds or shutdown interrupts it (then nothing after that step
//! happens and the events are redelivered to the next run, which the idempotent store makes
//! safe). Per-user order holds because one key's events are in one partition, batches of a
//! process run one after another, and within a batch outcomes are recorded in event order (so the
//! newest code of an identity is the one from its latest request).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::{self, StreamExt};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::dead_letter::{self, Reason};
use super::incoming::Incoming;
use super::notify::{self, Outgoing};
use super::sent_scan;
use crate::domain::code::{self, CodeHasher, OtpCode};
use crate::domain::decide::{decide, Decision, Refusal, SendPlan};
use crate::domain::templates::MessageTemplates;
use crate::domain::{OtpRequest, RawOtpRequest};
use crate::kafka::EventProducer;
use crate::retry::{retry, Attempt, Backoff, Cancelled, RetryNotice, RetryPolicy};
use crate::store::{NewCode, NewOutcome, OtpStore, Outcome};
use crate::users::{UserClient, UserLookupError};

/// egov-user searches in flight at once within a batch.
const LOOKUP_CONCURRENCY: usize = 32;

/// How old another worker's pending outcome must be before it counts as abandoned: longer than
/// that worker needs to notice a revocation (0.1 s) plus the longest an SMS it already handed to
/// librdkafka can still be delivered (`USER_OTP_KAFKA_SEND_TIMEOUT_MS`, 5 s by default).
const PENDING_GRACE: Duration = Duration::from_secs(10);

/// Longest the crash-recovery scan of the SMS topic may take.
const SENT_SCAN_TIMEOUT: Duration = Duration::from_secs(30);

type LookupResult = Result<Option<crate::domain::FoundUser>, UserLookupError>;
type LookupFuture<'a> = std::pin::Pin<Box<dyn Future<Output = LookupResult> + Send + 'a>>;

/// Topic names the pipeline writes to.
#[derive(Debug, Clone)]
pub struct Topics {
    pub sms: String,
    pub email: String,
    pub dead_letter: String,
}

/// Everything a batch needs; built once per worker.
pub struct Pipeline {
    pub store: OtpStore,
    pub users: UserClient,
    pub producer: EventProducer,
    pub bootstrap_servers: String,
    pub hasher: CodeHasher,
    pub templates: MessageTemplates,
    pub topics: Topics,
    pub code_length: u8,
    pub code_ttl: Duration,
    pub sms_expiry: Duration,
    /// Backoff for PostgreSQL and Kafka retries.
    pub retry_policy: RetryPolicy,
    /// This process, as recorded with its outcomes (random per start).
    pub worker_id: String,
}

/// What a batch did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    pub sent: usize,
    pub refused: usize,
    pub stale: usize,
    pub dead_lettered: usize,
    pub already_served: usize,
    pub recovered: usize,
    /// Milliseconds spent in each step: classify, look up, record, notify, mark sent.
    pub step_ms: [u32; 5],
}

/// Milliseconds since `since`, for [`BatchSummary::step_ms`].
fn ms_since(since: &mut std::time::Instant) -> u32 {
    let now = std::time::Instant::now();
    let ms = u32::try_from(now.duration_since(*since).as_millis()).unwrap_or(u32::MAX);
    *since = now;
    ms
}

/// What to do with one event.
enum Work<'a> {
    DeadLetter(&'a Incoming, Reason, String),
    AlreadyServed,
    Stale(&'a Incoming, OtpRequest),
    Serve(&'a Incoming, OtpRequest),
    /// Recorded as `sms_pending` by a run that did not finish it.
    Recover(&'a Incoming, OtpRequest, Uuid, SystemTime),
}

/// A code to send for one request.
struct Delivery<'a> {
    event: &'a Incoming,
    request: OtpRequest,
    plan: SendPlan,
    code: OtpCode,
}

impl Pipeline {
    pub async fn process(
        &self,
        events: &[Incoming],
        cancel: &CancellationToken,
    ) -> Result<BatchSummary, Cancelled> {
        let mut summary = BatchSummary::default();
        let mut clock = std::time::Instant::now();
        let work = self.classify(events, cancel).await?;
        summary.step_ms[0] = ms_since(&mut clock);

        // Look users up for everything to serve or recover, keeping event order.
        let needs_user: Vec<&OtpRequest> = work
            .iter()
            .filter_map(|w| match w {
                Work::Serve(_, request) | Work::Recover(_, request, _, _) => Some(request),
                _ => None,
            })
            .collect();
        // Boxed so the batch future stays `Send` (a closure over borrowed requests inside
        // `buffered` trips the compiler's higher-ranked lifetime inference).
        let lookup_futures: Vec<LookupFuture<'_>> = needs_user
            .into_iter()
            .map(|request| Box::pin(self.users.find(request, cancel)) as LookupFuture<'_>)
            .collect();
        let mut lookups = stream::iter(lookup_futures)
            .buffered(LOOKUP_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter();
        summary.step_ms[1] = ms_since(&mut clock);

        let now = SystemTime::now();
        let mut outcomes = Vec::new();
        let mut deliveries: Vec<Delivery<'_>> = Vec::new();
        let mut recoveries: Vec<(Delivery<'_>, Uuid, SystemTime)> = Vec::new();
        let mut dead_letters: Vec<(&Incoming, Reason, String)> = Vec::new();
        for item in work {
            match item {
                Work::AlreadyServed => summary.already_served += 1,
                Work::DeadLetter(event, reason, detail) => {
                    dead_letters.push((event, reason, detail));
                }
                Work::Stale(event, request) => {
                    outcomes.push(outcome(event, &request, Outcome::Stale, None));
                    summary.stale += 1;
                }
                Work::Serve(event, request) => {
                    let user = match next_lookup(&mut lookups)? {
                        Ok(user) => user,
                        Err((reason, detail)) => {
                            dead_letters.push((event, reason, detail));
                            continue;
                        }
                    };
                    match decide(&request, user.as_ref()) {
                        Decision::Refuse(refusal) => {
                            outcomes.push(outcome(event, &request, refused(refusal), None));
                            summary.refused += 1;
                        }
                        Decision::Send(plan) => {
                            let code = code::generate(self.code_length);
                            let new_code = self.new_code(&plan, &code, now);
                            outcomes.push(outcome(
                                event,
                                &request,
                                Outcome::SmsPending,
                                Some(new_code),
                            ));
                            deliveries.push(Delivery {
                                event,
                                request,
                                plan,
                                code,
                            });
                        }
                    }
                }
                Work::Recover(event, request, code_id, recorded_at) => {
                    let user = match next_lookup(&mut lookups)? {
                        Ok(user) => user,
                        Err((reason, detail)) => {
                            dead_letters.push((event, reason, detail));
                            continue;
                        }
                    };
                    if let Decision::Send(plan) = decide(&request, user.as_ref()) {
                        let code = code::generate(self.code_length);
                        let delivery = Delivery {
                            event,
                            request,
                            plan,
                            code,
                        };
                        recoveries.push((delivery, code_id, recorded_at));
                    } else {
                        tracing::warn!(
                            request_id = %event.request_id,
                            "pending request is now refused; leaving it pending"
                        );
                    }
                }
            }
        }

        // Record outcomes; only the requests this call recorded get an SMS.
        let recorded: HashSet<String> = if outcomes.is_empty() {
            HashSet::new()
        } else {
            self.with_retry("record outcomes", cancel, || {
                self.store.record_batch(&outcomes, &self.worker_id)
            })
            .await?
            .into_iter()
            .collect()
        };
        summary.step_ms[2] = ms_since(&mut clock);
        let before = deliveries.len();
        deliveries.retain(|d| recorded.contains(&d.event.request_id));
        summary.already_served += before - deliveries.len();

        // Crash recovery: send again only what never reached the broker.
        let mut acknowledged_earlier = Vec::new();
        if !recoveries.is_empty() {
            let since = recoveries.iter().map(|(_, _, at)| *at).min().unwrap_or(now);
            let ids: HashSet<String> = recoveries
                .iter()
                .map(|(d, _, _)| d.event.request_id.clone())
                .collect();
            let already_sent = self.with_retry("scan the SMS topic", cancel, || {
                sent_scan::find_sent(
                    &self.bootstrap_servers,
                    &self.topics.sms,
                    epoch_ms(since),
                    ids.clone(),
                    SENT_SCAN_TIMEOUT,
                )
            });
            let already_sent = already_sent.await?;
            for (delivery, code_id, _) in recoveries {
                summary.recovered += 1;
                if already_sent.contains(&delivery.event.request_id) {
                    acknowledged_earlier.push(delivery.event.request_id.clone());
                    continue;
                }
                let hash = self.hasher.hash(&code_id, delivery.code.as_str());
                let expires_at = now + self.code_ttl;
                self.with_retry("replace a pending code", cancel, || {
                    self.store
                        .replace_code(code_id, self.hasher.key_id(), &hash, expires_at)
                })
                .await?;
                deliveries.push(delivery);
            }
        }

        // Emit everything at once; each event retries on its own until acknowledged. The SMS
        // expiry counts from now, after the database work and any recovery, not from the start
        // of the batch (egov-notification-sms drops an SMS whose expiryTime has passed).
        let sms_expires_at = SystemTime::now() + self.sms_expiry;
        let mut outgoing: Vec<Outgoing> = Vec::new();
        for delivery in &deliveries {
            outgoing.extend(notify::for_delivery(
                &delivery.request,
                &delivery.event.request_id,
                &delivery.plan,
                &delivery.code,
                &self.templates,
                &self.topics,
                sms_expires_at,
            ));
        }
        for (event, reason, detail) in &dead_letters {
            tracing::warn!(
                request_id = %event.request_id,
                reason = reason.as_str(),
                %detail,
                topic = %event.source.topic,
                partition = event.source.partition,
                offset = event.source.offset,
                "request event dead-lettered"
            );
            outgoing.push(Outgoing {
                topic: self.topics.dead_letter.clone(),
                key: event.key.clone(),
                payload: event.payload.clone().unwrap_or_default(),
                headers: dead_letter::headers(event, *reason, detail),
            });
        }
        let sends = outgoing.iter().map(|event| {
            self.with_retry("produce an event", cancel, move || {
                event.send(&self.producer)
            })
        });
        for result in futures::future::join_all(sends).await {
            result?;
        }
        summary.dead_lettered = dead_letters.len();
        summary.step_ms[3] = ms_since(&mut clock);

        // Every SMS is acknowledged: record it.
        let mut sent: Vec<String> = deliveries
            .iter()
            .map(|d| d.event.request_id.clone())
            .collect();
        summary.sent = sent.len();
        sent.extend(acknowledged_earlier);
        if !sent.is_empty() {
            self.with_retry("mark SMS sent", cancel, || self.store.mark_sent(&sent))
                .await?;
        }
        summary.step_ms[4] = ms_since(&mut clock);
        Ok(summary)
    }

    /// Parses every event and checks which are already served.
    async fn classify<'a>(
        &self,
        events: &'a [Incoming],
        cancel: &CancellationToken,
    ) -> Result<Vec<Work<'a>>, Cancelled> {
        let mut parsed = Vec::with_capacity(events.len());
        let mut seen = HashSet::new();
        for event in events {
            if !seen.insert(event.request_id.as_str()) {
                parsed.push(Err(None));
                continue;
            }
            parsed.push(parse(event).map_err(Some));
        }
        let ids: Vec<String> = events
            .iter()
            .zip(&parsed)
            .filter(|(_, p)| p.is_ok())
            .map(|(event, _)| event.request_id.clone())
            .collect();
        let mut existing = if ids.is_empty() {
            HashMap::new()
        } else {
            self.with_retry("read outcomes", cancel, || {
                self.store.existing_outcomes(&ids)
            })
            .await?
        };
        // A request another worker recorded as pending only moments ago may still be in flight
        // there (it owned the partition until a rebalance): give that batch PENDING_GRACE to
        // finish before treating the request as abandoned, then look again. Our own pending
        // requests need no wait: a partition's events go through one lane in order, so an
        // earlier copy in this process has finished (or was abandoned) before this one.
        let youngest_pending = existing
            .values()
            .filter(|found| found.outcome == Outcome::SmsPending)
            .filter(|found| found.worker_id.as_deref() != Some(self.worker_id.as_str()))
            .map(|found| found.created_at)
            .max();
        if let Some(recorded) = youngest_pending {
            // Bounded, should the database's clock run ahead of ours.
            let wait = (recorded + PENDING_GRACE)
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .min(PENDING_GRACE);
            if !wait.is_zero() {
                tokio::select! {
                    _ = cancel.cancelled() => return Err(Cancelled { attempts: 0 }),
                    _ = tokio::time::sleep(wait) => {}
                }
                existing = self
                    .with_retry("read outcomes", cancel, || {
                        self.store.existing_outcomes(&ids)
                    })
                    .await?;
            }
        }
        let stale_before = epoch_ms(SystemTime::now()) - self.code_ttl.as_millis() as i64;
        Ok(events
            .iter()
            .zip(parsed)
            .map(|(event, parsed)| match parsed {
                Err(None) => Work::AlreadyServed,
                Err(Some((reason, detail))) => Work::DeadLetter(event, reason, detail),
                Ok(request) => match existing.get(&event.request_id) {
                    Some(found) => match (found.outcome, found.code_id) {
                        (Outcome::SmsPending, Some(code_id)) => {
                            Work::Recover(event, request, code_id, found.created_at)
                        }
                        _ => Work::AlreadyServed,
                    },
                    None if event.timestamp_ms.is_some_and(|t| t < stale_before) => {
                        Work::Stale(event, request)
                    }
                    None => Work::Serve(event, request),
                },
            })
            .collect())
    }

    fn new_code(&self, plan: &SendPlan, code: &OtpCode, now: SystemTime) -> NewCode {
        // Time-ordered (v7): new codes land at the right edge of the primary-key index instead
        // of on a random page, which keeps inserts cheap as the table grows.
        let id = Uuid::now_v7();
        NewCode {
            id,
            identity: plan.sms_to.clone(),
            identities: plan.identities.clone(),
            key_id: self.hasher.key_id().to_owned(),
            hash: self.hasher.hash(&id, code.as_str()),
            expires_at: now + self.code_ttl,
        }
    }

    /// Runs a PostgreSQL or Kafka step until it succeeds or shutdown interrupts it.
    async fn with_retry<T, E, F, Fut>(
        &self,
        what: &'static str,
        cancel: &CancellationToken,
        mut step: F,
    ) -> Result<T, Cancelled>
    where
        E: std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        retry(
            Backoff::new(&self.retry_policy),
            cancel,
            |_| {
                let attempt = step();
                async move {
                    match attempt.await {
                        Ok(value) => Attempt::Done(value),
                        Err(error) => Attempt::Retry(error),
                    }
                }
            },
            |notice: RetryNotice<'_, E>| {
                tracing::warn!(
                    step = what,
                    attempt = notice.attempt,
                    error = %notice.failure,
                    delay_ms = notice.delay.as_millis() as u64,
                    "worker step failed; retrying"
                );
            },
        )
        .await
    }
}

/// The next lookup result: the user, or why the event must be dead-lettered.
#[allow(clippy::type_complexity)]
fn next_lookup(
    lookups: &mut impl Iterator<Item = LookupResult>,
) -> Result<Result<Option<crate::domain::FoundUser>, (Reason, String)>, Cancelled> {
    match lookups.next() {
        Some(Ok(user)) => Ok(Ok(user)),
        Some(Err(UserLookupError::Cancelled)) | None => Err(Cancelled { attempts: 0 }),
        Some(Err(error @ UserLookupError::MalformedAnswer(_))) => {
            Ok(Err((Reason::UserServiceMalformedAnswer, error.to_string())))
        }
        Some(Err(error)) => Ok(Err((Reason::UserServiceRejected, error.to_string()))),
    }
}

fn parse(event: &Incoming) -> Result<OtpRequest, (Reason, String)> {
    let payload = event
        .payload
        .as_deref()
        .ok_or((Reason::Malformed, "the event has no value".to_owned()))?;
    RawOtpRequest::from_json_bytes(payload)
        .map_err(|e| (Reason::Malformed, e.to_string()))?
        .validate()
        .map_err(|rules| {
            let codes: Vec<&str> = rules.iter().map(|rule| rule.code()).collect();
            (Reason::InvalidRequest, codes.join(","))
        })
}

fn outcome(
    event: &Incoming,
    request: &OtpRequest,
    outcome: Outcome,
    code: Option<NewCode>,
) -> NewOutcome {
    NewOutcome {
        request_id: event.request_id.clone(),
        tenant_id: request.root_tenant().to_owned(),
        otp_type: request.otp_type.as_str(),
        outcome,
        source: event.source.clone(),
        code,
    }
}

fn refused(refusal: Refusal) -> Outcome {
    match refusal {
        Refusal::UserExists => Outcome::UserExists,
        Refusal::UnknownUser => Outcome::UnknownUser,
        Refusal::NoMobileNumber => Outcome::NoMobileNumber,
    }
}

pub fn epoch_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
