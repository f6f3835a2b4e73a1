//! The wording of one request's messages: the localized texts where egov-localization has
//! usable ones, else the configured (or built-in) texts, and the DLT template id that goes with
//! the chosen SMS text.
//!
//! DLT rule (India's TRAI: each registered text is its own template, and an SMS whose text does
//! not match its template id is dropped by the gateway): while a type has any DLT template id
//! configured (`USER_OTP_DLT_TEMPLATE_ID_<TYPE>` or `USER_OTP_DLT_TEMPLATE_IDS_BY_LOCALE_<TYPE>`),
//! a localized SMS text is sent only with its locale's id; for a locale without one the
//! configured text goes with its own id, so that the SMS is delivered, in English. Without any
//! DLT id for the type, the localized text is sent as it is.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use super::{Localizer, LocalizerError, Messages};
use crate::config::{PerType, Settings};
use crate::domain::templates::{has_placeholder, EmailTemplate, MessageTemplates, TypeTemplates};
use crate::domain::{OtpRequest, OtpType};

const TYPES: [OtpType; 3] = [OtpType::Register, OtpType::Login, OtpType::PasswordReset];

/// DIGIT's email keys (subject, body) per type ([contract §6](../../docs/contract.md#6-message-texts)); register sends no email.
pub fn email_keys(otp_type: OtpType) -> Option<(&'static str, &'static str)> {
    match otp_type {
        OtpType::Register => None,
        OtpType::Login => Some(("email.login.otp.sub", "email.login.otp.body")),
        OtpType::PasswordReset => Some(("email.pwd.reset.otp.sub", "email.pwd.reset.otp.body")),
    }
}

/// Where a worker's message texts come from.
#[derive(Clone)]
pub struct MessageTexts {
    configured: MessageTemplates,
    localizer: Localizer,
    sms_keys: PerType<Vec<String>>,
    dlt_by_locale: PerType<BTreeMap<String, String>>,
}

