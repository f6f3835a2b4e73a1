//! The events a served request emits: the SMS event (contract §4) and, where the plan has an
//! address, the email event (§5). Both carry the request's key and its `x-request-id` header.

use std::borrow::Cow;
use std::time::SystemTime;

use serde::Serialize;

use uuid::Uuid;

use super::batch::{epoch_ms, Topics};
use super::sent_scan::CODE_ID_HEADER;
use crate::domain::code::OtpCode;
use crate::domain::decide::SendPlan;
use crate::domain::notification::{EmailEvent, SmsEvent};
use crate::domain::request_event::{request_key, REQUEST_ID_HEADER};
use crate::domain::templates::MessageTemplates;
use crate::domain::OtpRequest;
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

/// The SMS event, and the email event when the plan has an address, for one delivery. Both
/// carry `x-request-id` (`correlation_id`: the caller's id, else the request id) and
/// `x-otp-code-id` (the code's UUID, by which a scan of the SMS topic finds them).
#[allow(clippy::too_many_arguments)]
pub(super) fn for_delivery(
    request: &OtpRequest,
    correlation_id: &str,
    code_id: &Uuid,
    plan: &SendPlan,
    code: &OtpCode,
    templates: &MessageTemplates,
    topics: &Topics,
    sms_expires_at: SystemTime,
) -> Vec<Outgoing<'static>> {
    let otp_type = request.otp_type;
    let key: Cow<'static, [u8]> = Cow::Owned(request_key(request).into_bytes());
    let headers = vec![
        (
            Cow::Borrowed(REQUEST_ID_HEADER),
            Some(Cow::Owned(correlation_id.as_bytes().to_vec())),
        ),
        (
            Cow::Borrowed(CODE_ID_HEADER),
            Some(Cow::Owned(code_id.to_string().into_bytes())),
        ),
    ];
    let sms = SmsEvent::new(
        plan.sms_to.clone(),
        templates.sms_text(otp_type, code),
        epoch_ms(sms_expires_at),
        templates.dlt_template_id(otp_type).map(str::to_owned),
        Some(request.locale().to_owned()),
        Some(request.tenant_id.clone()),
    );
    let mut events = vec![Outgoing {
        topic: topics.sms.clone(),
        key: Some(key.clone()),
        payload: Some(Cow::Owned(to_json(&sms))),
        headers: headers.clone(),
    }];
    if let (Some(address), Some((subject, body))) =
        (plan.email_to.as_deref(), templates.email(otp_type, code))
    {
        events.push(Outgoing {
            topic: topics.email.clone(),
            key: Some(key),
            payload: Some(Cow::Owned(to_json(&EmailEvent::new(
                address, subject, body,
            )))),
            headers,
        });
    }
    events
}

/// Serialises an event made only of strings, numbers and booleans (cannot fail).
fn to_json<T: Serialize>(event: &T) -> Vec<u8> {
    serde_json::to_vec(event).unwrap_or_else(|error| {
        tracing::error!(%error, "cannot serialise an outgoing event");
        Vec::new()
    })
}
