//! The rules of [contract §2](../../docs/contract.md#2-what-each-type-does) as one pure function: given a valid request and what egov-user
//! said about its user, either send a code (and where), or refuse (and why).
//!
//! | type | user found | user not found |
//! |---|---|---|
//! | register | refuse: [`Refusal::UserExists`] | send to the request mobile |
//! | login | send to the request mobile (+ email if the user has one) | refuse: [`Refusal::UnknownUser`] |
//! | passwordreset | send to the user's stored mobile (+ email); refuse with [`Refusal::NoMobileNumber`] when it is blank | refuse: [`Refusal::UnknownUser`] |
//!
//! The identities a code is bound to are what `_validate` will later be called with. For
//! register and login that is the request mobile. For passwordreset it is the user's stored
//! mobile (which egov-user sends to `_validate`) **and** the value the caller sent (which may be a
//! user name): the Java service bound only the latter, so a reset started with a user name could
//! never be validated ([contract §2](../../docs/contract.md#2-what-each-type-does)).
//!
//! "User not found" must mean egov-user answered with an empty list; an unreachable egov-user
//! is the caller's problem (retry), never `None` here ([contract §9](../../docs/contract.md#9-java-service-bugs-not-copied)). `userType` (EMPLOYEE or a
//! citizen) only changes how the user is searched, not these rules.

use std::fmt;

use super::otp_request::OtpRequest;
use super::otp_type::OtpType;
use super::user::FoundUser;
use super::validation::FieldError;
use crate::telemetry::Masked;

/// The field every outcome error names ([contract §1](../../docs/contract.md#1-the-send-request), "Outcome errors").
const OUTCOME_ERROR_FIELD: &str = "otp.mobileNumber";

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Send(SendPlan),
    Refuse(Refusal),
}

/// Where a fresh code goes and what it is bound to. `Debug` masks the numbers and the address
/// (all but the last four characters), so a plan may appear in a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct SendPlan {
    /// where the SMS goes: the request mobile (register, login) or the user's stored mobile
    /// (passwordreset)
    pub sms_to: String,
    /// identities the code is bound to, deduplicated, `sms_to` first: register/login
    /// [request mobile]; passwordreset [stored mobile, value the caller sent] ([contract §2](../../docs/contract.md#2-what-each-type-does): bind
    /// to both)
    pub identities: Vec<String>,
    /// email address for the email event: login/passwordreset when the user has one; never for
    /// register
    pub email_to: Option<String>,
}

/// Why no code is sent. Stored as the request's outcome ([`Refusal::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// register, but the mobile number already belongs to a user.
    UserExists,
    /// login or passwordreset, but egov-user knows no such user.
    UnknownUser,
    /// passwordreset for a user without a stored mobile number.
    NoMobileNumber,
}

/// Applies the rules of [contract §2](../../docs/contract.md#2-what-each-type-does) (see the module documentation).
pub fn decide(request: &OtpRequest, user: Option<&FoundUser>) -> Decision {
    match (request.otp_type, user) {
        (OtpType::Register, Some(_)) => Decision::Refuse(Refusal::UserExists),
        (OtpType::Register, None) => Decision::Send(SendPlan::to(&request.mobile_number, None)),
        (OtpType::Login | OtpType::PasswordReset, None) => Decision::Refuse(Refusal::UnknownUser),
        (OtpType::Login, Some(user)) => {
            Decision::Send(SendPlan::to(&request.mobile_number, user.email()))
        }
        (OtpType::PasswordReset, Some(user)) => match user.mobile() {
            None => Decision::Refuse(Refusal::NoMobileNumber),
            Some(stored) => Decision::Send(
                SendPlan::to(stored, user.email()).also_bound_to(&request.mobile_number),
            ),
        },
    }
}

impl fmt::Debug for SendPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked = |value: &str| Masked(value).to_string();
        f.debug_struct("SendPlan")
            .field("sms_to", &masked(&self.sms_to))
            .field(
                "identities",
                &self
                    .identities
                    .iter()
                    .map(|i| masked(i))
                    .collect::<Vec<_>>(),
            )
            .field("email_to", &self.email_to.as_deref().map(masked))
            .finish()
    }
}

