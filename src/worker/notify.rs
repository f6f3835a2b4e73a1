//! The events a served request emits: the SMS event (contract §4) and, where the plan has an
//! address, the email event (§5). Both carry the request's key and its `x-request-id` header.

use std::time::SystemTime;

use serde::Serialize;

use super::batch::{epoch_ms, Topics};
use crate::domain::code::OtpCode;
use crate::domain::decide::SendPlan;
use crate::domain::notification::{EmailEvent, SmsEvent};
use crate::domain::request_event::{request_key, REQUEST_ID_HEADER};
use crate::domain::templates::MessageTemplates;
use crate::domain::OtpRequest;
use crate::kafka::{EventProducer, ProduceError};

/// An event ready to produce.
pub struct Outgoing {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Outgoing {
    pub async fn send(&self, producer: &EventProducer) -> Result<(), ProduceError> {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_slice()))
            .collect();
        producer
            .send(&self.topic, self.key.as_deref(), &self.payload, &headers)
            .await
    }
}

/// The SMS event, and the email event when the plan has an address, for one delivery.
pub fn for_delivery(
    request: &OtpRequest,
    request_id: &str,
    plan: &SendPlan,
    code: &OtpCode,
    templates: &MessageTemplates,
    topics: &Topics,
    sms_expires_at: SystemTime,
) -> Vec<Outgoing> {
    let otp_type = request.otp_type;
    let key = request_key(request).into_bytes();
    let headers = vec![(REQUEST_ID_HEADER.to_owned(), request_id.as_bytes().to_vec())];
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
        payload: to_json(&sms),
        headers: headers.clone(),
    }];
    if let (Some(address), Some((subject, body))) =
        (plan.email_to.as_deref(), templates.email(otp_type, code))
    {
        events.push(Outgoing {
            topic: topics.email.clone(),
            key: Some(key),
            payload: to_json(&EmailEvent::new(address, subject, body)),
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
