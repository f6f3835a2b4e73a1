//! Parsing a `_send` body (or a request event: same shape) into a validated [`OtpRequest`].
//!
//! Parsing is lenient where DIGIT callers differ and strict where a wrong value would be
//! guessed at: both `RequestInfo` and `requestInfo` are accepted, unknown fields are ignored,
//! a JSON number is read as its digits (Jackson did the same for `"mobileNumber": 9876543210`),
//! `null` counts as missing, and any other wrong JSON type is a [`RequestBodyError`] naming the
//! field — never a panic and never a silent default.

use serde_json::{Map, Value};

use super::otp_type::OtpType;
use super::tenant::root_tenant;
use super::validation::{failing_rules, RuleInput, ValidationRule};

/// Default message language when neither `otp.locale` nor `RequestInfo.msgId` names one.
pub const DEFAULT_LOCALE: &str = "en_IN";

/// A body that cannot be read as an OTP request at all (as opposed to one failing a rule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestBodyError {
    #[error("the body is not valid JSON ({0})")]
    NotJson(String),
    #[error("the body must be a JSON object")]
    NotAnObject,
    #[error("{field} must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
}

/// The fields of a request as sent, before the rules are applied. Values are trimmed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawOtpRequest {
    pub request_info: Option<Map<String, Value>>,
    pub otp_present: bool,
    pub mobile_number: Option<String>,
    pub tenant_id: Option<String>,
    pub otp_type: Option<String>,
    pub user_type: Option<String>,
    pub locale: Option<String>,
    pub country_code: Option<String>,
}

/// A request that passed every rule of [§1](../../docs/contract.md#1-the-send-request).
#[derive(Debug, Clone, PartialEq)]
pub struct OtpRequest {
    pub request_info: Option<Map<String, Value>>,
    /// For `passwordreset` this may be a user name rather than a number.
    pub mobile_number: String,
    pub tenant_id: String,
    pub otp_type: OtpType,
    pub user_type: Option<String>,
    pub locale: Option<String>,
    pub country_code: Option<String>,
}

impl OtpRequest {
    /// The number the SMS will go to when the request itself names it (register, login); `None`
    /// for a password reset, whose `mobileNumber` may be a user name and whose SMS goes to the
    /// mobile egov-user holds.
    pub fn sms_number(&self) -> Option<&str> {
        (self.otp_type != OtpType::PasswordReset).then_some(self.mobile_number.as_str())
    }
}

impl RawOtpRequest {
    /// Parses raw bytes (an HTTP body or a Kafka event value).
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self, RequestBodyError> {
        let value: Value = serde_json::from_slice(bytes)
            // serde_json's messages give a position, never the input itself.
            .map_err(|e| RequestBodyError::NotJson(e.to_string()))?;
        Self::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<Self, RequestBodyError> {
        let body = value.as_object().ok_or(RequestBodyError::NotAnObject)?;
        let request_info = match body.get("RequestInfo").or_else(|| body.get("requestInfo")) {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map.clone()),
            Some(_) => {
                return Err(RequestBodyError::WrongType {
                    field: "RequestInfo",
                    expected: "an object",
                })
            }
        };
        let otp = otp_object(body)?;
        let Some(otp) = otp else {
            return Ok(Self {
                request_info,
                ..Self::default()
            });
        };
        Ok(Self {
            request_info,
            otp_present: true,
            mobile_number: scalar(otp, "mobileNumber", "otp.mobileNumber")?,
            tenant_id: scalar(otp, "tenantId", "otp.tenantId")?,
            otp_type: scalar(otp, "type", "otp.type")?,
            user_type: scalar(otp, "userType", "otp.userType")?,
            locale: scalar(otp, "locale", "otp.locale")?,
            country_code: scalar(otp, "countryCode", "otp.countryCode")?,
        })
    }

