//! `POST /user-otp/v1/_send`: validate, then hand the request to the worker through the request
//! topic.
//!
//! The answer is 201 only after the broker acknowledged the event, so a 201 means the request
//! will be served (the worker is at-least-once and idempotent on the request id). The request id
//! is the caller's `X-Request-Id` when it is a sensible token (a retry with the same id is then
//! served once), else a fresh UUID; it is echoed in the response header.
//!
//! In sync mode (`USER_OTP_SEND_MODE=sync`) the handler then waits, at most
//! `USER_OTP_SYNC_WAIT_MS`, for the request's outcome ([`super::outcome_waiters`]) and answers
//! the Java service's outcome error for it ([`OutcomeError`]: 400, e.g. `OTP.UNKNOWN_CREDENTIAL`
//! for a login without a user), or 201 for every other outcome and when the wait runs out. This
//! reveals whether a user exists, as the Java service did; the default async mode does not.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::Serialize;

use super::envelope::LegacyError;
use super::json_body::JsonBody;
use super::AppState;
use crate::config::SendMode;
use crate::domain::abuse::country::NOT_ALLOWED_CODE;
use crate::domain::outcome_error::OutcomeError;
use crate::domain::request_event::{request_key, REPLY_TOKEN_HEADER, REQUEST_ID_HEADER};
use crate::domain::request_id::sensible_caller_id;
use crate::domain::{RawOtpRequest, RequestEvent};
use crate::telemetry::Masked;

/// The success answer, `{"responseInfo":null,"isSuccessful":true}` (fields in this order).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SendResponse {
    response_info: Option<()>,
    is_successful: bool,
}

pub(super) async fn send_otp(
    State(state): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, LegacyError> {
    if let Some(limit) = &state.client_limit {
        let client = limit.client(peer.map(|Extension(ConnectInfo(peer))| peer), &headers);
        limit.check(client).map_err(|retry_after| {
            tracing::warn!(
                retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
                "_send refused: the client is over USER_OTP_CLIENT_LIMIT_PER_MINUTE"
            );
            LegacyError::too_many_requests(retry_after)
        })?;
    }
    let request = RawOtpRequest::from_json_bytes(&body)
        .map_err(|e| LegacyError::malformed(e.to_string()))?
        .validate()
        .map_err(|rules| LegacyError::invalid_otp_request(&rules))?;
    if !state
        .allowed_country_codes
        .allows_request(request.country_code.as_deref(), request.sms_number())
    {
        return Err(LegacyError::bad_request(
            "Invalid OTP request",
            vec![country_not_allowed()],
        ));
    }
    let request_id = request_id(&headers);
    let payload = serde_json::to_vec(&RequestEvent::from_request(&request)).map_err(|e| {
        tracing::error!(error = %e, "cannot serialise a request event");
        LegacyError::internal()
    })?;
    let key = request_key(&request);
    // Registered before the event exists, so its outcome cannot pass by unseen.
    let waiter = match (state.limits.send_mode, &state.outcome_waiters) {
        (SendMode::Sync { wait }, Some(waiters)) if waiters.is_positioned() => {
            Some((waiters.register(), wait))
        }
        (SendMode::Sync { .. }, _) => {
            tracing::warn!(%request_id, "outcome listener not positioned yet: answering 201 without waiting");
            None
        }
        (SendMode::Async, _) => None,
    };
    let mut event_headers = vec![(REQUEST_ID_HEADER, Some(request_id.as_bytes()))];
    if let Some((waiter, _)) = &waiter {
        event_headers.push((REPLY_TOKEN_HEADER, Some(waiter.token().as_bytes())));
    }
    state
        .producer
        .send(
            &state.request_topic,
            Some(key.as_bytes()),
            Some(&payload),
            &event_headers,
        )
        .await
        .map_err(|e| {
            tracing::warn!(%request_id, error = %e, "OTP request not queued");
            LegacyError::unavailable()
        })?;
    tracing::info!(
        %request_id,
        otp_type = %request.otp_type,
        tenant = ?request.tenant_id,
        mobile = %Masked(&request.mobile_number),
        "OTP request queued"
    );
    if let Some((waiter, wait)) = waiter {
        let outcome = waiter.outcome(wait).await;
        tracing::info!(
            %request_id,
            outcome = outcome.as_deref().unwrap_or("none in time"),
            "OTP request outcome (sync mode)"
        );
        if let Some(error) = outcome.and_then(|o| OutcomeError::of(request.otp_type, &o)) {
            return Err(LegacyError::bad_request(
                error.message,
                vec![error.field_error()],
            ));
        }
    }
    let mut response = (
        StatusCode::CREATED,
        Json(SendResponse {
            response_info: None,
            is_successful: true,
        }),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

/// The field error of a `countryCode` outside `USER_OTP_ALLOWED_COUNTRY_CODES`.
pub(super) fn country_not_allowed() -> crate::domain::FieldError {
    crate::domain::FieldError {
        code: NOT_ALLOWED_CODE.to_owned(),
        message: "OTPs are not sent to this country".to_owned(),
        field: "otp.countryCode".to_owned(),
    }
}

/// The caller's `X-Request-Id` if it is 1–128 visible ASCII characters, else a new UUID.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(sensible_caller_id)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::request_id::MAX_CALLER_ID_LEN;

    #[test]
    fn caller_request_ids_are_honoured_when_sensible() {
        let mut headers = HeaderMap::new();
        assert_eq!(request_id(&headers).len(), 36);
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&headers), "abc-123");
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("has space"));
        assert_ne!(request_id(&headers), "has space");
        let long = "x".repeat(MAX_CALLER_ID_LEN + 1);
        headers.insert(
            REQUEST_ID_HEADER,
            HeaderValue::from_str(&long).expect("ascii"),
        );
        assert_eq!(request_id(&headers).len(), 36);
    }
}
