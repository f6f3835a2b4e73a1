//! The egov-otp API ([contract §7](../../docs/contract.md#7-egov-otp-api)) that egov-user calls: `POST /otp/v1/_validate` and
//! `POST /otp/v1/_search`.
//!
//! `_validate` checks a code against the newest code of the identity in the state tenant (a
//! newer code retires the older ones). A code is valid until its TTL, usable once (the `UPDATE`
//! that marks it used succeeds for exactly one of concurrent validations), and dead after the
//! configured number of wrong attempts; the hash comparison is constant-time. On top, the
//! identity's guess budget (`USER_OTP_VALIDATE_FAILURES_PER_HOUR`, counted across its codes)
//! refuses even the right code once spent. The budget is read with the code and written back as
//! a compare-and-set in the statement that uses the code, so concurrent guesses cannot exceed
//! it. Every failure gets the same answer, and every validation runs the same statements and one
//! HMAC whether or not a code exists, so a caller learns nothing about which check failed or
//! whether the number is registered. Which check failed goes to the outcome topic instead
//! ([`super::validation_outcome`], best effort, never awaited).
//!
//! `_search` reports whether a code (by UUID) was validated, and for which identity, within a
//! code's validity after the validation; never the code or its hash. `_create` is deliberately absent: it handed plain codes to any caller ([§9](../../docs/contract.md#9-java-service-bugs-not-copied)).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use uuid::Uuid;

use super::envelope::LegacyError;
use super::json_body::JsonBody;
use super::validation_outcome::{announce, CheckedCode};
use super::AppState;
use crate::domain::abuse::guess_budget::Attempt;
use crate::domain::otp_check::{parse_search, parse_validate, validation_unsuccessful};
use crate::domain::outcome_event::ValidationResult;
use crate::failure::{Classify, FailureKind};
use crate::store::{Settlement, StoreError};
use crate::telemetry::Masked;

/// `{"responseInfo":null,"otp":{…}|null}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OtpResponse {
    response_info: Option<()>,
    otp: Option<OtpView>,
}

/// The `otp` member of an answer, in egov-otp's member order.
#[derive(Serialize)]
pub(super) struct OtpView {
    otp: Option<String>,
    #[serde(rename = "UUID")]
    uuid: Uuid,
    identity: String,
    #[serde(rename = "tenantId")]
    tenant_id: String,
    #[serde(rename = "isValidationSuccessful")]
    is_validation_successful: bool,
}

/// Most compare-and-set rounds one validation tries when other validations of the same identity
/// keep changing its guess budget (only under a concurrent flood on one identity); then it fails
/// with the usual answer.
const MAX_SETTLE_ROUNDS: usize = 4;

pub(super) async fn validate(
    State(state): State<Arc<AppState>>,
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
    for _ in 0..MAX_SETTLE_ROUNDS {
        let round = attempt(&state, &request).await.map_err(unavailable)?;
        let Some(round) = round else {
            // Another validation of this identity won the compare-and-set: back off a little
            // (jittered) so a flood on one identity does not spin through the pool.
            let pause = rand::random::<u64>() % 5 + 1;
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            continue;
        };
        let result = round.result();
        announce(
            &state.announcer,
            &state.outcome_topic,
            &request,
            round.code.as_ref(),
            result,
        );
        let code_id = round.code.as_ref().map_or(Uuid::nil(), |c| c.id);
        match result {
            ValidationResult::Verified => {
                tracing::info!(%code_id, identity = %Masked(&request.identity), "OTP validated");
                return Ok(Json(OtpResponse {
                    response_info: None,
                    otp: Some(OtpView {
                        otp: Some(request.otp),
                        uuid: code_id,
                        identity: request.identity,
                        tenant_id: request.tenant_id,
                        is_validation_successful: true,
                    }),
                }));
            }
            ValidationResult::BudgetExhausted => {
                tracing::warn!(identity = %Masked(&request.identity), "OTP validation refused: the identity's guess budget is spent");
            }
            other => {
                tracing::info!(identity = %Masked(&request.identity), result = other.as_str(), "OTP validation unsuccessful");
            }
        }
        return Err(unsuccessful());
    }
    tracing::warn!(identity = %Masked(&request.identity), "OTP validation: guess budget contended; refused");
    announce(
        &state.announcer,
        &state.outcome_topic,
        &request,
        None,
        ValidationResult::BudgetExhausted,
    );
    Err(unsuccessful())
}

