//! The dispatcher: from fetched events to batches in progress, without reordering any key and
//! without storing an offset past unfinished work.
//!
//! The consumer loop admits every fetched event here. An admitted event holds its lock key
//! (its Kafka message key, else its request id: [`key_order`]) and is served
//! when no earlier event holding it is unfinished, or in the same batch right after the earlier
//! ones. Up to [`BATCHES_IN_FLIGHT`] batches
//! run at once, each made of whatever is ready (up to the batch size), from any partition, so
//! throughput does not depend on the partition count; an idle worker serves a single event at
//! once (no batching delay), a busy one builds larger batches.
//!
//! When a batch is done, each event's offset is finished in [`Offsets`] and the end of its
//! partition's contiguous completed prefix, when it moved, is stored (committed by librdkafka's
//! auto-commit, on revoke, and at shutdown). An event the batch deferred (another worker's
//! pending request still in its grace, a user search without an answer within its budget, or
//! an event behind such a one of its key) keeps its key and its unfinished offset and is served
//! again after the wait: only its own key waits.
//!
//! Memory is bounded without blocking the loop ([`super::in_flight`]): a partition holding more
//! than its share of the in-flight bounds is paused until it is back under half.
//!
//! Events of partitions this worker no longer owns (revoked while queued, or fetched under an
//! earlier assignment of a partition that came back) are dropped unserved: the next owner reads
//! them again from the committed offset. A batch in progress holding an event of a revoked
//! partition is cancelled at its next step (so its retries cannot send an SMS after the new
//! owner took over; the new owner also waits out the pending grace). What it already handed to
//! the producer may still be delivered, so all its events keep their keys for the pending
//! grace: then those of partitions still owned are served again (recovery finds what was
//! delivered), the others are dropped; a copy fetched again meanwhile (the partition came
//! back) waits behind them. At shutdown, batches get the shutdown grace, then are abandoned:
//! their events are redelivered to the next run. When the consumer itself stops on a fatal
//! error, its batches are cancelled at once ([`Dispatcher::stop`]): its partitions are someone
//! else's now.
//!
//! [`key_order`]: super::key_order

use std::hash::{BuildHasher, RandomState};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use rdkafka::consumer::Consumer;
use rdkafka::TopicPartitionList;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::batch::BatchSummary;
use super::consumer::{self, Assignment, RequestConsumer};
use super::in_flight::{Bounds, InFlight, Loads};
use super::incoming::Incoming;
use super::key_order::{KeyOrder, LockKey};
use super::offsets::{Offsets, PartitionKey};
use super::pipeline::Pipeline;
use crate::retry::Cancelled;

/// Batches in progress at once per worker.
pub const BATCHES_IN_FLIGHT: usize = 6;

/// Ready events that start another batch at once while one is in progress (a smaller batch
/// waits up to [`LINGER`]): at a moderate rate a few fuller batches cost the database far less
/// than many single-event ones.
const FILL: usize = 64;

/// Longest a ready event waits for another batch to start while one is in progress (the
/// consumer loop's tick, `TICK` in the worker module, re-checks at least this often).
pub(super) const LINGER: Duration = Duration::from_millis(5);

/// How often a batch in progress checks that its partitions are still owned.
const REVOCATION_CHECK: Duration = Duration::from_millis(100);

/// A batch handed back by its task.
pub(super) struct Finished {
    events: Vec<Incoming>,
    result: Result<BatchSummary, Cancelled>,
}

