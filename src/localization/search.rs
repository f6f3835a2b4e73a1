//! One search of egov-localization ([contract §6](../../docs/contract.md#6-message-texts)):
//! `POST {host}{path}?tenantId=<state>&module=<modules>&locale=<locale>` with a `RequestInfo`
//! body, answered by `{"messages":[{"code":"…","message":"…",…}]}`. Only the keys the service
//! uses are kept; an answer without them is a valid, empty answer.
//!
//! Not retried here: the cache ([`super::Localizer`]) decides when to ask again.

use std::collections::HashMap;

use reqwest::header::CONTENT_TYPE;
use reqwest::Url;
use serde::Deserialize;

/// Largest answer read, in bytes (a whole module of a state has a few hundred messages, well
/// under 1 MiB; the cap only bounds memory against a broken or hostile answer).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Longest text kept, in characters. Longer texts are dropped (the configured one is used): an
/// SMS event stays far below the broker's record limit whatever egov-localization holds.
pub const MAX_TEXT_CHARS: usize = 1000;

/// Why a search gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("cannot reach egov-localization: {0}")]
    Transport(String),
    #[error("egov-localization answered HTTP {0}")]
    Status(u16),
    #[error("egov-localization's answer is over {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    #[error("egov-localization's answer is not a message list: {0}")]
    Malformed(String),
}

/// The texts of one state tenant and locale, by key (only the keys asked for).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Messages(HashMap<String, String>);

impl Messages {
    /// The text of `key`, if egov-localization has one.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether egov-localization had none of the keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Messages from `(key, text)` pairs (tests, the fake).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }
}

#[derive(Deserialize)]
struct Answer {
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct Message {
    code: Option<String>,
    message: Option<String>,
}

/// Searches `url` for `module`'s texts of `tenant` and `locale`, keeping the `wanted` keys.
///
/// # Errors
/// [`SearchError`]: no connection, a non-2xx status, an answer over 4 MiB or not a message
/// list. The caller bounds the time.
pub(super) async fn search(
    http: &reqwest::Client,
    url: &Url,
    (tenant, module, locale): (&str, &str, &str),
    wanted: &[String],
) -> Result<Messages, SearchError> {
    let mut url = url.clone();
    url.query_pairs_mut()
        .append_pair("tenantId", tenant)
        .append_pair("module", module)
        .append_pair("locale", locale);
    let mut response = http
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"RequestInfo":{"apiId":"user-otp"}}"#)
        .send()
        .await
        .map_err(|e| SearchError::Transport(e.to_string()))?;
    if !response.status().is_success() {
        return Err(SearchError::Status(response.status().as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
    {
        return Err(SearchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| SearchError::Transport(e.to_string()))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(SearchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    parse(&body, wanted)
}

/// The wanted, usable texts of an answer body: a key seen twice keeps its first text; a text
/// over [`MAX_TEXT_CHARS`] is dropped.
fn parse(body: &[u8], wanted: &[String]) -> Result<Messages, SearchError> {
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| SearchError::Malformed(e.to_string()))?;
    let mut kept = HashMap::new();
    for message in answer.messages {
        let (Some(code), Some(text)) = (message.code, message.message) else {
            continue;
        };
        if wanted.contains(&code) && text.chars().count() <= MAX_TEXT_CHARS {
            kept.entry(code).or_insert(text);
        }
    }
    Ok(Messages(kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wanted_keys_of_bounded_length_are_kept() {
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        let body = serde_json::json!({"messages": [
            {"code": "sms.login.otp.msg", "message": "लॉगिन ओटीपी %s", "module": "egov-user", "locale": "hi_IN"},
            {"code": "sms.login.otp.msg", "message": "second", "module": "egov-user", "locale": "hi_IN"},
            {"code": "other", "message": "not wanted"},
            {"code": "sms.register.otp.msg", "message": long},
            {"code": "RESET_PASSWORD_OTP", "message": null},
            {"message": "no code"}
        ]})
        .to_string();
        let wanted = [
            "sms.login.otp.msg",
            "sms.register.otp.msg",
            "RESET_PASSWORD_OTP",
        ]
        .map(String::from);
        let messages = parse(body.as_bytes(), &wanted).expect("an answer");
        assert_eq!(
            messages,
            Messages::from_pairs([("sms.login.otp.msg", "लॉगिन ओटीपी %s")])
        );
        assert!(matches!(
            parse(b"{\"messages\": 3}", &wanted),
            Err(SearchError::Malformed(_))
        ));
        assert_eq!(
            parse(b"{\"messages\": []}", &wanted).expect("empty is an answer"),
            Messages::default()
        );
    }
}
