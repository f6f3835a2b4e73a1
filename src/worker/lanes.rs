//! Lanes: concurrent batch pipelines inside one worker, without reordering any user's requests.
//!
//! The consumer loop routes each event to lane `partition % lanes`. A lane takes whatever has
//! queued up for it (up to the batch size) as one batch, processes it, stores its offsets, and
//! takes the next. One partition is always served by the same lane, one batch at a time, so a
//! key's events (one partition) stay in order and a partition's offsets are stored in order;
//! different partitions' batches overlap, so one lane's egov-user lookups run while another
//! lane waits for PostgreSQL or the broker. A busy lane builds larger batches; an idle one
//! serves a single event at once (no batching delay).
//!
//! Memory is bounded without ever blocking the consumer loop ([`super::in_flight`]): a lane that
//! holds more than its share of the in-flight bounds has its partitions paused until it has
//! worked its backlog down, while the other lanes' partitions keep flowing.
//!
//! Events of partitions this worker no longer owns (revoked in a rebalance while queued, or
//! fetched under an earlier ownership of a partition that came back) are dropped before
//! processing: the owner reads them again from the committed offset. A batch in progress whose
//! partition is revoked is cancelled at its next step, so its retries cannot send an SMS after
//! the new owner took over (the new owner also waits out a grace period for such requests).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use rdkafka::consumer::Consumer;
use rdkafka::TopicPartitionList;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::batch::Pipeline;
use super::consumer::{self, Assignment, RequestConsumer};
use super::in_flight::{InFlight, LaneLoad, Share};
use super::incoming::Incoming;

/// A partition paused in one ownership epoch.
type PausedPartition = (String, i32, u64);

pub(super) struct Lanes {
    senders: Vec<mpsc::UnboundedSender<Incoming>>,
    loads: Vec<Arc<LaneLoad>>,
    /// Per lane, the partitions paused because the lane was over its share.
    paused: Vec<Vec<PausedPartition>>,
    share: Share,
    totals: Arc<InFlight>,
    consumer: Arc<RequestConsumer>,
    assignment: Assignment,
    tasks: JoinSet<()>,
}

/// What the lanes are bounded by.
pub(super) struct Bounds {
    pub lanes: usize,
    pub batch_size: usize,
    pub max_in_flight_events: usize,
    pub max_in_flight_bytes: usize,
}

impl Lanes {
    /// Starts the lanes. `abandon` interrupts a batch in progress (shutdown grace over);
    /// `totals` is kept up to date with what they hold.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        bounds: &Bounds,
        pipeline: Arc<Pipeline>,
        consumer: Arc<RequestConsumer>,
        assignment: Assignment,
        totals: Arc<InFlight>,
        shutdown: CancellationToken,
        abandon: CancellationToken,
    ) -> Self {
        let count = bounds.lanes.max(1);
        let mut tasks = JoinSet::new();
        let mut senders = Vec::with_capacity(count);
        let mut loads = Vec::with_capacity(count);
        for lane in 0..count {
            let (sender, receiver) = mpsc::unbounded_channel();
            let load = Arc::new(LaneLoad::default());
            tasks.spawn(run_lane(
                Lane {
                    index: lane,
                    receiver,
                    load: load.clone(),
                    totals: totals.clone(),
                },
                bounds.batch_size,
                pipeline.clone(),
                consumer.clone(),
                assignment.clone(),
                shutdown.clone(),
                abandon.clone(),
            ));
            senders.push(sender);
            loads.push(load);
        }
        Self {
            senders,
            loads,
            paused: vec![Vec::new(); count],
            share: Share::of(
                bounds.max_in_flight_events,
                bounds.max_in_flight_bytes,
                count,
            ),
            totals,
            consumer,
            assignment,
            tasks,
        }
    }

    /// Queues `event` on its partition's lane without waiting; pauses the partition when the
    /// lane is over its share. False once the lanes have stopped.
    pub(super) fn route(&mut self, event: Incoming) -> bool {
        let lane = usize::try_from(event.source.partition).unwrap_or(0) % self.senders.len();
        self.loads[lane].add(&self.totals, event.size_bytes());
        let over = self.loads[lane].over(self.share);
        // Only needed (and only built) when the lane is over its share.
        let partition = over.then(|| {
            (
                event.source.topic.clone(),
                event.source.partition,
                event.epoch,
            )
        });
        if self.senders[lane].send(event).is_err() {
            return false;
        }
        if let Some(partition) = partition.filter(|p| !self.paused[lane].contains(p)) {
            let (topic, number, _) = &partition;
            match self.consumer.pause(&partitions(topic, *number)) {
                Ok(()) => {
                    tracing::debug!(
                        lane,
                        partition = number,
                        "lane over its share; partition paused"
                    );
                    self.totals.paused();
                    self.paused[lane].push(partition);
                }
                Err(error) => {
                    tracing::warn!(%error, partition = number, "cannot pause a partition")
                }
            }
        }
        true
    }

    /// Resumes the paused partitions of every lane that is back under half its share
    /// (partitions no longer owned in the same epoch are forgotten instead).
    pub(super) fn resume_drained(&mut self) {
        for (lane, paused) in self.paused.iter_mut().enumerate() {
            if paused.is_empty() || !self.loads[lane].drained(self.share) {
                continue;
            }
            for (topic, partition, epoch) in paused.drain(..) {
                if !self.assignment.owns(&topic, partition, epoch) {
                    continue;
                }
                match self.consumer.resume(&partitions(&topic, partition)) {
                    Ok(()) => tracing::debug!(lane, partition, "lane drained; partition resumed"),
                    Err(error) => tracing::warn!(%error, partition, "cannot resume a partition"),
                }
            }
        }
    }

    /// Stops routing and waits for every lane to finish its batch in progress.
    pub(super) async fn finish(mut self) {
        self.senders.clear();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// How often a batch in progress checks that its partitions are still owned.
const REVOCATION_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// Cancels `cancel` as soon as a partition of `batch` is no longer owned in the same epoch.
fn watch_revocation(
    batch: &[Incoming],
    assignment: &Assignment,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let mut owned: Vec<(String, i32, u64)> = batch
        .iter()
        .map(|e| (e.source.topic.clone(), e.source.partition, e.epoch))
        .collect();
    owned.sort();
    owned.dedup();
    let assignment = assignment.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(REVOCATION_CHECK).await;
            if owned
                .iter()
                .any(|(topic, partition, epoch)| !assignment.owns(topic, *partition, *epoch))
            {
                cancel.cancel();
                return;
            }
        }
    })
}

