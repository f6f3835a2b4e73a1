//! A request event as the worker holds it while a batch is processed (owned, so the consumer can
//! keep polling), and its request id.
//!
//! Reading an event never panics: headers are read by [`read_headers`] (each on its own behind
//! `catch_unwind`, since rdkafka unwraps header names as UTF-8). A header whose name cannot be
//! read is left out and counted in [`Incoming::unreadable_headers`]; the worker dead-letters such an event (reason
//! `unreadable_header`) rather than guess which request it was. The dead letter points at the
//! original (source topic, partition, offset) where the raw bytes remain.

use rdkafka::message::{BorrowedMessage, Message};

use super::consumer::AssignmentId;
use super::key_order::{LockKey, Ticket};
use crate::domain::request_event::REQUEST_ID_HEADER;
use crate::domain::request_id::{request_id, sensible_caller_id};
pub(crate) use crate::kafka::headers::{header_text, read_headers, Header};
use crate::store::SourcePosition;

/// One consumed request event.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub source: SourcePosition,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    /// The headers that could be read, in order.
    pub headers: Vec<Header>,
    /// Headers left out because their name is not UTF-8.
    pub unreadable_headers: usize,
    /// The event's Kafka timestamp (ms since the epoch), when it has one.
    pub timestamp_ms: Option<i64>,
    /// `caller:<x-request-id>` when the header is present and sensible, else
    /// `offset:<topic>/<partition>/<offset>` ([`crate::domain::request_id`]): stable across
    /// redeliveries and replays of the same event.
    pub request_id: String,
    /// The caller's `x-request-id` as sent (trimmed), when sensible: carried on to the SMS and
    /// email events for correlation.
    pub caller_id: Option<String>,
    /// The assignment of the partition the event was fetched under (see
    /// `consumer::Assignment`); set when the event is admitted.
    pub(crate) assignment: AssignmentId,
    /// The event's admission number in the dispatcher's key order (`key_order`); set when the
    /// event is admitted.
    pub(crate) ticket: Ticket,
    /// The lock key it is ordered by (`key_order`); set when the event is admitted.
    pub(crate) lock: LockKey,
}

impl Incoming {
    pub(crate) fn from_message(message: &BorrowedMessage<'_>) -> Self {
        let source = SourcePosition {
            topic: message.topic().into(),
            partition: message.partition(),
            offset: message.offset(),
        };
        let (headers, unreadable_headers) = message.headers().map(read_headers).unwrap_or_default();
        let caller_id = header_text(&headers, REQUEST_ID_HEADER)
            .and_then(sensible_caller_id)
            .map(str::to_owned);
        let request_id = request_id(
            caller_id.as_deref(),
            &source.topic,
            source.partition,
            source.offset,
        );
        Self {
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
            unreadable_headers,
            timestamp_ms: message.timestamp().to_millis(),
            request_id,
            caller_id,
            source,
            assignment: AssignmentId::default(),
            ticket: 0,
            lock: 0,
        }
    }

    /// The id for the `x-request-id` header of the events this one causes: the caller's own
    /// id when it had one, else the request id.
    pub(crate) fn correlation_id(&self) -> &str {
        self.caller_id.as_deref().unwrap_or(&self.request_id)
    }

    /// Bytes this event holds in memory, for the worker's in-flight bound: key, value and
    /// headers, and what holding them costs (each header is a `(String, Option<Vec<u8>>)` with up
    /// to two heap allocations: 100,000 one-letter headers hold about 8 MB, not 100 KB).
    pub(crate) fn size_bytes(&self) -> usize {
        const ALLOCATION: usize = 16;
        std::mem::size_of::<Self>()
            + self.key.as_ref().map_or(0, |k| k.len() + ALLOCATION)
            + self.payload.as_ref().map_or(0, |p| p.len() + ALLOCATION)
            + self.request_id.len()
            + ALLOCATION
            + self.caller_id.as_ref().map_or(0, |c| c.len() + ALLOCATION)
            + self.source.topic.len()
            + ALLOCATION
            + self
                .headers
                .iter()
                .map(|(name, value)| {
                    std::mem::size_of::<Header>()
                        + name.len()
                        + ALLOCATION
                        + value.as_ref().map_or(0, |v| v.len() + ALLOCATION)
                })
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_counts_what_many_small_headers_cost() {
        let event = Incoming {
            source: SourcePosition {
                topic: "t".into(),
                partition: 0,
                offset: 0,
            },
            key: None,
            payload: Some(vec![0; 1_000]),
            headers: (0..100_000).map(|_| ("a".to_owned(), None)).collect(),
            unreadable_headers: 0,
            timestamp_ms: None,
            request_id: "offset:t/0/0".into(),
            caller_id: None,
            assignment: AssignmentId::default(),
            ticket: 0,
            lock: 0,
        };
        // 100,000 one-byte names, but each header costs its tuple and its allocation.
        assert!(event.size_bytes() > 100_000 * 60, "{}", event.size_bytes());
    }
}
