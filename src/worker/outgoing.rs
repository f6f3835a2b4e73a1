//! An event ready to produce (SMS, email or dead letter), borrowing what it can from the request
//! event it answers.

use std::borrow::Cow;

use crate::kafka::{EventProducer, ProduceError};

/// One header of an outgoing event: its name and value (`None`: a null value), borrowed or
/// owned.
pub(super) type OutHeader<'a> = (Cow<'a, str>, Option<Cow<'a, [u8]>>);

/// An event ready to produce; it may borrow from the request event it answers (a dead letter
/// borrows the original's value instead of copying it).
pub(super) struct Outgoing<'a> {
    pub topic: String,
    pub key: Option<Cow<'a, [u8]>>,
    /// `None`: a null value.
    pub payload: Option<Cow<'a, [u8]>>,
    pub headers: Vec<OutHeader<'a>>,
}

impl Outgoing<'_> {
    /// Writes the event and waits for the broker's acknowledgement.
    ///
    /// # Errors
    /// As [`EventProducer::send`].
    pub(super) async fn send(&self, producer: &EventProducer) -> Result<(), ProduceError> {
        let headers: Vec<(&str, Option<&[u8]>)> = self
            .headers
            .iter()
            .map(|(key, value)| (key.as_ref(), value.as_deref()))
            .collect();
        producer
            .send(
                &self.topic,
                self.key.as_deref(),
                self.payload.as_deref(),
                &headers,
            )
            .await
    }

    /// Key, value and header bytes (what librdkafka compares with `message.max.bytes`, minus
    /// its framing).
    #[cfg(test)]
    pub(crate) fn size_bytes(&self) -> usize {
        self.key.as_ref().map_or(0, |k| k.len())
            + self.payload.as_ref().map_or(0, |p| p.len())
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()))
                .sum::<usize>()
    }
}
