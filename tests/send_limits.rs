//! Send limits per identity (issue 9), against the real broker and PostgreSQL: the cooldown,
//! the hourly cap, and two workers of one group agreeing on one identity's count when its
//! requests arrive under different keys (a password reset by user name, logins by the stored
//! mobile) and so on different partitions.

mod common;

use std::time::Duration;

use common::stack::{code_in, Stack};
use common::*;

/// The documented defaults, stated explicitly (the test stack turns every limit off).
const DEFAULT_LIMITS: &[(&str, &str)] = &[
    ("USER_OTP_SEND_COOLDOWN_SECONDS", "30"),
    ("USER_OTP_SEND_LIMIT_PER_HOUR", "5"),
    ("USER_OTP_SEND_LIMIT_PER_DAY", "10"),
];

/// Outcome names of every request id given, in order, each once final.
async fn outcomes(stack: &Stack, ids: &[String]) -> Vec<String> {
    let mut all = Vec::new();
    for id in ids {
        all.push(stack.final_outcome(id).await);
    }
    all
}

fn count(outcomes: &[String], name: &str) -> usize {
    outcomes.iter().filter(|o| *o == name).count()
}

#[tokio::test]
async fn eight_sends_in_ten_seconds_give_one_sms() {
    let stack = Stack::start(DEFAULT_LIMITS).await;
    let worker = stack.spawn_worker();
    let ids: Vec<String> = (0..8).map(|i| format!("burst-{i}")).collect();
    let started = std::time::Instant::now();
    for id in &ids {
        stack.produce_request("9876543210", "register", id).await;
    }
    let outcomes = outcomes(&stack, &ids).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(count(&outcomes, "sent"), 1, "{outcomes:?}");
    assert_eq!(count(&outcomes, "rate_limited"), 7, "{outcomes:?}");
    assert_eq!(event_count(&stack.topics.sms).await, 1);
    let details: Vec<Option<String>> = stack
        .db
        .query(
            "SELECT detail FROM otp_request_outcome WHERE outcome = 'rate_limited'",
            &[],
        )
        .await
        .expect("details")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        details.iter().all(|d| d.as_deref() == Some("cooldown")),
        "{details:?}"
    );
    // A refused request stores no code, so the first code stays the live one.
    assert_eq!(stack.code_count().await, 1);
    let sms = read_events(&stack.topics.sms, 1).await;
    let code = code_in(payload_json(&sms[0])["message"].as_str().expect("text"));
    let (status, _) = stack.validate("9876543210", "pb", &code).await;
    assert_eq!(
        status, 200,
        "the first code still validates after seven refused requests"
    );
    worker.stop().await;
}

#[tokio::test]
async fn spelling_a_number_differently_buys_no_extra_sms() {
    let stack = Stack::start(DEFAULT_LIMITS).await;
    let worker = stack.spawn_worker();
    let spellings = ["9876543213", "09876543213", "919876543213", "0919876543213"];
    let ids: Vec<String> = (0..spellings.len())
        .map(|i| format!("spelled-{i}"))
        .collect();
    for (mobile, id) in spellings.iter().zip(&ids) {
        stack.produce_request(mobile, "register", id).await;
    }
    let outcomes = outcomes(&stack, &ids).await;
    assert_eq!(count(&outcomes, "sent"), 1, "{outcomes:?}");
    assert_eq!(event_count(&stack.topics.sms).await, 1);
    worker.stop().await;
}

#[tokio::test]
async fn a_reset_to_a_stored_mobile_written_with_plus_91_shares_the_count() {
    let stack = Stack::start(&[
        ("USER_OTP_SEND_COOLDOWN_SECONDS", "0"),
        ("USER_OTP_SEND_LIMIT_PER_HOUR", "1"),
    ])
    .await;
    stack.known_citizen("ramesh", "+919876543215", None).await;
    let worker = stack.spawn_worker();
    stack
        .produce_request("9876543215", "register", "first")
        .await;
    assert_eq!(stack.final_outcome("first").await, "sent");
    stack
        .produce_request("ramesh", "passwordreset", "reset")
        .await;
    assert_eq!(stack.final_outcome("reset").await, "rate_limited");
    worker.stop().await;
}

