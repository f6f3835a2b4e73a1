//! How a failure is handled, decided once for every dependency (DESIGN "Failures").
//!
//! - [`FailureKind::Transient`]: the dependency is (briefly) unable to answer: connection lost,
//!   timeout, serialization failure or deadlock, out of resources, server shutting down, broker
//!   unavailable. Retried in place with capped backoff, for as long as it takes.
//! - [`FailureKind::Poison`]: caused by the data of one event: PostgreSQL refuses the values
//!   (SQLSTATE class 22 data exception, 23 integrity constraint, 54 program limit exceeded),
//!   the broker refuses the record (too large, invalid). Retrying the same event cannot succeed;
//!   the event is isolated (its batch split until it stands alone) and dead-lettered with the
//!   reason, and the rest of the batch is served.
//! - [`FailureKind::Systemic`]: the same for every event: a missing privilege or table (class 42,
//!   28, 3D, 3F), a missing topic, an authorization error, an internal error. An outage of
//!   configuration: retried like a transient failure, but logged at error level, and never a
//!   reason to dead-letter traffic.
//!
//! Classification errs towards retrying: anything not known to be caused by the event is
//! transient or systemic, so at worst a partition waits (loudly) instead of losing requests. A
//! poison verdict for a lone event is also cross-checked by the caller where it can be (the
//! worker records a benign canary row; if that fails too, the failure is systemic).

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// What to do about a failure (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Retry in place with backoff.
    Transient,
    /// Isolate the event that caused it and dead-letter it.
    Poison,
    /// Retry in place with backoff, logged at error level: configuration or a bug.
    Systemic,
}

/// A failure that knows its [`FailureKind`].
pub trait Classify {
    fn kind(&self) -> FailureKind;
}

/// The kind of a PostgreSQL SQLSTATE, by its class (the first two characters; PostgreSQL
/// documentation, Appendix A "PostgreSQL Error Codes").
pub fn sqlstate_kind(sqlstate: &str) -> FailureKind {
    match sqlstate.get(..2).unwrap_or_default() {
        // connection exception, invalid transaction state (a read-only standby after a
        // failover), transaction rollback (serialization failure, deadlock), insufficient
        // resources, operator intervention (shutdown, cannot connect now, query cancelled),
        // system error (I/O)
        "08" | "25" | "40" | "53" | "57" | "58" => FailureKind::Transient,
        // lock not available
        "55" if sqlstate == "55P03" => FailureKind::Transient,
        // data exception, integrity constraint violation, program limit exceeded
        "22" | "23" | "54" => FailureKind::Poison,
        // authorization, syntax or access rule, missing database or schema, unsupported
        // feature, internal error, and anything else
        _ => FailureKind::Systemic,
    }
}

/// The kind of a librdkafka error code seen when producing (librdkafka `rdkafka.h`,
/// `rd_kafka_resp_err_t`).
pub fn kafka_code_kind(code: RDKafkaErrorCode) -> FailureKind {
    use RDKafkaErrorCode as C;
    match code {
        C::MessageSizeTooLarge
        | C::InvalidMessageSize
        | C::InvalidMessage
        | C::InvalidRecord
        | C::MessageBatchTooLarge => FailureKind::Poison,
        C::TopicAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::SaslAuthenticationFailed
        | C::UnknownTopicOrPartition
        | C::UnknownTopic
        | C::UnknownPartition
        | C::InvalidConfig => FailureKind::Systemic,
        _ => FailureKind::Transient,
    }
}

impl Classify for KafkaError {
    fn kind(&self) -> FailureKind {
        match self.rdkafka_error_code() {
            Some(code) => kafka_code_kind(code),
            None => match self {
                KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => {
                    FailureKind::Systemic
                }
                _ => FailureKind::Transient,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified_by_class() {
        let cases = [
            ("08006", FailureKind::Transient), // connection failure
            ("40001", FailureKind::Transient), // serialization failure
            ("40P01", FailureKind::Transient), // deadlock
            ("53300", FailureKind::Transient), // too many connections
            ("57P01", FailureKind::Transient), // admin shutdown
            ("57P03", FailureKind::Transient), // cannot connect now
            ("25006", FailureKind::Transient), // read-only transaction (standby)
            ("55P03", FailureKind::Transient), // lock not available
            ("22021", FailureKind::Poison),    // invalid byte sequence (U+0000)
            ("22001", FailureKind::Poison),    // value too long
            ("23514", FailureKind::Poison),    // check violation
            ("54000", FailureKind::Poison),    // index row too large
            ("42501", FailureKind::Systemic),  // insufficient privilege
            ("42P01", FailureKind::Systemic),  // undefined table
            ("28P01", FailureKind::Systemic),  // wrong password
            ("3D000", FailureKind::Systemic),  // no such database
            ("XX000", FailureKind::Systemic),  // internal error
            ("", FailureKind::Systemic),
        ];
        for (sqlstate, kind) in cases {
            assert_eq!(sqlstate_kind(sqlstate), kind, "{sqlstate}");
        }
    }

    #[test]
    fn produce_errors_are_classified_by_code() {
        use RDKafkaErrorCode as C;
        assert_eq!(kafka_code_kind(C::MessageSizeTooLarge), FailureKind::Poison);
        assert_eq!(kafka_code_kind(C::InvalidRecord), FailureKind::Poison);
        assert_eq!(
            kafka_code_kind(C::TopicAuthorizationFailed),
            FailureKind::Systemic
        );
        assert_eq!(
            kafka_code_kind(C::UnknownTopicOrPartition),
            FailureKind::Systemic
        );
        assert_eq!(kafka_code_kind(C::MessageTimedOut), FailureKind::Transient);
        assert_eq!(kafka_code_kind(C::AllBrokersDown), FailureKind::Transient);
        assert_eq!(kafka_code_kind(C::QueueFull), FailureKind::Transient);
        assert_eq!(
            KafkaError::MessageProduction(C::MessageSizeTooLarge).kind(),
            FailureKind::Poison
        );
        assert_eq!(KafkaError::Canceled.kind(), FailureKind::Transient);
    }
}
