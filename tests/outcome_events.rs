//! The outcome topic (issue 11): one event per request that reached an outcome, schema-valid,
//! with a masked identity and never a code or a full number; announced again (marked
//! `redelivered`) when a served request comes again.

mod common;

use std::time::Duration;

use common::stack::{code_in, Stack};
use common::*;
use rdkafka::Message;
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, ResponseTemplate};

fn epoch_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms")
}

/// Every outcome event on the topic, as JSON, with its raw text.
async fn all_outcome_events(stack: &Stack) -> Vec<(String, Value)> {
    let count = usize::try_from(event_count(&stack.topics.outcome).await).expect("count");
    read_events(&stack.topics.outcome, count)
        .await
        .iter()
        .map(|m| {
            let text = String::from_utf8(m.payload().expect("payload").to_vec()).expect("utf-8");
            (text, payload_json(m))
        })
        .collect()
}

#[tokio::test]
async fn each_request_outcome_is_announced_once_with_a_masked_identity() {
    let stack = Stack::start(&[("USER_OTP_SEND_COOLDOWN_SECONDS", "30")]).await;
    stack.known_citizen("9000000002", "9000000002", None).await;
    // A user without a mobile number: a password reset has nowhere to send the code.
    Mock::given(method("POST"))
        .and(path("/user/_search"))
        .and(body_partial_json(json!({"userName": "asha-no-mobile"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"user": [{
            "id": 2, "uuid": "u-2", "userName": "asha-no-mobile", "mobileNumber": null,
            "tenantId": "pb", "type": "CITIZEN"}]})))
        .with_priority(1)
        .mount(&stack.users)
        .await;
    let worker = stack.spawn_worker();

    let with_correlation = json!({"RequestInfo": {"apiId": "test", "correlationId": "corr-7"},
        "otp": {"mobileNumber": "9000000001", "tenantId": "pb.amritsar", "type": "register"}});
    stack
        .produce(
            "pb:9000000001",
            with_correlation.to_string().as_bytes(),
            Some("r-sent"),
        )
        .await;
    let sent = stack.outcome_event("request", "caller:r-sent").await;
    stack
        .produce_request("9000000001", "register", "r-limited")
        .await;
    stack
        .produce_request("9000000002", "register", "r-exists")
        .await;
    stack
        .produce_request("9000000003", "login", "r-unknown")
        .await;
    stack
        .produce_request("asha-no-mobile", "passwordreset", "r-no-mobile")
        .await;
    let an_hour_ago = epoch_ms() - 3_600_000;
    stack
        .produce_exact(
            Some(b"pb:9000000004"),
            Some(&Stack::request("9000000004", "register")),
            &[("x-request-id", b"r-stale")],
            Some(an_hour_ago),
        )
        .await;
    stack
        .produce_exact(
            Some(b"pb:9000000005"),
            Some(b"{not json"),
            &[("x-request-id", b"r-dead")],
            None,
        )
        .await;

    assert_eq!(sent["outcome"], "sent");
    assert_eq!(sent["correlationId"], "corr-7");
    assert_eq!(sent["tenantId"], "pb");
    assert_eq!(sent["type"], "register");
    assert_eq!(sent["identity"], "******0001");
    assert_eq!(sent["redelivered"], false);
    assert!(
        sent["requestedAt"].as_i64().expect("requestedAt")
            <= sent["decidedAt"].as_i64().expect("decidedAt")
    );
    let expected = [
        (
            "r-limited",
            "rate_limited",
            json!("cooldown"),
            json!("register"),
        ),
        ("r-exists", "user_exists", Value::Null, json!("register")),
        ("r-unknown", "unknown_user", Value::Null, json!("login")),
        (
            "r-no-mobile",
            "no_mobile_number",
            Value::Null,
            json!("passwordreset"),
        ),
        ("r-stale", "stale", Value::Null, json!("register")),
        ("r-dead", "dead_lettered", json!("malformed"), Value::Null),
    ];
    for (id, outcome, detail, otp_type) in expected {
        let event = stack
            .outcome_event("request", &format!("caller:{id}"))
            .await;
        assert_eq!(event["outcome"], outcome, "{id}: {event}");
        assert_eq!(event["detail"], detail, "{id}: {event}");
        assert_eq!(event["type"], otp_type, "{id}: {event}");
        assert_eq!(event["redelivered"], false, "{id}");
    }
    let sms = read_events(&stack.topics.sms, 1).await;
    let code = code_in(payload_json(&sms[0])["message"].as_str().expect("message"));
    worker.stop().await;

    let events = all_outcome_events(&stack).await;
    assert_eq!(events.len(), 7, "one event per request: {events:?}");
    for (text, value) in &events {
        assert_matches_schema("outcome-event.schema.json", value);
        for number in [
            "9000000001",
            "9000000002",
            "9000000003",
            "9000000004",
            "asha-no-mobile",
        ] {
            assert!(!text.contains(number), "a full identity in {text}");
        }
        assert!(!text.contains(&code), "the code in {text}");
    }
}

