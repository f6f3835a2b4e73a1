//! The shim's abuse controls and the smaller lifecycle rules (issue 9): the per-client limit
//! (429 with Retry-After, keyed by the right-most forwarded address), the country allow-list at
//! the shim and in the worker, test numbers, and `_search` reporting a validation only within a
//! code's validity.

mod common;

use common::stack::{code_in, validation_unsuccessful, Stack};
use common::*;
use serde_json::{json, Value};

fn send_body(mobile: &str, country_code: Option<&str>) -> Value {
    let mut otp = json!({"mobileNumber": mobile, "tenantId": "pb.amritsar", "type": "register"});
    if let Some(code) = country_code {
        otp["countryCode"] = json!(code);
    }
    json!({"RequestInfo": {"apiId": "Rainmaker"}, "otp": otp})
}

async fn send_from(stack: &Stack, forwarded_for: &str) -> reqwest::Response {
    stack
        .app
        .client
        .post(stack.app.url("/user-otp/v1/_send"))
        .header("X-Forwarded-For", forwarded_for)
        .json(&send_body("9876543230", None))
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn a_client_over_its_limit_gets_429_with_retry_after_and_others_are_served() {
    let stack = Stack::start(&[
        ("USER_OTP_CLIENT_LIMIT_PER_MINUTE", "3"),
        ("USER_OTP_CLIENT_ADDRESS_HEADER", "X-Forwarded-For"),
    ])
    .await;
    for _ in 0..3 {
        assert_eq!(send_from(&stack, "198.51.100.9").await.status(), 201);
    }
    // A forged left-most address does not make another client: the gateway appended the
    // right-most one.
    let refused = send_from(&stack, "203.0.113.50, 198.51.100.9").await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["responseInfo"], Value::Null);
    assert_eq!(body["error"]["code"], 429);
    assert_eq!(
        send_from(&stack, "198.51.100.9, 198.51.100.10")
            .await
            .status(),
        201
    );
    // _validate is not limited per client (egov-user is its one caller).
    for _ in 0..5 {
        let (status, _) = stack.validate("9876543230", "pb", "000000").await;
        assert_eq!(status, 400);
    }
}

