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
use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::dead_letter::{self, Reason, Verdict, SQLSTATE_HEADER};
use super::incoming::Incoming;
use super::notify::{self, Outgoing};
use super::record;
use super::retrying::{until_done, until_settled};
use super::sent_scan;
use crate::domain::code::{self, CodeHasher, OtpCode};
use crate::domain::decide::{decide, Decision, Refusal, SendPlan};
use crate::domain::templates::MessageTemplates;
use crate::domain::{OtpRequest, RawOtpRequest};
use crate::kafka::EventProducer;
use crate::retry::{Cancelled, RetryPolicy};
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
    /// Largest record the producer writes (bytes); dead letters are cut to fit.
    pub message_max_bytes: usize,
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

impl BatchSummary {
    /// Adds the counts (not the step times) of `other`.
    pub fn add(&mut self, other: &Self) {
        self.sent += other.sent;
        self.refused += other.refused;
        self.stale += other.stale;
        self.dead_lettered += other.dead_lettered;
        self.already_served += other.already_served;
        self.recovered += other.recovered;
    }
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
    DeadLetter(&'a Incoming, Verdict),
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
        // `outcomes[i]` records the request of `outcome_events[i]`.
        let mut outcomes = Vec::new();
        let mut outcome_events: Vec<&Incoming> = Vec::new();
        let mut deliveries: Vec<Delivery<'_>> = Vec::new();
        let mut recoveries: Vec<(Delivery<'_>, Uuid, SystemTime)> = Vec::new();
        let mut dead_letters: Vec<(&Incoming, Verdict)> = Vec::new();
        for item in work {
            match item {
                Work::AlreadyServed => summary.already_served += 1,
                Work::DeadLetter(event, verdict) => dead_letters.push((event, verdict)),
                Work::Stale(event, request) => {
                    outcomes.push(outcome(event, &request, Outcome::Stale, None));
                    outcome_events.push(event);
                    summary.stale += 1;
                }
                Work::Serve(event, request) => {
                    let user = match next_lookup(&mut lookups)? {
                        Ok(user) => user,
                        Err(verdict) => {
                            dead_letters.push((event, verdict));
                            continue;
                        }
                    };
                    match decide(&request, user.as_ref()) {
                        Decision::Refuse(refusal) => {
                            outcomes.push(outcome(event, &request, refused(refusal), None));
                            outcome_events.push(event);
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
                            outcome_events.push(event);
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
                        Err(verdict) => {
                            dead_letters.push((event, verdict));
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

        // Record outcomes; only the requests this call recorded get an SMS. An outcome
        // PostgreSQL refuses alone sends its event to the dead-letter topic (`record`).
        let recorded = record::record(
            &self.store,
            &self.worker_id,
            &self.retry_policy,
            &outcomes,
            cancel,
        )
        .await?;
        for (index, error) in &recorded.refused {
            let event = outcome_events[*index];
            let mut verdict = Verdict::new(
                Reason::DatabaseRejected,
                error.server_message().unwrap_or("refused by PostgreSQL"),
            );
            if let Some(sqlstate) = error.sqlstate() {
                verdict = verdict.with(SQLSTATE_HEADER, sqlstate);
            }
            dead_letters.push((event, verdict));
        }
        let recorded = recorded.won;
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
            let already_sent = until_done(&self.retry_policy, "scan the SMS topic", cancel, || {
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
                until_done(&self.retry_policy, "replace a pending code", cancel, || {
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
        let sends = outgoing.iter().map(|event| {
            until_done(&self.retry_policy, "produce an event", cancel, move || {
                event.send(&self.producer)
            })
        });
        let dead_letter_sends = dead_letters
            .iter()
            .map(|(event, verdict)| self.dead_letter(event, verdict, cancel));
        let (sent_results, dead_letter_results) = futures::future::join(
            futures::future::join_all(sends),
            futures::future::join_all(dead_letter_sends),
        )
        .await;
        for result in sent_results.into_iter().chain(dead_letter_results) {
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
            until_done(&self.retry_policy, "mark SMS sent", cancel, || {
                self.store.mark_sent(&sent)
            })
            .await?;
        }
        summary.step_ms[4] = ms_since(&mut clock);
        Ok(summary)
    }

    /// Serves each event of `batch` as a batch of its own, after `batch` as a whole panicked
    /// (a bug): an event that panics alone is dead-lettered with reason `internal_error` and the
    /// others are served; the process stays up.
    ///
    /// # Errors
    /// [`Cancelled`] when `cancel` fires first.
    pub async fn process_each_alone(
        &self,
        batch: &[Incoming],
        cancel: &CancellationToken,
    ) -> Result<BatchSummary, Cancelled> {
        let mut total = BatchSummary::default();
        for event in batch {
            let alone =
                std::panic::AssertUnwindSafe(self.process(std::slice::from_ref(event), cancel))
                    .catch_unwind()
                    .await;
            match alone {
                Ok(summary) => total.add(&summary?),
                Err(_) => {
                    tracing::error!(
                        request_id = ?event.request_id,
                        partition = event.source.partition,
                        offset = event.source.offset,
                        "handling this request event panicked; dead-lettering it"
                    );
                    let verdict =
                        Verdict::new(Reason::InternalError, "handling this event panicked");
                    self.dead_letter(event, &verdict, cancel).await?;
                    total.dead_lettered += 1;
                }
            }
        }
        Ok(total)
    }

    /// Logs and writes the dead letter of `event`, cut to fit `message_max_bytes`; written as a
    /// pointer to the original if the broker still refuses it (see [`dead_letter`]).
    async fn dead_letter(
        &self,
        event: &Incoming,
        verdict: &Verdict,
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        tracing::warn!(
            request_id = ?event.request_id,
            reason = verdict.reason.as_str(),
            detail = ?verdict.detail,
            topic = %event.source.topic,
            partition = event.source.partition,
            offset = event.source.offset,
            "request event dead-lettered"
        );
        let topic = &self.topics.dead_letter;
        let full = dead_letter::build(event, verdict, topic, self.message_max_bytes);
        let sent = until_settled(&self.retry_policy, "produce a dead letter", cancel, || {
            full.send(&self.producer)
        })
        .await?;
        if let Err(error) = sent {
            tracing::warn!(
                %error,
                offset = event.source.offset,
                "the broker refused the dead letter; writing a pointer to the original instead"
            );
            let pointer = dead_letter::pointer(event, verdict, topic);
            until_done(
                &self.retry_policy,
                "produce a dead-letter pointer",
                cancel,
                || pointer.send(&self.producer),
            )
            .await?;
        }
        Ok(())
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
            until_done(&self.retry_policy, "read outcomes", cancel, || {
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
                existing = until_done(&self.retry_policy, "read outcomes", cancel, || {
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
                Err(Some(verdict)) => Work::DeadLetter(event, verdict),
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
}

/// The next lookup result: the user, or why the event must be dead-lettered.
fn next_lookup(
    lookups: &mut impl Iterator<Item = LookupResult>,
) -> Result<Result<Option<crate::domain::FoundUser>, Verdict>, Cancelled> {
    match lookups.next() {
        Some(Ok(user)) => Ok(Ok(user)),
        Some(Err(UserLookupError::Cancelled)) | None => Err(Cancelled { attempts: 0 }),
        Some(Err(error @ UserLookupError::MalformedAnswer(_))) => Ok(Err(Verdict::new(
            Reason::UserServiceMalformedAnswer,
            error.to_string(),
        ))),
        Some(Err(error)) => Ok(Err(Verdict::new(
            Reason::UserServiceRejected,
            error.to_string(),
        ))),
    }
}

/// The request in an event, or why it goes to the dead-letter topic.
fn parse(event: &Incoming) -> Result<OtpRequest, Verdict> {
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