    /// Applies the [§1](../../docs/contract.md#1-the-send-request) rules; on failure returns every failing rule in table order.
    pub fn validate(self) -> Result<OtpRequest, Vec<ValidationRule>> {
        let failed = failing_rules(RuleInput {
            otp_present: self.otp_present,
            tenant_id: self.tenant_id.as_deref(),
            mobile_number: self.mobile_number.as_deref(),
            otp_type: self.otp_type.as_deref(),
            user_type: self.user_type.as_deref(),
            // The locale the SMS will carry: `otp.locale`, else the one in `RequestInfo.msgId`.
            locale: self
                .locale
                .as_deref()
                .or_else(|| msg_id_locale(self.request_info.as_ref())),
            country_code: self.country_code.as_deref(),
        });
        let otp_type = OtpType::parse(self.otp_type.as_deref());
        match (
            failed.is_empty(),
            self.tenant_id,
            self.mobile_number,
            otp_type,
        ) {
            (true, Some(tenant_id), Some(mobile_number), Some(otp_type)) => Ok(OtpRequest {
                request_info: self.request_info,
                mobile_number,
                tenant_id,
                otp_type,
                user_type: self.user_type,
                locale: self.locale,
                country_code: self.country_code,
            }),
            // The rules guarantee the fields above whenever nothing failed; should they ever
            // disagree, refuse the request rather than guess.
            _ if failed.is_empty() => Err(ValidationRule::IN_ORDER.to_vec()),
            _ => Err(failed),
        }
    }
}

impl OtpRequest {
    /// The state-level tenant (`pb` for `pb.amritsar`).
    pub fn root_tenant(&self) -> &str {
        root_tenant(&self.tenant_id)
    }

    /// True when egov-user must be searched as an employee ([§3](../../docs/contract.md#3-egov-user-search); case-insensitive).
    pub fn is_employee(&self) -> bool {
        self.user_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("EMPLOYEE"))
    }

    /// The message language: `otp.locale`, else the part of `RequestInfo.msgId` after `|`,
    /// else `en_IN`.
    pub fn locale(&self) -> &str {
        self.locale
            .as_deref()
            .or_else(|| msg_id_locale(self.request_info.as_ref()))
            .unwrap_or(DEFAULT_LOCALE)
    }
}

/// The locale after `|` in `RequestInfo.msgId` (e.g. `20170310130900|en_IN`), when there is one.
fn msg_id_locale(request_info: Option<&Map<String, Value>>) -> Option<&str> {
    request_info
        .and_then(|info| info.get("msgId"))
        .and_then(Value::as_str)
        .and_then(|msg_id| msg_id.split_once('|'))
        .map(|(_, locale)| locale.trim())
        .filter(|locale| !locale.is_empty())
}

/// The `otp` member of a body: absent (or null), or an object.
pub(crate) fn otp_object(
    body: &Map<String, Value>,
) -> Result<Option<&Map<String, Value>>, RequestBodyError> {
    match body.get("otp") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(RequestBodyError::WrongType {
            field: "otp",
            expected: "an object",
        }),
    }
}

