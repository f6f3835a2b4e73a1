//! A request event as the worker holds it while a batch is processed (owned, so the consumer can
//! keep polling), and its request id.

use rdkafka::message::{BorrowedMessage, Headers, Message};

use crate::domain::request_event::REQUEST_ID_HEADER;
use crate::store::SourcePosition;

/// One consumed request event.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub source: SourcePosition,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// The event's Kafka timestamp (ms since the epoch), when it has one.
    pub timestamp_ms: Option<i64>,
    /// The `x-request-id` header if present and sensible, else `<topic>/<partition>/<offset>`:
    /// stable across redeliveries and replays of the same event.
    pub request_id: String,
    /// The ownership epoch of the partition when the event was fetched (see
    /// `consumer::Assignment`); 0 until routed.
    pub epoch: u64,
}

/// Longest request id taken from a header.
const MAX_REQUEST_ID_LEN: usize = 128;

impl Incoming {
    pub fn from_message(message: &BorrowedMessage<'_>) -> Self {
        let source = SourcePosition {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
        };
        let headers: Vec<(String, Vec<u8>)> = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        let request_id = headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(REQUEST_ID_HEADER))
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
            .map(str::trim)
            .filter(|id| {
                !id.is_empty()
                    && id.len() <= MAX_REQUEST_ID_LEN
                    && id.bytes().all(|b| b.is_ascii_graphic())
            })
            .map_or_else(
                || format!("{}/{}/{}", source.topic, source.partition, source.offset),
                str::to_owned,
            );
        Self {
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
            timestamp_ms: message.timestamp().to_millis(),
            request_id,
            source,
            epoch: 0,
        }
    }
}
