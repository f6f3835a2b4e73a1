//! Crash recovery for requests left `sms_pending`: was their SMS event written after all?
//!
//! A worker that dies between the broker's acknowledgement of an SMS event and recording it as
//! sent leaves the request pending. Before sending anything for such a request, the next worker
//! reads the SMS topic from shortly before the request was recorded up to the current end and
//! looks for SMS events carrying its request id (`x-request-id` header). Found: the request is
//! marked sent and nothing is sent again. Not found: the SMS never reached the broker and the
//! request is served anew. Pending requests only exist after a crash, so this read is rare and
//! bounded by the time window.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::incoming::read_headers;
use crate::domain::request_event::REQUEST_ID_HEADER;

/// How far before a pending request's recording the scan starts: the SMS is produced after the
/// recording, so this only covers clock skew between PostgreSQL and the broker.
const SCAN_SLACK_MS: i64 = 10_000;

/// The subset of `request_ids` with an SMS event on `topic` written since `since_ms` (epoch ms).
pub async fn find_sent(
    bootstrap_servers: &str,
    topic: &str,
    since_ms: i64,
    request_ids: HashSet<String>,
    timeout: Duration,
) -> Result<HashSet<String>, KafkaError> {
    let bootstrap_servers = bootstrap_servers.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        scan(
            &bootstrap_servers,
            &topic,
            since_ms - SCAN_SLACK_MS,
            &request_ids,
            timeout,
        )
    })
    .await
    .unwrap_or(Err(KafkaError::Canceled))
}

fn scan(
    bootstrap_servers: &str,
    topic: &str,
    since_ms: i64,
    request_ids: &HashSet<String>,
    timeout: Duration,
) -> Result<HashSet<String>, KafkaError> {
    let deadline = Instant::now() + timeout;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", "user-otp-sent-scan")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut wanted = TopicPartitionList::new();
    for &partition in &partitions {
        wanted.add_partition_offset(topic, partition, Offset::Offset(since_ms))?;
    }
    let starts = consumer.offsets_for_times(wanted, timeout)?;
    // Read each partition from its start offset up to its current end.
    let mut assignment = TopicPartitionList::new();
    let mut remaining: Vec<(i32, i64)> = Vec::new();
    for element in starts.elements() {
        let (_, high) = consumer.fetch_watermarks(topic, element.partition(), timeout)?;
        if let Offset::Offset(start) = element.offset() {
            if start < high {
                assignment.add_partition_offset(
                    topic,
                    element.partition(),
                    Offset::Offset(start),
                )?;
                remaining.push((element.partition(), high));
            }
        }
    }
    let mut found = HashSet::new();
    if remaining.is_empty() {
        return Ok(found);
    }
    consumer.assign(&assignment)?;
    while !remaining.is_empty() {
        if Instant::now() > deadline {
            return Err(KafkaError::Canceled);
        }
        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = result?;
        // Read without panicking on a header name that is not UTF-8 (see `incoming`).
        let headers = message.headers().map(read_headers).unwrap_or_default().0;
        let request_id = headers
            .iter()
            .find(|(key, _)| key == REQUEST_ID_HEADER)
            .and_then(|(_, value)| value.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok());
        if let Some(id) = request_id.filter(|id| request_ids.contains(*id)) {
            found.insert(id.to_owned());
        }
        let (partition, offset) = (message.partition(), message.offset());
        remaining.retain(|&(p, high)| !(p == partition && offset + 1 >= high));
    }
    Ok(found)
}
