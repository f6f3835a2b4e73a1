//! `user-otp`: a Kafka-native re-implementation of DIGIT's User OTP service.
//!
//! Request path: `POST /user-otp/v1/_send` ([`http`]) validates a request ([`domain`]) and
//! writes it as an event to the request topic ([`kafka`]), answering 201 only once the broker
//! has acknowledged it. The worker ([`worker`]) consumes that topic, looks the user up in
//! egov-user, stores a keyed hash of a fresh code in PostgreSQL and emits the SMS event.
//! Configuration is typed and validated at start-up ([`config`]).

#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod failure;
pub mod http;
pub mod kafka;
pub mod localization;
pub mod retry;
pub mod roles;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod users;
pub mod worker;
