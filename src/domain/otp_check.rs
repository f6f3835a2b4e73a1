//! Requests of the egov-otp API ([contract §7](../../docs/contract.md#7-egov-otp-api)), parsed and checked without I/O.
//!
//! - `_validate`: `{"otp":{"otp":"123456","identity":"9876543210","tenantId":"pb"}}` (egov-user
//!   also sends `RequestInfo` and `otp.userType`, which are ignored). Missing fields are reported
//!   in the legacy order tenant, identity, otp.
//! - `_search`: `{"otp":{"UUID":"…","tenantId":"pb"}}`; the `UUID` key matches in any case.
//!
//! Codes are scoped to the state-level tenant: `pb.amritsar` validates codes of `pb`.
//!
//! Present fields are then checked like `_send`'s ([`super::field_limits`]): a tenant id, an
//! identity or a code with a control character or longer than DIGIT stores is a 400 (`OTP.
//! TENANT_ID_INVALID`, `OTP.IDENTITY_INVALID`, `OTP.OTP_INVALID`), never a database error.

use serde_json::{Map, Value};

use super::field_limits::{self, acceptable};
use super::otp_request::{otp_object, scalar, RequestBodyError};
use super::tenant::root_tenant;
use super::validation::FieldError;

/// A readable `_validate` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateRequest {
    /// The code as typed (not logged, never stored).
    pub otp: String,
    pub identity: String,
    /// As sent (echoed in the answer); codes are looked up under its root.
    pub tenant_id: String,
    /// `RequestInfo.correlationId` (or `requestInfo.…`) when it is 1–128 visible ASCII
    /// characters, for the outcome event.
    pub correlation_id: Option<String>,
}

/// `RequestInfo.correlationId` of a DIGIT body (either spelling of the key), when it is a
/// sensible token (1–128 visible ASCII characters, as a caller's request id).
pub fn correlation_id(body: &Map<String, Value>) -> Option<String> {
    ["RequestInfo", "requestInfo"]
        .iter()
        .find_map(|key| body.get(*key))
        .and_then(|info| info.get("correlationId"))
        .and_then(Value::as_str)
        .and_then(crate::domain::request_id::sensible_caller_id)
        .map(str::to_owned)
}

impl ValidateRequest {
    pub fn root_tenant(&self) -> &str {
        root_tenant(&self.tenant_id)
    }
}

/// A readable `_search` request. `uuid` is `None` when the value is not a UUID (no such code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub uuid: Option<uuid::Uuid>,
    pub tenant_id: String,
}

/// Parses a `_validate` body: `Err` for an unreadable body, `Ok(Err(fields))` for missing fields.
pub fn parse_validate(
    body: &[u8],
) -> Result<Result<ValidateRequest, Vec<FieldError>>, RequestBodyError> {
    let value = parse_object(body)?;
    let empty = Map::new();
    let otp = otp_object(&value)?.unwrap_or(&empty);
    let tenant_id = scalar(otp, "tenantId", "otp.tenantId")?;
    let identity = scalar(otp, "identity", "otp.identity")?;
    let code = scalar(otp, "otp", "otp.otp")?;
    match (tenant_id, identity, code) {
        (Some(tenant_id), Some(identity), Some(otp)) => {
            let invalid = invalid_fields(&[
                (
                    !acceptable(&tenant_id, field_limits::TENANT_ID),
                    TENANT_INVALID,
                ),
                (
                    !acceptable(&identity, field_limits::IDENTITY),
                    IDENTITY_INVALID,
                ),
                (!acceptable(&otp, field_limits::CODE), OTP_INVALID),
            ]);
            if !invalid.is_empty() {
                return Ok(Err(invalid));
            }
            Ok(Ok(ValidateRequest {
                otp,
                identity,
                tenant_id,
                correlation_id: correlation_id(&value),
            }))
        }
        (tenant_id, identity, code) => Ok(Err(missing_fields(&[
            (tenant_id.is_none(), TENANT_MANDATORY),
            (identity.is_none(), IDENTITY_MANDATORY),
            (code.is_none(), OTP_MANDATORY),
        ]))),
    }
}

/// Parses a `_search` body: `Err` for an unreadable body, `Ok(Err(fields))` for missing fields.
pub fn parse_search(
    body: &[u8],
) -> Result<Result<SearchRequest, Vec<FieldError>>, RequestBodyError> {
    let value = parse_object(body)?;
    let empty = Map::new();
    let otp = otp_object(&value)?.unwrap_or(&empty);
    let tenant_id = scalar(otp, "tenantId", "otp.tenantId")?;
    let uuid_key = otp
        .keys()
        .find(|key| key.eq_ignore_ascii_case("uuid"))
        .cloned()
        .unwrap_or_else(|| "UUID".to_owned());
    let uuid = scalar(otp, &uuid_key, "otp.UUID")?;
    match (tenant_id, uuid) {
        (Some(tenant_id), Some(_)) if !acceptable(&tenant_id, field_limits::TENANT_ID) => {
            Ok(Err(invalid_fields(&[(true, TENANT_INVALID)])))
        }
        (Some(tenant_id), Some(uuid)) => Ok(Ok(SearchRequest {
            uuid: uuid::Uuid::parse_str(&uuid).ok(),
            tenant_id,
        })),
        (tenant_id, uuid) => Ok(Err(missing_fields(&[
            (tenant_id.is_none(), TENANT_MANDATORY),
            (uuid.is_none(), UUID_MANDATORY),
        ]))),
    }
}

