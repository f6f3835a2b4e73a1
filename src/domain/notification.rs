//! The events the worker emits for DIGIT's notification services: an [`SmsEvent`] for
//! egov-notification-sms ([contract §4](../../docs/contract.md#4-sms-event), `schemas/sms-event.schema.json`) and an [`EmailEvent`]
//! for egov-notification-mail ([contract §5](../../docs/contract.md#5-email-event), `schemas/email-event.schema.json`).
//!
//! Both are serialised with their members in the order DIGIT's producers wrote them, so the
//! bytes match what existing consumers (and anyone diffing topics) already see. `expiryTime` is
//! the epoch millisecond after which egov-notification-sms drops the message; it is computed by
//! the caller (now + `expiry.time.for.otp`), not here, so these types stay free of clocks.
//!
//! The message and the email body contain the code: `Debug` of both events omits them (and
//! masks the mobile number and addresses), so an event can be logged without leaking a code.

use std::fmt;

use serde::Serialize;

use crate::telemetry::Masked;

/// The only SMS category this service emits; egov-notification-sms treats it as time-critical.
pub const SMS_CATEGORY_OTP: &str = "OTP";

/// Value of an event on the SMS topic.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SmsEvent {
    pub mobile_number: String,
    pub message: String,
    /// Always [`SMS_CATEGORY_OTP`].
    category: &'static str,
    /// Epoch milliseconds after which the SMS is no longer worth sending.
    pub expiry_time: i64,
    /// DLT template id (NIC gateway).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

impl SmsEvent {
    pub fn new(
        mobile_number: impl Into<String>,
        message: impl Into<String>,
        expiry_epoch_ms: i64,
        template_id: Option<String>,
        locale: Option<String>,
        tenant_id: Option<String>,
    ) -> Self {
        Self {
            mobile_number: mobile_number.into(),
            message: message.into(),
            category: SMS_CATEGORY_OTP,
            expiry_time: expiry_epoch_ms,
            template_id,
            locale,
            tenant_id,
        }
    }

    /// Always `"OTP"`.
    pub fn category(&self) -> &'static str {
        self.category
    }
}

impl fmt::Debug for SmsEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsEvent")
            .field("mobile_number", &Masked(&self.mobile_number).to_string())
            .field("message", &"<redacted>")
            .field("category", &self.category)
            .field("expiry_time", &self.expiry_time)
            .field("template_id", &self.template_id)
            .field("locale", &self.locale)
            .field("tenant_id", &self.tenant_id)
            .finish()
    }
}

/// Value of an event on the email topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailEvent {
    /// Serialised as `{}`: egov-notification-mail expects the member, not its content.
    request_info: EmptyObject,
    pub email: Email,
}

/// A JSON object with no members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
struct EmptyObject {}

/// The `email` member of an [`EmailEvent`].
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Email {
    #[serde(rename = "emailTo")]
    pub email_to: Vec<String>,
    pub subject: String,
    pub body: String,
    /// Always false: the OTP texts are plain text.
    #[serde(rename = "isHTML")]
    pub is_html: bool,
}

impl EmailEvent {
    /// A plain-text email to one address.
    pub fn new(to: impl Into<String>, subject: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            request_info: EmptyObject {},
            email: Email {
                email_to: vec![to.into()],
                subject: subject.into(),
                body: body.into(),
                is_html: false,
            },
        }
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let to: Vec<String> = self
            .email_to
            .iter()
            .map(|a| Masked(a).to_string())
            .collect();
        f.debug_struct("Email")
            .field("email_to", &to)
            .field("subject", &self.subject)
            .field("body", &"<redacted>")
            .field("is_html", &self.is_html)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const SMS_SCHEMA: &str = include_str!("../../schemas/sms-event.schema.json");
    const EMAIL_SCHEMA: &str = include_str!("../../schemas/email-event.schema.json");

    fn validator(schema: &str) -> jsonschema::Validator {
        let schema: Value = serde_json::from_str(schema).expect("schema is JSON");
        jsonschema::validator_for(&schema).expect("schema compiles")
    }

    fn errors(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
        validator
            .iter_errors(value)
            .map(|e| e.to_string())
            .collect()
    }

    fn minimal_sms() -> SmsEvent {
        SmsEvent::new(
            "9876543210",
            "Dear Citizen, Your Login OTP is 123456.",
            1_732_600_000_000,
            None,
            None,
            None,
        )
    }

    fn full_sms() -> SmsEvent {
        SmsEvent::new(
            "9876543210",
            "Dear Citizen, Your Login OTP is 123456.",
            1_732_600_000_000,
            Some("1007161234567890123".into()),
            Some("en_IN".into()),
            Some("pb".into()),
        )
    }

