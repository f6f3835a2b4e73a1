//! Was an SMS event written after all? Read the SMS topic for the codes in question.
//!
//! Two situations leave the worker unsure: a worker died between the broker's acknowledgement of
//! an SMS event and recording it as sent (the request stays `sms_pending`), and a produce that
//! librdkafka reported as timed out (the broker may have stored it although no acknowledgement
//! arrived). Before sending such an SMS again, the worker reads the SMS topic from shortly before
//! the code was recorded up to the current end, looking for SMS events whose `x-otp-code-id`
//! header names the code. Found: the SMS is acknowledged after all and nothing is sent again. Not
//! found: it never reached the broker and is sent once.
//!
//! The read is bounded: only codes still within their validity are ever looked for (older
//! pending requests are closed as `expired`, never resent), so it covers at most one code
//! validity of SMS traffic. A scan that runs out of time keeps its positions and [`SentScan::run`]
//! resumes from them on the next attempt instead of starting over.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

use super::incoming::read_headers;

/// Header of SMS and email events naming the code they carry (its UUID, never the code).
pub const CODE_ID_HEADER: &str = "x-otp-code-id";

/// How far before the earliest recording the scan starts: the SMS is produced after the
/// recording, so this only covers clock skew between the broker and the worker.
const SCAN_SLACK_MS: i64 = 10_000;

/// Longest one attempt of a scan may take (the next attempt resumes where it stopped).
pub(super) const SENT_SCAN_TIMEOUT: Duration = Duration::from_secs(30);

/// A scan of the SMS topic for some code ids, resumable across attempts.
#[derive(Debug, Clone)]
pub(super) struct SentScan {
    /// Brokers, security and client id ([`crate::kafka::client_config`]).
    client: ClientConfig,
    topic: String,
    since_ms: i64,
    code_ids: HashSet<Uuid>,
    /// Next offset to read and end offset, per partition, once known.
    positions: Option<HashMap<i32, (i64, i64)>>,
    found: HashSet<Uuid>,
}

impl SentScan {
    /// A scan of `topic` from `since_ms` (epoch ms, minus a slack for clock skew) for SMS events
    /// of `code_ids`.
    pub(super) fn new(
        client: &ClientConfig,
        topic: &str,
        since_ms: i64,
        code_ids: HashSet<Uuid>,
    ) -> Self {
        Self {
            client: client.clone(),
            topic: topic.to_owned(),
            since_ms: since_ms - SCAN_SLACK_MS,
            code_ids,
            positions: None,
            found: HashSet::new(),
        }
    }

    /// Reads on (from where the last attempt stopped) for at most `timeout`; returns the code
    /// ids with an SMS event on the topic.
    ///
    /// # Errors
    /// A [`KafkaError`] from the broker, or [`KafkaError::Canceled`] when `timeout` passed
    /// before the end was reached (the next call resumes).
    pub(super) async fn run(&mut self, timeout: Duration) -> Result<HashSet<Uuid>, KafkaError> {
        if self.code_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let mut state = self.clone();
        let (state, result) = tokio::task::spawn_blocking(move || {
            let result = state.scan(timeout);
            (state, result)
        })
        .await
        .map_err(|_| KafkaError::Canceled)?;
        *self = state;
        result
    }

    fn scan(&mut self, timeout: Duration) -> Result<HashSet<Uuid>, KafkaError> {
        let deadline = Instant::now() + timeout;
        let consumer: BaseConsumer = self
            .client
            .clone()
            .set("group.id", "user-otp-sent-scan")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()?;
        let positions = match self.positions.take() {
            Some(positions) => positions,
            None => self.start_positions(&consumer, timeout)?,
        };
        let mut assignment = TopicPartitionList::new();
        for (&partition, &(next, end)) in &positions {
            if next < end {
                assignment.add_partition_offset(&self.topic, partition, Offset::Offset(next))?;
            }
        }
        let mut positions = positions;
        positions.retain(|_, (next, end)| next < end);
        if positions.is_empty() {
            self.positions = Some(positions);
            return Ok(self.found.clone());
        }
        consumer.assign(&assignment)?;
        while !positions.is_empty() {
            if Instant::now() > deadline {
                self.positions = Some(positions);
                return Err(KafkaError::Canceled);
            }
            let Some(result) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = result?;
            // Read without panicking on a header name that is not UTF-8 (see `incoming`).
            let headers = message.headers().map(read_headers).unwrap_or_default().0;
            let code_id = headers
                .iter()
                .find(|(key, _)| key == CODE_ID_HEADER)
                .and_then(|(_, value)| value.as_deref())
                .and_then(|value| std::str::from_utf8(value).ok())
                .and_then(|value| Uuid::parse_str(value).ok());
            if let Some(id) = code_id.filter(|id| self.code_ids.contains(id)) {
                self.found.insert(id);
            }
            let partition = message.partition();
            if let Some((next, end)) = positions.get_mut(&partition) {
                *next = message.offset() + 1;
                if *next >= *end {
                    positions.remove(&partition);
                }
            }
        }
        self.positions = Some(positions);
        Ok(self.found.clone())
    }

    /// Per partition: the first offset at or after `since_ms`, and the current end.
    fn start_positions(
        &self,
        consumer: &BaseConsumer,
        timeout: Duration,
    ) -> Result<HashMap<i32, (i64, i64)>, KafkaError> {
        let metadata = consumer.fetch_metadata(Some(&self.topic), timeout)?;
        let mut wanted = TopicPartitionList::new();
        for topic in metadata.topics() {
            for partition in topic.partitions() {
                wanted.add_partition_offset(
                    &self.topic,
                    partition.id(),
                    Offset::Offset(self.since_ms),
                )?;
            }
        }
        let starts = consumer.offsets_for_times(wanted, timeout)?;
        let mut positions = HashMap::new();
        for element in starts.elements() {
            let (_, high) = consumer.fetch_watermarks(&self.topic, element.partition(), timeout)?;
            if let Offset::Offset(start) = element.offset() {
                positions.insert(element.partition(), (start, high));
            }
        }
        Ok(positions)
    }
}
