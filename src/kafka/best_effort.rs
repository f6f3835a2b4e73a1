//! A producer for events nobody waits for (the outcomes of `_validate`): handed to librdkafka and
//! forgotten, batched for up to 100 ms, failures logged by the delivery callback.
//!
//! Why not the shared [`EventProducer`](super::EventProducer): that one resolves a future per
//! event on the broker's acknowledgement with a 1 ms linger, right for `_send` (which answers
//! only once its event is on the topic) but costly per `_validate` (a task, a future and nearly a
//! produce request per validation). Here a validation costs one enqueue; the events of 100 ms
//! go in one produce request per broker. Idempotent with `acks=all` like the other, so
//! librdkafka's own retries never duplicate an event; an event still unsent at shutdown is
//! flushed ([`BestEffortProducer::flush`]).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::config::KafkaSettings;

/// How long an event may wait for others to share its produce request. A produce round (the
/// wake-ups of librdkafka's threads, the request, its response) costs far more CPU than one
/// more event in it, and each partition of the outcome topic lingers on its own, so fewer,
/// fuller rounds are what keeps this cheap; nobody waits for these events.
const LINGER: Duration = Duration::from_millis(100);

/// Logs the events the broker did not take.
struct LogFailures;

impl ClientContext for LogFailures {}

impl ProducerContext for LogFailures {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        if let Err((error, _)) = result {
            tracing::warn!(%error, "a best-effort event (a validation outcome) was not written");
        }
    }
}

/// A cheap-to-clone handle on one fire-and-forget producer.
#[derive(Clone)]
pub struct BestEffortProducer {
    inner: Arc<ThreadedProducer<LogFailures>>,
}

impl BestEffortProducer {
    /// A producer with the service's brokers and security (`client.id` `user-otp-announcer`).
    ///
    /// # Errors
    /// [`KafkaError`]: librdkafka refuses the configuration.
    pub fn new(settings: &KafkaSettings) -> Result<Self, KafkaError> {
        let timeout_ms = settings.send_timeout.as_millis().to_string();
        let inner: ThreadedProducer<LogFailures> =
            super::client_config(settings, "user-otp-announcer")
                .set("acks", "all")
                .set("enable.idempotence", "true")
                .set("linger.ms", LINGER.as_millis().to_string())
                .set("message.timeout.ms", &timeout_ms)
                .set("message.max.bytes", settings.message_max_bytes.to_string())
                .create_with_context(LogFailures)?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Queues one event; a full queue (the broker unreachable for long) drops it with a warning.
    pub fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: &[(&str, Option<&[u8]>)],
    ) {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .payload(payload)
            .headers(super::producer::owned_headers(headers));
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Err((error, _)) = self.inner.send(record) {
            tracing::warn!(%error, "a best-effort event (a validation outcome) was dropped");
        }
    }

    /// Waits up to `timeout` for the queued events to be acknowledged (at shutdown).
    ///
    /// # Errors
    /// [`KafkaError`]: some were still unacknowledged.
    pub async fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.flush(timeout))
            .await
            .map_err(|_| KafkaError::Canceled)?
    }
}
