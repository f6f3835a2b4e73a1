//! The outcome event: what became of one OTP request or one validation, for whoever needs to
//! know without reading our database (audit, the synchronous `_send` mode, dashboards).
//! `schemas/outcome-event.schema.json` is its contract.
//!
//! One event per request (written by the worker once the outcome is final, right after the SMS
//! it caused went to the producer, in the same produce requests: module
//! `worker::batch::announce`) and one per validation (written by the egov-otp API after it
//! answered). Delivery is at least once: a redelivered or replayed request whose outcome was
//! recorded earlier is announced again with `redelivered: true`, so consumers that count should
//! deduplicate on (`subject`, `requestId`), keeping the latest event by offset (a `sent` whose
//! SMS is not acknowledged after all is followed by the recovered request's event).
//!
//! It never carries a code or a full mobile number: the identity is masked as in logs
//! ([`Masked`]: all but the last four characters hidden). The Kafka key is the request id (or,
//! for a validation without a code, nothing), never the number.

use serde::Serialize;

use super::Masked;

/// What an outcome event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    /// An OTP request (`_send` or a request event).
    Request,
    /// A call of `/otp/v1/_validate`.
    Validation,
}

/// The outcome of a request that was dead-lettered (never recorded: a replay after the cause
/// is fixed serves it).
pub const DEAD_LETTERED: &str = "dead_lettered";

/// The result of one validation, as the outcome event names it. The caller's answer is the same
/// for every failure ([contract §7](../../docs/contract.md#7-egov-otp-api)); the event tells an
/// operator which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationResult {
    /// The right code, used by this call.
    Verified,
    /// A wrong code for a live code.
    Wrong,
    /// The identity has no code (or only codes under an unknown key).
    NoCode,
    /// The newest code's validity has passed.
    Expired,
    /// The newest code was used already (possibly by a concurrent call).
    Used,
    /// The newest code took its most wrong attempts (`USER_OTP_MAX_FAILED_ATTEMPTS`).
    AttemptsExhausted,
    /// The identity's guess budget (`USER_OTP_VALIDATE_FAILURES_PER_HOUR`) is spent, or other
    /// validations of it kept winning the budget's compare-and-set.
    BudgetExhausted,
}

impl ValidationResult {
    /// Every result, for the schema test.
    pub const ALL: [Self; 7] = [
        Self::Verified,
        Self::Wrong,
        Self::NoCode,
        Self::Expired,
        Self::Used,
        Self::AttemptsExhausted,
        Self::BudgetExhausted,
    ];

    /// The `outcome` member for this result.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Wrong => "wrong",
            Self::NoCode => "no_code",
            Self::Expired => "expired",
            Self::Used => "used",
            Self::AttemptsExhausted => "attempts_exhausted",
            Self::BudgetExhausted => "budget_exhausted",
        }
    }
}

/// Value of an event on the outcome topic (`USER_OTP_OUTCOME_TOPIC`); every member is written,
/// `null` when unknown, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeEvent {
    /// Request or validation.
    pub subject: Subject,
    /// `caller:<x-request-id>` or `offset:<topic>/<partition>/<offset>` (the worker's request
    /// id); for a validation, the request id of the code it checked (`null` without a code).
    pub request_id: Option<String>,
    /// DIGIT's `RequestInfo.correlationId` of the request or validation, when it had one.
    pub correlation_id: Option<String>,
    /// The state-level (root) tenant, e.g. `pb`; `null` for an unreadable request.
    pub tenant_id: Option<String>,
    /// `register`, `login` or `passwordreset`; `null` for an unreadable request and for
    /// validations (the code does not record it).
    #[serde(rename = "type")]
    pub otp_type: Option<&'static str>,
    /// The mobile number or user name as sent, masked ([`Masked`]).
    pub identity: Option<String>,
    /// What became of it: for a request one of the stored outcomes (`sent`, `user_exists`,
    /// `unknown_user`, `no_mobile_number`, `rate_limited`, `stale`, `expired`, `abandoned`) or
    /// [`DEAD_LETTERED`]; for a validation a [`ValidationResult`].
    pub outcome: &'static str,
    /// More about it, from a bounded set: the send limit or guard of `rate_limited`, the
    /// dead-letter reason of `dead_lettered`; else `null`.
    pub detail: Option<&'static str>,
    /// The code's id (egov-otp's `UUID`) for a validation that found a code.
    pub code_id: Option<String>,
    /// Whether the outcome was recorded before, by an earlier delivery of the same request.
    pub redelivered: bool,
    /// When the request event was written (its Kafka timestamp, epoch ms); `null` for a
    /// validation or an event without a timestamp.
    pub requested_at: Option<i64>,
    /// When this event was made (epoch ms).
    pub decided_at: i64,
}