/// One partition of `topic`, as librdkafka's pause and resume take it.
fn partitions(topic: &str, partition: i32) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, partition);
    list
}

/// One lane's end of the routing: its queue and what it holds.
struct Lane {
    index: usize,
    receiver: mpsc::UnboundedReceiver<Incoming>,
    load: Arc<LaneLoad>,
    totals: Arc<InFlight>,
}

#[allow(clippy::too_many_arguments)]
async fn run_lane(
    mut lane: Lane,
    batch_size: usize,
    pipeline: Arc<Pipeline>,
    consumer: Arc<RequestConsumer>,
    assignment: Assignment,
    shutdown: CancellationToken,
    abandon: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = lane.receiver.recv() => match next {
                Some(event) => event,
                None => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < batch_size {
            match lane.receiver.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        // Counted out when this batch is done with, whatever becomes of it.
        let _held = Held::new(&lane, &batch);
        batch.retain(|e| assignment.owns(&e.source.topic, e.source.partition, e.epoch));
        if batch.is_empty() {
            continue;
        }
        let cancel = abandon.child_token();
        let watch = watch_revocation(&batch, &assignment, cancel.clone());
        // Last line of defence: a panic while handling the batch (a bug) is caught; its events
        // are then served one by one and the one that panics alone is dead-lettered.
        let result = match AssertUnwindSafe(pipeline.process(&batch, &cancel))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(_) => {
                tracing::error!(
                    lane = lane.index,
                    events = batch.len(),
                    "a batch panicked; serving its events one by one"
                );
                pipeline.process_each_alone(&batch, &cancel).await
            }
        };
        watch.abort();
        match result {
            Ok(summary) => {
                consumer::store_offsets(&consumer, &batch);
                tracing::debug!(
                    lane = lane.index,
                    events = batch.len(),
                    ?summary,
                    "batch done"
                );
            }
            Err(_) if abandon.is_cancelled() => {
                tracing::warn!(
                    lane = lane.index,
                    events = batch.len(),
                    "batch abandoned at shutdown; its events will be redelivered"
                );
                return;
            }
            Err(_) => {
                tracing::warn!(
                    lane = lane.index,
                    events = batch.len(),
                    "batch cancelled: its partition was revoked; the new owner serves it"
                );
            }
        }
    }
}

/// A batch's events as counted in its lane's load; counted out when dropped.
struct Held {
    load: Arc<LaneLoad>,
    totals: Arc<InFlight>,
    events: usize,
    bytes: usize,
}

impl Held {
    fn new(lane: &Lane, batch: &[Incoming]) -> Self {
        Self {
            load: lane.load.clone(),
            totals: lane.totals.clone(),
            events: batch.len(),
            bytes: batch.iter().map(Incoming::size_bytes).sum(),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.load.remove(&self.totals, self.events, self.bytes);
    }
}