/// The dispatcher's state; owned by the consumer loop (see the module documentation).
pub(super) struct Dispatcher {
    pipeline: Arc<Pipeline>,
    consumer: Arc<RequestConsumer>,
    assignment: Assignment,
    order: KeyOrder<Incoming>,
    offsets: Offsets,
    loads: Loads,
    totals: Arc<InFlight>,
    bounds: Bounds,
    batch_size: usize,
    /// Partitions paused because they held more than their share.
    paused: Vec<PartitionKey>,
    /// Batches in progress; polled by the consumer loop.
    pub(super) batches: JoinSet<Finished>,
    /// Deferred events whose wait is over; polled by the consumer loop.
    pub(super) deferred: mpsc::UnboundedReceiver<Incoming>,
    defer: mpsc::UnboundedSender<Incoming>,
    /// Cancels this consumer's batches: at the end of the shutdown grace (a child of the
    /// worker's abandon token) or when the consumer stops on a fatal error.
    abandon: CancellationToken,
    stopping: bool,
    /// When the last batch started.
    last_start: Instant,
    /// Keys the lock-key hashes (random per process).
    hasher: RandomState,
}

impl Dispatcher {
    /// A dispatcher for `consumer`'s events. `abandon` interrupts the batches in progress
    /// (shutdown grace over); `totals` is kept up to date with what it holds (and cleared of
    /// it when the dispatcher is dropped).
    pub(super) fn new(
        pipeline: Arc<Pipeline>,
        consumer: Arc<RequestConsumer>,
        assignment: Assignment,
        totals: Arc<InFlight>,
        bounds: Bounds,
        batch_size: usize,
        abandon: CancellationToken,
    ) -> Self {
        let (defer, deferred) = mpsc::unbounded_channel();
        Self {
            pipeline,
            consumer,
            assignment,
            order: KeyOrder::default(),
            offsets: Offsets::default(),
            loads: Loads::default(),
            totals,
            bounds,
            batch_size: batch_size.max(1),
            paused: Vec::new(),
            batches: JoinSet::new(),
            deferred,
            defer,
            abandon: abandon.child_token(),
            stopping: false,
            last_start: Instant::now(),
            hasher: RandomState::new(),
        }
    }

    /// Admits a fetched event (dropped when its partition is not owned); pauses its partition
    /// when the partition holds more than its share.
    pub(super) fn admit(&mut self, mut event: Incoming) {
        let source = &event.source;
        let Some(assignment) = self.assignment.current(&source.topic, source.partition) else {
            return; // fetched just before its partition was revoked
        };
        event.assignment = assignment;
        let partition = partition_key(&event);
        let load = self.loads.add(&self.totals, &partition, event.size_bytes());
        self.offsets.received(&partition, event.source.offset);
        if load.over(self.bounds.share(self.assignment.count()))
            && !self.paused.contains(&partition)
        {
            self.pause(partition);
        }
        event.lock = lock_key(&self.hasher, &event);
        self.order.admit(event.lock, event);
    }

    /// Starts batches of ready events while fewer than [`BATCHES_IN_FLIGHT`] are in progress:
    /// at once when none is, or when [`FILL`] events are ready, else once the last batch
    /// started [`LINGER`] ago.
    pub(super) fn start_batches(&mut self) {
        while !self.stopping
            && self.batches.len() < BATCHES_IN_FLIGHT
            && self.order.ready_count() > 0
            && (self.batches.is_empty()
                || self.order.ready_count() >= FILL.min(self.batch_size)
                || self.last_start.elapsed() >= LINGER)
        {
            self.last_start = Instant::now();
            let mut batch = Vec::new();
            for (ticket, mut event) in self.order.take_ready(self.batch_size) {
                event.ticket = ticket;
                if self.owned(&event) {
                    batch.push(event);
                } else {
                    self.drop_unserved(&event);
                }
            }
            if !batch.is_empty() {
                self.spawn(batch);
            }
        }
    }

