//! The worker: consumes OTP request events and serves each exactly once in effect.
//!
//! One request event's way through the worker, module by module:
//! 1. `consumer`: the request-topic consumer in the worker group (`consumer::Assignment`
//!    tracks which partitions it owns); `incoming` reads each event without panicking;
//! 2. `dispatch`: admits the event, holds it until no earlier event of its key is unfinished
//!    (`key_order`), and runs up to [`BATCHES_IN_FLIGHT`] batches of ready events at once,
//!    within the in-flight bounds (`in_flight`);
//! 3. `batch`: serves a batch in six steps — classify, look up, plan, record, recover,
//!    notify — with the `Pipeline` (`pipeline`), event by event after a panic (`batch::alone`);
//!    events it writes are
//!    built in `outgoing` and `dead_letter`, found again by `sent_scan`, retried by
//!    `retrying`; the pumping guard is `pumping`;
//! 4. `offsets`: when the batch is done, each partition's offset is stored as far as its
//!    contiguous completed prefix reaches.
//!
//! Beside the stream, `purger` deletes expired codes and old outcomes.
//!
//! Delivery model: at-least-once consumption (an offset is stored only once every earlier event
//! of its partition has its outcome in PostgreSQL and its SMS events acknowledged) plus
//! idempotency on the request key (request id and fingerprint, [`crate::domain::request_id`])
//! enforced by the database ([`crate::store`]) gives one outcome and at most one code per
//! request, and one SMS, including after redelivery, replay and crashes (`sent_scan`).
//!
//! The promise: no input stops the worker, crashes the process or stalls a partition. Every
//! failure is classified ([`crate::failure`]): transient and systemic ones are retried in place
//! (`retrying`), a poison one is confined to its event (the record step splits a batch until
//! the event stands alone) and that event goes to the dead-letter topic with the reason
//! (`dead_letter`); reading an event cannot panic (`incoming`), and a batch that panics anyway
//! is served again event by event. Nothing is dropped silently.
//!
//! Concurrency: events of one key (one user) are served in order, never in two batches at once
//! (a batch may take several, in order); events of different keys, from one partition or many,
//! run concurrently; a slow key (egov-user without an answer for it within the look-up budget,
//! another worker's pending request in its grace) is deferred and delays only the events behind
//! it, as long as they fit in its partition's share of the in-flight bound. A key whose backlog
//! fills that share while egov-user has no answer for it pauses its partition (memory stays
//! bounded) until egov-user answers or the events pass a code's validity and are recorded
//! `stale`: at most `USER_OTP_CODE_TTL_SECONDS` (600 s).
//!
//! Shutdown: fetching stops at once; the batches in progress get [`SHUTDOWN_GRACE`] to finish,
//! then their remaining retries are abandoned (their events are redelivered later); finished work
//! is committed synchronously.

mod batch;
mod consumer;
mod dead_letter;
mod dispatch;
mod in_flight;
mod incoming;
mod key_order;
mod offsets;
mod outgoing;
mod pipeline;
mod pumping;
mod purger;
mod retrying;
mod sent_scan;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub use dead_letter::{
    DETAIL_HEADER, ORIGINAL_SIZE_HEADER, REASON_HEADER, SOURCE_OFFSET_HEADER,
    SOURCE_PARTITION_HEADER, SOURCE_TOPIC_HEADER, SQLSTATE_HEADER, VALUE_HEADER,
};
pub use dispatch::BATCHES_IN_FLIGHT;
pub use in_flight::InFlight;
pub use sent_scan::CODE_ID_HEADER;

use crate::config::Settings;
use crate::kafka::EventProducer;
use crate::store::OtpStore;
use pipeline::Pipeline;

/// How long the batches in progress may take to finish after shutdown was requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often the consumer loop looks again at what waits without an event arriving: ready
/// events lingering for a batch ([`dispatch::LINGER`]) and paused partitions that drained.
const TICK: Duration = dispatch::LINGER;

