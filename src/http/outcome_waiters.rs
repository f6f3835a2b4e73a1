//! `_send` in sync mode waits here for its request's outcome event (`USER_OTP_SEND_MODE=sync`).
//!
//! Every shim instance reads the whole outcome topic itself: a consumer with manual assignment
//! of every partition (no group membership, nothing committed), so any number of shim and worker
//! instances work together and no shim depends on another or on the worker's database.
//!
//! Ordering, so no outcome is missed:
//! 1. At start the listener takes each partition's high watermark and assigns the partitions at
//!    exactly those offsets (not "end", which librdkafka would resolve later). Until then it is
//!    not *positioned*: `_send` then answers without waiting and its readiness is DOWN.
//! 2. A `_send` registers its waiter (a fresh unguessable token) before it produces the request
//!    event, which carries the token in [`REPLY_TOKEN_HEADER`]; the worker copies the header onto
//!    the request's outcome event. An outcome is therefore always written after its waiter
//!    exists and after the listener's start offsets.
//! 3. Partitions added later are found by a metadata refresh every [`REFRESH_EVERY`] and read
//!    from their beginning.
//!
//! Events without a token or whose waiter is gone (timed out, another instance's) are skipped;
//! a token is matched once. An outcome the worker does not announce to this event (a second copy
//! of the same request id in one batch, or another worker serving an earlier copy) leaves the
//! waiter to its timeout: `_send` then answers 201, as for any late outcome.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::config::KafkaSettings;
use crate::domain::request_event::REPLY_TOKEN_HEADER;
use crate::kafka::headers::{header_text, read_headers};

/// How often the listener looks for partitions added to the outcome topic.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);

/// Longest one metadata or watermark call may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause between attempts to position the listener (broker or topic not there yet).
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// The waiters of this shim instance, and whether the listener is positioned.
pub struct OutcomeWaiters {
    pending: Mutex<HashMap<String, oneshot::Sender<String>>>,
    positioned: AtomicBool,
}

/// One `_send` waiting for its outcome; dropping it forgets the token.
pub struct Waiter {
    token: String,
    receiver: oneshot::Receiver<String>,
    waiters: Arc<OutcomeWaiters>,
}

