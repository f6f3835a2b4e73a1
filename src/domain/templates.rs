//! The texts of the messages that carry a code ([contract §6](../../docs/contract.md#6-message-texts)), and how a code is put into them.
//!
//! Per request type there is an SMS text, for login and passwordreset an email subject and body,
//! and optionally a DLT template id (India's NIC gateway drops an SMS without one, [contract §4](../../docs/contract.md#4-sms-event)).
//! [`MessageTemplates::default`] holds DIGIT's en_IN defaults word for word; configuration may
//! replace the SMS text and the DLT template id per type.
//!
//! A template marks where the code goes with `%s` (DIGIT core, Java `String.format`) or `{otp}`
//! (mGramSeva, e.g. `OTP to reset password on NalJal is {otp}`); [`render`] replaces every
//! occurrence of either. `%%` and other `String.format` conversions have no special meaning here.
//! A template without a placeholder renders unchanged, without the code: configuration should
//! refuse such a text ([`has_placeholder`]) rather than send messages that carry no code.

use super::code::OtpCode;
use super::otp_type::OtpType;

/// Placeholder of DIGIT core texts.
const PLACEHOLDER_PRINTF: &str = "%s";
/// Placeholder of mGramSeva texts.
const PLACEHOLDER_NAMED: &str = "{otp}";

/// Subject and body of an OTP email, each a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTemplate {
    pub subject: String,
    pub body: String,
}

/// Everything needed to word the messages of one request type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeTemplates {
    pub sms: String,
    /// `None` means no email is sent for this type (register).
    pub email: Option<EmailTemplate>,
    pub dlt_template_id: Option<String>,
}

impl TypeTemplates {
    /// The SMS text carrying `code`.
    pub fn sms_text(&self, code: &OtpCode) -> String {
        render(&self.sms, code)
    }

    /// Subject and body of the email carrying `code`; `None` when the type sends none.
    pub fn email(&self, code: &OtpCode) -> Option<(String, String)> {
        self.email
            .as_ref()
            .map(|email| (render(&email.subject, code), render(&email.body, code)))
    }
}

/// The message texts of all three request types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplates {
    register: TypeTemplates,
    login: TypeTemplates,
    password_reset: TypeTemplates,
}

impl Default for MessageTemplates {
    /// DIGIT's en_IN defaults ([contract §6](../../docs/contract.md#6-message-texts)), no DLT template ids.
    fn default() -> Self {
        Self {
            register: TypeTemplates {
                sms: "Dear Citizen, Your OTP to complete your mSeva Registration is %s.".into(),
                email: None,
                dlt_template_id: None,
            },
            login: TypeTemplates {
                sms: "Dear Citizen, Your Login OTP is %s.".into(),
                email: Some(EmailTemplate {
                    subject: "Login OTP".into(),
                    body: "Dear Citizen, Your Login OTP is %s.".into(),
                }),
                dlt_template_id: None,
            },
            password_reset: TypeTemplates {
                sms: "Dear Citizen, Your OTP for recovering password is %s.".into(),
                email: Some(EmailTemplate {
                    subject: "Password Reset".into(),
                    body: "Your OTP for recovering password is %s.".into(),
                }),
                dlt_template_id: None,
            },
        }
    }
}

impl MessageTemplates {
    /// Replaces the SMS text of one type (a configured text, or a localized one).
    pub fn with_sms_text(mut self, otp_type: OtpType, text: impl Into<String>) -> Self {
        self.for_type_mut(otp_type).sms = text.into();
        self
    }

    /// Sets the DLT template id sent with every SMS of one type.
    pub fn with_dlt_template_id(mut self, otp_type: OtpType, id: impl Into<String>) -> Self {
        self.for_type_mut(otp_type).dlt_template_id = Some(id.into());
        self
    }

    /// Replaces (or, with `None`, removes) the email of one type.
    pub fn with_email(mut self, otp_type: OtpType, email: Option<EmailTemplate>) -> Self {
        self.for_type_mut(otp_type).email = email;
        self
    }

    /// The templates of one type, as configured.
    pub fn for_type(&self, otp_type: OtpType) -> &TypeTemplates {
        match otp_type {
            OtpType::Register => &self.register,
            OtpType::Login => &self.login,
            OtpType::PasswordReset => &self.password_reset,
        }
    }

    fn for_type_mut(&mut self, otp_type: OtpType) -> &mut TypeTemplates {
        match otp_type {
            OtpType::Register => &mut self.register,
            OtpType::Login => &mut self.login,
            OtpType::PasswordReset => &mut self.password_reset,
        }
    }

    /// The SMS text of `otp_type` carrying `code`.
    pub fn sms_text(&self, otp_type: OtpType, code: &OtpCode) -> String {
        self.for_type(otp_type).sms_text(code)
    }

    /// Subject and body of the email of `otp_type` carrying `code`; `None` when the type sends
    /// no email (register).
    pub fn email(&self, otp_type: OtpType, code: &OtpCode) -> Option<(String, String)> {
        self.for_type(otp_type).email(code)
    }

    /// The DLT template id configured for `otp_type`, if any.
    pub fn dlt_template_id(&self, otp_type: OtpType) -> Option<&str> {
        self.for_type(otp_type).dlt_template_id.as_deref()
    }
}

/// `template` with every `%s` and every `{otp}` replaced by the code.
pub fn render(template: &str, code: &OtpCode) -> String {
    template
        .replace(PLACEHOLDER_PRINTF, code.as_str())
        .replace(PLACEHOLDER_NAMED, code.as_str())
}