/// What one applied round decided, and about which code.
struct Round {
    /// The newest code of the identity, when there is one under a key this process knows.
    code: Option<CheckedCode>,
    /// Why that code is not live (`used`, `expired`, `attempts_exhausted`), else `live`.
    state: String,
    verdict: Attempt,
    /// Whether this round's statement marked the code used.
    consumed: bool,
}

impl Round {
    /// The result the outcome event names (the caller's answer is the same for all failures).
    fn result(&self) -> ValidationResult {
        match (self.verdict, self.consumed) {
            (Attempt::Right, true) => ValidationResult::Verified,
            (Attempt::Right, false) => ValidationResult::Used,
            (Attempt::Refused, _) => ValidationResult::BudgetExhausted,
            (Attempt::Wrong, _) if self.code.is_none() => ValidationResult::NoCode,
            (Attempt::Wrong, _) => match self.state.as_str() {
                "used" => ValidationResult::Used,
                "expired" => ValidationResult::Expired,
                "attempts_exhausted" => ValidationResult::AttemptsExhausted,
                _ => ValidationResult::Wrong,
            },
        }
    }
}

/// One round of a validation: read, decide, apply. `None` when another validation of the
/// identity changed its guess budget meanwhile (nothing was applied; read again).
///
/// Every round does the same work whether or not the identity has a code (the enumeration
/// guard of issue 9): the same two statements, and one HMAC computation, against a dummy hash
/// under the current key when there is no code (or its key is unknown).
async fn attempt(
    state: &AppState,
    request: &crate::domain::otp_check::ValidateRequest,
) -> Result<Option<Round>, StoreError> {
    let store = &state.store;
    let max_attempts = state.max_failed_attempts;
    let tenant = request.root_tenant();
    let view = store
        .validation_view(tenant, &request.identity, max_attempts)
        .await?;
    let (code_id, key_id, hash, live) = match &view.code {
        Some(code) => (
            code.id,
            code.key_id.as_str(),
            code.hash.as_slice(),
            code.live,
        ),
        None => (Uuid::nil(), "", &NO_HASH[..], false),
    };
    let hasher = state.keyring.for_key(key_id);
    if hasher.is_none() && view.code.is_some() {
        tracing::warn!(%code_id, key_id, "OTP hashed with a key this process does not know");
    }
    let matches = hasher
        .unwrap_or(state.keyring.current())
        .verify(&code_id, &request.otp, hash)
        && hasher.is_some()
        && live;
    let (verdict, failures) = state.guess_budget.judge(&view.failures, view.now, matches);
    let settled = store
        .settle_validation(
            &Settlement {
                code_id,
                verdict,
                identity: &request.identity,
                tenant_id: tenant,
                budget_identity: &view.budget_identity,
                failures,
                expected_version: view.version,
            },
            max_attempts,
        )
        .await?;
    if !settled.applied {
        return Ok(None);
    }
    let known = hasher.is_some();
    let (code, code_state) = match view.code {
        Some(code) if known => (
            Some(CheckedCode {
                id: code.id,
                request_id: code.request_id,
            }),
            code.state,
        ),
        _ => (None, String::new()),
    };
    Ok(Some(Round {
        code,
        state: code_state,
        verdict,
        consumed: settled.consumed,
    }))
}

/// The stand-in hash of an identity without a code: no HMAC output equals it with any
/// meaningful probability, and verifying against it costs what a real one does.
const NO_HASH: [u8; crate::domain::code::HASH_LENGTH] = [0; crate::domain::code::HASH_LENGTH];

pub(super) async fn search(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody,
) -> Result<Json<OtpResponse>, LegacyError> {
    let request = parse_search(&body)
        .map_err(|e| LegacyError::malformed(e.to_string()))?
        .map_err(|fields| LegacyError::bad_request("Invalid OTP search request", fields))?;
    let found = match request.uuid {
        Some(id) => state
            .store
            .find_code(
                id,
                crate::domain::tenant::root_tenant(&request.tenant_id),
                state.code_ttl,
            )
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
