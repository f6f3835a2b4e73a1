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
//! Events of partitions this worker no longer owns (revoked in a rebalance while queued, or
//! fetched under an earlier ownership of a partition that came back) are dropped before
//! processing: the owner reads them again from the committed offset. A batch in progress whose
//! partition is revoked is cancelled at its next step, so its retries cannot send an SMS after
//! the new owner took over (the new owner also waits out a grace period for such requests).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::batch::Pipeline;
use super::consumer::{self, Assignment, RequestConsumer};
use super::incoming::Incoming;

/// Events queued per lane before the consumer loop waits (backpressure).
const LANE_QUEUE: usize = 4_096;

pub struct Lanes {
    senders: Vec<mpsc::Sender<Incoming>>,
    tasks: JoinSet<()>,
}

impl Lanes {
    /// Starts `count` lanes. `abandon` interrupts a batch in progress (shutdown grace over).
    pub fn start(
        count: usize,
        batch_size: usize,
        pipeline: Arc<Pipeline>,
        consumer: Arc<RequestConsumer>,
        assignment: Assignment,
        shutdown: CancellationToken,
        abandon: CancellationToken,
    ) -> Self {
        let mut tasks = JoinSet::new();
        let senders = (0..count.max(1))
            .map(|lane| {
                let (sender, receiver) = mpsc::channel(LANE_QUEUE);
                tasks.spawn(run_lane(
                    lane,
                    receiver,
                    batch_size,
                    pipeline.clone(),
                    consumer.clone(),
                    assignment.clone(),
                    shutdown.clone(),
                    abandon.clone(),
                ));
                sender
            })
            .collect();
        Self { senders, tasks }
    }

    /// Queues `event` on its partition's lane; false once the lanes have stopped.
    pub async fn route(&self, event: Incoming) -> bool {
        let index = usize::try_from(event.source.partition).unwrap_or(0) % self.senders.len();
        self.senders[index].send(event).await.is_ok()
    }

    /// Stops routing and waits for every lane to finish its batch in progress.
    pub async fn finish(mut self) {
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

#[allow(clippy::too_many_arguments)]
async fn run_lane(
    lane: usize,
    mut receiver: mpsc::Receiver<Incoming>,
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
            next = receiver.recv() => match next {
                Some(event) => event,
                None => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < batch_size {
            match receiver.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
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
                    lane,
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
                tracing::debug!(lane, events = batch.len(), ?summary, "batch done");
            }
            Err(_) if abandon.is_cancelled() => {
                tracing::warn!(
                    lane,
                    events = batch.len(),
                    "batch abandoned at shutdown; its events will be redelivered"
                );
                return;
            }
            Err(_) => {
                tracing::warn!(
                    lane,
                    events = batch.len(),
                    "batch cancelled: its partition was revoked; the new owner serves it"
                );
            }
        }
    }
}