/// True when `template` has somewhere to put the code (`%s` or `{otp}`).
pub fn has_placeholder(template: &str) -> bool {
    template.contains(PLACEHOLDER_PRINTF) || template.contains(PLACEHOLDER_NAMED)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_TYPES: [OtpType; 3] = [OtpType::Register, OtpType::Login, OtpType::PasswordReset];

    fn code(digits: &str) -> OtpCode {
        OtpCode::from_digits(digits).expect("digits")
    }

    #[test]
    fn default_sms_texts_are_digit_en_in_texts() {
        let templates = MessageTemplates::default();
        let code = code("012345");
        assert_eq!(
            templates.sms_text(OtpType::Register, &code),
            "Dear Citizen, Your OTP to complete your mSeva Registration is 012345."
        );
        assert_eq!(
            templates.sms_text(OtpType::Login, &code),
            "Dear Citizen, Your Login OTP is 012345."
        );
        assert_eq!(
            templates.sms_text(OtpType::PasswordReset, &code),
            "Dear Citizen, Your OTP for recovering password is 012345."
        );
    }

    #[test]
    fn default_emails_exist_for_login_and_password_reset_only() {
        let templates = MessageTemplates::default();
        let code = code("123456");
        assert_eq!(templates.email(OtpType::Register, &code), None);
        assert_eq!(
            templates.email(OtpType::Login, &code),
            Some((
                "Login OTP".to_owned(),
                "Dear Citizen, Your Login OTP is 123456.".to_owned()
            ))
        );
        assert_eq!(
            templates.email(OtpType::PasswordReset, &code),
            Some((
                "Password Reset".to_owned(),
                "Your OTP for recovering password is 123456.".to_owned()
            ))
        );
    }

    #[test]
    fn default_templates_are_exact_and_have_no_dlt_ids() {
        let templates = MessageTemplates::default();
        let sms: Vec<&str> = ALL_TYPES
            .iter()
            .map(|t| templates.for_type(*t).sms.as_str())
            .collect();
        assert_eq!(
            sms,
            [
                "Dear Citizen, Your OTP to complete your mSeva Registration is %s.",
                "Dear Citizen, Your Login OTP is %s.",
                "Dear Citizen, Your OTP for recovering password is %s.",
            ]
        );
        for t in ALL_TYPES {
            assert_eq!(templates.dlt_template_id(t), None, "{t}");
            assert!(has_placeholder(&templates.for_type(t).sms), "{t}");
        }
    }

    #[test]
    fn both_placeholder_styles_are_replaced() {
        let code = code("004217");
        assert_eq!(render("Your code is %s.", &code), "Your code is 004217.");
        assert_eq!(
            render("OTP to reset password on NalJal is {otp}", &code),
            "OTP to reset password on NalJal is 004217"
        );
    }

    #[test]
    fn every_placeholder_is_replaced() {
        let code = code("9876");
        assert_eq!(
            render("%s is your code; again: %s, {otp}{otp}", &code),
            "9876 is your code; again: 9876, 98769876"
        );
    }

    #[test]
    fn a_template_without_placeholder_is_left_as_it_is() {
        let code = code("123456");
        assert_eq!(render("No code here. 100%", &code), "No code here. 100%");
        assert!(!has_placeholder("No code here. 100%"));
        assert!(!has_placeholder("{OTP} % s {otp"));
        assert!(has_placeholder("x %s"));
        assert!(has_placeholder("x {otp}"));
    }

    #[test]
    fn sms_text_and_dlt_id_can_be_overridden_per_type() {
        let templates = MessageTemplates::default()
            .with_sms_text(
                OtpType::PasswordReset,
                "OTP to reset password on NalJal is {otp}",
            )
            .with_dlt_template_id(OtpType::PasswordReset, "1007161234567890123")
            .with_dlt_template_id(OtpType::Login, String::from("1007160000000000001"));
        let code = code("555123");
        assert_eq!(
            templates.sms_text(OtpType::PasswordReset, &code),
            "OTP to reset password on NalJal is 555123"
        );
        assert_eq!(
            templates.dlt_template_id(OtpType::PasswordReset),
            Some("1007161234567890123")
        );
        assert_eq!(
            templates.dlt_template_id(OtpType::Login),
            Some("1007160000000000001")
        );
        assert_eq!(templates.dlt_template_id(OtpType::Register), None);
        // Other types keep their defaults, and the email is not affected by the SMS override.
        assert_eq!(
            templates.sms_text(OtpType::Register, &code),
            "Dear Citizen, Your OTP to complete your mSeva Registration is 555123."
        );
        assert_eq!(
            templates.email(OtpType::PasswordReset, &code).map(|e| e.1),
            Some("Your OTP for recovering password is 555123.".to_owned())
        );
    }

    #[test]
    fn email_can_be_replaced_or_removed() {
        let templates = MessageTemplates::default()
            .with_email(OtpType::Login, None)
            .with_email(
                OtpType::Register,
                Some(EmailTemplate {
                    subject: "Registration OTP".into(),
                    body: "Your code is {otp}.".into(),
                }),
            );
        let code = code("111111");
        assert_eq!(templates.email(OtpType::Login, &code), None);
        assert_eq!(
            templates.email(OtpType::Register, &code),
            Some((
                "Registration OTP".to_owned(),
                "Your code is 111111.".to_owned()
            ))
        );
    }
}
