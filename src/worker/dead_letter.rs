//! Dead letters: request events the worker cannot serve go to the dead-letter topic unchanged
//! (same key, same value bytes, original headers kept) with headers saying why and where they came
//! from (`schemas/dead-letter-headers.schema.json`), so an operator can fix and replay them.
//! The reason never contains personal data: a rule code or a parser's position, not a value.

use super::incoming::Incoming;

pub const REASON_HEADER: &str = "x-dead-letter-reason";
pub const DETAIL_HEADER: &str = "x-dead-letter-detail";
pub const SOURCE_TOPIC_HEADER: &str = "x-dead-letter-source-topic";
pub const SOURCE_PARTITION_HEADER: &str = "x-dead-letter-source-partition";
pub const SOURCE_OFFSET_HEADER: &str = "x-dead-letter-source-offset";

/// Why an event was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No value, not JSON, not an object, or a field of the wrong JSON type.
    Malformed,
    /// Readable, but failing a `_send` validation rule.
    InvalidRequest,
    /// egov-user refused the search for this request (a 4xx answer).
    UserServiceRejected,
    /// egov-user answered something that is not a user search answer.
    UserServiceMalformedAnswer,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::InvalidRequest => "invalid_request",
            Self::UserServiceRejected => "user_service_rejected",
            Self::UserServiceMalformedAnswer => "user_service_malformed_answer",
        }
    }
}

/// The headers of the dead letter for `event`: its own, minus any earlier dead-letter headers,
/// plus the reason and the source position.
pub fn headers(event: &Incoming, reason: Reason, detail: &str) -> Vec<(String, Vec<u8>)> {
    let mut headers: Vec<(String, Vec<u8>)> = event
        .headers
        .iter()
        .filter(|(key, _)| !key.starts_with("x-dead-letter-"))
        .cloned()
        .collect();
    let own = [
        (REASON_HEADER, reason.as_str().to_owned()),
        (DETAIL_HEADER, detail.to_owned()),
        (SOURCE_TOPIC_HEADER, event.source.topic.clone()),
        (SOURCE_PARTITION_HEADER, event.source.partition.to_string()),
        (SOURCE_OFFSET_HEADER, event.source.offset.to_string()),
    ];
    headers.extend(
        own.into_iter()
            .map(|(key, value)| (key.to_owned(), value.into_bytes())),
    );
    headers
}