impl SendPlan {
    /// A plan sending to `mobile`, bound to it alone.
    fn to(mobile: &str, email: Option<&str>) -> Self {
        Self {
            sms_to: mobile.to_owned(),
            identities: vec![mobile.to_owned()],
            email_to: email.map(str::to_owned),
        }
    }

    /// Adds an identity unless the code is already bound to it.
    fn also_bound_to(mut self, identity: &str) -> Self {
        if !self.identities.iter().any(|known| known == identity) {
            self.identities.push(identity.to_owned());
        }
        self
    }
}

impl Refusal {
    /// Every refusal, for exhaustive tests and for parsing.
    pub const ALL: [Self; 3] = [Self::UserExists, Self::UnknownUser, Self::NoMobileNumber];

    /// The outcome name stored in the database and carried by outcome events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserExists => "user_exists",
            Self::UnknownUser => "unknown_user",
            Self::NoMobileNumber => "no_mobile_number",
        }
    }

    /// The inverse of [`Refusal::as_str`].
    pub fn parse(outcome: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == outcome)
    }

    /// The legacy answer the Java service gave for this refusal of an `otp_type` request:
    /// `error.message` and the single `fields[0]` entry ([contract §1](../../docs/contract.md#1-the-send-request), "Outcome errors").
    ///
    /// The four combinations in the contract's table are exact. The others cannot come out of
    /// [`decide`] (register never looks for an absent user or a mobile; login never refuses
    /// for a missing mobile or an existing user); should one be asked for anyway, the
    /// `error.message` still names the type ("OTP request for … failed") and the field entry is
    /// the refusal's own: `UserExists` and `NoMobileNumber` always use their only texts, and
    /// `UnknownUser` uses login's deliberately vague "No such username or password" for every
    /// type except passwordreset.
    pub fn legacy_error(self, otp_type: OtpType) -> (&'static str, FieldError) {
        let (code, message) = match (self, otp_type) {
            (Self::UserExists, _) => (
                "OTP.MOBILENUMBER",
                "This MobileNumber Already Register as UserName in System. Pls try Another UserName",
            ),
            (Self::UnknownUser, OtpType::PasswordReset) => {
                ("OTP.UNKNOWN_MOBILE_NUMBER", "Mobile number is unknown.")
            }
            (Self::UnknownUser, OtpType::Register | OtpType::Login) => {
                ("OTP.UNKNOWN_CREDENTIAL", "No such username or password")
            }
            (Self::NoMobileNumber, _) => {
                ("OTP.MOBILE_NUMBER", "MobileNumber Not Found For This User.")
            }
        };
        let field = FieldError {
            code: code.to_owned(),
            message: message.to_owned(),
            field: OUTCOME_ERROR_FIELD.to_owned(),
        };
        (request_failed_message(otp_type), field)
    }
}

