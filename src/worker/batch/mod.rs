//! One batch of request events, end to end, in seven steps, one file each, in this order:
//!
//! 1. [`classify`]: parse each event, key it by (request id, fingerprint) and read what is
//!    recorded for it: serve, recover, skip (already served), record `stale`, close `expired`,
//!    defer (another worker's request in its grace), or dead-letter;
//! 2. [`look_up`]: egov-user searched for every request to serve or recover, many in flight,
//!    each answer attached to its own request; a search without a verdict within its budget
//!    defers its event;
//! 3. [`plan`]: no I/O: decide, apply the country allow-list and the pumping guard (which
//!    counts what it allows), make codes; outcomes in event order;
//! 4. [`record`]: outcomes and code hashes in one statement (split only around a poison
//!    outcome), send limits enforced inside it; only what this call won is sent;
//! 5. [`recover`]: pending requests of an unfinished run: sent again only if their SMS never
//!    reached the broker; expired and abandoned ones closed;
//! 6. [`notify`]: SMS, email and dead-letter events all in flight at once, each until
//!    acknowledged;
//! 7. [`announce`]: one outcome event per event that reached an outcome, each until
//!    acknowledged, in flight together with the notify step's events (they share produce
//!    requests); once both are done, the SMS are marked sent.
//!
//! Only when [`Pipeline::process`] returns `Ok` may the batch's offsets count as finished
//! (except the events it deferred, which the dispatcher serves again later).
//!
//! Failures are handled by kind ([`crate::failure`]): transient and systemic ones retry in place
//! with capped backoff until they pass or the batch is cancelled (shutdown, revoked partition;
//! then nothing after that step happens and the events are redelivered to the next run, which the
//! idempotent store makes safe); a poison one dead-letters its event and the rest is served. An
//! SMS or email event cannot be poison (a few KB of validated fields): a refusal of one is
//! retried as systemic, loudly. A batch that panics (a bug) is served again event by event
//! ([`alone`]). Per-user order holds because the dispatcher never puts events of one key in two
//! batches at once and hands a batch a key's events in order (module `key_order`), and every
//! event behind a deferred one of its key is deferred with it ([`plan`]).
//!
//! An event is deferred, keeping its key and its unfinished offset, when another worker's (or
//! this process's other batch's) request is pending within its grace ([`classify`]) or when
//! egov-user gives no verdict on its user within the look-up budget ([`look_up`]): one key
//! that cannot be served now never holds back the rest of its batch.

mod alone;
mod announce;
mod classify;
mod look_up;
mod notify;
mod plan;
mod record;
mod recover;

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

pub(crate) use classify::{pending_grace, sms_send_window};
pub(crate) use look_up::lookup_budget;

use super::incoming::Incoming;
use super::key_order::Ticket;
use super::pipeline::Pipeline;
use crate::retry::Cancelled;

/// Milliseconds each step of one batch took.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StepTimings {
    pub classify_ms: u32,
    pub look_up_ms: u32,
    pub plan_ms: u32,
    pub record_ms: u32,
    pub recover_ms: u32,
    /// Emitting every SMS, email, dead-letter and outcome event until acknowledged.
    pub notify_ms: u32,
    /// Marking the SMS sent.
    pub mark_sent_ms: u32,
}

/// What a batch did, for logs, tests and the dispatcher (its deferred events).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct BatchSummary {
    pub sent: usize,
    pub refused: usize,
    pub stale: usize,
    pub dead_lettered: usize,
    pub already_served: usize,
    pub recovered: usize,
    /// Refused by a send limit or the pumping guard (recorded `rate_limited`, nothing sent).
    pub rate_limited: usize,
    /// Events not served yet, by ticket, and how long to wait before serving them again.
    pub deferred: Vec<(Ticket, Duration)>,
    pub timings: StepTimings,
}

impl BatchSummary {
    /// Adds the counts and deferred events (not the timings) of `other`.
    pub(crate) fn add(&mut self, other: Self) {
        self.sent += other.sent;
        self.refused += other.refused;
        self.stale += other.stale;
        self.dead_lettered += other.dead_lettered;
        self.already_served += other.already_served;
        self.recovered += other.recovered;
        self.rate_limited += other.rate_limited;
        self.deferred.extend(other.deferred);
    }
}

/// Laps of a clock, in whole milliseconds.
struct Stopwatch(Instant);

impl Stopwatch {
    /// Milliseconds since the previous lap (or the start).
    fn lap(&mut self) -> u32 {
        let now = Instant::now();
        let ms = u32::try_from(now.duration_since(self.0).as_millis()).unwrap_or(u32::MAX);
        self.0 = now;
        ms
    }
}

impl Pipeline {
    /// Serves one batch (see the module documentation); `Ok` means every event not deferred
    /// has its outcome recorded and every event it caused is acknowledged.
    ///
    /// # Errors
    /// [`Cancelled`] when `cancel` fires first (shutdown, partition revoked); the events are
    /// then served again by the next run.
    pub(crate) async fn process(
        &self,
        events: &[Incoming],
        cancel: &CancellationToken,
    ) -> Result<BatchSummary, Cancelled> {
        let mut clock = Stopwatch(Instant::now());
        let mut timings = StepTimings::default();
        let work = self.classify(events, cancel).await?;
        timings.classify_ms = clock.lap();
        let looked = self.look_up(work, cancel).await?;
        timings.look_up_ms = clock.lap();
        let mut plan = plan::plan(looked, self);
        timings.plan_ms = clock.lap();
        // Every SMS this batch produces is handed over within its window from here, before
        // the outcomes that make other runs wait for it are recorded.
        let send_by = Instant::now() + self.sms_send_window;
        self.record_outcomes(&mut plan, cancel).await?;
        timings.record_ms = clock.lap();
        let (acknowledged_earlier, recovered) = self.recover(&mut plan, cancel).await?;
        timings.recover_ms = clock.lap();
        // SMS, email, dead letters and outcome events all at once: they share the producer's
        // produce requests (one more round per batch would cost more CPU than the events). The
        // outcome events go only once every SMS went to the producer (`texts_ready`; this
        // relies on `join` polling the notify step first).
        let texts_ready = tokio::sync::Semaphore::new(0);
        let (notified, announced) = futures::future::join(
            self.notify(&plan, send_by, &texts_ready, cancel),
            self.announce(&plan, &acknowledged_earlier, &texts_ready, cancel),
        )
        .await;
        notified?;
        announced?;
        timings.notify_ms = clock.lap();
        let mut sent: Vec<_> = plan.deliveries.iter().map(|d| d.request.key()).collect();
        let sent_now = sent.len();
        sent.extend(acknowledged_earlier);
        self.mark_sent(&sent, cancel).await?;
        timings.mark_sent_ms = clock.lap();
        Ok(BatchSummary {
            sent: sent_now,
            refused: plan.tally.refused,
            stale: plan.tally.stale,
            dead_lettered: plan.dead_letters.len(),
            already_served: plan.tally.already_served,
            recovered,
            rate_limited: plan.tally.rate_limited,
            deferred: plan.deferred,
            timings,
        })
    }
}
