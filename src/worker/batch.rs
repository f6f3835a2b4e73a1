//! One batch of request events, end to end: classify (parse, key, skip what is already served)
//! → look users up → decide → record outcomes and codes (one statement, split only around a
//! poison event) → recover pending requests → emit SMS, email and dead-letter events (all in
//! flight at once) → mark SMS acknowledged. Only when this returns `Ok` may the batch's offsets be
//! stored.
//!
//! Failures are handled by kind ([`crate::failure`]): transient and systemic ones retry in place
//! with capped backoff until they pass or the batch is cancelled (shutdown, revoked partition;
//! then nothing after that step happens and the events are redelivered to the next run, which the
//! idempotent store makes safe); a poison one dead-letters its event and the rest is served. An
//! SMS or email event cannot be poison (a few KB of validated fields): a refusal of one is
//! retried as systemic, loudly. Per-user order holds because one key's events are in one
//! partition, batches of a partition run one after another, and within a batch outcomes are
//! recorded in event order (so the newest code of an identity is the one from its latest request).

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::classify::{Request, Work};
use super::dead_letter::{self, Reason, Verdict, SQLSTATE_HEADER};
use super::incoming::Incoming;
use super::lookup::LookupResult;
use super::notify::{self, Outgoing};
use super::pumping::PumpingCheck;
use super::record;
use super::retrying::{until_done, until_settled};
use super::sent_scan::SentScan;
use crate::domain::abuse::country::{CountryAllowList, NOT_ALLOWED_CODE};
use crate::domain::abuse::pumping::PumpingVerdict;
use crate::domain::abuse::send_limits::SendLimits;
use crate::domain::abuse::test_numbers::TestNumbers;
use crate::domain::code::{self, CodeHasher, OtpCode};
use crate::domain::decide::{decide, Decision, Refusal, SendPlan};
use crate::domain::templates::MessageTemplates;
use crate::domain::OtpRequest;
use crate::failure::{Classify, FailureKind};
use crate::kafka::{EventProducer, ProduceError};
use crate::retry::{Cancelled, RetryPolicy};
use crate::store::{NewCode, NewOutcome, OtpStore, Outcome, RequestKey};
use crate::users::{UserClient, UserLookupError};

/// Longest one attempt of a scan of the SMS topic may take (the next attempt resumes).
const SENT_SCAN_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// Send limits per identity, enforced by the store when outcomes are recorded.
    pub send_limits: SendLimits,
    /// The SMS-pumping guard.
    pub pumping: PumpingCheck,
    /// Numbers with a fixed code.
    pub test_numbers: TestNumbers,
    /// Country codes a request may name (others are dead-lettered).
    pub allowed_country_codes: CountryAllowList,
    /// Whether login and passwordreset codes also go by email.
    pub email_enabled: bool,
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
    /// Refused by a send limit or the pumping guard (recorded `rate_limited`, nothing sent).
    pub rate_limited: usize,
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
        self.rate_limited += other.rate_limited;
    }
}

/// Milliseconds since `since`, for [`BatchSummary::step_ms`].
fn ms_since(since: &mut std::time::Instant) -> u32 {
    let now = std::time::Instant::now();
    let ms = u32::try_from(now.duration_since(*since).as_millis()).unwrap_or(u32::MAX);
    *since = now;
    ms
}

/// A code to send for one request.
struct Delivery<'a> {
    request: Request<'a>,
    plan: SendPlan,
    code_id: Uuid,
    code: OtpCode,
}

