//! Key rotation (issue 9): a code hashed under k1 still validates after a restart with k2 as the
//! current key and k1 listed as previous; new codes use k2; without k1 in the list, k1's codes
//! no longer validate.

mod common;

use common::stack::{code_in, validation_unsuccessful, Stack};
use common::*;

const K1: &str = "k1-secret-0123456789abcdef0123456789";
const K2: &str = "k2-secret-0123456789abcdef0123456789";

/// The stack's settings with other HMAC keys.
fn with_keys(stack: &Stack, keys: &[(&str, &str)]) -> user_otp::config::Settings {
    let url = database_url(&stack.database);
    let user_host = stack.users.uri();
    let mut vars: Vec<(&str, &str)> = vec![
        ("USER_OTP_REQUEST_TOPIC", &stack.topics.request),
        ("USER_OTP_SMS_TOPIC", &stack.topics.sms),
        ("USER_OTP_EMAIL_TOPIC", &stack.topics.email),
        ("USER_OTP_DEAD_LETTER_TOPIC", &stack.topics.dead_letter),
        ("USER_OTP_DATABASE_URL", &url),
        ("USER_OTP_USER_HOST", &user_host),
        (
            "USER_OTP_CONSUMER_GROUP",
            &stack.settings.kafka.consumer_group,
        ),
    ];
    vars.extend_from_slice(keys);
    settings(&vars)
}

#[tokio::test]
async fn a_code_of_the_previous_key_validates_after_the_rotation() {
    let stack = Stack::start(&[("USER_OTP_HMAC_KEY_ID", "k1"), ("USER_OTP_HMAC_SECRET", K1)]).await;
    let worker = stack.spawn_worker();
    stack
        .produce_request("9876543240", "register", "before")
        .await;
    let sms = stack.sms_for("before").await;
    let old_code = code_in(payload_json(&sms)["message"].as_str().expect("text"));
    worker.stop().await;

    let previous = format!("k1:{K1}");
    let rotated = with_keys(
        &stack,
        &[
            ("USER_OTP_HMAC_KEY_ID", "k2"),
            ("USER_OTP_HMAC_SECRET", K2),
            ("USER_OTP_HMAC_PREVIOUS_KEYS", &previous),
        ],
    );
    // Restarted: a new HTTP role and a new worker with k2 current.
    let app = TestApp::spawn(&rotated).await;
    let worker = stack.spawn_worker_with(rotated.clone());
    stack
        .produce_request("9876543241", "register", "after")
        .await;
    stack.sms_for("after").await;
    let key_ids: Vec<String> = stack
        .db
        .query("SELECT key_id FROM otp_code ORDER BY seq", &[])
        .await
        .expect("codes")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(key_ids, ["k1", "k2"]);

    // Without k1 among the previous keys its code is refused...
    let forgot = with_keys(
        &stack,
        &[("USER_OTP_HMAC_KEY_ID", "k2"), ("USER_OTP_HMAC_SECRET", K2)],
    );
    let forgetful = TestApp::spawn(&forgot).await;
    let answer = validate_on(&forgetful, "9876543240", &old_code).await;
    assert_eq!(answer, (400, validation_unsuccessful()));
    // ... and with it, accepted once.
    let (status, body) = validate_on(&app, "9876543240", &old_code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["otp"]["isValidationSuccessful"], true);
    worker.stop().await;
}

async fn validate_on(app: &TestApp, identity: &str, otp: &str) -> (u16, serde_json::Value) {
    let response = app
        .client
        .post(app.url("/otp/v1/_validate"))
        .json(&serde_json::json!({"RequestInfo": {}, "otp": {"otp": otp, "identity": identity, "tenantId": "pb"}}))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}