impl OutcomeEvent {
    /// `identity` as the event carries it ([`Masked`]).
    pub fn masked(identity: &str) -> String {
        Masked(identity).to_string()
    }

    /// The event as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // Room for a whole event at once (they are 300–500 bytes): no regrowth while writing.
        let mut json = Vec::with_capacity(512);
        // Only strings, integers, booleans and nulls: serialising cannot fail.
        match serde_json::to_writer(&mut json, self) {
            Ok(()) => json,
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = include_str!("../../schemas/outcome-event.schema.json");

    fn validator() -> jsonschema::Validator {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).expect("schema is JSON");
        jsonschema::validator_for(&schema).expect("schema compiles")
    }

    fn request_event(outcome: &'static str) -> OutcomeEvent {
        OutcomeEvent {
            subject: Subject::Request,
            request_id: Some("caller:abc".into()),
            correlation_id: Some("c-1".into()),
            tenant_id: Some("pb".into()),
            otp_type: Some("login"),
            identity: Some(OutcomeEvent::masked("9876543210")),
            outcome,
            detail: None,
            code_id: None,
            redelivered: false,
            requested_at: Some(1_700_000_000_000),
            decided_at: 1_700_000_000_010,
        }
    }

    #[test]
    fn members_are_written_in_order_with_nulls_and_the_identity_masked() {
        let json = String::from_utf8(request_event("sent").to_json()).expect("utf-8");
        assert_eq!(
            json,
            r#"{"subject":"request","requestId":"caller:abc","correlationId":"c-1","tenantId":"pb","type":"login","identity":"******3210","outcome":"sent","detail":null,"codeId":null,"redelivered":false,"requestedAt":1700000000000,"decidedAt":1700000000010}"#
        );
    }

    #[test]
    fn every_request_and_validation_outcome_matches_the_schema() {
        let validator = validator();
        for outcome in [
            "sent",
            "user_exists",
            "unknown_user",
            "no_mobile_number",
            "rate_limited",
            "stale",
            "expired",
            "abandoned",
            DEAD_LETTERED,
        ] {
            let value = serde_json::to_value(request_event(outcome)).expect("json");
            assert!(validator.is_valid(&value), "{outcome}");
        }
        for result in ValidationResult::ALL {
            let mut event = request_event(result.as_str());
            event.subject = Subject::Validation;
            event.otp_type = None;
            event.requested_at = None;
            event.code_id = Some("0190a0b0-0000-7000-8000-000000000000".into());
            let value = serde_json::to_value(&event).expect("json");
            assert!(validator.is_valid(&value), "{}", result.as_str());
        }
    }

    #[test]
    fn the_schema_refuses_an_unknown_outcome_and_a_full_number() {
        let validator = validator();
        let value = serde_json::to_value(request_event("sms_pending")).expect("json");
        assert!(!validator.is_valid(&value), "pending is not an outcome");
        let mut event = request_event("sent");
        event.identity = Some("9876543210".into());
        let value = serde_json::to_value(&event).expect("json");
        assert!(!validator.is_valid(&value), "an unmasked number");
        let value = serde_json::to_value(request_event("verified")).expect("json");
        assert!(
            !validator.is_valid(&value),
            "a validation result for a request"
        );
    }
}
