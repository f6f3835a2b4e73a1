//! The [`Pipeline`]: everything a batch of request events needs, built once per worker from the
//! settings, with the topics it writes to.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::batch::{lookup_budget, pending_grace, sms_send_window};
use super::pumping::PumpingCheck;
use crate::config::Settings;
use crate::domain::abuse::country::CountryAllowList;
use crate::domain::abuse::send_limits::SendLimits;
use crate::domain::abuse::test_numbers::TestNumbers;
use crate::domain::code::CodeHasher;
use crate::kafka::EventProducer;
use crate::localization::texts::MessageTexts;
use crate::retry::RetryPolicy;
use crate::store::OtpStore;
use crate::users::UserClient;

/// Topic names the pipeline writes to.
#[derive(Debug, Clone)]
pub(crate) struct Topics {
    /// SMS events, as egov-notification-sms consumes them (`USER_OTP_SMS_TOPIC`).
    pub(crate) sms: String,
    /// Email events, as egov-notification-mail consumes them (`USER_OTP_EMAIL_TOPIC`).
    pub(crate) email: String,
    /// Request events that cannot be served, with the reason in headers
    /// (`USER_OTP_DEAD_LETTER_TOPIC`).
    pub(crate) dead_letter: String,
    /// One event per request that reached an outcome (`USER_OTP_OUTCOME_TOPIC`).
    pub(crate) outcome: String,
}

/// Everything a batch needs; built once per worker.
pub(crate) struct Pipeline {
    /// Outcomes and codes (PostgreSQL).
    pub(crate) store: OtpStore,
    /// egov-user's `/user/_search`.
    pub(crate) users: UserClient,
    /// Writes SMS, email and dead-letter events.
    pub(crate) producer: EventProducer,
    /// For scans of the SMS topic (crash recovery, timed-out sends): brokers and security.
    pub(crate) scan_client: rdkafka::ClientConfig,
    /// Keyed hashes of codes and request fingerprints.
    pub(crate) hasher: CodeHasher,
    /// SMS and email texts: egov-localization's, else the configured ones.
    pub(crate) texts: MessageTexts,
    pub(crate) topics: Topics,
    /// Digits per code.
    pub(crate) code_length: u8,
    /// How long a code stays valid (`USER_OTP_CODE_TTL_SECONDS`).
    pub(crate) code_ttl: Duration,
    /// How long egov-notification-sms may still send an SMS after it was emitted
    /// (`USER_OTP_SMS_EXPIRY_MS`).
    pub(crate) sms_expiry: Duration,
    /// Largest record the producer writes (bytes); dead letters are cut to fit.
    pub(crate) message_max_bytes: usize,
    /// Backoff for PostgreSQL and Kafka retries.
    pub(crate) retry_policy: RetryPolicy,
    /// This process, as recorded with its outcomes (random per start).
    pub(crate) worker_id: String,
    /// Send limits per identity, enforced by the store when outcomes are recorded.
    pub(crate) send_limits: SendLimits,
    /// The SMS-pumping guard.
    pub(crate) pumping: PumpingCheck,
    /// Numbers with a fixed code.
    pub(crate) test_numbers: TestNumbers,
    /// Country codes a request may name (others are dead-lettered).
    pub(crate) allowed_country_codes: CountryAllowList,
    /// Whether login and passwordreset codes also go by email.
    pub(crate) email_enabled: bool,
    /// How long another worker's pending request (or this worker's interrupted one) may still
    /// be in flight: [`pending_grace`] of the send timeout.
    pub(crate) pending_grace: Duration,
    /// How long after a batch starts recording it may still hand an SMS to the producer:
    /// [`sms_send_window`] of the send timeout.
    pub(crate) sms_send_window: Duration,
    /// The longest a produce may wait for the broker's acknowledgement
    /// (`USER_OTP_KAFKA_SEND_TIMEOUT_MS`).
    pub(crate) send_timeout: Duration,
    /// How long one request's user search may retry within a batch before its event is
    /// deferred (module `batch::look_up`).
    pub(crate) lookup_budget: Duration,
    /// When this pipeline was made: a pending outcome this worker id recorded since then was
    /// recorded by this very process, whose producer may still hold its SMS.
    pub(crate) started: Instant,
}

impl Pipeline {
    /// The pipeline `settings` describe, writing with `producer` and storing in `store`.
    ///
    /// # Errors
    /// When the egov-user client cannot be built (an invalid URL or TLS set-up).
    pub(crate) fn from_settings(
        settings: &Settings,
        store: OtpStore,
        producer: EventProducer,
    ) -> anyhow::Result<Self> {
        let user_policy = RetryPolicy::from_settings(&settings.user_service);
        let lookup_budget = lookup_budget(&user_policy);
        let users = UserClient::new(&settings.user_service, user_policy)
            .context("creating the egov-user client")?;
        Ok(Self {
            store,
            users,
            producer,
            scan_client: crate::kafka::client_config(&settings.kafka, "user-otp-sent-scan"),
            hasher: CodeHasher::new(&settings.hmac_key_id, settings.hmac_secret.bytes()),
            texts: MessageTexts::new(settings).context("egov-localization settings")?,
            topics: Topics {
                sms: settings.kafka.sms_topic.clone(),
                email: settings.kafka.email_topic.clone(),
                dead_letter: settings.kafka.dead_letter_topic.clone(),
                outcome: settings.kafka.outcome_topic.clone(),
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
            pumping: PumpingCheck::new(settings.abuse.pumping),
            test_numbers: settings.abuse.test_numbers.clone(),
            allowed_country_codes: settings.abuse.allowed_country_codes.clone(),
            email_enabled: settings.otp.email_enabled,
            pending_grace: pending_grace(settings.kafka.send_timeout),
            sms_send_window: sms_send_window(settings.kafka.send_timeout),
            send_timeout: settings.kafka.send_timeout,
            lookup_budget,
            started: Instant::now(),
        })
    }
}