impl OutcomeWaiters {
    /// Starts the listener on `settings.outcome_topic`; it stops when `shutdown` is cancelled.
    ///
    /// # Errors
    /// The consumer cannot be created (invalid librdkafka settings). A broker that is down or a
    /// topic that does not exist yet is not an error: the listener retries every second and
    /// stays unpositioned meanwhile.
    pub fn start(
        settings: &KafkaSettings,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, KafkaError> {
        let consumer: StreamConsumer =
            crate::kafka::client_config(settings, "user-otp-outcome-waiters")
                // Needed by librdkafka for assign(); the group is never joined and nothing is
                // committed, so every instance may share it.
                .set("group.id", "user-otp-outcome-waiters")
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("enable.partition.eof", "false")
                .set("fetch.wait.max.ms", "10")
                .create()?;
        let waiters = Arc::new(Self {
            pending: Mutex::new(HashMap::new()),
            positioned: AtomicBool::new(false),
        });
        tokio::spawn(listen(
            Arc::new(consumer),
            settings.outcome_topic.clone(),
            waiters.clone(),
            shutdown,
        ));
        Ok(waiters)
    }

    /// Whether the listener reads from offsets taken before now (else a waiter may miss its
    /// outcome).
    pub fn is_positioned(&self) -> bool {
        self.positioned.load(Ordering::Acquire)
    }

    /// A new waiter with a fresh token (a UUID v4, 122 random bits).
    pub fn register(self: &Arc<Self>) -> Waiter {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let (sender, receiver) = oneshot::channel();
        self.lock().insert(token.clone(), sender);
        Waiter {
            token,
            receiver,
            waiters: self.clone(),
        }
    }

    /// Waiters registered and not yet answered or dropped.
    pub fn waiting(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<String>>> {
        // A panic while holding the lock leaves a plain map behind: still usable.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `outcome` to the waiter of `token`, if it is still waiting.
    fn answer(&self, token: &str, outcome: String) {
        if let Some(sender) = self.lock().remove(token) {
            let _ = sender.send(outcome);
        }
    }
}

impl Waiter {
    /// The token for the request event's [`REPLY_TOKEN_HEADER`].
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The request's `outcome` (e.g. `unknown_user`), or `None` when it does not arrive within
    /// `wait`.
    pub async fn outcome(mut self, wait: Duration) -> Option<String> {
        tokio::time::timeout(wait, &mut self.receiver)
            .await
            .ok()
            .and_then(Result::ok)
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.waiters.lock().remove(&self.token);
    }
}

/// The listener: positions, then reads until shutdown.
async fn listen(
    consumer: Arc<StreamConsumer>,
    topic: String,
    waiters: Arc<OutcomeWaiters>,
    shutdown: CancellationToken,
) {
    let mut known = loop {
        match blocking(&consumer, &topic, position).await {
            Ok(partitions) => break partitions,
            Err(error) => {
                tracing::warn!(%error, %topic, "outcome listener not positioned yet; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(RETRY_EVERY) => {}
                }
            }
        }
    };
    waiters.positioned.store(true, Ordering::Release);
    tracing::info!(%topic, partitions = known.len(), "outcome listener positioned");
    let mut refresh = tokio::time::interval(REFRESH_EVERY);
    refresh.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = refresh.tick() => {
                let seen = known.clone();
                match blocking(&consumer, &topic, move |c, t| add_new(c, t, &seen)).await {
                    Ok(added) => known.extend(added),
                    Err(error) => tracing::debug!(%error, "outcome topic metadata not refreshed"),
                }
            }
            message = consumer.recv() => match message {
                Ok(message) => {
                    let Some(headers) = message.headers().map(read_headers) else { continue };
                    let Some(token) = header_text(&headers.0, REPLY_TOKEN_HEADER) else {
                        continue;
                    };
                    if let Some(outcome) = message.payload().and_then(request_outcome) {
                        waiters.answer(token, outcome);
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "outcome listener: consumer error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// The `outcome` of a request's outcome event (`subject` `request`), else `None`.
fn request_outcome(payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Event {
        subject: String,
        outcome: String,
    }
    serde_json::from_slice::<Event>(payload)
        .ok()
        .filter(|event| event.subject == "request")
        .map(|event| event.outcome)
}

/// Runs a blocking librdkafka call off the async threads.
async fn blocking<T, F>(
    consumer: &Arc<StreamConsumer>,
    topic: &str,
    call: F,
) -> Result<T, KafkaError>
where
    T: Send + 'static,
    F: FnOnce(&StreamConsumer, &str) -> Result<T, KafkaError> + Send + 'static,
{
    let consumer = consumer.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || call(&consumer, &topic))
        .await
        .map_err(|_| KafkaError::Canceled)?
}

/// The topic's partitions, or an error when it has none (not created yet).
fn partitions(consumer: &StreamConsumer, topic: &str) -> Result<Vec<i32>, KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(KafkaError::MetadataFetch(
            rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
        ));
    }
    Ok(partitions)
}

/// Assigns every partition at its current high watermark; returns the partitions.
fn position(consumer: &StreamConsumer, topic: &str) -> Result<HashSet<i32>, KafkaError> {
    let mut assignment = TopicPartitionList::new();
    let partitions = partitions(consumer, topic)?;
    for &partition in &partitions {
        let (_, high) = consumer.fetch_watermarks(topic, partition, METADATA_TIMEOUT)?;
        assignment.add_partition_offset(topic, partition, Offset::Offset(high))?;
    }
    consumer.assign(&assignment)?;
    Ok(partitions.into_iter().collect())
}

/// Adds partitions not in `known`, read from their beginning; returns them.
fn add_new(
    consumer: &StreamConsumer,
    topic: &str,
    known: &HashSet<i32>,
) -> Result<Vec<i32>, KafkaError> {
    let added: Vec<i32> = partitions(consumer, topic)?
        .into_iter()
        .filter(|p| !known.contains(p))
        .collect();
    if !added.is_empty() {
        let mut assignment = TopicPartitionList::new();
        for &partition in &added {
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        }
        consumer.incremental_assign(&assignment)?;
        tracing::info!(added = added.len(), "outcome listener reads new partitions");
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_request_outcomes_are_read() {
        assert_eq!(
            request_outcome(br#"{"subject":"request","outcome":"unknown_user"}"#).as_deref(),
            Some("unknown_user")
        );
        assert_eq!(
            request_outcome(br#"{"subject":"validation","outcome":"wrong"}"#),
            None
        );
        assert_eq!(request_outcome(b"not json"), None);
    }

    #[tokio::test]
    async fn a_dropped_waiter_is_forgotten_and_a_token_is_answered_once() {
        let waiters = Arc::new(OutcomeWaiters {
            pending: Mutex::new(HashMap::new()),
            positioned: AtomicBool::new(true),
        });
        let first = waiters.register();
        let second = waiters.register();
        assert_ne!(first.token(), second.token());
        assert_eq!(waiters.waiting(), 2);
        drop(second);
        assert_eq!(waiters.waiting(), 1);
        let token = first.token().to_owned();
        waiters.answer(&token, "sent".into());
        waiters.answer(&token, "unknown_user".into());
        assert_eq!(
            first.outcome(Duration::from_secs(1)).await.as_deref(),
            Some("sent")
        );
        assert_eq!(waiters.waiting(), 0);
        let late = waiters.register();
        assert_eq!(late.outcome(Duration::from_millis(10)).await, None);
        assert_eq!(waiters.waiting(), 0, "a timed-out waiter is forgotten");
    }
}