    #[test]
    fn sms_event_serialises_like_digit() {
        assert_eq!(
            serde_json::to_string(&minimal_sms()).expect("serialises"),
            r#"{"mobileNumber":"9876543210","message":"Dear Citizen, Your Login OTP is 123456.","category":"OTP","expiryTime":1732600000000}"#
        );
        assert_eq!(
            serde_json::to_string(&full_sms()).expect("serialises"),
            r#"{"mobileNumber":"9876543210","message":"Dear Citizen, Your Login OTP is 123456.","category":"OTP","expiryTime":1732600000000,"templateId":"1007161234567890123","locale":"en_IN","tenantId":"pb"}"#
        );
        assert_eq!(full_sms().category(), "OTP");
    }

    #[test]
    fn email_event_serialises_like_digit() {
        let event = EmailEvent::new(
            "a@b.c",
            "Login OTP",
            "Dear Citizen, Your Login OTP is 123456.",
        );
        assert_eq!(
            serde_json::to_string(&event).expect("serialises"),
            r#"{"requestInfo":{},"email":{"emailTo":["a@b.c"],"subject":"Login OTP","body":"Dear Citizen, Your Login OTP is 123456.","isHTML":false}}"#
        );
    }

    #[test]
    fn debug_never_shows_the_code() {
        let sms = format!("{:?}", full_sms());
        assert_eq!(
            sms,
            r#"SmsEvent { mobile_number: "******3210", message: "<redacted>", category: "OTP", expiry_time: 1732600000000, template_id: Some("1007161234567890123"), locale: Some("en_IN"), tenant_id: Some("pb") }"#
        );
        let email = format!(
            "{:?}",
            EmailEvent::new("citizen@example.org", "Login OTP", "Your OTP is 123456.")
        );
        assert!(!email.contains("123456"), "{email}");
        assert!(!email.contains("citizen@"), "{email}");
        assert!(email.contains(r#"body: "<redacted>""#), "{email}");
    }

    #[test]
    fn sms_events_satisfy_their_schema() {
        let validator = validator(SMS_SCHEMA);
        for event in [minimal_sms(), full_sms()] {
            let value = serde_json::to_value(&event).expect("serialises");
            assert_eq!(errors(&validator, &value), Vec::<String>::new(), "{value}");
        }
    }

    #[test]
    fn the_sms_schema_rejects_what_consumers_would_not_handle() {
        let validator = validator(SMS_SCHEMA);
        let good = serde_json::to_value(full_sms()).expect("serialises");
        let variants: [(&str, Value); 6] = [
            ("category", Value::from("TRANSACTION")),
            ("expiryTime", Value::from("1732600000000")),
            ("expiryTime", Value::from(1.5)),
            ("mobileNumber", Value::from("")),
            ("message", Value::Null),
            ("unexpected", Value::from(true)),
        ];
        for (key, bad) in variants {
            let mut value = good.clone();
            value[key] = bad;
            assert!(!validator.is_valid(&value), "{key}: {value}");
        }
        for required in ["mobileNumber", "message", "category", "expiryTime"] {
            let mut value = good.clone();
            value.as_object_mut().expect("object").remove(required);
            assert!(!validator.is_valid(&value), "without {required}");
        }
    }

    #[test]
    fn email_events_satisfy_their_schema() {
        let validator = validator(EMAIL_SCHEMA);
        let value = serde_json::to_value(EmailEvent::new(
            "a@b.c",
            "Password Reset",
            "Your OTP for recovering password is 000123.",
        ))
        .expect("serialises");
        assert_eq!(errors(&validator, &value), Vec::<String>::new(), "{value}");
    }

    #[test]
    fn the_email_schema_rejects_malformed_events() {
        let validator = validator(EMAIL_SCHEMA);
        let good = serde_json::to_value(EmailEvent::new("a@b.c", "s", "b")).expect("serialises");
        let mut no_recipient = good.clone();
        no_recipient["email"]["emailTo"] = Value::Array(vec![]);
        let mut html_as_text = good.clone();
        html_as_text["email"]["isHTML"] = Value::from("false");
        let mut extra = good.clone();
        extra["email"]["cc"] = Value::from("x@y.z");
        let mut no_request_info = good.clone();
        no_request_info
            .as_object_mut()
            .expect("object")
            .remove("requestInfo");
        for (name, value) in [
            ("no recipient", no_recipient),
            ("isHTML as text", html_as_text),
            ("extra member", extra),
            ("no requestInfo", no_request_info),
        ] {
            assert!(!validator.is_valid(&value), "{name}: {value}");
        }
    }
}
