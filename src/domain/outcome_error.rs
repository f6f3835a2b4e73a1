//! The Java service's synchronous outcome errors, for `_send`'s sync mode
//! ([contract §1](../../docs/contract.md#1-the-send-request), "Outcome errors"): HTTP 400 in the
//! legacy envelope, `field` always `otp.mobileNumber`.
//!
//! Only four (type, outcome) pairs have one. Every other outcome (`sent`, `rate_limited`,
//! `stale`, `dead_lettered`, …) has no DIGIT error and is answered 201, as is a request whose
//! outcome did not arrive in time. The texts are DIGIT's, byte for byte: the citizen web UI
//! matches on the code `OTP.UNKNOWN_CREDENTIAL` to switch a new citizen from login to
//! registration.

use super::validation::FieldError;
use super::OtpType;

/// The field every outcome error names.
pub const FIELD: &str = "otp.mobileNumber";

/// One outcome error: the envelope's `error.message` and its one field error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeError {
    /// `error.message`, e.g. `OTP request for login failed`.
    pub message: &'static str,
    /// `fields[0].code`, e.g. `OTP.UNKNOWN_CREDENTIAL`.
    pub code: &'static str,
    /// `fields[0].message`.
    pub field_message: &'static str,
}

impl OutcomeError {
    /// The error for a request of `otp_type` whose outcome is `outcome` (the outcome event's
    /// `outcome` member), or `None` when DIGIT answers 201 for it.
    pub fn of(otp_type: OtpType, outcome: &str) -> Option<Self> {
        let (message, code, field_message) = match (otp_type, outcome) {
            (OtpType::Register, "user_exists") => (
                "OTP request for register failed",
                "OTP.MOBILENUMBER",
                "This MobileNumber Already Register as UserName in System. Pls try Another UserName",
            ),
            (OtpType::Login, "unknown_user") => (
                "OTP request for login failed",
                "OTP.UNKNOWN_CREDENTIAL",
                "No such username or password",
            ),
            (OtpType::PasswordReset, "unknown_user") => (
                "OTP request for password reset failed",
                "OTP.UNKNOWN_MOBILE_NUMBER",
                "Mobile number is unknown.",
            ),
            (OtpType::PasswordReset, "no_mobile_number") => (
                "OTP request for password reset failed",
                "OTP.MOBILE_NUMBER",
                "MobileNumber Not Found For This User.",
            ),
            _ => return None,
        };
        Some(Self {
            message,
            code,
            field_message,
        })
    }

    /// The envelope's `fields` entry.
    pub fn field_error(&self) -> FieldError {
        FieldError {
            code: self.code.to_owned(),
            message: self.field_message.to_owned(),
            field: FIELD.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_digit_errors_and_nothing_else() {
        let login = OutcomeError::of(OtpType::Login, "unknown_user").expect("an error");
        assert_eq!(login.code, "OTP.UNKNOWN_CREDENTIAL");
        assert_eq!(login.field_error().field, "otp.mobileNumber");
        assert_eq!(
            OutcomeError::of(OtpType::Register, "user_exists").map(|e| e.code),
            Some("OTP.MOBILENUMBER")
        );
        assert_eq!(
            OutcomeError::of(OtpType::PasswordReset, "unknown_user").map(|e| e.code),
            Some("OTP.UNKNOWN_MOBILE_NUMBER")
        );
        assert_eq!(
            OutcomeError::of(OtpType::PasswordReset, "no_mobile_number").map(|e| e.code),
            Some("OTP.MOBILE_NUMBER")
        );
        for otp_type in [OtpType::Register, OtpType::Login, OtpType::PasswordReset] {
            for outcome in ["sent", "rate_limited", "stale", "expired", "dead_lettered"] {
                assert_eq!(OutcomeError::of(otp_type, outcome), None, "{outcome}");
            }
        }
        assert_eq!(OutcomeError::of(OtpType::Register, "unknown_user"), None);
        assert_eq!(OutcomeError::of(OtpType::Login, "user_exists"), None);
    }
}