    /// Takes a finished batch back: finishes its events (storing offsets as far as the
    /// completed prefix reaches), schedules its deferred ones, serves again what a revocation
    /// interrupted. False when the batch's task itself failed (a bug past every panic guard):
    /// its events are lost to this consumer, which must then be recreated to fetch them again.
    pub(super) fn take_back(&mut self, joined: Result<Finished, JoinError>) -> bool {
        let Finished { events, result } = match joined {
            Ok(finished) => finished,
            Err(error) => {
                tracing::error!(%error, "a batch task failed; recreating the consumer");
                return false;
            }
        };
        match result {
            Ok(summary) => {
                tracing::debug!(events = events.len(), ?summary, "batch done");
                for event in events {
                    match summary.deferred.iter().find(|(t, _)| *t == event.ticket) {
                        Some((_, wait)) => {
                            tracing::info!(
                                request_id = ?event.request_id,
                                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                                "event deferred (another worker's request in its grace, egov-user not answering, or behind such an event of its key); only its key waits"
                            );
                            self.defer_for(event, *wait);
                        }
                        None => self.finish(&event),
                    }
                }
            }
            Err(_) if self.abandon.is_cancelled() => {
                tracing::warn!(
                    events = events.len(),
                    "batch abandoned (shutdown, or the consumer stopped); its events will be redelivered"
                );
                for event in &events {
                    self.drop_unserved(event);
                }
            }
            Err(_) => {
                tracing::warn!(
                    events = events.len(),
                    "batch cancelled (a partition of it was revoked, or an SMS was not acknowledged within its send window); the new owner serves the revoked events, the others are served again after the pending grace"
                );
                // What the interrupted batch handed to the producer may still be delivered:
                // every event keeps its key as long as another worker's would (`ready_again`
                // then drops those of partitions no longer owned).
                let grace = self.pipeline.pending_grace;
                for event in events {
                    self.defer_for(event, grace);
                }
            }
        }
        true
    }

    /// A deferred event whose wait is over (or one whose batch was interrupted): ready again,
    /// if its partition is still owned under the same assignment.
    pub(super) fn ready_again(&mut self, event: Incoming) {
        if self.owned(&event) {
            self.order.ready_again(event.ticket, event);
        } else {
            self.drop_unserved(&event);
        }
    }

    /// Resumes paused partitions that are back under half their share (forgetting those no
    /// longer owned under the same assignment), and forgets the offsets of such partitions.
    pub(super) fn resume_drained(&mut self) {
        let share = self.bounds.share(self.assignment.count());
        let assignment = self.assignment.clone();
        let owns = |(topic, partition, id): &PartitionKey| assignment.owns(topic, *partition, *id);
        self.offsets.retain(owns);
        let (drained, still): (Vec<_>, Vec<_>) = std::mem::take(&mut self.paused)
            .into_iter()
            .filter(owns)
            .partition(|partition| self.loads.of(partition).drained(share));
        self.paused = still;
        for (topic, partition, _) in drained {
            match self.consumer.resume(&partitions(&topic, partition)) {
                Ok(()) => tracing::debug!(partition, "partition drained; resumed"),
                Err(error) => tracing::warn!(%error, partition, "cannot resume a partition"),
            }
        }
    }

    /// The consumer stopped on a fatal error: its partitions belong to others now, so the
    /// batches in progress are cancelled at once (none may send after the new owners took over;
    /// [`Self::finish_all`] then collects them).
    pub(super) fn stop(&mut self) {
        self.stopping = true;
        self.abandon.cancel();
    }

    /// Stops starting batches and waits for those in progress (they get the shutdown grace,
    /// then are abandoned), storing the offsets of what they finished.
    pub(super) async fn finish_all(&mut self) {
        self.stopping = true;
        while let Some(joined) = self.batches.join_next().await {
            self.take_back(joined);
        }
    }

    fn spawn(&mut self, batch: Vec<Incoming>) {
        let pipeline = self.pipeline.clone();
        let assignment = self.assignment.clone();
        let cancel = self.abandon.child_token();
        self.batches.spawn(async move {
            let _watch = watch_revocation(&batch, &assignment, cancel.clone());
            // Last line of defence: a panic while handling the batch (a bug) is caught; its
            // events are then served one by one and the one that panics alone is dead-lettered.
            let result = match AssertUnwindSafe(pipeline.process(&batch, &cancel))
                .catch_unwind()
                .await
            {
                Ok(result) => result,
                Err(_) => {
                    tracing::error!(
                        events = batch.len(),
                        "a batch panicked; serving its events one by one"
                    );
                    pipeline.process_each_alone(&batch, &cancel).await
                }
            };
            Finished {
                events: batch,
                result,
            }
        });
    }

