//! The three OTP request types and how DIGIT spells them on the wire.

use std::fmt;

/// What the code will be used for ([contract §2](../../docs/contract.md#2-what-each-type-does)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OtpType {
    Register,
    Login,
    PasswordReset,
}

impl OtpType {
    /// Parses the `otp.type` field: case-insensitive, surrounding whitespace ignored; missing or
    /// empty means `register`; any other string is `None` (a validation error, not a default).
    pub fn parse(value: Option<&str>) -> Option<Self> {
        let value = value.map(str::trim).unwrap_or_default();
        if value.is_empty() || value.eq_ignore_ascii_case("register") {
            Some(Self::Register)
        } else if value.eq_ignore_ascii_case("login") {
            Some(Self::Login)
        } else if value.eq_ignore_ascii_case("passwordreset") {
            Some(Self::PasswordReset)
        } else {
            None
        }
    }

    /// The canonical (lower-case) wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::PasswordReset => "passwordreset",
        }
    }
}

impl fmt::Display for OtpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_is_case_insensitive_and_defaults_to_register() {
        let cases = [
            (None, Some(OtpType::Register)),
            (Some(""), Some(OtpType::Register)),
            (Some("  "), Some(OtpType::Register)),
            (Some("register"), Some(OtpType::Register)),
            (Some("REGISTER"), Some(OtpType::Register)),
            (Some("Login"), Some(OtpType::Login)),
            (Some(" login "), Some(OtpType::Login)),
            (Some("passwordreset"), Some(OtpType::PasswordReset)),
            (Some("PasswordReset"), Some(OtpType::PasswordReset)),
            (Some("password_reset"), None),
            (Some("signup"), None),
        ];
        for (input, expected) in cases {
            assert_eq!(OtpType::parse(input), expected, "{input:?}");
        }
    }

    #[test]
    fn canonical_names_round_trip() {
        for t in [OtpType::Register, OtpType::Login, OtpType::PasswordReset] {
            assert_eq!(OtpType::parse(Some(t.as_str())), Some(t));
        }
    }
}
