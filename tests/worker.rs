//! The worker against the real broker, the real PostgreSQL and a wiremock egov-user: request
//! events in, SMS events and outcomes out, codes that validate once.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::stack::{code_in, validation_unsuccessful, Stack};
use common::*;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn register_sends_one_sms_whose_code_validates_once() {
    let stack = Stack::start(&[]).await;
    let worker = stack.spawn_worker();
    stack
        .produce_request("9876543210", "register", "req-1")
        .await;

    let sms = read_events(&stack.topics.sms, 1).await;
    assert_eq!(stack.final_outcome("req-1").await, "sent");
    assert_eq!(event_count(&stack.topics.sms).await, 1);
    assert_eq!(header(&sms[0], "x-request-id").as_deref(), Some("req-1"));
    let value = payload_json(&sms[0]);
    assert_matches_schema("sms-event.schema.json", &value);
    assert_eq!(value["mobileNumber"], "9876543210");
    assert_eq!(value["category"], "OTP");
    let message = value["message"].as_str().expect("message");
    let code = code_in(message);
    assert_eq!(code.len(), 6);
    assert_eq!(
        message,
        format!("Dear Citizen, Your OTP to complete your mSeva Registration is {code}.")
    );
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms");
    let expiry = value["expiryTime"].as_i64().expect("expiryTime");
    assert!(
        expiry > now_ms - 3000 && expiry <= now_ms + 3000,
        "{expiry} vs {now_ms}"
    );
    assert_eq!(
        event_count(&stack.topics.email).await,
        0,
        "no email for register"
    );

    let (status, answer) = stack.validate("9876543210", "pb.amritsar", &code).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["otp"]["isValidationSuccessful"], true);
    assert_eq!(answer["otp"]["identity"], "9876543210");
    let uuid = answer["otp"]["UUID"].as_str().expect("UUID").to_owned();
    assert_eq!(
        stack.validate("9876543210", "pb", &code).await,
        (400, validation_unsuccessful())
    );

    // _search reports the validation, never the code or its hash.
    let search = stack
        .app
        .client
        .post(stack.app.url("/otp/v1/_search"))
        .json(&json!({"otp": {"uuid": uuid, "tenantId": "pb"}}))
        .send()
        .await
        .expect("search");
    assert_eq!(search.status().as_u16(), 200);
    let found: Value = search.json().await.expect("JSON");
    assert_eq!(
        found,
        json!({"responseInfo": null, "otp": {"otp": null, "UUID": uuid, "identity": "9876543210",
            "tenantId": "pb", "isValidationSuccessful": true}})
    );
    worker.stop().await;
}

#[tokio::test]
async fn refusals_send_nothing_and_record_the_outcome() {
    let stack = Stack::start(&[]).await;
    stack.known_citizen("9000000001", "9000000001", None).await;
    let worker = stack.spawn_worker();
    stack
        .produce_request("9000000002", "login", "login-unknown")
        .await;
    stack
        .produce_request("9000000001", "register", "register-known")
        .await;
    stack
        .produce_request("9000000003", "passwordreset", "reset-unknown")
        .await;
    assert_eq!(stack.final_outcome("login-unknown").await, "unknown_user");
    assert_eq!(stack.final_outcome("register-known").await, "user_exists");
    assert_eq!(stack.final_outcome("reset-unknown").await, "unknown_user");
    assert_eq!(event_count(&stack.topics.sms).await, 0);
    assert_eq!(event_count(&stack.topics.dead_letter).await, 0);
    worker.stop().await;
}