/// `error.message` of an outcome error for a request of `otp_type`.
fn request_failed_message(otp_type: OtpType) -> &'static str {
    match otp_type {
        OtpType::Register => "OTP request for register failed",
        OtpType::Login => "OTP request for login failed",
        OtpType::PasswordReset => "OTP request for password reset failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RawOtpRequest;
    use serde_json::json;

    const REQUEST_MOBILE: &str = "9876543210";
    const STORED_MOBILE: &str = "9123456789";
    const EMAIL: &str = "citizen@example.org";

    fn request(otp_type: &str, mobile: &str, user_type: &str) -> OtpRequest {
        RawOtpRequest::from_value(&json!({"otp": {
            "mobileNumber": mobile, "tenantId": "pb.amritsar",
            "type": otp_type, "userType": user_type}}))
        .expect("parses")
        .validate()
        .expect("valid")
    }

    fn user(mobile: Option<&str>, email: Option<&str>) -> FoundUser {
        FoundUser {
            id: Some(1),
            uuid: Some("b3c1a2d4-0000-0000-0000-000000000001".into()),
            mobile_number: mobile.map(str::to_owned),
            email_id: email.map(str::to_owned),
            tenant_id: Some("pb".into()),
        }
    }

    fn send(sms_to: &str, identities: &[&str], email_to: Option<&str>) -> Decision {
        Decision::Send(SendPlan {
            sms_to: sms_to.into(),
            identities: identities.iter().map(|i| i.to_string()).collect(),
            email_to: email_to.map(str::to_owned),
        })
    }

    #[test]
    fn every_type_with_and_without_a_user_for_employees_and_citizens() {
        let with_email = user(Some(STORED_MOBILE), Some(EMAIL));
        let without_email = user(Some(STORED_MOBILE), None);
        let cases = [
            (
                "register",
                None,
                send(REQUEST_MOBILE, &[REQUEST_MOBILE], None),
            ),
            (
                "register",
                Some(&with_email),
                Decision::Refuse(Refusal::UserExists),
            ),
            (
                "register",
                Some(&without_email),
                Decision::Refuse(Refusal::UserExists),
            ),
            ("login", None, Decision::Refuse(Refusal::UnknownUser)),
            (
                "login",
                Some(&with_email),
                send(REQUEST_MOBILE, &[REQUEST_MOBILE], Some(EMAIL)),
            ),
            (
                "login",
                Some(&without_email),
                send(REQUEST_MOBILE, &[REQUEST_MOBILE], None),
            ),
            (
                "passwordreset",
                None,
                Decision::Refuse(Refusal::UnknownUser),
            ),
            (
                "passwordreset",
                Some(&with_email),
                send(STORED_MOBILE, &[STORED_MOBILE, REQUEST_MOBILE], Some(EMAIL)),
            ),
            (
                "passwordreset",
                Some(&without_email),
                send(STORED_MOBILE, &[STORED_MOBILE, REQUEST_MOBILE], None),
            ),
        ];
        for user_type in ["EMPLOYEE", "Employee", "CITIZEN"] {
            for (otp_type, found, expected) in &cases {
                let request = request(otp_type, REQUEST_MOBILE, user_type);
                assert_eq!(
                    decide(&request, *found),
                    *expected,
                    "{otp_type} {user_type} found={}",
                    found.is_some()
                );
            }
        }
    }

    #[test]
    fn password_reset_by_user_name_binds_the_stored_mobile_and_the_user_name() {
        for user_type in ["EMPLOYEE", "CITIZEN"] {
            let request = request("passwordreset", "ramesh.k", user_type);
            let found = user(Some(STORED_MOBILE), None);
            assert_eq!(
                decide(&request, Some(&found)),
                send(STORED_MOBILE, &[STORED_MOBILE, "ramesh.k"], None)
            );
        }
    }

    #[test]
    fn password_reset_for_a_user_without_a_mobile_is_refused() {
        for user_type in ["EMPLOYEE", "CITIZEN"] {
            let request = request("passwordreset", "ramesh.k", user_type);
            for mobile in [None, Some(""), Some("   ")] {
                let found = user(mobile, Some(EMAIL));
                assert_eq!(
                    decide(&request, Some(&found)),
                    Decision::Refuse(Refusal::NoMobileNumber),
                    "{user_type} {mobile:?}"
                );
            }
        }
    }

    #[test]
    fn password_reset_with_the_stored_mobile_binds_it_once() {
        for user_type in ["EMPLOYEE", "CITIZEN"] {
            let request = request("passwordreset", STORED_MOBILE, user_type);
            // egov-user's value is trimmed before it is compared.
            let found = user(Some(" 9123456789 "), Some(EMAIL));
            assert_eq!(
                decide(&request, Some(&found)),
                send(STORED_MOBILE, &[STORED_MOBILE], Some(EMAIL))
            );
        }
    }

    #[test]
    fn a_blank_email_is_no_email() {
        let request = request("login", REQUEST_MOBILE, "CITIZEN");
        let found = user(Some(STORED_MOBILE), Some("  "));
        assert_eq!(
            decide(&request, Some(&found)),
            send(REQUEST_MOBILE, &[REQUEST_MOBILE], None)
        );
    }

    #[test]
    fn debug_masks_numbers_and_addresses() {
        let plan = SendPlan {
            sms_to: STORED_MOBILE.into(),
            identities: vec![STORED_MOBILE.into(), "ramesh.k".into()],
            email_to: Some(EMAIL.into()),
        };
        assert_eq!(
            format!("{plan:?}"),
            r#"SendPlan { sms_to: "******6789", identities: ["******6789", "****sh.k"], email_to: Some("***************.org") }"#
        );
    }

    #[test]
    fn outcome_names_round_trip() {
        let names: Vec<_> = Refusal::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["user_exists", "unknown_user", "no_mobile_number"]);
        for refusal in Refusal::ALL {
            assert_eq!(Refusal::parse(refusal.as_str()), Some(refusal));
        }
        assert_eq!(Refusal::parse("sent"), None);
    }

    fn legacy(refusal: Refusal, otp_type: OtpType) -> (&'static str, String, String, String) {
        let (message, field) = refusal.legacy_error(otp_type);
        (message, field.code, field.message, field.field)
    }

    #[test]
    fn legacy_errors_match_the_contract_table() {
        let table = [
            (
                Refusal::UserExists,
                OtpType::Register,
                "OTP request for register failed",
                "OTP.MOBILENUMBER",
                "This MobileNumber Already Register as UserName in System. Pls try Another UserName",
            ),
            (
                Refusal::UnknownUser,
                OtpType::Login,
                "OTP request for login failed",
                "OTP.UNKNOWN_CREDENTIAL",
                "No such username or password",
            ),
            (
                Refusal::UnknownUser,
                OtpType::PasswordReset,
                "OTP request for password reset failed",
                "OTP.UNKNOWN_MOBILE_NUMBER",
                "Mobile number is unknown.",
            ),
            (
                Refusal::NoMobileNumber,
                OtpType::PasswordReset,
                "OTP request for password reset failed",
                "OTP.MOBILE_NUMBER",
                "MobileNumber Not Found For This User.",
            ),
        ];
        for (refusal, otp_type, message, code, field_message) in table {
            assert_eq!(
                legacy(refusal, otp_type),
                (
                    message,
                    code.to_owned(),
                    field_message.to_owned(),
                    "otp.mobileNumber".to_owned()
                ),
                "{refusal:?} {otp_type}"
            );
        }
    }

    #[test]
    fn combinations_outside_the_table_name_the_type_and_the_refusal() {
        assert_eq!(
            legacy(Refusal::UnknownUser, OtpType::Register),
            (
                "OTP request for register failed",
                "OTP.UNKNOWN_CREDENTIAL".into(),
                "No such username or password".into(),
                "otp.mobileNumber".into()
            )
        );
        assert_eq!(
            legacy(Refusal::NoMobileNumber, OtpType::Login),
            (
                "OTP request for login failed",
                "OTP.MOBILE_NUMBER".into(),
                "MobileNumber Not Found For This User.".into(),
                "otp.mobileNumber".into()
            )
        );
        assert_eq!(
            legacy(Refusal::UserExists, OtpType::PasswordReset).1,
            "OTP.MOBILENUMBER"
        );
    }

    #[test]
    fn every_decided_refusal_has_a_table_entry() {
        // The refusals decide() can produce are exactly the contract's four rows.
        let found = user(Some(STORED_MOBILE), None);
        let no_mobile = user(None, None);
        let produced = [
            (
                OtpType::Register,
                decide(
                    &request("register", REQUEST_MOBILE, "CITIZEN"),
                    Some(&found),
                ),
            ),
            (
                OtpType::Login,
                decide(&request("login", REQUEST_MOBILE, "CITIZEN"), None),
            ),
            (
                OtpType::PasswordReset,
                decide(&request("passwordreset", REQUEST_MOBILE, "EMPLOYEE"), None),
            ),
            (
                OtpType::PasswordReset,
                decide(
                    &request("passwordreset", REQUEST_MOBILE, "EMPLOYEE"),
                    Some(&no_mobile),
                ),
            ),
        ];
        let codes: Vec<String> = produced
            .into_iter()
            .map(|(otp_type, decision)| match decision {
                Decision::Refuse(refusal) => refusal.legacy_error(otp_type).1.code,
                Decision::Send(_) => "sent".into(),
            })
            .collect();
        assert_eq!(
            codes,
            [
                "OTP.MOBILENUMBER",
                "OTP.UNKNOWN_CREDENTIAL",
                "OTP.UNKNOWN_MOBILE_NUMBER",
                "OTP.MOBILE_NUMBER"
            ]
        );
    }
}
