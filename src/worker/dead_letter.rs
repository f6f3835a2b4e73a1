//! Dead letters: request events the worker cannot serve go to the dead-letter topic unchanged
//! (same key, same value bytes or null, original headers kept) with headers saying why and where
//! they came from (`schemas/dead-letter-headers.schema.json`), so an operator can fix and replay
//! them. The reason never contains personal data: a rule code, a parser's position, a SQLSTATE
//! and the server's message (never its detail, which quotes values).
//!
//! A dead letter can always be written: when the event with its headers would exceed the
//! producer's `message.max.bytes` (`USER_OTP_KAFKA_MESSAGE_MAX_BYTES`), its value is cut to what
//! fits (`x-dead-letter-value: truncated`, `x-dead-letter-original-size`); should the broker still
//! refuse it as too large (a topic with a smaller `max.message.bytes`), it is written as a pointer
//! (null value, only the dead-letter headers, `x-dead-letter-value: omitted`) to the original,
//! which stays on the source topic at the given partition and offset.

use std::borrow::Cow;

use super::incoming::Incoming;
use super::outgoing::{OutHeader, Outgoing};

/// Why the event was dead-lettered: one reason code (`malformed`, `invalid_request`, …, see the
/// README's "What is dead-lettered, and why").
pub const REASON_HEADER: &str = "x-dead-letter-reason";
/// What exactly was wrong, in words (never quoting personal data).
pub const DETAIL_HEADER: &str = "x-dead-letter-detail";
/// The request topic the original event was read from.
pub const SOURCE_TOPIC_HEADER: &str = "x-dead-letter-source-topic";
/// The original event's partition (decimal).
pub const SOURCE_PARTITION_HEADER: &str = "x-dead-letter-source-partition";
/// The original event's offset (decimal): with topic and partition, where its raw bytes remain.
pub const SOURCE_OFFSET_HEADER: &str = "x-dead-letter-source-offset";
/// The SQLSTATE PostgreSQL refused the event's values with (reason `database_rejected`).
pub const SQLSTATE_HEADER: &str = "x-dead-letter-sqlstate";
/// `truncated` or `omitted` when the value is not the original's (absent when it is).
pub const VALUE_HEADER: &str = "x-dead-letter-value";
/// The original value's size in bytes, when the value is truncated or omitted.
pub const ORIGINAL_SIZE_HEADER: &str = "x-dead-letter-original-size";

/// Room left for librdkafka's per-record framing when sizing a dead letter (bytes).
const FRAMING_ALLOWANCE: usize = 1_024;

/// Why an event was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    /// No value, not JSON, not an object, or a field of the wrong JSON type.
    Malformed,
    /// Readable, but failing a `_send` validation rule.
    InvalidRequest,
    /// A header name is not UTF-8 (the headers cannot be trusted to name the request).
    UnreadableHeader,
    /// egov-user refused the search for this request (a 4xx answer).
    UserServiceRejected,
    /// egov-user answered something that is not a user search answer.
    UserServiceMalformedAnswer,
    /// PostgreSQL refused this event's values (a data, integrity or limit error), alone.
    DatabaseRejected,
    /// Handling this event alone panicked (a bug); the process stayed up.
    InternalError,
    /// The request names a country outside `USER_OTP_ALLOWED_COUNTRY_CODES` (SMS pumping).
    CountryCodeNotAllowed,
}

impl Reason {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::InvalidRequest => "invalid_request",
            Self::UnreadableHeader => "unreadable_header",
            Self::UserServiceRejected => "user_service_rejected",
            Self::UserServiceMalformedAnswer => "user_service_malformed_answer",
            Self::DatabaseRejected => "database_rejected",
            Self::InternalError => "internal_error",
            Self::CountryCodeNotAllowed => "country_code_not_allowed",
        }
    }
}

/// Why one event is dead-lettered: the reason, a detail, and extra headers (e.g. the SQLSTATE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Verdict {
    pub reason: Reason,
    pub detail: String,
    pub extra: Vec<(&'static str, String)>,
}

impl Verdict {
    pub(super) fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
            extra: Vec::new(),
        }
    }

    pub(super) fn with(mut self, header: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((header, value.into()));
        self
    }
}

/// The dead letter of `event` for `topic`, its value cut so that the whole record stays within
/// `max_bytes`. Borrows the event's value: an event kept only to be dead-lettered is not copied.
pub(super) fn build<'a>(
    event: &'a Incoming,
    verdict: &Verdict,
    topic: &str,
    max_bytes: usize,
) -> Outgoing<'a> {
    let mut headers: Vec<OutHeader<'a>> = event
        .headers
        .iter()
        .filter(|(key, _)| !key.starts_with("x-dead-letter-"))
        .map(|(key, value)| {
            (
                Cow::Borrowed(key.as_str()),
                value.as_deref().map(Cow::Borrowed),
            )
        })
        .collect();
    headers.extend(own_headers(event, verdict));
    let key_len = event.key.as_ref().map_or(0, Vec::len);
    let headers_len: usize = headers
        .iter()
        .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()))
        .sum();
    let room = max_bytes.saturating_sub(key_len + headers_len + FRAMING_ALLOWANCE + 64);
    let original = event.payload.as_deref();
    let payload = match original {
        Some(value) if value.len() > room => {
            if room == 0 {
                return pointer(event, verdict, topic);
            }
            headers.push(header(VALUE_HEADER, "truncated"));
            headers.push(header(ORIGINAL_SIZE_HEADER, value.len().to_string()));
            Some(Cow::Borrowed(&value[..room]))
        }
        other => other.map(Cow::Borrowed),
    };
    Outgoing {
        topic: topic.to_owned(),
        key: event.key.as_deref().map(Cow::Borrowed),
        payload,
        headers,
    }
}

