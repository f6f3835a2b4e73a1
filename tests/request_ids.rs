//! A request id belongs to its request: a caller's id cannot take another request's place, cannot
//! claim the ids of header-less events, and cannot make crash recovery send a victim's code to
//! another number. Against the real broker and PostgreSQL.

mod common;

use common::stack::{code_in, Stack};
use common::*;
use serde_json::json;

/// The mobile numbers the SMS topic has events for.
async fn sms_numbers(stack: &Stack, count: usize) -> Vec<String> {
    let mut numbers: Vec<String> = read_events(&stack.topics.sms, count)
        .await
        .iter()
        .map(|m| {
            payload_json(m)["mobileNumber"]
                .as_str()
                .expect("mobile")
                .to_owned()
        })
        .collect();
    numbers.sort();
    numbers
}

#[tokio::test]
async fn one_x_request_id_for_two_numbers_serves_both() {
    let stack = Stack::start(&[]).await;
    let worker = stack.spawn_worker();
    for mobile in ["9830000001", "9830000002"] {
        let answer = stack
            .app
            .client
            .post(stack.app.url("/user-otp/v1/_send"))
            .header("x-request-id", "reused-id")
            .json(&json!({"otp": {"mobileNumber": mobile, "tenantId": "pb", "type": "register"}}))
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status().as_u16(), 201);
    }
    assert_eq!(sms_numbers(&stack, 2).await, ["9830000001", "9830000002"]);
    // Two outcomes under the one id, one per request.
    let rows = stack
        .db
        .query(
            "SELECT outcome FROM otp_request_outcome WHERE request_id = 'caller:reused-id'",
            &[],
        )
        .await
        .expect("query");
    assert_eq!(rows.len(), 2);
    // A true redelivery (same id, same request) is still served once.
    stack
        .produce_request("9830000001", "register", "reused-id")
        .await;
    stack.assert_still_serving(&worker, b"pb:9830000001").await;
    assert_eq!(
        event_count(&stack.topics.sms).await,
        4,
        "2 + the 2 of the check, no third"
    );
    worker.stop().await;
}

#[tokio::test]
async fn a_caller_cannot_claim_the_ids_of_header_less_events() {
    let stack = Stack::start(&[]).await;
    let worker = stack.spawn_worker();
    let topic = stack.topics.request.clone();
    // Claims for the first offsets of partition 1, written to partition 0.
    for offset in 0..3 {
        let claim = format!("{topic}/1/{offset}");
        stack
            .produce_to_partition(0, &format!("983100000{offset}"), Some(&claim))
            .await;
    }
    // A header-less event (a DIGIT producer that sets no id) at partition 1, offset 0.
    let offset = stack.produce_to_partition(1, "9831111111", None).await;
    assert_eq!(offset, 0);
    assert_eq!(
        sms_numbers(&stack, 4).await,
        ["9831000000", "9831000001", "9831000002", "9831111111"]
    );
    let derived = stack
        .final_outcome_stored(&format!("offset:{topic}/1/0"))
        .await;
    assert_eq!(derived, "sent", "the header-less event has its own outcome");
    stack.assert_still_serving(&worker, b"pb:9831111111").await;
    worker.stop().await;
}

#[tokio::test]
async fn a_pending_requests_id_with_another_number_never_gets_the_victims_code() {
    let stack = Stack::start(&[]).await;
    // The victim's request was left pending by a crash (its SMS never left).
    stack.leave_pending("crash-victim", "9832000001").await;
    let hash_before: Vec<u8> = stack
        .db
        .query_one("SELECT code_hash FROM otp_code", &[])
        .await
        .expect("the victim's code")
        .get(0);
    // The attacker replays the victim's request id with their own number.
    stack
        .produce_request("9832000999", "register", "crash-victim")
        .await;
    let worker = stack.spawn_worker();

    let sms = stack.sms_for("crash-victim").await;
    let value = payload_json(&sms);
    assert_eq!(
        value["mobileNumber"], "9832000999",
        "the attacker's own request"
    );
    let code = code_in(value["message"].as_str().expect("message"));
    assert_eq!(
        stack.validate("9832000001", "pb", &code).await.0,
        400,
        "the attacker's code does not validate as the victim"
    );
    assert_eq!(stack.validate("9832000999", "pb", &code).await.0, 200);
    let hash_after: Vec<u8> = stack
        .db
        .query_one(
            "SELECT code_hash FROM otp_code WHERE identity = '9832000001'",
            &[],
        )
        .await
        .expect("the victim's code")
        .get(0);
    assert_eq!(
        hash_before, hash_after,
        "the victim's pending code was not re-hashed"
    );
    stack.assert_still_serving(&worker, b"pb:9832000999").await;
    let victims = read_events(&stack.topics.sms, 3)
        .await
        .iter()
        .filter(|m| payload_json(m)["mobileNumber"] == "9832000001")
        .count();
    assert_eq!(victims, 0, "nothing was sent to the victim's number");
    worker.stop().await;
}

#[tokio::test]
async fn a_request_recorded_before_fingerprints_existed_is_not_served_again() {
    let stack = Stack::start(&[]).await;
    // As migration 0002 leaves a row recorded by the previous version: renamed, no fingerprint.
    stack
        .db
        .batch_execute(
            "INSERT INTO otp_request_outcome (request_id, fingerprint, tenant_id, otp_type, outcome, \
             source_topic, source_partition, source_offset) \
             VALUES ('caller:before-upgrade', '\\x', 'pb', 'register', 'sent', 't', 0, 0)",
        )
        .await
        .expect("legacy row");
    let worker = stack.spawn_worker();
    stack
        .produce_request("9833000001", "register", "before-upgrade")
        .await;
    stack.assert_still_serving(&worker, b"pb:9833000001").await;
    assert_eq!(
        event_count(&stack.topics.sms).await,
        2,
        "only the two of the check"
    );
    worker.stop().await;
}

#[tokio::test]
async fn an_old_request_of_the_previous_version_does_not_swallow_later_requests_with_its_id() {
    let stack = Stack::start(&[]).await;
    stack
        .db
        .batch_execute(
            "INSERT INTO otp_request_outcome (request_id, fingerprint, tenant_id, otp_type, outcome, \
             source_topic, source_partition, source_offset, created_at) \
             VALUES ('caller:1', '\\x', 'pb', 'register', 'sent', 't', 0, 0, \
                     now() - interval '30 days')",
        )
        .await
        .expect("legacy row");
    let worker = stack.spawn_worker();
    stack.produce_request("9834000001", "register", "1").await;
    let sms = stack.sms_for("1").await;
    assert_eq!(payload_json(&sms)["mobileNumber"], "9834000001");
    worker.stop().await;
}