#[tokio::test]
async fn passwordreset_sends_to_the_stored_mobile_and_binds_both_identities() {
    let stack = Stack::start(&[]).await;
    stack
        .known_citizen("asha.k", "9876500001", Some("asha@example.org"))
        .await;
    let worker = stack.spawn_worker();
    stack
        .produce_request("asha.k", "passwordreset", "reset-1")
        .await;
    let sms = read_events(&stack.topics.sms, 1).await;
    let value = payload_json(&sms[0]);
    assert_eq!(value["mobileNumber"], "9876500001");
    let code = code_in(value["message"].as_str().expect("message"));
    assert_eq!(
        value["message"],
        format!("Dear Citizen, Your OTP for recovering password is {code}.")
    );
    let email = read_events(&stack.topics.email, 1).await;
    let email = payload_json(&email[0]);
    assert_matches_schema("email-event.schema.json", &email);
    assert_eq!(email["email"]["emailTo"], json!(["asha@example.org"]));
    // egov-user validates with the stored mobile; the user name is bound too.
    let (status, _) = stack.validate("asha.k", "pb", "000000").await;
    assert_eq!(status, 400, "a wrong code for the user name");
    let (status, answer) = stack.validate("9876500001", "pb.amritsar", &code).await;
    assert_eq!(status, 200, "{answer}");
    worker.stop().await;
}

#[tokio::test]
async fn the_same_request_twice_sends_one_sms() {
    let stack = Stack::start(&[]).await;
    let worker = stack.spawn_worker();
    let body = Stack::request("9876543211", "register");
    stack.produce("pb:9876543211", &body, Some("dup-1")).await;
    stack.produce("pb:9876543211", &body, Some("dup-1")).await;
    // Same key, same partition: once the marker's SMS exists, both copies were handled.
    stack
        .produce_request("9876543211", "register", "marker")
        .await;
    let sms = read_events(&stack.topics.sms, 2).await;
    let ids: Vec<String> = sms
        .iter()
        .filter_map(|m| header(m, "x-request-id"))
        .collect();
    assert_eq!(ids, ["dup-1", "marker"]);
    assert_eq!(stack.final_outcome("marker").await, "sent");
    assert_eq!(event_count(&stack.topics.sms).await, 2);
    let codes = stack.code_count().await;
    assert_eq!(codes, 2, "one code per request id");
    // The newer code retired the older one.
    let first = code_in(payload_json(&sms[0])["message"].as_str().expect("message"));
    let second = code_in(payload_json(&sms[1])["message"].as_str().expect("message"));
    if first != second {
        assert_eq!(stack.validate("9876543211", "pb", &first).await.0, 400);
    }
    assert_eq!(stack.validate("9876543211", "pb", &second).await.0, 200);
    worker.stop().await;
}

#[tokio::test]
async fn a_worker_stopped_mid_stream_loses_nothing_and_sends_nothing_twice() {
    const REQUESTS: usize = 300;
    let stack = Stack::start(&[("USER_OTP_WORKER_BATCH_SIZE", "20")]).await;
    for i in 0..REQUESTS {
        let mobile = format!("98{:08}", i);
        stack
            .produce(
                &format!("pb:{mobile}"),
                &Stack::request(&mobile, "register"),
                Some(&format!("r-{i}")),
            )
            .await;
    }
    // The first worker is aborted (no shutdown, no final commit) once some SMS are out.
    let first = stack.spawn_worker();
    read_events(&stack.topics.sms, 40).await;
    first.task.abort();
    let _ = first.task.await;

    let second = stack.spawn_worker();
    for i in 0..REQUESTS {
        assert_eq!(
            stack.final_outcome(&format!("r-{i}")).await,
            "sent",
            "r-{i}"
        );
    }
    let sms = read_events(&stack.topics.sms, REQUESTS).await;
    let mut per_request: HashMap<String, usize> = HashMap::new();
    for message in &sms {
        *per_request
            .entry(header(message, "x-request-id").expect("request id"))
            .or_default() += 1;
    }
    assert_eq!(per_request.len(), REQUESTS, "every request got an SMS");
    let duplicated: Vec<_> = per_request.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "sent twice: {duplicated:?}");
    assert_eq!(event_count(&stack.topics.sms).await, REQUESTS as i64);
    second.stop().await;
}

