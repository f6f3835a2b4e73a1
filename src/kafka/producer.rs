//! The shared event producer: bounded sends that resolve only on the broker's acknowledgement.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::config::KafkaSettings;
use crate::failure::{Classify, FailureKind};

/// Slack on top of librdkafka's own `message.timeout.ms` before we stop waiting ourselves.
const LOCAL_TIMEOUT_SLACK: Duration = Duration::from_millis(500);

/// Why an event is not (known to be) on its topic.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("the broker did not acknowledge the event within {0:?}")]
    Timeout(Duration),
    #[error("the broker refused the event: {0}")]
    Kafka(#[from] KafkaError),
}

impl ProduceError {
    /// True when the event may have been written although no acknowledgement arrived (our own
    /// timer or librdkafka's `message.timeout.ms` ran out while the broker may have stored it).
    pub fn maybe_written(&self) -> bool {
        match self {
            Self::Timeout(_) => true,
            Self::Kafka(error) => {
                error.rdkafka_error_code()
                    == Some(rdkafka::types::RDKafkaErrorCode::MessageTimedOut)
            }
        }
    }
}

impl Classify for ProduceError {
    fn kind(&self) -> FailureKind {
        match self {
            Self::Timeout(_) => FailureKind::Transient,
            Self::Kafka(error) => error.kind(),
        }
    }
}

/// librdkafka's headers for `(name, value)` pairs (`None`: a null value), in order.
pub(super) fn owned_headers(headers: &[(&str, Option<&[u8]>)]) -> OwnedHeaders {
    headers
        .iter()
        .fold(OwnedHeaders::new(), |all, (key, value)| {
            all.insert(Header { key, value: *value })
        })
}

/// A header of a [`GroupRecord`]: its name and value (`None`: a null value).
pub type RecordHeader<'a> = (&'a str, Option<&'a [u8]>);

/// One event of a group ([`EventProducer::send_all`]): topic, key, value (`None`: a null
/// value) and headers, borrowed.
pub struct GroupRecord<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub headers: &'a [RecordHeader<'a>],
}

/// librdkafka's record for `record`.
fn future_record<'a>(record: &GroupRecord<'a>) -> FutureRecord<'a, [u8], [u8]> {
    let mut future = FutureRecord::to(record.topic).headers(owned_headers(record.headers));
    if let Some(payload) = record.payload {
        future = future.payload(payload);
    }
    if let Some(key) = record.key {
        future = future.key(key);
    }
    future
}

/// A cheap-to-clone handle on one librdkafka producer.
#[derive(Clone)]
pub struct EventProducer {
    inner: FutureProducer,
    send_timeout: Duration,
}

impl EventProducer {
    pub fn new(settings: &KafkaSettings) -> Result<Self, KafkaError> {
        let timeout_ms = settings.send_timeout.as_millis().to_string();
        let inner: FutureProducer = super::client_config(settings, "user-otp")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", settings.linger_ms.to_string())
            .set("message.timeout.ms", &timeout_ms)
            .set("socket.connection.setup.timeout.ms", &timeout_ms)
            // Set deliberately (USER_OTP_KAFKA_MESSAGE_MAX_BYTES, librdkafka's default 1,000,000):
            // larger records fail at once with MessageSizeTooLarge, a poison verdict for that
            // one record (dead letters are cut to fit this size, see worker::dead_letter).
            .set("message.max.bytes", settings.message_max_bytes.to_string())
            .create()?;
        Ok(Self {
            inner,
            send_timeout: settings.send_timeout,
        })
    }

    /// Writes one event (`None` value: a null value) and waits for the broker's
    /// acknowledgement, at most the send timeout.
    ///
    /// # Errors
    /// [`ProduceError::Timeout`] without an acknowledgement in time (the event may still have
    /// been written: [`ProduceError::maybe_written`]), [`ProduceError::Kafka`] when librdkafka or
    /// the broker refused it ([`Classify::kind`] says whether that is the event's fault).
    pub async fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> Result<(), ProduceError> {
        let record = future_record(&GroupRecord {
            topic,
            key,
            payload,
            headers,
        });
        let limit = self.send_timeout + LOCAL_TIMEOUT_SLACK;
        // No wait for room in librdkafka's queue (a full queue fails at once and the caller
        // retries), so `message.timeout.ms` counts from now and our own limit below always
        // outlasts it: an event we gave up on is never delivered later behind our back.
        let delivery = self.inner.send(record, Timeout::After(Duration::ZERO));
        match tokio::time::timeout(limit, delivery).await {
            Err(_) => Err(ProduceError::Timeout(self.send_timeout)),
            Ok(Err((error, _message))) => Err(ProduceError::Kafka(error)),
            Ok(Ok(_delivery)) => Ok(()),
        }
    }

    /// Writes every record of `records` and waits until each is acknowledged or failed, at most
    /// the send timeout (plus the same slack as [`send`](Self::send)) for the whole group; the
    /// answers are in the records' order, each as [`send`](Self::send) would give it
    /// ([`ProduceError::Timeout`] for a record without a report in time).
    ///
    /// The group is handed to librdkafka at once, so it shares produce requests with whatever
    /// else is queued (the SMS of the same batch), and it is awaited under one timer: a group
    /// costs one wake-up per report and one timer, not a timer and a retry loop per event.
    pub async fn send_all(&self, records: &[GroupRecord<'_>]) -> Vec<Result<(), ProduceError>> {
        let mut answers: Vec<Result<(), ProduceError>> = Vec::with_capacity(records.len());
        let mut in_flight = futures::stream::FuturesUnordered::new();
        for (index, record) in records.iter().enumerate() {
            // As in `send`: no wait for room in librdkafka's queue (a full queue fails at once).
            match self.inner.send_result(future_record(record)) {
                Ok(delivery) => {
                    answers.push(Err(ProduceError::Timeout(self.send_timeout)));
                    in_flight.push(async move { (index, delivery.await) });
                }
                Err((error, _record)) => answers.push(Err(ProduceError::Kafka(error))),
            }
        }
        let deadline = tokio::time::sleep(self.send_timeout + LOCAL_TIMEOUT_SLACK);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                biased;
                report = futures::StreamExt::next(&mut in_flight) => {
                    let Some((index, report)) = report else { break };
                    let answer = match report {
                        Ok(Ok(_delivery)) => Ok(()),
                        Ok(Err((error, _message))) => Err(ProduceError::Kafka(error)),
                        // The producer was dropped: no report will come.
                        Err(_canceled) => Err(ProduceError::Kafka(KafkaError::Canceled)),
                    };
                    if let Some(slot) = answers.get_mut(index) {
                        *slot = answer;
                    }
                }
                () = &mut deadline => break,
            }
        }
        answers
    }

    /// True when a broker answers a metadata request within `timeout`.
    pub async fn broker_reachable(&self, topic: &str, timeout: Duration) -> bool {
        let producer = self.inner.clone();
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .is_ok()
        })
        .await
        .unwrap_or(false)
    }

    /// Waits (blocking, off the async threads) until every queued event is acknowledged or
    /// `timeout` passes; used at shutdown.
    pub async fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        let producer = self.inner.clone();
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }
}
