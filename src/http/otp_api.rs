//! The egov-otp API (contract §7) that egov-user calls: `POST /otp/v1/_validate` and
//! `POST /otp/v1/_search`.
//!
//! `_validate` checks a code against the newest code of the identity in the state tenant (a
//! newer code retires the older ones). A code is valid until its TTL, usable once (the `UPDATE`
//! that marks it used succeeds for exactly one of concurrent validations), and dead after the
//! configured number of wrong attempts; the hash comparison is constant-time. Every failure gets
//! the same answer, so a caller learns nothing about which check failed.
//!
//! `_search` reports whether a code (by UUID) was validated, and for which identity; never the
//! code or its hash. `_create` is deliberately absent: it handed plain codes to any caller (§9).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use uuid::Uuid;

use super::envelope::LegacyError;
use super::json_body::JsonBody;
use super::AppState;
use crate::domain::otp_check::{parse_search, parse_validate, validation_unsuccessful};
use crate::failure::{Classify, FailureKind};
use crate::store::StoreError;
use crate::telemetry::Masked;

/// `{"responseInfo":null,"otp":{…}|null}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OtpResponse {
    response_info: Option<()>,
    otp: Option<OtpView>,
}

/// The `otp` member of an answer, in egov-otp's member order.
#[derive(Serialize)]
pub struct OtpView {
    otp: Option<String>,
    #[serde(rename = "UUID")]
    uuid: Uuid,
    identity: String,
    #[serde(rename = "tenantId")]
    tenant_id: String,
    #[serde(rename = "isValidationSuccessful")]
    is_validation_successful: bool,
}

pub async fn validate(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<OtpResponse>, LegacyError> {
    let request = parse_validate(&body)
        .map_err(|e| LegacyError::malformed(e.to_string()))?
        .map_err(|fields| LegacyError::bad_request("Invalid OTP validation request", fields))?;
    let unsuccessful = || {
        LegacyError::bad_request(
            "OTP validation unsuccessful",
            vec![validation_unsuccessful()],
        )
    };
    let store = &state.store;
    let max_attempts = state.max_failed_attempts;
    let newest = store
        .newest_code(request.root_tenant(), &request.identity, max_attempts)
        .await
        .map_err(unavailable)?;
    let Some(code) = newest.filter(|code| code.live) else {
        tracing::info!(identity = %Masked(&request.identity), "OTP validation: no live code");
        return Err(unsuccessful());
    };
    if code.key_id != state.hasher.key_id() {
        tracing::warn!(code_id = %code.id, key_id = %code.key_id, "OTP hashed with another key");
        return Err(unsuccessful());
    }
    if !state.hasher.verify(&code.id, &request.otp, &code.hash) {
        store
            .record_failed_attempt(code.id)
            .await
            .map_err(unavailable)?;
        tracing::info!(code_id = %code.id, identity = %Masked(&request.identity), "OTP validation: wrong code");
        return Err(unsuccessful());
    }
    if !store
        .consume_code(code.id, &request.identity, max_attempts)
        .await
        .map_err(unavailable)?
    {
        tracing::info!(code_id = %code.id, "OTP validation: code used concurrently");
        return Err(unsuccessful());
    }
    tracing::info!(code_id = %code.id, identity = %Masked(&request.identity), "OTP validated");
    Ok(Json(OtpResponse {
        response_info: None,
        otp: Some(OtpView {
            otp: Some(request.otp),
            uuid: code.id,
            identity: request.identity,
            tenant_id: request.tenant_id,
            is_validation_successful: true,
        }),
    }))
}

pub async fn search(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<OtpResponse>, LegacyError> {
    let request = parse_search(&body)
        .map_err(|e| LegacyError::malformed(e.to_string()))?
        .map_err(|fields| LegacyError::bad_request("Invalid OTP search request", fields))?;
    let found = match request.uuid {
        Some(id) => state
            .store
            .find_code(id, crate::domain::tenant::root_tenant(&request.tenant_id))
            .await
            .map_err(unavailable)?,
        None => None,
    };
    Ok(Json(OtpResponse {
        response_info: None,
        otp: found.map(|code| OtpView {
            otp: None,
            uuid: code.id,
            identity: code.identity,
            tenant_id: code.tenant_id,
            is_validation_successful: code.validated,
        }),
    }))
}

/// A store failure as an answer: 400 when PostgreSQL refused the caller's values (a poison
/// failure; edge validation should have caught it), else 503 (the store is unreachable or
/// misconfigured; the caller may retry).
fn unavailable(error: StoreError) -> LegacyError {
    if error.kind() == FailureKind::Poison {
        tracing::warn!(%error, "OTP store refused the request's values");
        return LegacyError::bad_request(
            "Invalid OTP validation request",
            vec![validation_unsuccessful()],
        );
    }
    tracing::warn!(%error, "OTP store unavailable");
    LegacyError::store_unavailable()
}