#[tokio::test]
async fn a_served_request_that_comes_again_is_announced_again_as_redelivered() {
    let stack = Stack::start(&[]).await;
    let worker = stack.spawn_worker();
    stack
        .produce_request("9000000011", "register", "again")
        .await;
    let first = stack.outcome_event("request", "caller:again").await;
    assert_eq!(first["outcome"], "sent");
    assert_eq!(first["redelivered"], false);

    stack
        .produce_request("9000000011", "register", "again")
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while event_count(&stack.topics.outcome).await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no second outcome event"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.stop().await;
    let events = all_outcome_events(&stack).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].1["outcome"], "sent");
    assert_eq!(events[1].1["redelivered"], true);
    assert_eq!(events[1].1["requestId"], "caller:again");
    assert_eq!(event_count(&stack.topics.sms).await, 1, "no second SMS");
}

#[tokio::test]
async fn an_interrupted_request_is_announced_once_recovered_or_closed() {
    let stack = Stack::start(&[]).await;
    stack.leave_pending("p-recover", "9000000021").await;
    stack.leave_pending("p-expired", "9000000022").await;
    // Both left long enough ago that no grace applies; one code's validity has passed.
    stack
        .db
        .execute(
            "UPDATE otp_request_outcome SET created_at = now() - interval '60 seconds'",
            &[],
        )
        .await
        .expect("backdate");
    stack
        .db
        .execute(
            "UPDATE otp_code SET expires_at = now() - interval '1 second' WHERE identity = '9000000022'",
            &[],
        )
        .await
        .expect("expire");
    let worker = stack.spawn_worker();
    stack
        .produce_request("9000000021", "register", "p-recover")
        .await;
    stack
        .produce_request("9000000022", "register", "p-expired")
        .await;

    let recovered = stack.outcome_event("request", "caller:p-recover").await;
    let expired = stack.outcome_event("request", "caller:p-expired").await;
    assert_eq!(recovered["outcome"], "sent");
    assert_eq!(expired["outcome"], "expired");
    assert_eq!(stack.final_outcome("p-recover").await, "sent");
    worker.stop().await;
    assert_eq!(event_count(&stack.topics.outcome).await, 2);
    assert_eq!(event_count(&stack.topics.sms).await, 1);
}

/// Validations of `identity` announced so far, in order (they carry the masked identity).
async fn validation_events(stack: &Stack, correlation_id: &str) -> Vec<Value> {
    all_outcome_events(stack)
        .await
        .into_iter()
        .map(|(_, value)| value)
        .filter(|v| v["subject"] == "validation" && v["correlationId"] == correlation_id)
        .collect()
}