#[tokio::test]
async fn a_malformed_event_is_dead_lettered_and_the_next_one_served() {
    let stack = Stack::start(&[]).await;
    let worker = stack.spawn_worker();
    stack
        .produce("pb:9876543212", b"{not json", Some("bad-1"))
        .await;
    stack
        .produce(
            "pb:9876543212",
            br#"{"otp":{"mobileNumber":"12","tenantId":"pb"}}"#,
            None,
        )
        .await;
    stack
        .produce_request("9876543212", "register", "good-1")
        .await;
    let dead = read_events(&stack.topics.dead_letter, 2).await;
    let headers_of = |m: &rdkafka::message::OwnedMessage| -> Value {
        use rdkafka::message::Headers;
        let mut map = serde_json::Map::new();
        if let Some(headers) = rdkafka::Message::headers(m) {
            for h in headers.iter() {
                map.insert(
                    h.key.to_owned(),
                    Value::String(String::from_utf8_lossy(h.value.unwrap_or_default()).into()),
                );
            }
        }
        Value::Object(map)
    };
    let first = headers_of(&dead[0]);
    assert_matches_schema("dead-letter-headers.schema.json", &first);
    assert_eq!(first["x-dead-letter-reason"], "malformed");
    assert_eq!(
        first["x-dead-letter-source-topic"],
        stack.topics.request.as_str()
    );
    assert_eq!(first["x-request-id"], "bad-1");
    assert_eq!(rdkafka::Message::payload(&dead[0]), Some(&b"{not json"[..]));
    let second = headers_of(&dead[1]);
    assert_matches_schema("dead-letter-headers.schema.json", &second);
    assert_eq!(second["x-dead-letter-reason"], "invalid_request");
    assert_eq!(
        second["x-dead-letter-detail"],
        "OTP.MOBILE_NUMBER_INVALIDLENGTH"
    );
    assert_eq!(
        second["x-dead-letter-source-offset"].as_str().map(str::len),
        Some(1)
    );
    assert_eq!(stack.final_outcome("good-1").await, "sent");
    assert_eq!(event_count(&stack.topics.sms).await, 1);
    worker.stop().await;
}

#[tokio::test]
async fn an_egov_user_outage_is_retried_not_read_as_no_user() {
    let stack = Stack::start(&[]).await;
    Mock::given(method("POST"))
        .and(path("/user/_search"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&stack.users)
        .await;
    let worker = stack.spawn_worker();
    stack
        .produce_request("9876543213", "register", "flaky-1")
        .await;
    assert_eq!(stack.final_outcome("flaky-1").await, "sent");
    assert_eq!(event_count(&stack.topics.sms).await, 1);
    assert_eq!(event_count(&stack.topics.dead_letter).await, 0);
    let searches = stack.users.received_requests().await.expect("recorded");
    assert_eq!(searches.len(), 3, "two 503s, then the answer");
    worker.stop().await;
}

/// Registers one mobile and returns its code.
async fn code_for(stack: &Stack, mobile: &str) -> String {
    let worker = stack.spawn_worker();
    stack
        .produce(
            &format!("pb:{mobile}"),
            &Stack::request(mobile, "register"),
            Some("one"),
        )
        .await;
    let sms = read_events(&stack.topics.sms, 1).await;
    assert_eq!(stack.final_outcome("one").await, "sent");
    worker.stop().await;
    code_in(payload_json(&sms[0])["message"].as_str().expect("message"))
}

#[tokio::test]
async fn five_wrong_codes_kill_the_right_one() {
    let stack = Stack::start(&[]).await;
    let code = code_for(&stack, "9876543214").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        assert_eq!(
            stack.validate("9876543214", "pb", wrong).await,
            (400, validation_unsuccessful())
        );
    }
    assert_eq!(
        stack.validate("9876543214", "pb", &code).await,
        (400, validation_unsuccessful())
    );
}

