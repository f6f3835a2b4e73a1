//! Which request an event is: its request id and its fingerprint (DESIGN, security model: "a
//! request id belongs to its request").
//!
//! The worker's idempotency key is the pair (request id, fingerprint):
//! - The **request id** comes from one of two namespaces that cannot meet: `caller:<id>` when the
//!   event carries a sensible `x-request-id` header (1–128 visible ASCII characters, as the shim
//!   accepts from `X-Request-Id`), else `offset:<topic>/<partition>/<offset>`. A caller who sends
//!   `X-Request-Id: <topic>/<partition>/<offset>` gets `caller:<topic>/…`, never the id a
//!   header-less event will get. The header itself keeps the caller's value.
//! - The **fingerprint** is the request as sent: the first 16 bytes of
//!   `HMAC-SHA-256(secret, "user-otp/request-fingerprint/v1\0" ‖ root tenant ‖ mobile number ‖
//!   type)` (a citizen's user name is the mobile number) (each part length-prefixed, [`CodeHasher::keyed_digest`]). Keyed, so a
//!   database dump does not reveal which number a refused request was for.
//!
//! Only the same id with the same fingerprint is a redelivery (skipped). The same id with another
//! fingerprint is another request: served as new, with its own outcome, and logged as a
//! collision. A rotated HMAC secret changes fingerprints: an event redelivered across a rotation
//! is served again (once).

use super::code::CodeHasher;
use super::otp_request::OtpRequest;

/// Longest caller-supplied request id honoured (bytes of visible ASCII).
pub const MAX_CALLER_ID_LEN: usize = 128;

/// Prefix of request ids taken from a caller's `x-request-id`.
pub const CALLER_PREFIX: &str = "caller:";

/// Prefix of request ids made from the event's position.
pub const OFFSET_PREFIX: &str = "offset:";

/// Bytes of a fingerprint.
pub const FINGERPRINT_LENGTH: usize = 16;

const FINGERPRINT_CONTEXT: &[u8] = b"user-otp/request-fingerprint/v1\0";

/// `value` trimmed, if it is a request id a caller may choose: 1–128 visible ASCII characters.
pub fn sensible_caller_id(value: &str) -> Option<&str> {
    let id = value.trim();
    (!id.is_empty() && id.len() <= MAX_CALLER_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic()))
        .then_some(id)
}

/// The request id of an event: `caller:<id>` for a sensible caller id, else
/// `offset:<topic>/<partition>/<offset>`.
pub fn request_id(caller_id: Option<&str>, topic: &str, partition: i32, offset: i64) -> String {
    match caller_id {
        Some(id) => format!("{CALLER_PREFIX}{id}"),
        None => format!("{OFFSET_PREFIX}{topic}/{partition}/{offset}"),
    }
}

/// The fingerprint of `request` as sent (see the module documentation).
pub fn fingerprint(hasher: &CodeHasher, request: &OtpRequest) -> Vec<u8> {
    let digest = hasher.keyed_digest(
        FINGERPRINT_CONTEXT,
        &[
            request.root_tenant(),
            &request.mobile_number,
            request.otp_type.as_str(),
        ],
    );
    digest[..FINGERPRINT_LENGTH].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RawOtpRequest;
    use serde_json::json;

    fn request(tenant: &str, mobile: &str, otp_type: &str) -> OtpRequest {
        RawOtpRequest::from_value(&json!({"otp": {"tenantId": tenant, "mobileNumber": mobile,
            "type": otp_type}}))
        .expect("parses")
        .validate()
        .expect("valid")
    }

    #[test]
    fn caller_ids_and_offset_ids_never_meet() {
        let claimed = request_id(sensible_caller_id("requests/0/7"), "requests", 0, 7);
        let derived = request_id(None, "requests", 0, 7);
        assert_eq!(claimed, "caller:requests/0/7");
        assert_eq!(derived, "offset:requests/0/7");
        assert_ne!(claimed, derived);
        assert_eq!(sensible_caller_id(" abc "), Some("abc"));
        for bad in ["", "   ", "has space", "ü", &"x".repeat(129)] {
            assert_eq!(sensible_caller_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_fingerprint_is_the_request_as_sent() {
        let hasher = CodeHasher::new("k1", &[7; 32]);
        let base = fingerprint(&hasher, &request("pb.amritsar", "9876543210", "login"));
        assert_eq!(base.len(), FINGERPRINT_LENGTH);
        // Same root tenant, number and type: the same request (a city of the same state too).
        assert_eq!(
            base,
            fingerprint(&hasher, &request("pb", "9876543210", "LOGIN"))
        );
        for other in [
            request("pb", "9876543211", "login"),
            request("hr", "9876543210", "login"),
            request("pb", "9876543210", "register"),
        ] {
            assert_ne!(base, fingerprint(&hasher, &other), "{other:?}");
        }
        let other_key = CodeHasher::new("k2", &[8; 32]);
        assert_ne!(
            base,
            fingerprint(&other_key, &request("pb", "9876543210", "login"))
        );
    }
}