/// Reads a text field: strings and numbers are accepted, `null` and blanks are missing.
pub(crate) fn scalar(
    otp: &Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<Option<String>, RequestBodyError> {
    let text = match otp.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(RequestBodyError::WrongType {
                field,
                expected: "a string",
            })
        }
    };
    Ok((!text.is_empty()).then_some(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<RawOtpRequest, RequestBodyError> {
        RawOtpRequest::from_value(&value)
    }

    #[test]
    fn both_request_info_spellings_and_unknown_fields_are_accepted() {
        for key in ["RequestInfo", "requestInfo"] {
            let raw = parse(json!({
                key: {"msgId": "1|hi_IN"},
                "otp": {"mobileNumber": "9876543210", "tenantId": "pb", "extra": [1]},
                "unknown": true
            }))
            .expect("parses");
            let request = raw.validate().expect("valid");
            assert_eq!(request.locale(), "hi_IN", "{key}");
            assert_eq!(request.otp_type, OtpType::Register);
        }
    }

    #[test]
    fn locale_prefers_the_otp_field_then_msg_id_then_en_in() {
        let base = json!({"otp": {"mobileNumber": "9876543210", "tenantId": "pb"}});
        let request = parse(base).expect("parses").validate().expect("valid");
        assert_eq!(request.locale(), "en_IN");
        let with_locale = json!({"RequestInfo": {"msgId": "x|hi_IN"},
            "otp": {"mobileNumber": "9876543210", "tenantId": "pb", "locale": "pa_IN"}});
        let request = parse(with_locale)
            .expect("parses")
            .validate()
            .expect("valid");
        assert_eq!(request.locale(), "pa_IN");
    }

    #[test]
    fn a_locale_from_msg_id_is_checked_like_otp_locale() {
        let long = format!("1|{}", "a".repeat(300));
        for msg_id in [long.as_str(), "1|en\u{1b}[31m", "1|x\nFORGED"] {
            let raw = parse(json!({"RequestInfo": {"msgId": msg_id},
                "otp": {"mobileNumber": "9876543210", "tenantId": "pb"}}))
            .expect("parses");
            assert_eq!(
                raw.validate(),
                Err(vec![ValidationRule::LocaleInvalid]),
                "{msg_id:?}"
            );
        }
        // otp.locale wins over msgId, so a good otp.locale covers a bad msgId.
        let raw = parse(json!({"RequestInfo": {"msgId": "1|x\nFORGED"},
            "otp": {"mobileNumber": "9876543210", "tenantId": "pb", "locale": "hi_IN"}}))
        .expect("parses");
        assert_eq!(raw.validate().expect("valid").locale(), "hi_IN");
    }

    #[test]
    fn numbers_are_read_as_digits_and_null_as_missing() {
        let raw = parse(json!({"otp": {"mobileNumber": 9876543210u64, "tenantId": null}}))
            .expect("parses");
        assert_eq!(raw.mobile_number.as_deref(), Some("9876543210"));
        assert_eq!(raw.tenant_id, None);
        assert_eq!(raw.validate(), Err(vec![ValidationRule::TenantIdMandatory]));
    }

    #[test]
    fn wrong_json_types_name_the_field() {
        let cases = [
            (json!([1]), RequestBodyError::NotAnObject),
            (
                json!({"otp": "x"}),
                RequestBodyError::WrongType {
                    field: "otp",
                    expected: "an object",
                },
            ),
            (
                json!({"RequestInfo": 3, "otp": {}}),
                RequestBodyError::WrongType {
                    field: "RequestInfo",
                    expected: "an object",
                },
            ),
            (
                json!({"otp": {"mobileNumber": {"a": 1}}}),
                RequestBodyError::WrongType {
                    field: "otp.mobileNumber",
                    expected: "a string",
                },
            ),
            (
                json!({"otp": {"type": true}}),
                RequestBodyError::WrongType {
                    field: "otp.type",
                    expected: "a string",
                },
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(parse(value.clone()), Err(expected), "{value}");
        }
    }

    #[test]
    fn invalid_json_is_reported_without_echoing_the_input() {
        let err = RawOtpRequest::from_json_bytes(b"{\"otp\": 9876543210").expect_err("bad");
        assert!(matches!(err, RequestBodyError::NotJson(_)));
        assert!(!err.to_string().contains("9876543210"), "{err}");
    }

    #[test]
    fn employee_user_type_is_case_insensitive_and_root_tenant_is_derived() {
        let request = parse(
            json!({"otp": {"mobileNumber": "EMP1", "tenantId": "pb.amritsar",
            "type": "passwordreset", "userType": "Employee"}}),
        )
        .expect("parses")
        .validate()
        .expect("valid");
        assert!(request.is_employee());
        assert_eq!(request.root_tenant(), "pb");
    }
}