#[tokio::test]
async fn a_foreign_country_code_is_refused_at_the_shim_and_dead_lettered_by_the_worker() {
    let stack = Stack::start(&[]).await;
    let refused = stack.app.send(&send_body("9876543231", Some("+44"))).await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(
        body["error"]["fields"][0]["code"],
        "OTP.COUNTRY_CODE_NOT_ALLOWED"
    );
    assert_eq!(body["error"]["fields"][0]["field"], "otp.countryCode");
    // A country hidden in the number itself ([§1](../docs/contract.md#1-the-send-request) accepts up to 13 digits).
    let hidden = stack.app.send(&send_body("447700900123", None)).await;
    assert_eq!(hidden.status(), 400);
    for allowed in [Some("+91"), Some("91"), Some("0091"), None] {
        let answer = stack.app.send(&send_body("9876543231", allowed)).await;
        assert_eq!(answer.status(), 201, "{allowed:?}");
    }
    let worker = stack.spawn_worker();
    let event = serde_json::to_vec(&send_body("9876543232", Some("0044"))).expect("json");
    stack
        .produce("pb:9876543232", &event, Some("foreign"))
        .await;
    let dead = stack.dead_letter_for("foreign").await;
    assert_eq!(
        header(&dead, "x-dead-letter-reason").as_deref(),
        Some("country_code_not_allowed")
    );
    // A password reset whose stored mobile is abroad: no SMS there either.
    stack.known_citizen("brit", "+447700900123", None).await;
    stack
        .produce_request("brit", "passwordreset", "abroad")
        .await;
    let dead = stack.dead_letter_for("abroad").await;
    assert_eq!(
        header(&dead, "x-dead-letter-reason").as_deref(),
        Some("country_code_not_allowed")
    );
    let recorded: i64 = stack
        .db
        .query_one(
            "SELECT count(*) FROM otp_request_outcome WHERE request_id = 'caller:abroad'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(recorded, 0, "dead-lettered, never served");
    worker.stop().await;
}

#[tokio::test]
async fn a_test_numbers_fixed_code_validates_once_and_expires() {
    let stack = Stack::start(&[("USER_OTP_TEST_NUMBERS", "9999999999:424242")]).await;
    let worker = stack.spawn_worker();
    stack.produce_request("9999999999", "register", "t-1").await;
    let sms = stack.sms_for("t-1").await;
    assert_eq!(
        code_in(payload_json(&sms)["message"].as_str().expect("text")),
        "424242"
    );
    let flagged: bool = stack
        .db
        .query_one(
            "SELECT test_number FROM otp_request_outcome WHERE request_id = 'caller:t-1'",
            &[],
        )
        .await
        .expect("outcome")
        .get(0);
    assert!(flagged);
    let (status, _) = stack.validate("9999999999", "pb", "424242").await;
    assert_eq!(status, 200);
    let (status, body) = stack.validate("9999999999", "pb", "424242").await;
    assert_eq!(
        (status, body),
        (400, validation_unsuccessful()),
        "single use"
    );
    // Stored as a keyed hash like any other code, never in plain text.
    let plain: i64 = stack
        .db
        .query_one(
            "SELECT count(*) FROM otp_code WHERE position('424242'::bytea in code_hash) > 0",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(plain, 0);
    // A second code expires like any other (its validity is made to pass here).
    stack.produce_request("9999999999", "register", "t-2").await;
    stack.sms_for("t-2").await;
    stack
        .db
        .execute(
            "UPDATE otp_code SET expires_at = now() - interval '1 second' WHERE request_id = 'caller:t-2'",
            &[],
        )
        .await
        .expect("expire");
    let (status, _) = stack.validate("9999999999", "pb", "424242").await;
    assert_eq!(status, 400, "expired");
    // Other numbers still get random codes.
    stack.produce_request("9999999998", "register", "t-3").await;
    let other = stack.sms_for("t-3").await;
    assert_ne!(
        code_in(payload_json(&other)["message"].as_str().expect("text")),
        "424242"
    );
    worker.stop().await;
}

#[tokio::test]
async fn search_reports_a_validation_only_within_the_code_validity() {
    let stack = Stack::start(&[]).await;
    let worker = stack.spawn_worker();
    stack.produce_request("9876543233", "register", "s-1").await;
    let sms = stack.sms_for("s-1").await;
    let code = code_in(payload_json(&sms)["message"].as_str().expect("text"));
    let (status, body) = stack.validate("9876543233", "pb", &code).await;
    assert_eq!(status, 200);
    let uuid = body["otp"]["UUID"].as_str().expect("uuid").to_owned();
    let search = || async {
        let answer: Value = stack
            .app
            .client
            .post(stack.app.url("/otp/v1/_search"))
            .json(&json!({"otp": {"UUID": uuid, "tenantId": "pb"}}))
            .send()
            .await
            .expect("search")
            .json()
            .await
            .expect("JSON");
        answer["otp"]["isValidationSuccessful"].clone()
    };
    assert_eq!(search().await, true);
    stack
        .db
        .execute(
            "UPDATE otp_code SET validated_at = now() - interval '601 seconds'",
            &[],
        )
        .await
        .expect("age the validation");
    assert_eq!(search().await, false);
    worker.stop().await;
}

#[tokio::test]
async fn the_email_copy_can_be_switched_off() {
    let stack = Stack::start(&[("USER_OTP_EMAIL_OTP_ENABLED", "false")]).await;
    stack
        .known_citizen("9876543234", "9876543234", Some("citizen@example.org"))
        .await;
    let worker = stack.spawn_worker();
    stack.produce_request("9876543234", "login", "e-1").await;
    stack.sms_for("e-1").await;
    assert_eq!(stack.final_outcome("e-1").await, "sent");
    assert_eq!(event_count(&stack.topics.email).await, 0);
    worker.stop().await;
}
