//! The request-topic consumer and its offset bookkeeping.
//!
//! Auto-commit is on but the offset *store* is manual: an offset is stored only after its whole
//! batch returned `Ok` (outcome in PostgreSQL, SMS acknowledged by the broker), so librdkafka's
//! periodic commit never covers unfinished work. Batches complete before the consumer is polled
//! again, and rebalance callbacks run inside that poll, so when partitions are revoked every
//! stored offset is final: it is committed synchronously right there and the next owner starts
//! exactly after the finished work. Whatever was fetched but not finished is redelivered, which
//! the idempotent store turns into no second SMS.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;
use tokio_util::sync::CancellationToken;

use super::incoming::Incoming;
use crate::config::KafkaSettings;

/// How long a batch keeps collecting once its first event arrived.
const BATCH_LINGER: Duration = Duration::from_millis(5);

/// Commits stored offsets before partitions are taken away.
pub struct CommitOnRevoke;

impl ClientContext for CommitOnRevoke {}

impl ConsumerContext for CommitOnRevoke {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => tracing::info!(
                    partitions = partitions.count(),
                    "partitions revoked; finished work committed"
                ),
                Err(error) => tracing::debug!(%error, "nothing to commit on revoke"),
            }
        }
    }
}

pub type RequestConsumer = StreamConsumer<CommitOnRevoke>;

/// A consumer in the worker group, subscribed to the request topic.
pub fn subscribe(settings: &KafkaSettings) -> Result<RequestConsumer, KafkaError> {
    let mut config = ClientConfig::new();
    if let Some(instance) = &settings.group_instance_id {
        config.set("group.instance.id", instance);
    }
    let consumer: RequestConsumer = config
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("group.id", &settings.consumer_group)
        .set("client.id", "user-otp-worker")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        // A new group starts at the beginning: requests are never skipped; stale ones are
        // recorded as such, not sent.
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        // Keep fetching while the prefetch queue drains (librdkafka's default pauses 1 s),
        // and bound that queue's memory.
        .set("fetch.queue.backoff.ms", "0")
        .set("queued.max.messages.kbytes", "16384")
        .create_with_context(CommitOnRevoke)?;
    consumer.subscribe(&[settings.request_topic.as_str()])?;
    Ok(consumer)
}

/// Waits for the next event (or shutdown), then takes whatever else arrives within a few
/// milliseconds, up to `max` events. Empty only on shutdown.
pub async fn next_batch(
    consumer: &RequestConsumer,
    max: usize,
    shutdown: &CancellationToken,
) -> Vec<Incoming> {
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return batch,
            received = consumer.recv() => match received {
                Ok(message) => {
                    batch.push(Incoming::from_message(&message));
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "request topic: consumer error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    while batch.len() < max {
        match tokio::time::timeout(BATCH_LINGER, consumer.recv()).await {
            Ok(Ok(message)) => batch.push(Incoming::from_message(&message)),
            Ok(Err(error)) => {
                tracing::warn!(%error, "request topic: consumer error");
                break;
            }
            Err(_) => break,
        }
    }
    batch
}

/// Stores, per partition, the last offset of a finished batch (committed by the next
/// auto-commit, on revoke, or at shutdown). Partitions revoked meanwhile are skipped.
pub fn store_offsets(consumer: &RequestConsumer, batch: &[Incoming]) {
    let mut last: HashMap<(&str, i32), i64> = HashMap::new();
    for event in batch {
        let entry = last
            .entry((event.source.topic.as_str(), event.source.partition))
            .or_insert(event.source.offset);
        *entry = (*entry).max(event.source.offset);
    }
    for ((topic, partition), offset) in last {
        // librdkafka stores offset + 1: the next event to read.
        if let Err(error) = consumer.store_offset(topic, partition, offset) {
            tracing::debug!(%error, partition, "offset not stored (partition revoked?)");
        }
    }
}

/// Commits the stored offsets synchronously (shutdown).
pub fn commit(consumer: &RequestConsumer) {
    if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(%error, "nothing to commit at shutdown");
    }
}
