//! Kafka clients and their delivery semantics.
//!
//! Producing: an event counts as written only once the broker acknowledged it (`acks=all`,
//! idempotent producer, so librdkafka's internal retries never duplicate it). Every send is
//! bounded by `USER_OTP_KAFKA_SEND_TIMEOUT_MS` (librdkafka's `message.timeout.ms`, plus a
//! little slack on our side): a caller learns within that time whether its event is on the
//! topic, and an HTTP caller gets 503 otherwise, never a hang.
//!
//! Consuming (the worker, [`crate::worker`]) is at-least-once: offsets are stored only for events whose
//! outcome is durable, in partition order; idempotency on the request id turns redelivery into
//! exactly-once effects.

mod best_effort;
mod client;
pub mod headers;
mod producer;

pub use best_effort::BestEffortProducer;
pub use client::{client_config, with_security};
pub use producer::{EventProducer, GroupRecord, ProduceError, RecordHeader};