/// POSTs `/otp/v1/_validate` with `RequestInfo.correlationId` set; the answer's status.
async fn validate_as(stack: &Stack, correlation_id: &str, identity: &str, otp: &str) -> u16 {
    stack
        .app
        .client
        .post(stack.app.url("/otp/v1/_validate"))
        .json(&json!({"RequestInfo": {"correlationId": correlation_id},
            "otp": {"otp": otp, "identity": identity, "tenantId": "pb.amritsar"}}))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// The code of the SMS of request `id`.
async fn code_of(stack: &Stack, id: &str) -> String {
    let sms = stack.sms_for(id).await;
    code_in(payload_json(&sms)["message"].as_str().expect("message"))
}

#[tokio::test]
async fn each_validation_result_is_announced_with_its_code_and_request() {
    let stack = Stack::start(&[
        ("USER_OTP_MAX_FAILED_ATTEMPTS", "2"),
        ("USER_OTP_VALIDATE_FAILURES_PER_HOUR", "4"),
    ])
    .await;
    let worker = stack.spawn_worker();
    for (mobile, id) in [
        ("9000000031", "v-right"),
        ("9000000032", "v-expired"),
        ("9000000033", "v-guessed"),
    ] {
        stack.produce_request(mobile, "register", id).await;
    }
    let right = code_of(&stack, "v-right").await;
    let expired = code_of(&stack, "v-expired").await;
    let guessed = code_of(&stack, "v-guessed").await;
    let wrong = |code: &str| {
        if code == "000000" {
            "111111".to_owned()
        } else {
            "000000".to_owned()
        }
    };
    stack
        .db
        .execute(
            "UPDATE otp_code SET expires_at = now() - interval '1 second' \
             WHERE request_id = 'caller:v-expired'",
            &[],
        )
        .await
        .expect("expire");

    // Every failure answers 400 alike; the events tell which check failed.
    let calls = [
        ("c-1", "9000000031", wrong(&right), 400),
        ("c-1", "9000000031", right.clone(), 200),
        ("c-1", "9000000031", right.clone(), 400),
        ("c-2", "9000000034", "123456".to_owned(), 400),
        ("c-3", "9000000032", expired.clone(), 400),
        ("c-4", "9000000033", wrong(&guessed), 400),
        ("c-4", "9000000033", wrong(&guessed), 400),
        ("c-4", "9000000033", guessed.clone(), 400),
        ("c-4", "9000000033", guessed.clone(), 400),
        ("c-4", "9000000033", guessed.clone(), 400),
    ];
    for (correlation, identity, otp, status) in &calls {
        assert_eq!(
            validate_as(&stack, correlation, identity, otp).await,
            *status,
            "{correlation} {otp}"
        );
    }
    let expected = [
        (
            "c-1",
            vec!["wrong", "verified", "used"],
            Some("caller:v-right"),
        ),
        ("c-2", vec!["no_code"], None),
        ("c-3", vec!["expired"], Some("caller:v-expired")),
        (
            "c-4",
            vec![
                "wrong",
                "wrong",
                "attempts_exhausted",
                "attempts_exhausted",
                "budget_exhausted",
            ],
            Some("caller:v-guessed"),
        ),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for (correlation, outcomes, request_id) in expected {
        let events = loop {
            let events = validation_events(&stack, correlation).await;
            if events.len() >= outcomes.len() || std::time::Instant::now() > deadline {
                break events;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let seen: Vec<&str> = events
            .iter()
            .map(|e| e["outcome"].as_str().expect("outcome"))
            .collect();
        assert_eq!(seen, outcomes, "{correlation}");
        for event in &events {
            assert_matches_schema("outcome-event.schema.json", event);
            assert_eq!(event["tenantId"], "pb", "{event}");
            assert_eq!(event["type"], Value::Null, "{event}");
            assert_eq!(event["requestId"], json!(request_id), "{event}");
            assert_eq!(event["codeId"].is_string(), request_id.is_some(), "{event}");
            let identity = event["identity"].as_str().expect("identity");
            assert!(identity.starts_with("******") && !identity.contains("900000"));
        }
    }
    worker.stop().await;
    for (text, _) in all_outcome_events(&stack).await {
        for code in [&right, &expired, &guessed] {
            assert!(!text.contains(code.as_str()), "a code in {text}");
        }
    }
}
