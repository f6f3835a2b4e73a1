//! The worker: consumes OTP request events and serves each exactly once in effect.
//!
//! Delivery model: at-least-once consumption (`consumer`: an offset is stored only after its
//! batch's outcomes are in PostgreSQL and its SMS events are acknowledged) plus idempotency on
//! the request key (request id and fingerprint, [`crate::domain::request_id`]) enforced by the
//! database ([`crate::store`]) gives one outcome and at most one code per request, and one SMS,
//! including after redelivery, replay and crashes (`sent_scan`).
//!
//! The promise: no input stops the worker, crashes the process or stalls a partition. Every
//! failure is classified ([`crate::failure`]): transient and systemic ones are retried in place
//! (`retrying`), a poison one is confined to its event (`record` splits a batch until the event
//! stands alone) and that event goes to the dead-letter topic with the reason (`dead_letter`);
//! reading an event cannot panic (`incoming`), and a batch that panics anyway is served again
//! event by event (`lanes`). Nothing is dropped silently.
//!
//! Concurrency: [`LANES`] batch pipelines per process, one per group of partitions
//! (`lanes`), so a user's requests (one key, one partition) are never reordered. Memory is
//! bounded by count and bytes (`in_flight`): a lane over its share pauses its partitions.
//!
//! Shutdown: fetching stops at once; the batches in progress get [`SHUTDOWN_GRACE`] to finish,
//! then their remaining retries are abandoned (their events are redelivered later); finished work
//! is committed synchronously.

mod batch;
mod classify;
mod consumer;
mod dead_letter;
mod in_flight;
mod incoming;
mod lanes;
mod lookup;
mod notify;
mod pumping;
mod purger;
mod record;
mod retrying;
mod sent_scan;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub use batch::{BatchSummary, Pipeline, Topics};
pub use dead_letter::{
    DETAIL_HEADER, ORIGINAL_SIZE_HEADER, REASON_HEADER, SOURCE_OFFSET_HEADER,
    SOURCE_PARTITION_HEADER, SOURCE_TOPIC_HEADER, SQLSTATE_HEADER, VALUE_HEADER,
};
pub use in_flight::InFlight;
pub use sent_scan::CODE_ID_HEADER;

use crate::config::Settings;
use crate::domain::code::CodeHasher;
use crate::domain::templates::MessageTemplates;
use crate::domain::OtpType;
use crate::kafka::EventProducer;
use crate::retry::RetryPolicy;
use crate::store::OtpStore;
use crate::users::UserClient;

/// How long the batch in progress may take to finish after shutdown was requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Concurrent batch pipelines per worker (module `lanes`); partition `p` is served by lane
/// `p % LANES`, so at most this many of a worker's partitions are processed at once.
pub const LANES: usize = 6;

impl Pipeline {
    pub fn from_settings(
        settings: &Settings,
        store: OtpStore,
        producer: EventProducer,
    ) -> anyhow::Result<Self> {
        let users = UserClient::new(
            &settings.user_service,
            RetryPolicy::from_settings(&settings.user_service),
        )
        .context("creating the egov-user client")?;
        Ok(Self {
            store,
            users,
            producer,
            bootstrap_servers: settings.kafka.bootstrap_servers.clone(),
            hasher: CodeHasher::new(&settings.hmac_key_id, settings.hmac_secret.bytes()),
            templates: templates(settings),
            topics: Topics {
                sms: settings.kafka.sms_topic.clone(),
                email: settings.kafka.email_topic.clone(),
                dead_letter: settings.kafka.dead_letter_topic.clone(),
            },
            code_length: settings.otp.code_length,
            code_ttl: settings.otp.code_ttl,
            sms_expiry: settings.otp.sms_expiry,
            message_max_bytes: settings.kafka.message_max_bytes,
            retry_policy: RetryPolicy::default(),
            // With static membership the instance id names the worker across restarts: a
            // restarted instance knows its predecessor's pending requests are not in flight
            // (the broker fenced it) and recovers them without the grace wait.
            worker_id: settings
                .kafka
                .group_instance_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            send_limits: settings.abuse.send_limits,
            pumping: pumping::PumpingCheck::new(settings.abuse.pumping),
            test_numbers: settings.abuse.test_numbers.clone(),
            allowed_country_codes: settings.abuse.allowed_country_codes.clone(),
            email_enabled: settings.otp.email_enabled,
        })
    }
}

/// DIGIT's default texts with the configured per-type overrides.
fn templates(settings: &Settings) -> MessageTemplates {
    [OtpType::Register, OtpType::Login, OtpType::PasswordReset]
        .into_iter()
        .fold(MessageTemplates::default(), |templates, otp_type| {
            let templates = match settings.otp.sms_texts.get(otp_type) {
                Some(text) => templates.with_sms_text(otp_type, text.clone()),
                None => templates,
            };
            match settings.otp.dlt_template_ids.get(otp_type) {
                Some(id) => templates.with_dlt_template_id(otp_type, id.clone()),
                None => templates,
            }
        })
}

/// How often the consumer loop checks whether a paused lane has drained.
const RESUME_CHECK: Duration = Duration::from_millis(20);

/// One consumer's life: subscribe, route events to the lanes until shutdown (`Ok(true)`) or a
/// fatal consumer error (`Ok(false)`), then let the lanes finish and commit finished work.
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
        lanes = LANES,
        "worker consuming"
    );
    let mut lanes = lanes::Lanes::start(
        &lanes::Bounds {
            lanes: LANES,
            batch_size: settings.kafka.worker_batch_size,
            max_in_flight_events: settings.kafka.worker_max_in_flight_events,
            max_in_flight_bytes: settings.kafka.worker_max_in_flight_bytes,
        },
        pipeline.clone(),
        consumer.clone(),
        assignment.clone(),
        totals.clone(),
        shutdown.clone(),
        abandon.clone(),
    );
    let mut resume_check = tokio::time::interval(RESUME_CHECK);
    resume_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break true,
            _ = resume_check.tick() => lanes.resume_drained(),
            received = consumer.recv() => match received {
                Ok(message) => {
                    let mut event = incoming::Incoming::from_message(&message);
                    let Some(epoch) = assignment.epoch(&event.source.topic, event.source.partition)
                    else {
                        continue; // fetched just before its partition was revoked
                    };
                    event.epoch = epoch;
                    if !lanes.route(event) {
                        break true;
                    }
                }
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
    lanes.finish().await;
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
