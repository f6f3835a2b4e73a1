//! Reading egov-user's search answer ([contract §3](../../docs/contract.md#3-egov-user-search)): `{"responseInfo":{…},"user":[…]}`.
//!
//! Only a JSON object whose `user` member is an array of user objects is an answer. An empty
//! array is the one way egov-user says "no such user"; anything else that is not the expected
//! shape (not JSON, no `user`, `user` not an array, an entry that is not a user) is a
//! [`UserLookupError::MalformedAnswer`], never "no user": treating garbage as absence is how the
//! Java service let an outage look like "user absent".
//!
//! The answer holds personal data, so error messages say what was structurally wrong (which
//! member, which JSON type) and never quote the body. Every entry is checked, not only the first:
//! a wrongly shaped entry anywhere means the answer is not what this client understands.

use serde::Deserialize;
use serde_json::Value;

use super::error::UserLookupError;
use crate::domain::FoundUser;

/// A well-formed answer, read straight into users (unknown members skipped unread).
#[derive(Deserialize)]
struct Answer {
    user: Vec<FoundUser>,
}

/// The users of a 2xx search answer, in egov-user's order (possibly none).
///
/// # Errors
/// [`UserLookupError::MalformedAnswer`] when the body is not a search answer, saying what is
/// wrong without quoting it.
pub fn parse_search_answer(body: &[u8]) -> Result<Vec<FoundUser>, UserLookupError> {
    // The common case, without building a JSON tree first; anything it refuses is read again
    // below, to say precisely what is wrong.
    if let Ok(answer) = serde_json::from_slice::<Answer>(body) {
        if body.trim_ascii_start().starts_with(b"{") {
            return Ok(answer.user);
        }
    }
    let malformed = |what: String| UserLookupError::MalformedAnswer(what);
    // serde_json's syntax errors name a position, never the input.
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        malformed(format!(
            "the body is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(mut answer) = value else {
        return Err(malformed(format!(
            "the body is {}, not an object",
            json_kind(&value)
        )));
    };
    let entries = match answer.remove("user") {
        Some(Value::Array(entries)) => entries,
        None => return Err(malformed("the body has no `user` member".to_owned())),
        Some(other) => {
            return Err(malformed(format!(
                "`user` is {}, not an array",
                json_kind(&other)
            )))
        }
    };
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            // serde's own message could quote a value (a mobile number), so describe the entry.
            FoundUser::deserialize(entry).map_err(|_| match entry {
                Value::Object(_) => malformed(format!(
                    "`user[{index}]` is an object with a member of the wrong JSON type for a user"
                )),
                other => malformed(format!(
                    "`user[{index}]` is {}, not a user object",
                    json_kind(other)
                )),
            })
        })
        .collect()
}

/// The JSON type of a value, with its article, for messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Vec<FoundUser>, UserLookupError> {
        parse_search_answer(value.to_string().as_bytes())
    }

    fn malformed_message(result: Result<Vec<FoundUser>, UserLookupError>) -> String {
        match result {
            Err(UserLookupError::MalformedAnswer(message)) => message,
            other => panic!("expected MalformedAnswer, got {other:?}"),
        }
    }

    #[test]
    fn users_are_read_in_order_and_unknown_members_ignored() {
        let users = parse(json!({
            "responseInfo": {"status": "successful"},
            "user": [
                {"id": 7, "uuid": "u-7", "userName": "9876543210", "mobileNumber": "9876543210",
                 "emailId": "a@b.c", "tenantId": "pb", "type": "CITIZEN", "roles": []},
                {"id": 8}
            ]
        }))
        .expect("well formed");
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].id, Some(7));
        assert_eq!(users[0].uuid.as_deref(), Some("u-7"));
        assert_eq!(users[0].mobile_number.as_deref(), Some("9876543210"));
        assert_eq!(users[0].email_id.as_deref(), Some("a@b.c"));
        assert_eq!(users[1].id, Some(8));
    }

    #[test]
    fn empty_array_is_no_user() {
        assert_eq!(parse(json!({"responseInfo": null, "user": []})), Ok(vec![]));
    }

    #[test]
    fn wrong_shapes_are_malformed_and_say_what_is_wrong() {
        let cases = [
            (json!({}), "no `user` member"),
            (json!({"user": "nope"}), "`user` is a string, not an array"),
            (json!({"user": null}), "`user` is null, not an array"),
            (json!({"user": {}}), "`user` is an object, not an array"),
            (json!([]), "the body is an array, not an object"),
            (
                json!({"user": [42]}),
                "`user[0]` is a number, not a user object",
            ),
            (
                json!({"user": [{"id": 1}, {"id": "x"}]}),
                "`user[1]` is an object with a member of the wrong JSON type",
            ),
        ];
        for (value, expected) in cases {
            let message = malformed_message(parse(value.clone()));
            assert!(message.contains(expected), "{value}: {message}");
        }
    }

    #[test]
    fn non_json_is_malformed() {
        for body in [&b""[..], b"<html>Bad gateway</html>", b"{\"user\": ["] {
            let message = malformed_message(parse_search_answer(body));
            assert!(message.starts_with("the body is not JSON"), "{message}");
        }
    }

    #[test]
    fn messages_never_quote_the_body() {
        let secret = "9876543210";
        let bodies = [
            json!({"user": [{"id": secret}]}).to_string(),
            json!({"user": [{"mobileNumber": 9876543210u64}]}).to_string(),
            json!({"user": secret}).to_string(),
            json!({"user": [secret]}).to_string(),
            format!("{secret} trailing"),
            format!("{{\"user\": [\"{secret}\"] x"),
        ];
        for body in bodies {
            let message = malformed_message(parse_search_answer(body.as_bytes()));
            assert!(!message.contains(secret), "{body}: {message}");
        }
    }
}
