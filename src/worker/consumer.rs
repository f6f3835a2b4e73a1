//! The request-topic consumer and its offset bookkeeping.
//!
//! Auto-commit is on but the offset *store* is manual: an offset is stored only when it ends
//! the partition's contiguous completed prefix (module `offsets`: every earlier event has its
//! outcome in PostgreSQL and its SMS acknowledged by the broker), so librdkafka's periodic
//! commit never covers unfinished work. When partitions are revoked, the stored offsets
//! (finished work only) are committed synchronously and the partitions leave the
//! [`Assignment`], so the dispatcher drops their still-queued events; the next owner starts
//! after the finished work. Whatever was fetched but not finished is redelivered, which the idempotent
//! store turns into no second SMS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, TopicPartitionList};

use crate::config::KafkaSettings;

/// One continuous ownership of a partition by this worker: a new id each time the partition is
/// assigned, so an event fetched under an earlier assignment is recognisable after the
/// partition was revoked and came back (its offsets could otherwise be stored past events that
/// are being fetched again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub(crate) struct AssignmentId(u64);

impl AssignmentId {
    /// The id of a worker's first assignment.
    #[cfg(test)]
    pub(super) fn first() -> Self {
        Self(1)
    }

    /// The id of the assignment after this one.
    pub(super) fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

/// The partitions this worker currently owns, each with its [`AssignmentId`]. An event is
/// stamped with its partition's assignment when it is admitted and is served only while that
/// same assignment lasts.
#[derive(Clone, Default)]
pub(super) struct Assignment(Arc<Mutex<Owned>>);

#[derive(Default)]
struct Owned {
    partitions: HashMap<(String, i32), AssignmentId>,
    last: AssignmentId,
}

impl Assignment {
    /// The current assignment of a partition, `None` when it is not owned.
    pub(super) fn current(&self, topic: &str, partition: i32) -> Option<AssignmentId> {
        self.0.lock().ok().and_then(|owned| {
            owned
                .partitions
                .get(&(topic.to_owned(), partition))
                .copied()
        })
    }

    /// True while the assignment `id` of the partition lasts.
    pub(super) fn owns(&self, topic: &str, partition: i32, id: AssignmentId) -> bool {
        self.current(topic, partition) == Some(id)
    }

    /// How many partitions are owned now.
    pub(super) fn count(&self) -> usize {
        self.0.lock().map_or(0, |owned| owned.partitions.len())
    }

    fn update(&self, partitions: &TopicPartitionList, owned: bool) {
        if let Ok(mut state) = self.0.lock() {
            for element in partitions.elements() {
                let key = (element.topic().to_owned(), element.partition());
                if owned {
                    state.last = state.last.next();
                    let id = state.last;
                    state.partitions.insert(key, id);
                } else {
                    state.partitions.remove(&key);
                }
            }
        }
    }
}

/// Commits stored offsets before partitions are taken away, and tracks the [`Assignment`].
pub(super) struct CommitOnRevoke {
    pub assignment: Assignment,
}

impl ClientContext for CommitOnRevoke {}

impl ConsumerContext for CommitOnRevoke {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            self.assignment.update(partitions, false);
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => tracing::info!(
                    partitions = partitions.count(),
                    "partitions revoked; finished work committed"
                ),
                Err(error) => tracing::debug!(%error, "nothing to commit on revoke"),
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            self.assignment.update(partitions, true);
            // A partition paused under an earlier assignment (it held more than its share)
            // starts unpaused: the dispatcher forgets pauses of other assignments.
            if let Err(error) = consumer.resume(partitions) {
                tracing::debug!(%error, "resuming newly assigned partitions");
            }
            tracing::info!(partitions = partitions.count(), "partitions assigned");
        }
    }
}

pub(super) type RequestConsumer = StreamConsumer<CommitOnRevoke>;

/// A consumer in the worker group, subscribed to the request topic.
pub(super) fn subscribe(
    settings: &KafkaSettings,
    assignment: Assignment,
) -> Result<RequestConsumer, KafkaError> {
    let mut config = crate::kafka::client_config(settings, "user-otp-worker");
    if let Some(instance) = &settings.group_instance_id {
        config.set("group.instance.id", instance);
    }
    let consumer: RequestConsumer = config
        .set("group.id", &settings.consumer_group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        // A new group starts at the beginning: requests are never skipped; stale ones are
        // recorded as such, not sent.
        .set("auto.offset.reset", "earliest")
        // Incremental rebalancing: a joining or leaving worker moves only the partitions that
        // change owner, instead of revoking (and redelivering) everyone's.
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        // The prefetch queue: bounded (memory), and re-checked soon after it fills. The worker
        // is slower than the fetcher, so the queue is usually full: 0 here made librdkafka's
        // broker thread spin (a third of the worker's CPU in clock_gettime/poll), librdkafka's
        // default (1 s) would stall the worker once the queue drained.
        .set("fetch.queue.backoff.ms", "10")
        .set("queued.min.messages", "10000")
        .set("queued.max.messages.kbytes", "8192")
        // One fetch response at most 2 MB (librdkafka's default allows 50 MB buffers).
        .set("fetch.max.bytes", "2097152")
        .create_with_context(CommitOnRevoke { assignment })?;
    consumer.subscribe(&[settings.request_topic.as_str()])?;
    Ok(consumer)
}

/// Stores `offset` (the last event of a partition's completed prefix; librdkafka stores
/// `offset + 1`, the next event to read), committed by the next auto-commit, on revoke, or at
/// shutdown. A partition revoked meanwhile is skipped.
pub(super) fn store_offset(consumer: &RequestConsumer, topic: &str, partition: i32, offset: i64) {
    if let Err(error) = consumer.store_offset(topic, partition, offset) {
        tracing::debug!(%error, partition, "offset not stored (partition revoked?)");
    }
}

/// Commits the stored offsets synchronously (shutdown).
pub(super) fn commit(consumer: &RequestConsumer) {
    if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(%error, "nothing to commit at shutdown");
    }
}
