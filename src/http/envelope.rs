//! DIGIT's legacy error envelope, used by every error this server answers:
//!
//! ```json
//! {"responseInfo":null,"error":{"code":400,"message":"Invalid OTP request","description":null,
//!  "fields":[{"code":"OTP.TENANT_ID_MANDATORY","message":"Tenant field is mandatory","field":"otp.tenantId"}]}}
//! ```
//!
//! `error.code` repeats the HTTP status. Callers match on `fields[].code`; errors that are not
//! about one field (malformed body, broker unavailable) have an empty `fields` and say what
//! happened in `description`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::domain::{FieldError, ValidationRule};

/// An error answer in the legacy envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyError {
    pub status: StatusCode,
    pub message: String,
    pub description: Option<String>,
    pub fields: Vec<FieldError>,
    /// Seconds for `Retry-After` (429; 503 says 1 unless set).
    pub retry_after_secs: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    response_info: Option<()>,
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: u16,
    message: &'a str,
    description: Option<&'a str>,
    fields: &'a [FieldError],
}

impl LegacyError {
    fn new(status: StatusCode, message: &str, description: Option<String>) -> Self {
        Self {
            status,
            message: message.to_owned(),
            description,
            fields: Vec::new(),
            retry_after_secs: None,
        }
    }

    /// 429 when a client is over the per-client limit of `_send`; `Retry-After` in whole
    /// seconds, rounded up.
    pub fn too_many_requests(retry_after: std::time::Duration) -> Self {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Self {
            retry_after_secs: Some(seconds.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                Some("Too many OTP requests from this client; try again later".into()),
            )
        }
    }

    /// 400 `Invalid OTP request` listing the failed [§1](../../docs/contract.md#1-the-send-request) rules in order.
    pub fn invalid_otp_request(rules: &[ValidationRule]) -> Self {
        Self::bad_request(
            "Invalid OTP request",
            rules.iter().map(|rule| rule.to_field_error()).collect(),
        )
    }

    /// 400 with a message and field errors (validation of the egov-otp API).
    pub fn bad_request(message: &str, fields: Vec<FieldError>) -> Self {
        Self {
            fields,
            ..Self::new(StatusCode::BAD_REQUEST, message, None)
        }
    }

    /// 503 when PostgreSQL cannot be reached.
    pub fn store_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
            Some("The OTP store is unavailable; try again later".into()),
        )
    }

    /// 400 for a body that is not a readable request (bad JSON, wrong type, too large, …).
    pub fn malformed(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Malformed request",
            Some(description.into()),
        )
    }

    /// 503 when the request could not be handed to the broker in time.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
            Some("The OTP request could not be queued; try again later".into()),
        )
    }

    /// 503 when the server sheds load (too many requests in flight) or a request took longer
    /// than the request timeout.
    pub fn overloaded(description: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
            Some(description.to_owned()),
        )
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Not found",
            Some("No such endpoint".into()),
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            Some("This endpoint does not accept that HTTP method".into()),
        )
    }

    /// 500 for a bug (a panic in a handler): still an envelope, never a dropped connection.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error",
            Some("An unexpected error occurred; it has been logged".into()),
        )
    }
}

impl IntoResponse for LegacyError {
    fn into_response(self) -> Response {
        let envelope = Envelope {
            response_info: None,
            error: Body {
                code: self.status.as_u16(),
                message: &self.message,
                description: self.description.as_deref(),
                fields: &self.fields,
            },
        };
        let mut response = (self.status, Json(envelope)).into_response();
        let retry_after = match (self.retry_after_secs, self.status) {
            (Some(seconds), _) => HeaderValue::from(seconds),
            (None, StatusCode::SERVICE_UNAVAILABLE) => HeaderValue::from_static("1"),
            (None, _) => return response,
        };
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_envelope_has_the_legacy_shape() {
        let response =
            LegacyError::invalid_otp_request(&[ValidationRule::TenantIdMandatory]).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .expect("body");
        assert_eq!(
            std::str::from_utf8(&bytes).expect("utf8"),
            r#"{"responseInfo":null,"error":{"code":400,"message":"Invalid OTP request","description":null,"fields":[{"code":"OTP.TENANT_ID_MANDATORY","message":"Tenant field is mandatory","field":"otp.tenantId"}]}}"#
        );
    }
}