/// The field error of a wrong, expired, used or dead code (no detail on which, by design).
pub fn validation_unsuccessful() -> FieldError {
    field(
        "OTP.VALIDATION_UNSUCCESSFUL",
        "OTP validation unsuccessful",
        "otp.otp",
    )
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, RequestBodyError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(RequestBodyError::NotAnObject),
        Err(e) => Err(RequestBodyError::NotJson(e.to_string())),
    }
}

/// `(code, message, field)` of a mandatory-field or invalid-field error.
type Mandatory = (&'static str, &'static str, &'static str);

const TENANT_INVALID: Mandatory = (
    "OTP.TENANT_ID_INVALID",
    "Tenant id must be at most 256 characters without control characters",
    "otp.tenantId",
);
const IDENTITY_INVALID: Mandatory = (
    "OTP.IDENTITY_INVALID",
    "Identity must be at most 180 characters without control characters",
    "otp.identity",
);
const OTP_INVALID: Mandatory = (
    "OTP.OTP_INVALID",
    "Otp must be at most 64 characters without control characters",
    "otp.otp",
);

/// The errors of the checks that failed, in the order given (same shape as missing fields).
fn invalid_fields(checks: &[(bool, Mandatory)]) -> Vec<FieldError> {
    missing_fields(checks)
}

const TENANT_MANDATORY: Mandatory = (
    "OTP.TENANT_ID_MANDATORY",
    "Tenant field is mandatory",
    "otp.tenantId",
);
const IDENTITY_MANDATORY: Mandatory = (
    "OTP.IDENTITY_MANDATORY",
    "Identity field is mandatory",
    "otp.identity",
);
const OTP_MANDATORY: Mandatory = ("OTP.OTP_MANDATORY", "Otp field is mandatory", "otp.otp");
const UUID_MANDATORY: Mandatory = ("OTP.UUID_MANDATORY", "UUID field is mandatory", "otp.UUID");

/// The errors of the checks that failed, in the order given.
fn missing_fields(checks: &[(bool, Mandatory)]) -> Vec<FieldError> {
    checks
        .iter()
        .filter(|(missing, _)| *missing)
        .map(|(_, (code, message, name))| field(code, message, name))
        .collect()
}

fn field(code: &str, message: &str, field: &str) -> FieldError {
    FieldError {
        code: code.to_owned(),
        message: message.to_owned(),
        field: field.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_requests_parse_and_report_missing_fields_in_order() {
        let ok = parse_validate(br#"{"RequestInfo":{},"otp":{"otp":"012345","identity":"9876543210","tenantId":"pb.amritsar","userType":"CITIZEN"}}"#)
            .expect("readable")
            .expect("complete");
        assert_eq!((ok.otp.as_str(), ok.root_tenant()), ("012345", "pb"));
        let missing = parse_validate(br#"{"otp":{"identity":""}}"#)
            .expect("readable")
            .expect_err("incomplete");
        let codes: Vec<&str> = missing.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "OTP.TENANT_ID_MANDATORY",
                "OTP.IDENTITY_MANDATORY",
                "OTP.OTP_MANDATORY"
            ]
        );
        assert!(parse_validate(b"[]").is_err());
        assert!(parse_validate(br#"{"otp":{"otp":[1]}}"#).is_err());
    }

    #[test]
    fn control_characters_and_overlong_fields_are_invalid_not_looked_up() {
        let nul =
            parse_validate(br#"{"otp":{"otp":"123456","identity":"98765\u0000","tenantId":"pb"}}"#)
                .expect("readable")
                .expect_err("invalid");
        assert_eq!(nul.len(), 1);
        assert_eq!(
            (nul[0].code.as_str(), nul[0].field.as_str()),
            ("OTP.IDENTITY_INVALID", "otp.identity")
        );
        let long = format!(
            r#"{{"otp":{{"otp":"1\u0007","identity":"x","tenantId":"{}"}}}}"#,
            "t".repeat(300)
        );
        let codes: Vec<String> = parse_validate(long.as_bytes())
            .expect("readable")
            .expect_err("invalid")
            .into_iter()
            .map(|f| f.code)
            .collect();
        assert_eq!(codes, ["OTP.TENANT_ID_INVALID", "OTP.OTP_INVALID"]);
        let search = parse_search(br#"{"otp":{"UUID":"x","tenantId":"pb\u0000"}}"#)
            .expect("readable")
            .expect_err("invalid");
        assert_eq!(search[0].code, "OTP.TENANT_ID_INVALID");
    }

    #[test]
    fn search_matches_the_uuid_key_in_any_case() {
        let id = uuid::Uuid::new_v4();
        for key in ["UUID", "uuid", "Uuid"] {
            let body = format!(r#"{{"otp":{{"{key}":"{id}","tenantId":"pb"}}}}"#);
            let request = parse_search(body.as_bytes())
                .expect("readable")
                .expect("complete");
            assert_eq!(request.uuid, Some(id), "{key}");
        }
        let not_a_uuid = parse_search(br#"{"otp":{"UUID":"x","tenantId":"pb"}}"#)
            .expect("readable")
            .expect("complete");
        assert_eq!(not_a_uuid.uuid, None);
        let missing = parse_search(br#"{"otp":{}}"#)
            .expect("readable")
            .expect_err("missing");
        assert_eq!(missing.len(), 2);
    }
}