    /// `event` is served: its offset finished (the prefix stored if it moved), its keys freed.
    fn finish(&mut self, event: &Incoming) {
        let partition = partition_key(event);
        if let Some(offset) = self.offsets.finished(&partition, event.source.offset) {
            consumer::store_offset(&self.consumer, &partition.0, partition.1, offset);
        }
        self.order.finish(event.ticket);
        self.loads
            .remove(&self.totals, &partition, event.size_bytes());
    }

    /// `event` leaves unserved (partition revoked, or shutdown): its keys are freed; its offset
    /// stays unfinished, so it is read again by whoever owns the partition next.
    fn drop_unserved(&mut self, event: &Incoming) {
        self.order.finish(event.ticket);
        self.loads
            .remove(&self.totals, &partition_key(event), event.size_bytes());
    }

    /// Hands `event` back to the loop after `wait`, keeping its key meanwhile.
    fn defer_for(&mut self, event: Incoming, wait: Duration) {
        let defer = self.defer.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            // The loop has stopped when this fails: the event is redelivered to the next run.
            let _ = defer.send(event);
        });
    }

    fn owned(&self, event: &Incoming) -> bool {
        self.assignment.owns(
            &event.source.topic,
            event.source.partition,
            event.assignment,
        )
    }

    fn pause(&mut self, partition: PartitionKey) {
        let (topic, number, _) = &partition;
        match self.consumer.pause(&partitions(topic, *number)) {
            Ok(()) => {
                tracing::debug!(
                    partition = number,
                    "partition over its share of the in-flight bounds; paused"
                );
                self.totals.paused();
                self.paused.push(partition);
            }
            Err(error) => tracing::warn!(%error, partition = number, "cannot pause a partition"),
        }
    }
}

/// The key `event` is ordered by: its Kafka message key (with its topic), else its request id,
/// hashed with `hasher` (see [`LockKey`]). Copies of one request share the message key
/// (`<root tenant>:<mobile>`); the request id is not locked alongside it, so a caller reusing
/// one `x-request-id` for many numbers cannot chain their keys into one queue.
fn lock_key(hasher: &RandomState, event: &Incoming) -> LockKey {
    match &event.key {
        Some(key) => hasher.hash_one((0_u8, &event.source.topic, key)),
        None => hasher.hash_one((1_u8, &event.request_id)),
    }
}

fn partition_key(event: &Incoming) -> PartitionKey {
    (
        event.source.topic.clone(),
        event.source.partition,
        event.assignment,
    )
}

/// Cancels `cancel` as soon as a partition of `batch` is no longer owned under the same
/// assignment; the watch ends when the returned guard is dropped (the batch is done, or its
/// task unwound).
fn watch_revocation(
    batch: &[Incoming],
    assignment: &Assignment,
    cancel: CancellationToken,
) -> AbortOnDropHandle<()> {
    let mut owned: Vec<PartitionKey> = batch.iter().map(partition_key).collect();
    owned.sort();
    owned.dedup();
    let assignment = assignment.clone();
    AbortOnDropHandle::new(tokio::spawn(async move {
        loop {
            tokio::time::sleep(REVOCATION_CHECK).await;
            if owned
                .iter()
                .any(|(topic, partition, id)| !assignment.owns(topic, *partition, *id))
            {
                cancel.cancel();
                return;
            }
        }
    }))
}

impl Drop for Dispatcher {
    /// What the dispatcher still holds leaves the worker's totals with it (a consumer recreated
    /// after a fatal error starts from zero).
    fn drop(&mut self) {
        self.loads.clear(&self.totals);
    }
}

/// One partition of `topic`, as librdkafka's pause and resume take it.
fn partitions(topic: &str, partition: i32) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, partition);
    list
}