impl Pipeline {
    /// Serves one batch (see the module documentation); `Ok` means every event has its outcome
    /// recorded and every event it caused is acknowledged, so the offsets may be stored.
    ///
    /// # Errors
    /// [`Cancelled`] when `cancel` fires first (shutdown, partition revoked); the events are
    /// then served again by the next run.
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
                Work::Serve(request) | Work::Recover(request, _) => Some(&request.request),
                _ => None,
            })
            .collect();
        let mut lookups = self.look_up(&needs_user, cancel).await.into_iter();
        summary.step_ms[1] = ms_since(&mut clock);

        // `outcomes[i]` records the request of `outcome_events[i]`.
        let mut outcomes = Vec::new();
        let mut outcome_events: Vec<&Incoming> = Vec::new();
        let mut deliveries: Vec<Delivery<'_>> = Vec::new();
        let mut recoveries: Vec<(Delivery<'_>, Duration)> = Vec::new();
        let mut dead_letters: Vec<(&Incoming, Verdict)> = Vec::new();
        let mut expired: Vec<RequestKey> = Vec::new();
        let mut abandoned: Vec<RequestKey> = Vec::new();
        for item in work {
            match item {
                Work::AlreadyServed => summary.already_served += 1,
                Work::DeadLetter(event, verdict) => dead_letters.push((event, verdict)),
                Work::Expire(request) => {
                    tracing::warn!(
                        request_id = ?request.event.request_id,
                        "pending request past its code validity: closed as expired, not resent"
                    );
                    expired.push(request.key());
                }
                Work::Stale(request) => {
                    outcomes.push(outcome(&request, Outcome::Stale, None));
                    outcome_events.push(request.event);
                    summary.stale += 1;
                }
                Work::Serve(request) => {
                    let user = match next_lookup(&mut lookups)? {
                        Ok(user) => user,
                        Err(verdict) => {
                            dead_letters.push((request.event, verdict));
                            continue;
                        }
                    };
                    match decide(&request.request, user.as_ref()) {
                        Decision::Refuse(refusal) => {
                            outcomes.push(outcome(&request, refused(refusal), None));
                            outcome_events.push(request.event);
                            summary.refused += 1;
                        }
                        Decision::Send(mut plan) => {
                            if !self.email_enabled {
                                plan.email_to = None;
                            }
                            // A stored mobile (password reset) can name a country too.
                            if !self.allowed_country_codes.allows_number(&plan.sms_to) {
                                dead_letters.push((
                                    request.event,
                                    Verdict::new(Reason::CountryCodeNotAllowed, NOT_ALLOWED_CODE),
                                ));
                                continue;
                            }
                            if self.pumping.judge(&plan.sms_to) == PumpingVerdict::Refuse {
                                let mut refused = outcome(&request, Outcome::RateLimited, None);
                                refused.detail = Some(PUMPING_DETAIL);
                                outcomes.push(refused);
                                outcome_events.push(request.event);
                                summary.rate_limited += 1;
                                continue;
                            }
                            let (code, test_number) = self.code_for(&plan.sms_to);
                            let new_code = self.new_code(&plan, &code);
                            let code_id = new_code.id;
                            let mut pending =
                                outcome(&request, Outcome::SmsPending, Some(new_code));
                            pending.test_number = test_number;
                            outcomes.push(pending);
                            outcome_events.push(request.event);
                            deliveries.push(Delivery {
                                request,
                                plan,
                                code_id,
                                code,
                            });
                        }
                    }
                }
                Work::Recover(request, pending) => {
                    let user = match next_lookup(&mut lookups)? {
                        Ok(user) => user,
                        Err(verdict) => {
                            dead_letters.push((request.event, verdict));
                            continue;
                        }
                    };
                    // Recovery sends only to the identity stored with the pending code: a plan
                    // that now goes elsewhere (or a refusal) closes the request unsent.
                    match decide(&request.request, user.as_ref()) {
                        Decision::Send(plan)
                            if pending.code_identity.as_deref() == Some(plan.sms_to.as_str()) =>
                        {
                            let (code, _) = self.code_for(&plan.sms_to);
                            let delivery = Delivery {
                                request,
                                plan,
                                code_id: pending.code_id,
                                code,
                            };
                            recoveries.push((delivery, pending.age));
                        }
                        _ => {
                            tracing::warn!(
                                request_id = ?request.event.request_id,
                                "pending request would now go elsewhere or is refused: closed as abandoned, not sent"
                            );
                            abandoned.push(request.key());
                        }
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
            &self.send_limits,
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
        let won = recorded.won;
        summary.step_ms[2] = ms_since(&mut clock);
        let refused: HashSet<RequestKey> = recorded
            .refused
            .iter()
            .map(|(index, _)| outcomes[*index].key())
            .collect();
        for (key, refusal) in &recorded.rate_limited {
            tracing::info!(
                request_id = ?key.0,
                limit = refusal.as_str(),
                retry_after_s = refusal.retry_after().as_secs(),
                "OTP not sent: the identity is over a send limit"
            );
        }
        let rate_limited: HashSet<&RequestKey> =
            recorded.rate_limited.iter().map(|(key, _)| key).collect();
        summary.rate_limited += rate_limited.len();
        deliveries.retain(|d| {
            let key = d.request.key();
            let recorded = won.contains(&key);
            if !recorded && !refused.contains(&key) {
                summary.already_served += 1;
            }
            let sent = recorded && !rate_limited.contains(&key);
            if !sent {
                self.pumping.release(&d.plan.sms_to);
            }
            sent
        });

        // Crash recovery: send again only what never reached the broker.
        let mut acknowledged_earlier = Vec::new();
        if !recoveries.is_empty() {
            let oldest = recoveries
                .iter()
                .map(|(_, age)| *age)
                .max()
                .unwrap_or_default();
            let since =
                epoch_ms(SystemTime::now()) - i64::try_from(oldest.as_millis()).unwrap_or(i64::MAX);
            let code_ids = recoveries.iter().map(|(d, _)| d.code_id).collect();
            // Behind a lock only so each attempt can resume the same scan.
            let scan = tokio::sync::Mutex::new(SentScan::new(
                &self.bootstrap_servers,
                &self.topics.sms,
                since,
                code_ids,
            ));
            let already_sent =
                until_done(&self.retry_policy, "scan the SMS topic", cancel, || async {
                    scan.lock().await.run(SENT_SCAN_TIMEOUT).await
                })
                .await?;
            for (delivery, _) in recoveries {
                summary.recovered += 1;
                if already_sent.contains(&delivery.code_id) {
                    acknowledged_earlier.push(delivery.request.key());
                    continue;
                }
                let hash = self.hasher.hash(&delivery.code_id, delivery.code.as_str());
                until_done(&self.retry_policy, "replace a pending code", cancel, || {
                    self.store.replace_code(
                        delivery.code_id,
                        self.hasher.key_id(),
                        &hash,
                        self.code_ttl,
                    )
                })
                .await?;
                deliveries.push(delivery);
            }
        }
        for (keys, closed) in [
            (&expired, Outcome::Expired),
            (&abandoned, Outcome::Abandoned),
        ] {
            if !keys.is_empty() {
                until_done(&self.retry_policy, "close pending requests", cancel, || {
                    self.store.close_pending(keys, closed)
                })
                .await?;
            }
        }

        // Emit everything at once; each event retries on its own until acknowledged. The SMS
        // expiry counts from now, after the database work and any recovery, not from the start
        // of the batch (egov-notification-sms drops an SMS whose expiryTime has passed).
        let sms_expires_at = SystemTime::now() + self.sms_expiry;
        let batch_started = epoch_ms(SystemTime::now());
        // Each event with the index of its delivery.
        let mut outgoing: Vec<(Outgoing, usize)> = Vec::new();
        for (index, delivery) in deliveries.iter().enumerate() {
            let events = notify::for_delivery(
                &delivery.request.request,
                delivery.request.event.correlation_id(),
                &delivery.code_id,
                &delivery.plan,
                &delivery.code,
                &self.templates,
                &self.topics,
                sms_expires_at,
            );
            outgoing.extend(events.into_iter().map(|event| (event, index)));
        }
        let sends = outgoing.iter().map(|(event, index)| {
            self.deliver(event, deliveries[*index].code_id, batch_started, cancel)
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
        let mut sent: Vec<RequestKey> = deliveries.iter().map(|d| d.request.key()).collect();
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

    /// Writes one SMS or email event until the broker acknowledges it. After a send that timed
    /// out (the broker may have stored it all the same), an SMS is first looked for on the SMS
    /// topic, as crash recovery does ([`SentScan`]): found, it is not sent again.
    ///
    /// A refusal the broker would repeat (too large, invalid) cannot be this request's doing:
    /// every field of an SMS event is bounded by edge validation or by egov-user's own columns
    /// (under 2 KB in all), so it is a topic misconfigured for every SMS (e.g. a tiny
    /// `max.message.bytes`) and is retried, logged at error level, never dead-lettered. An email
    /// event refused that way is dropped with an error log (the SMS went).
    async fn deliver(
        &self,
        event: &Outgoing<'_>,
        code_id: Uuid,
        since_ms: i64,
        cancel: &CancellationToken,
    ) -> Result<(), Cancelled> {
        let is_sms = event.topic == self.topics.sms;
        // The first attempt, on its own: the common case allocates nothing for the retries.
        let maybe_written = match event.send(&self.producer).await {
            Ok(()) => return Ok(()),
            Err(error) if !is_sms && error.kind() == FailureKind::Poison => {
                tracing::error!(%error, "the broker refused an email event; the SMS went");
                return Ok(());
            }
            Err(error) => {
                tracing::warn!(%error, "producing an event failed; retrying");
                is_sms && error.maybe_written()
            }
        };
        let maybe_written = std::sync::atomic::AtomicBool::new(maybe_written);
        let new_scan = || {
            SentScan::new(
                &self.bootstrap_servers,
                &self.topics.sms,
                since_ms,
                HashSet::from([code_id]),
            )
        };
        // Behind a lock only so each attempt can resume the same scan; a scan that reached the
        // end without finding the SMS is replaced, so the next check reads up to the new end.
        let scan = tokio::sync::Mutex::new(new_scan());
        until_done(&self.retry_policy, "produce an event", cancel, || async {
            if maybe_written.load(std::sync::atomic::Ordering::Relaxed) {
                let mut scan = scan.lock().await;
                if scan.run(SENT_SCAN_TIMEOUT).await?.contains(&code_id) {
                    tracing::info!(%code_id, "an SMS whose send timed out was written after all");
                    return Ok(());
                }
                *scan = new_scan();
            }
            let sent = event.send(&self.producer).await;
            if is_sms && sent.as_ref().is_err_and(ProduceError::maybe_written) {
                maybe_written.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            sent
        })
        .await
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

    /// The code for an SMS to `sms_to`: a test number's fixed code (and `true`), else a fresh
    /// one from the CSPRNG.
    fn code_for(&self, sms_to: &str) -> (OtpCode, bool) {
        match self
            .test_numbers
            .code_for(sms_to)
            .and_then(|digits| OtpCode::from_digits(digits).ok())
        {
            Some(fixed) => (fixed, true),
            None => (code::generate(self.code_length), false),
        }
    }

    fn new_code(&self, plan: &SendPlan, code: &OtpCode) -> NewCode {
        // Time-ordered (v7): new codes land at the right edge of the primary-key index instead
        // of on a random page, which keeps inserts cheap as the table grows.
        let id = Uuid::now_v7();
        NewCode {
            id,
            identity: plan.sms_to.clone(),
            identities: plan.identities.clone(),
            key_id: self.hasher.key_id().to_owned(),
            hash: self.hasher.hash(&id, code.as_str()),
            valid_for: self.code_ttl,
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

fn outcome(request: &Request<'_>, outcome: Outcome, code: Option<NewCode>) -> NewOutcome {
    NewOutcome {
        request_id: request.event.request_id.clone(),
        fingerprint: request.fingerprint.clone(),
        tenant_id: request.request.root_tenant().to_owned(),
        otp_type: request.request.otp_type.as_str(),
        outcome,
        source: request.event.source.clone(),
        code,
        detail: None,
        test_number: false,
    }
}

/// The detail of an outcome the pumping guard refused (enforce mode).
const PUMPING_DETAIL: &str = "pumping";

fn refused(refusal: Refusal) -> Outcome {
    match refusal {
        Refusal::UserExists => Outcome::UserExists,
        Refusal::UnknownUser => Outcome::UnknownUser,
        Refusal::NoMobileNumber => Outcome::NoMobileNumber,
    }
}

pub(super) fn epoch_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