#[tokio::test]
async fn sixteen_concurrent_validations_of_the_right_code_succeed_once() {
    // Sixteen connections opened at once by a cold pool take over the default second on two
    // cores in a debug build (the client's SCRAM key derivation, 4096 rounds of unoptimised
    // HMAC-SHA-256 each): give their creation room.
    let stack = Stack::start(&[("USER_OTP_DATABASE_CONNECT_TIMEOUT_MS", "5000")]).await;
    let code = code_for(&stack, "9876543215").await;
    let attempts = (0..16).map(|_| stack.validate("9876543215", "pb", &code));
    let answers = futures::future::join_all(attempts).await;
    let successes = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(successes, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(status, body)| *status == 200 || *body == validation_unsuccessful()),
        "{answers:?}"
    );
}

#[tokio::test]
async fn the_full_path_send_then_sms_then_validate() {
    let stack = Stack::start(&[]).await;
    let worker = stack.spawn_worker();
    let response = stack
        .app
        .send(&json!({"RequestInfo": {"msgId": "1|en_IN"},
            "otp": {"mobileNumber": "9876543216", "tenantId": "pb.amritsar", "type": "register",
                    "userType": "CITIZEN"}}))
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let sms = read_events(&stack.topics.sms, 1).await;
    let code = code_in(payload_json(&sms[0])["message"].as_str().expect("message"));
    let (status, answer) = stack.validate("9876543216", "pb.amritsar", &code).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["otp"]["isValidationSuccessful"], true);
    tokio::time::sleep(Duration::from_millis(10)).await;
    worker.stop().await;
}

#[tokio::test]
async fn a_pending_request_whose_sms_was_acknowledged_is_not_sent_again() {
    let stack = Stack::start(&[]).await;
    let code_id = stack.leave_pending("crash-1", "9876543217").await;
    // The crashed worker's SMS did reach the broker.
    stack
        .produce_exact_to(
            &stack.topics.sms,
            Some(b"pb:9876543217"),
            Some(br#"{"mobileNumber":"9876543217"}"#),
            &[
                ("x-request-id", b"crash-1"),
                ("x-otp-code-id", code_id.to_string().as_bytes()),
            ],
            None,
        )
        .await;
    stack
        .produce_request("9876543217", "register", "crash-1")
        .await;
    let worker = stack.spawn_worker();
    assert_eq!(stack.final_outcome("crash-1").await, "sent");
    assert_eq!(event_count(&stack.topics.sms).await, 1, "no second SMS");
    worker.stop().await;
}

#[tokio::test]
async fn a_pending_request_whose_sms_never_left_is_sent_once_with_a_fresh_code() {
    let stack = Stack::start(&[]).await;
    stack.leave_pending("crash-2", "9876543218").await;
    stack
        .produce_request("9876543218", "register", "crash-2")
        .await;
    let worker = stack.spawn_worker();
    assert_eq!(stack.final_outcome("crash-2").await, "sent");
    let sms = read_events(&stack.topics.sms, 1).await;
    assert_eq!(event_count(&stack.topics.sms).await, 1);
    let code = code_in(payload_json(&sms[0])["message"].as_str().expect("message"));
    let codes = stack.code_count().await;
    assert_eq!(codes, 1, "the pending code was replaced in place");
    assert_eq!(stack.validate("9876543218", "pb", &code).await.0, 200);
    worker.stop().await;
}

#[tokio::test]
async fn a_pending_request_past_its_code_validity_is_closed_as_expired_not_resent() {
    let stack = Stack::start(&[]).await;
    stack.leave_pending("crash-old", "9876543219").await;
    stack
        .db
        .batch_execute("UPDATE otp_code SET expires_at = now() - interval '1 second'")
        .await
        .expect("age the code");
    stack
        .produce_request("9876543219", "register", "crash-old")
        .await;
    let worker = stack.spawn_worker();
    assert_eq!(stack.final_outcome("crash-old").await, "expired");
    stack.assert_still_serving(&worker, b"pb:9876543219").await;
    assert_eq!(
        event_count(&stack.topics.sms).await,
        2,
        "only the two of the check"
    );
    worker.stop().await;
}
