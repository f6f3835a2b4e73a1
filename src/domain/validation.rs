//! The validation rules of `POST /user-otp/v1/_send` ([contract §1](../../docs/contract.md#1-the-send-request)), in the legacy order.
//!
//! Every failing rule is reported, in table order, so `fields[0]` is always the first rule that
//! failed. As in the Java service, the two mobile-number rules apply to every type except
//! `passwordreset` (an unknown type included) and fail for a missing number too, so a register
//! request without a mobile reports three fields. Values are trimmed of surrounding whitespace
//! before any rule (the Java service rejected `" 9876543210"`; we accept it).

use serde::Serialize;

use super::field_limits::{self, acceptable};
use super::otp_type::OtpType;

/// One rule of the `_send` validation table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationRule {
    TenantIdMandatory,
    MobileNumberMandatory,
    RequestTypeMandatory,
    MobileNumberInvalid,
    MobileNumberInvalidLength,
    TenantIdInvalid,
    UserNameInvalid,
    UserTypeInvalid,
    LocaleInvalid,
    CountryCodeInvalid,
}

impl ValidationRule {
    /// The legacy service's rules ([contract §1](../../docs/contract.md#1-the-send-request)), in its order.
    pub const LEGACY: [Self; 5] = [
        Self::TenantIdMandatory,
        Self::MobileNumberMandatory,
        Self::RequestTypeMandatory,
        Self::MobileNumberInvalid,
        Self::MobileNumberInvalidLength,
    ];

    /// All rules: the legacy service's in its order, then ours.
    pub const IN_ORDER: [Self; 10] = [
        Self::TenantIdMandatory,
        Self::MobileNumberMandatory,
        Self::RequestTypeMandatory,
        Self::MobileNumberInvalid,
        Self::MobileNumberInvalidLength,
        Self::TenantIdInvalid,
        Self::UserNameInvalid,
        Self::UserTypeInvalid,
        Self::LocaleInvalid,
        Self::CountryCodeInvalid,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::TenantIdMandatory => "OTP.TENANT_ID_MANDATORY",
            Self::MobileNumberMandatory => "OTP.MOBILE_NUMBER_MANDATORY",
            Self::RequestTypeMandatory => "OTP.REQUEST_TYPE_MANDATORY",
            Self::MobileNumberInvalid => "OTP.MOBILE_NUMBER_INVALID",
            Self::MobileNumberInvalidLength => "OTP.MOBILE_NUMBER_INVALIDLENGTH",
            Self::TenantIdInvalid => "OTP.TENANT_ID_INVALID",
            Self::UserNameInvalid => "OTP.USER_NAME_INVALID",
            Self::UserTypeInvalid => "OTP.USER_TYPE_INVALID",
            Self::LocaleInvalid => "OTP.LOCALE_INVALID",
            Self::CountryCodeInvalid => "OTP.COUNTRY_CODE_INVALID",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::TenantIdMandatory => "Tenant field is mandatory",
            Self::MobileNumberMandatory => "Mobile number field is mandatory",
            Self::RequestTypeMandatory => {
                "Request type (register, passwordreset,login) is mandatory"
            }
            Self::MobileNumberInvalid => "Mobile number field should be numeric.",
            Self::MobileNumberInvalidLength => {
                "Mobile number length should be min 10 and max 13 digits"
            }
            Self::TenantIdInvalid => {
                "Tenant id must be at most 256 characters without control characters"
            }
            Self::UserNameInvalid => {
                "User name must be at most 180 characters without control characters"
            }
            Self::UserTypeInvalid => {
                "User type must be at most 50 characters without control characters"
            }
            Self::LocaleInvalid => {
                "Locale must be at most 255 characters without control characters"
            }
            Self::CountryCodeInvalid => {
                "Country code must be at most 8 characters without control characters"
            }
        }
    }

    pub fn field(self) -> &'static str {
        match self {
            Self::TenantIdMandatory | Self::TenantIdInvalid => "otp.tenantId",
            Self::RequestTypeMandatory => "otp.type",
            Self::MobileNumberMandatory
            | Self::MobileNumberInvalid
            | Self::MobileNumberInvalidLength
            | Self::UserNameInvalid => "otp.mobileNumber",
            Self::UserTypeInvalid => "otp.userType",
            Self::LocaleInvalid => "otp.locale",
            Self::CountryCodeInvalid => "otp.countryCode",
        }
    }

    /// The rule as an entry of the legacy error envelope's `fields`.
    pub fn to_field_error(self) -> FieldError {
        FieldError {
            code: self.code().to_owned(),
            message: self.message().to_owned(),
            field: self.field().to_owned(),
        }
    }
}

/// One entry of the legacy envelope's `fields` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldError {
    pub code: String,
    pub message: String,
    pub field: String,
}

/// The already-trimmed values the rules look at.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleInput<'a> {
    pub otp_present: bool,
    pub tenant_id: Option<&'a str>,
    pub mobile_number: Option<&'a str>,
    pub otp_type: Option<&'a str>,
    pub user_type: Option<&'a str>,
    pub locale: Option<&'a str>,
    pub country_code: Option<&'a str>,
}

/// The rules that fail for `input`, in table order (empty when the request is valid).
pub fn failing_rules(input: RuleInput<'_>) -> Vec<ValidationRule> {
    let blank = |value: Option<&str>| value.is_none_or(|v| v.trim().is_empty());
    let otp_type = if input.otp_present {
        OtpType::parse(input.otp_type)
    } else {
        None
    };
    let mobile = input.mobile_number.map(str::trim).unwrap_or_default();
    let checks_mobile_format = otp_type != Some(OtpType::PasswordReset);
    let all_digits = !mobile.is_empty() && mobile.bytes().all(|b| b.is_ascii_digit());
    let within = |value: Option<&str>, max: usize| value.is_none_or(|v| acceptable(v, max));
    ValidationRule::IN_ORDER
        .into_iter()
        .filter(|rule| match rule {
            ValidationRule::TenantIdMandatory => blank(input.tenant_id),
            ValidationRule::MobileNumberMandatory => blank(input.mobile_number),
            ValidationRule::RequestTypeMandatory => otp_type.is_none(),
            ValidationRule::MobileNumberInvalid => checks_mobile_format && !all_digits,
            ValidationRule::MobileNumberInvalidLength => {
                checks_mobile_format && !(all_digits && (10..=13).contains(&mobile.len()))
            }
            ValidationRule::TenantIdInvalid => !within(input.tenant_id, field_limits::TENANT_ID),
            ValidationRule::UserNameInvalid => {
                !checks_mobile_format && !within(input.mobile_number, field_limits::USER_NAME)
            }
            ValidationRule::UserTypeInvalid => !within(input.user_type, field_limits::USER_TYPE),
            ValidationRule::LocaleInvalid => !within(input.locale, field_limits::LOCALE),
            ValidationRule::CountryCodeInvalid => {
                !within(input.country_code, field_limits::COUNTRY_CODE)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
