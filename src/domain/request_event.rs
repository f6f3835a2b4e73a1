//! The canonical OTP request event: what the shim writes to the request topic
//! (`schemas/otp-request-event.schema.json`).
//!
//! Its value is a `_send` body, so a DIGIT producer can publish what it would POST and operators
//! can replay a topic; the shim writes it normalised (`RequestInfo` spelling, lower-case `type`,
//! trimmed values, unknown fields dropped). `RequestInfo.authToken` and `RequestInfo.userInfo`
//! are dropped: the worker needs neither, and tokens do not belong on a shared topic.
//!
//! The Kafka key is `<root tenant>:<mobile>` (e.g. `pb:9876543210`): all requests of one user
//! land on one partition, in order. The request id travels in the `x-request-id` header.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::otp_request::OtpRequest;

/// Kafka header carrying the request id (idempotency key for the worker).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Kafka header of a request event whose sender waits for its outcome (`_send` in sync mode): an
/// unguessable token, 1–128 visible ASCII characters, that the worker copies onto the request's
/// outcome event so the waiting shim instance finds its own answer even when two requests share
/// a caller's `X-Request-Id`.
pub const REPLY_TOKEN_HEADER: &str = "x-user-otp-reply-to";

/// `RequestInfo` members that never reach the topic.
const DROPPED_REQUEST_INFO_FIELDS: [&str; 2] = ["authToken", "userInfo"];

/// The value of a request event: `{"RequestInfo": {…}, "otp": {…}}`, a `_send` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestEvent {
    /// DIGIT's `RequestInfo` as sent, without `authToken` and `userInfo`; absent when the
    /// request had none.
    #[serde(
        rename = "RequestInfo",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub request_info: Option<Map<String, Value>>,
    /// The request's own fields.
    pub otp: RequestEventOtp,
}

/// The `otp` member of a request event, validated and trimmed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestEventOtp {
    /// `mobileNumber`: the mobile number (register, login) or mobile or user name
    /// (passwordreset).
    pub mobile_number: String,
    /// `tenantId` as sent, e.g. `pb.amritsar` (the root tenant is the part before the first dot).
    pub tenant_id: String,
    /// `type`, lower case: `register`, `login` or `passwordreset`.
    #[serde(rename = "type")]
    pub otp_type: String,
    /// `userType` as sent (`CITIZEN`, `EMPLOYEE`, …), when given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_type: Option<String>,
    /// The SMS locale (`en_IN`, …), when given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub locale: Option<String>,
    /// `countryCode` as sent (`+91`, `91` and `0091` all mean India), when given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub country_code: Option<String>,
}

impl RequestEvent {
    /// The normalised event for a validated request (see the module documentation).
    pub fn from_request(request: &OtpRequest) -> Self {
        let request_info = request.request_info.as_ref().map(|info| {
            let mut info = info.clone();
            for field in DROPPED_REQUEST_INFO_FIELDS {
                info.remove(field);
            }
            info
        });
        Self {
            request_info,
            otp: RequestEventOtp {
                mobile_number: request.mobile_number.clone(),
                tenant_id: request.tenant_id.clone(),
                otp_type: request.otp_type.as_str().to_owned(),
                user_type: request.user_type.clone(),
                locale: request.locale.clone(),
                country_code: request.country_code.clone(),
            },
        }
    }
}

/// The partition key of a request: `<root tenant>:<mobile>`.
pub fn request_key(request: &OtpRequest) -> String {
    format!("{}:{}", request.root_tenant(), request.mobile_number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RawOtpRequest;
    use serde_json::json;

    #[test]
    fn event_is_normalised_and_drops_tokens() {
        let request = RawOtpRequest::from_value(&json!({
            "requestInfo": {"apiId": "Rainmaker", "authToken": "secret-token", "userInfo": {"id": 1}},
            "otp": {"mobileNumber": " 9876543210 ", "tenantId": "pb.amritsar", "type": "LOGIN",
                    "userType": "citizen", "junk": 1}
        }))
        .expect("parses")
        .validate()
        .expect("valid");
        let event = serde_json::to_value(RequestEvent::from_request(&request)).expect("json");
        assert_eq!(
            event,
            json!({"RequestInfo": {"apiId": "Rainmaker"},
                   "otp": {"mobileNumber": "9876543210", "tenantId": "pb.amritsar",
                           "type": "login", "userType": "citizen"}})
        );
        assert_eq!(request_key(&request), "pb:9876543210");
    }

    #[test]
    fn an_event_parses_back_into_the_same_request() {
        let request = RawOtpRequest::from_value(&json!({"otp": {"mobileNumber": "9876543210",
            "tenantId": "pb", "locale": "hi_IN", "countryCode": "+91"}}))
        .expect("parses")
        .validate()
        .expect("valid");
        let bytes = serde_json::to_vec(&RequestEvent::from_request(&request)).expect("json");
        let again = RawOtpRequest::from_json_bytes(&bytes)
            .expect("parses")
            .validate()
            .expect("valid");
        assert_eq!(again, request);
    }
}