impl MessageTexts {
    /// DIGIT's default texts with the configured overrides, and egov-localization when
    /// `USER_OTP_LOCALIZATION_HOST` is set.
    ///
    /// # Errors
    /// [`LocalizerError`]: the egov-localization URL does not parse.
    pub fn new(settings: &Settings) -> Result<Self, LocalizerError> {
        let configured =
            TYPES
                .into_iter()
                .fold(MessageTemplates::default(), |templates, otp_type| {
                    let templates = match settings.otp.sms_texts.get(otp_type) {
                        Some(text) => templates.with_sms_text(otp_type, text.clone()),
                        None => templates,
                    };
                    match settings.otp.dlt_template_ids.get(otp_type) {
                        Some(id) => templates.with_dlt_template_id(otp_type, id.clone()),
                        None => templates,
                    }
                });
        let sms_keys = settings.localization.sms_keys.clone();
        let wanted = TYPES
            .into_iter()
            .flat_map(|t| {
                let email = email_keys(t).map(|(s, b)| [s.to_owned(), b.to_owned()]);
                sms_keys
                    .get(t)
                    .iter()
                    .cloned()
                    .chain(email.into_iter().flatten())
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        Ok(Self {
            configured,
            localizer: Localizer::new(&settings.localization, wanted)?,
            sms_keys,
            dlt_by_locale: settings.otp.dlt_template_ids_by_locale.clone(),
        })
    }

    /// The templates of `request`: its state tenant's texts in its locale, after at most one
    /// search of egov-localization (bounded by the localization timeout) when they are not
    /// cached. Without localized texts (localization off, no answer) the configured templates
    /// themselves, borrowed: nothing is copied per request.
    pub async fn for_request(&self, request: &OtpRequest) -> Cow<'_, TypeTemplates> {
        match self
            .localizer
            .messages(&request.tenant_id, request.locale())
            .await
        {
            Some(messages) => {
                Cow::Owned(self.choose(request.otp_type, request.locale(), Some(&messages)))
            }
            None => Cow::Borrowed(self.configured.for_type(request.otp_type)),
        }
    }

    /// The templates of `otp_type` in `locale` given egov-localization's `messages`.
    pub fn choose(
        &self,
        otp_type: OtpType,
        locale: &str,
        messages: Option<&Messages>,
    ) -> TypeTemplates {
        choose(
            self.configured.for_type(otp_type),
            messages,
            self.sms_keys.get(otp_type),
            email_keys(otp_type),
            self.dlt_by_locale.get(otp_type).get(locale),
            !self.dlt_by_locale.get(otp_type).is_empty(),
        )
    }
}

/// The rule of the module doc, for one type: `locale_dlt_id` is the DLT id of the request's
/// locale, `dlt_by_locale_in_use` whether the type has ids for any locale.
fn choose(
    configured: &TypeTemplates,
    messages: Option<&Messages>,
    sms_keys: &[String],
    email_keys: Option<(&str, &str)>,
    locale_dlt_id: Option<&String>,
    dlt_by_locale_in_use: bool,
) -> TypeTemplates {
    let localized = |key: &str| messages.and_then(|m| m.get(key));
    let localized_sms = sms_keys
        .iter()
        .filter_map(|key| localized(key))
        .find(|text| has_placeholder(text));
    let dlt_in_use = configured.dlt_template_id.is_some() || dlt_by_locale_in_use;
    let (sms, dlt_template_id) = match (localized_sms, locale_dlt_id) {
        (Some(text), Some(id)) => (text.to_owned(), Some(id.clone())),
        (Some(text), None) if !dlt_in_use => (text.to_owned(), None),
        _ => (configured.sms.clone(), configured.dlt_template_id.clone()),
    };
    let email = configured.email.as_ref().map(|email| {
        let Some((subject_key, body_key)) = email_keys else {
            return email.clone();
        };
        EmailTemplate {
            // A subject never carries the code (mail systems log and show subjects).
            subject: localized(subject_key)
                .filter(|text| !has_placeholder(text))
                .map_or_else(|| email.subject.clone(), str::to_owned),
            body: localized(body_key)
                .filter(|text| has_placeholder(text))
                .map_or_else(|| email.body.clone(), str::to_owned),
        }
    });
    TypeTemplates {
        sms,
        email,
        dlt_template_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(dlt: Option<&str>) -> TypeTemplates {
        TypeTemplates {
            sms: "Dear Citizen, Your Login OTP is %s.".into(),
            email: Some(EmailTemplate {
                subject: "Login OTP".into(),
                body: "Dear Citizen, Your Login OTP is %s.".into(),
            }),
            dlt_template_id: dlt.map(str::to_owned),
        }
    }

    const LOGIN_EMAIL: Option<(&str, &str)> = Some(("email.login.otp.sub", "email.login.otp.body"));

    fn keys(list: &[&str]) -> Vec<String> {
        list.iter().map(|k| (*k).to_owned()).collect()
    }

    #[test]
    fn localized_texts_win_and_the_first_usable_key_is_taken() {
        let messages = Messages::from_pairs([
            ("sms.pwd.reset.otp.msg", "no placeholder here"),
            ("RESET_PASSWORD_OTP", "NalJal पासवर्ड OTP {otp}"),
            ("email.login.otp.sub", "लॉगिन OTP"),
            ("email.pwd.reset.otp.sub", "कोड %s"),
            ("email.login.otp.body", "बिना कोड"),
        ]);
        let chosen = choose(
            &configured(None),
            Some(&messages),
            &keys(&["sms.pwd.reset.otp.msg", "RESET_PASSWORD_OTP"]),
            LOGIN_EMAIL,
            None,
            false,
        );
        assert_eq!(chosen.sms, "NalJal पासवर्ड OTP {otp}");
        assert_eq!(chosen.dlt_template_id, None);
        let email = chosen.email.expect("email");
        assert_eq!(email.subject, "लॉगिन OTP");
        assert_eq!(
            email.body, "Dear Citizen, Your Login OTP is %s.",
            "a body without the code is not used"
        );
        let reset = choose(
            &configured(None),
            Some(&messages),
            &keys(&["sms.pwd.reset.otp.msg"]),
            Some(("email.pwd.reset.otp.sub", "email.pwd.reset.otp.body")),
            None,
            false,
        );
        assert_eq!(
            reset.email.expect("email").subject,
            "Login OTP",
            "a subject with the code is not used"
        );
    }

    #[test]
    fn missing_keys_and_no_answer_mean_the_configured_texts() {
        let empty = Messages::default();
        for messages in [None, Some(&empty)] {
            let chosen = choose(
                &configured(None),
                messages,
                &keys(&["sms.login.otp.msg"]),
                LOGIN_EMAIL,
                None,
                false,
            );
            assert_eq!(chosen, configured(None));
        }
    }

    #[test]
    fn with_dlt_ids_a_localized_text_goes_only_with_its_own_id() {
        let messages = Messages::from_pairs([("sms.login.otp.msg", "आपका लॉगिन OTP %s है")]);
        let sms_keys = keys(&["sms.login.otp.msg"]);
        let hindi_id = "1007000000000000099".to_owned();
        let with_id = choose(
            &configured(Some("1007-en")),
            Some(&messages),
            &sms_keys,
            LOGIN_EMAIL,
            Some(&hindi_id),
            true,
        );
        assert_eq!(
            (with_id.sms.as_str(), with_id.dlt_template_id.as_deref()),
            ("आपका लॉगिन OTP %s है", Some("1007000000000000099"))
        );
        let without = choose(
            &configured(Some("1007-en")),
            Some(&messages),
            &sms_keys,
            LOGIN_EMAIL,
            None,
            true,
        );
        assert_eq!(
            (without.sms.as_str(), without.dlt_template_id.as_deref()),
            ("Dear Citizen, Your Login OTP is %s.", Some("1007-en")),
            "a localized text without its own DLT id would be dropped by the gateway"
        );
        let by_locale_only = choose(
            &configured(None),
            Some(&messages),
            &sms_keys,
            LOGIN_EMAIL,
            None,
            true,
        );
        assert_eq!(by_locale_only.sms, "Dear Citizen, Your Login OTP is %s.");
        assert_eq!(by_locale_only.dlt_template_id, None);
    }
}