/// The smallest dead letter of `event`: a null value and only the dead-letter headers, pointing
/// at the original by its source topic, partition and offset.
pub(super) fn pointer<'a>(event: &'a Incoming, verdict: &Verdict, topic: &str) -> Outgoing<'a> {
    let mut headers: Vec<OutHeader<'a>> = own_headers(event, verdict).collect();
    if let Some(value) = &event.payload {
        headers.push(header(VALUE_HEADER, "omitted"));
        headers.push(header(ORIGINAL_SIZE_HEADER, value.len().to_string()));
    }
    Outgoing {
        topic: topic.to_owned(),
        key: None,
        payload: None,
        headers,
    }
}

fn own_headers<'a>(event: &Incoming, verdict: &Verdict) -> impl Iterator<Item = OutHeader<'a>> {
    [
        header(REASON_HEADER, verdict.reason.as_str()),
        header(DETAIL_HEADER, verdict.detail.clone()),
        header(SOURCE_TOPIC_HEADER, event.source.topic.to_string()),
        header(SOURCE_PARTITION_HEADER, event.source.partition.to_string()),
        header(SOURCE_OFFSET_HEADER, event.source.offset.to_string()),
    ]
    .into_iter()
    .chain(
        verdict
            .extra
            .iter()
            .map(|(name, value)| header(name, value.clone()))
            .collect::<Vec<_>>(),
    )
}

fn header<'a>(name: &'static str, value: impl Into<String>) -> OutHeader<'a> {
    (
        Cow::Borrowed(name),
        Some(Cow::Owned(value.into().into_bytes())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SourcePosition;

    fn event(payload: Option<Vec<u8>>) -> Incoming {
        Incoming {
            source: SourcePosition {
                topic: "req".into(),
                partition: 2,
                offset: 41,
            },
            key: Some(b"pb:9876543210".to_vec()),
            payload,
            headers: vec![
                ("x-request-id".into(), Some(b"r-1".to_vec())),
                ("x-dead-letter-reason".into(), Some(b"old".to_vec())),
                ("nullable".into(), None),
            ],
            unreadable_headers: 0,
            timestamp_ms: None,
            request_id: "caller:r-1".into(),
            caller_id: Some("r-1".into()),
            assignment: crate::worker::consumer::AssignmentId::default(),
            ticket: 0,
            lock: 0,
        }
    }

    fn value_of<'a>(out: &'a Outgoing<'_>, name: &str) -> Option<&'a [u8]> {
        out.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    #[test]
    fn a_dead_letter_keeps_key_value_and_headers_and_says_why() {
        let e = event(Some(b"{}".to_vec()));
        let verdict =
            Verdict::new(Reason::DatabaseRejected, "value too long").with(SQLSTATE_HEADER, "22001");
        let out = build(&e, &verdict, "dlq", 1_000_000);
        assert_eq!(out.payload.as_deref(), Some(&b"{}"[..]));
        assert_eq!(out.key.as_deref(), Some(&b"pb:9876543210"[..]));
        assert_eq!(value_of(&out, "x-request-id"), Some(&b"r-1"[..]));
        assert_eq!(
            value_of(&out, REASON_HEADER),
            Some(&b"database_rejected"[..])
        );
        assert_eq!(value_of(&out, SQLSTATE_HEADER), Some(&b"22001"[..]));
        assert_eq!(value_of(&out, SOURCE_OFFSET_HEADER), Some(&b"41"[..]));
        assert_eq!(value_of(&out, VALUE_HEADER), None);
        let old_reasons = out
            .headers
            .iter()
            .filter(|(k, _)| k == REASON_HEADER)
            .count();
        assert_eq!(old_reasons, 1, "earlier dead-letter headers are replaced");
        assert!(out
            .headers
            .iter()
            .any(|(k, v)| k == "nullable" && v.is_none()));
    }

    #[test]
    fn a_null_value_stays_null() {
        let e = event(None);
        let out = build(
            &e,
            &Verdict::new(Reason::Malformed, "no value"),
            "dlq",
            1_000_000,
        );
        assert!(out.payload.is_none());
        assert_eq!(value_of(&out, VALUE_HEADER), None);
    }

    #[test]
    fn an_oversize_value_is_cut_to_fit_and_says_so() {
        let e = event(Some(vec![b'x'; 1_040_000]));
        let out = build(
            &e,
            &Verdict::new(Reason::Malformed, "not JSON"),
            "dlq",
            1_000_000,
        );
        assert!(
            out.size_bytes() <= 1_000_000 - FRAMING_ALLOWANCE,
            "{}",
            out.size_bytes()
        );
        assert_eq!(value_of(&out, VALUE_HEADER), Some(&b"truncated"[..]));
        assert_eq!(value_of(&out, ORIGINAL_SIZE_HEADER), Some(&b"1040000"[..]));
    }

    #[test]
    fn a_pointer_has_no_value_and_names_the_original() {
        let e = event(Some(vec![b'x'; 10]));
        let out = pointer(&e, &Verdict::new(Reason::Malformed, "x"), "dlq");
        assert!(out.payload.is_none() && out.key.is_none());
        assert_eq!(value_of(&out, VALUE_HEADER), Some(&b"omitted"[..]));
        assert_eq!(value_of(&out, SOURCE_TOPIC_HEADER), Some(&b"req"[..]));
        assert_eq!(value_of(&out, "x-request-id"), None);
    }
}