/// One consumer's life: subscribe, admit events and run batches until shutdown (`Ok(true)`) or
/// a fatal consumer error (`Ok(false)`), then let the batches in progress finish and commit
/// finished work.
async fn consume(
    settings: &Settings,
    pipeline: &Arc<Pipeline>,
    totals: &Arc<InFlight>,
    shutdown: &CancellationToken,
    abandon: &CancellationToken,
) -> anyhow::Result<bool> {
    let assignment = consumer::Assignment::default();
    let consumer = Arc::new(
        consumer::subscribe(&settings.kafka, assignment.clone())
            .context("subscribing to requests")?,
    );
    tracing::info!(
        topic = %settings.kafka.request_topic,
        group = %settings.kafka.consumer_group,
        batches_in_flight = BATCHES_IN_FLIGHT,
        "worker consuming"
    );
    let mut dispatcher = dispatch::Dispatcher::new(
        pipeline.clone(),
        consumer.clone(),
        assignment,
        totals.clone(),
        in_flight::Bounds {
            events: settings.kafka.worker_max_in_flight_events,
            bytes: settings.kafka.worker_max_in_flight_bytes,
        },
        settings.kafka.worker_batch_size,
        abandon.clone(),
    );
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped = loop {
        dispatcher.start_batches();
        tokio::select! {
            _ = shutdown.cancelled() => break true,
            _ = tick.tick() => dispatcher.resume_drained(),
            Some(joined) = dispatcher.batches.join_next() => {
                if !dispatcher.take_back(joined) {
                    break false;
                }
            }
            Some(event) = dispatcher.deferred.recv() => dispatcher.ready_again(event),
            received = consumer.recv() => match received {
                Ok(message) => dispatcher.admit(incoming::Incoming::from_message(&message)),
                Err(rdkafka::error::KafkaError::MessageConsumptionFatal(code)) => {
                    tracing::error!(error = %code, "request topic: fatal consumer error");
                    break false;
                }
                Err(error) => {
                    tracing::warn!(%error, "request topic: consumer error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    };
    if !stopped {
        dispatcher.stop();
    }
    dispatcher.finish_all().await;
    consumer::commit(&consumer);
    Ok(stopped)
}
/// Runs the worker until `shutdown` is cancelled.
///
/// # Errors
/// When the Kafka clients cannot be created or the producer cannot be flushed at the end.
pub async fn run(
    settings: &Settings,
    store: OtpStore,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_observed(settings, store, shutdown, Arc::new(InFlight::default())).await
}

/// [`run`], keeping `totals` up to date with the request events the worker holds.
///
/// # Errors
/// As [`run`].
pub async fn run_observed(
    settings: &Settings,
    store: OtpStore,
    shutdown: CancellationToken,
    totals: Arc<InFlight>,
) -> anyhow::Result<()> {
    let producer = EventProducer::new(&settings.kafka).context("creating the Kafka producer")?;
    let purge = tokio::spawn(purger::run(
        store.clone(),
        settings.retention,
        shutdown.clone(),
    ));
    let pipeline = Arc::new(Pipeline::from_settings(settings, store, producer.clone())?);
    // Cancelled SHUTDOWN_GRACE after shutdown: abandons the batches in progress.
    let abandon = CancellationToken::new();
    let abandon_later = abandon.clone();
    let shutdown_watch = shutdown.clone();
    tokio::spawn(async move {
        shutdown_watch.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        abandon_later.cancel();
    });
    // A consumer that hits a fatal error (e.g. fenced after a broker restart) cannot recover;
    // a new one is made and resumes from the committed offsets.
    while !consume(settings, &pipeline, &totals, &shutdown, &abandon).await? {
        // What the cancelled batches handed to the producer is delivered (or has failed)
        // before the new consumer's recovery looks for it: none of it is sent twice.
        if let Err(error) = producer.flush(settings.kafka.send_timeout).await {
            tracing::warn!(%error, "flushing the producer before recreating the consumer");
        }
        tracing::warn!("recreating the request-topic consumer after a fatal error");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    abandon.cancel();
    purge.abort();
    producer
        .flush(Duration::from_secs(5))
        .await
        .context("flushing the Kafka producer")?;
    tracing::info!("worker stopped");
    Ok(())
}
