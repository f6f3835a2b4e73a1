//! The outcome event of a validation ([`OutcomeEvent`] with subject `validation`), written to
//! the outcome topic after `_validate` decided.
//!
//! Best effort, by design: the answer never waits for Kafka (egov-user's login waits on
//! `_validate`, and a slow broker must not slow logins or add a timing signal), so the event is
//! queued on a fire-and-forget producer ([`BestEffortProducer`]: batched, no task or future per
//! event), and a broker that refuses or does not acknowledge it within the send timeout costs
//! that one event and a warning. The same event is
//! built and handed over for every result, code or no code, so this step adds no timing
//! difference either ([contract §7](../../docs/contract.md#7-egov-otp-api)).
//!
//! Key and `x-request-id`: the request id of the code that was checked, so a validation lands
//! on the same partition as its request's outcome; no key without a code.

use crate::domain::otp_check::ValidateRequest;
use crate::domain::outcome_event::{OutcomeEvent, Subject, ValidationResult};
use crate::domain::request_event::REQUEST_ID_HEADER;
use crate::domain::unix_time::unix_ms;
use crate::kafka::BestEffortProducer;

/// The code a validation checked: its id (egov-otp's `UUID`) and the request that made it.
pub(super) struct CheckedCode {
    pub(super) id: uuid::Uuid,
    pub(super) request_id: String,
}

/// Hands the outcome event of one validation to the producer and returns at once.
pub(super) fn announce(
    producer: &BestEffortProducer,
    topic: &std::sync::Arc<str>,
    request: &ValidateRequest,
    code: Option<&CheckedCode>,
    result: ValidationResult,
) {
    let event = OutcomeEvent {
        subject: Subject::Validation,
        request_id: code.map(|c| c.request_id.clone()),
        correlation_id: request.correlation_id.clone(),
        tenant_id: Some(request.root_tenant().to_owned()),
        otp_type: None,
        identity: Some(OutcomeEvent::masked(&request.identity)),
        outcome: result.as_str(),
        detail: None,
        code_id: code.map(|c| c.id.to_string()),
        redelivered: false,
        requested_at: None,
        decided_at: unix_ms(std::time::SystemTime::now()),
    };
    let key = code.map(|c| c.request_id.as_bytes());
    let headers: &[(&str, Option<&[u8]>)] = match key {
        Some(id) => &[(REQUEST_ID_HEADER, Some(id))],
        None => &[],
    };
    producer.send(topic, key, &event.to_json(), headers);
}