#[tokio::test]
async fn inventing_tenants_buys_no_extra_sms() {
    let stack = Stack::start(DEFAULT_LIMITS).await;
    let worker = stack.spawn_worker();
    let tenants = ["pb", "PB", "xx.amritsar", "yy", "pb.jalandhar"];
    let ids: Vec<String> = (0..tenants.len()).map(|i| format!("tenant-{i}")).collect();
    for (tenant, id) in tenants.iter().zip(&ids) {
        let body = serde_json::json!({"otp": {"mobileNumber": "9876543214",
            "tenantId": tenant, "type": "register"}});
        let value = serde_json::to_vec(&body).expect("json");
        stack
            .produce(&format!("{tenant}:9876543214"), &value, Some(id))
            .await;
    }
    let outcomes = outcomes(&stack, &ids).await;
    assert_eq!(count(&outcomes, "sent"), 1, "{outcomes:?}");
    assert_eq!(event_count(&stack.topics.sms).await, 1);
    worker.stop().await;
}

#[tokio::test]
async fn without_a_cooldown_seven_sends_give_five_sms() {
    let stack = Stack::start(&[
        ("USER_OTP_SEND_COOLDOWN_SECONDS", "0"),
        ("USER_OTP_SEND_LIMIT_PER_HOUR", "5"),
        ("USER_OTP_SEND_LIMIT_PER_DAY", "10"),
    ])
    .await;
    let worker = stack.spawn_worker();
    let ids: Vec<String> = (0..7).map(|i| format!("hourly-{i}")).collect();
    for id in &ids {
        stack.produce_request("9876543211", "register", id).await;
    }
    let outcomes = outcomes(&stack, &ids).await;
    assert_eq!(count(&outcomes, "sent"), 5, "{outcomes:?}");
    assert_eq!(count(&outcomes, "rate_limited"), 2, "{outcomes:?}");
    assert_eq!(event_count(&stack.topics.sms).await, 5);
    // Another number is not affected.
    stack
        .produce_request("9876543212", "register", "other")
        .await;
    assert_eq!(stack.final_outcome("other").await, "sent");
    worker.stop().await;
}

#[tokio::test]
async fn two_workers_enforce_one_identitys_limit_across_keys_and_partitions() {
    let stack = Stack::start(&[
        ("USER_OTP_SEND_COOLDOWN_SECONDS", "0"),
        ("USER_OTP_SEND_LIMIT_PER_HOUR", "5"),
        ("USER_OTP_SEND_LIMIT_PER_DAY", "10"),
    ])
    .await;
    let stored_mobile = "9876500001";
    // The same citizen, found by user name (password reset) and by mobile (login).
    stack.known_citizen("ramesh", stored_mobile, None).await;
    stack
        .known_citizen(stored_mobile, stored_mobile, None)
        .await;
    let first = stack.spawn_worker();
    let second = stack.spawn_worker();
    // Let both join the group, so the partitions are shared between them.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        let reset = format!("reset-{i}");
        let login = format!("login-{i}");
        stack
            .produce_value_to_partition(
                0,
                "ramesh",
                &Stack::request("ramesh", "passwordreset"),
                Some(&reset),
            )
            .await;
        stack
            .produce_value_to_partition(
                1,
                stored_mobile,
                &Stack::request(stored_mobile, "login"),
                Some(&login),
            )
            .await;
        ids.extend([reset, login]);
    }
    let outcomes = outcomes(&stack, &ids).await;
    assert_eq!(count(&outcomes, "sent"), 5, "{outcomes:?}");
    assert_eq!(count(&outcomes, "rate_limited"), 11, "{outcomes:?}");
    let sms = read_events(&stack.topics.sms, 5).await;
    assert!(sms
        .iter()
        .all(|m| payload_json(m)["mobileNumber"] == stored_mobile));
    assert_eq!(event_count(&stack.topics.sms).await, 5);
    first.stop().await;
    second.stop().await;
}
