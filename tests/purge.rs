//! Retention (issue 9): `user-otp purge` deletes codes, outcomes and limit history older than
//! the retention and leaves younger rows; a replay of a purged request sends nothing, because
//! the retention is never shorter than the code validity and an event older than that is
//! recorded `stale`.

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::stack::Stack;
use common::*;

const BINARY: &str = env!("CARGO_BIN_EXE_user-otp");

async fn rows(stack: &Stack, table: &str) -> i64 {
    stack
        .db
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

#[tokio::test]
async fn purge_empties_old_rows_and_a_replay_of_a_purged_request_sends_nothing() {
    let stack = Stack::start(&[
        ("USER_OTP_CODE_TTL_SECONDS", "30"),
        ("USER_OTP_SEND_LIMIT_PER_HOUR", "5"),
        ("USER_OTP_VALIDATE_FAILURES_PER_HOUR", "10"),
    ])
    .await;
    let worker = stack.spawn_worker();
    // An event written 20 s ago: still within the 30 s validity, so it is served.
    let now_ms = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms");
    let written_at = now_ms - 20_000;
    let key = b"pb:9876543250".as_slice();
    let value = Stack::request("9876543250", "passwordreset");
    stack.known_citizen("9876543250", "9876543250", None).await;
    let headers: &[(&str, &[u8])] = &[("x-request-id", b"old-1")];
    stack
        .produce_exact(Some(key), Some(&value), headers, Some(written_at))
        .await;
    stack.sms_for("old-1").await;
    assert_eq!(stack.final_outcome("old-1").await, "sent");
    // A wrong guess leaves a guess-budget row; the send left a send-history row.
    let (status, _) = stack.validate("9876543250", "pb", "000000").await;
    assert_eq!(status, 400);
    // A young request that must survive the purge.
    stack
        .produce_request("9876543251", "register", "young")
        .await;
    assert_eq!(stack.final_outcome("young").await, "sent");

    // A day passes for the old request's rows.
    stack
        .db
        .batch_execute(
            "UPDATE otp_request_outcome SET created_at = now() - interval '25 hours' WHERE request_id = 'caller:old-1';
             UPDATE otp_code SET created_at = now() - interval '25 hours' WHERE request_id = 'caller:old-1';
             UPDATE otp_code_identity SET created_at = now() - interval '25 hours';
             UPDATE otp_send_history SET updated_at = now() - interval '25 hours' WHERE identity = '9876543250';
             UPDATE otp_guess_budget SET updated_at = now() - interval '25 hours' WHERE identity = '9876543250';",
        )
        .await
        .expect("age rows");
    let output = Command::new(BINARY)
        .arg("purge")
        .env_clear()
        .envs([
            ("USER_OTP_PROFILE", "development"),
            (
                "USER_OTP_DATABASE_URL",
                database_url(&stack.database).as_str(),
            ),
            ("USER_OTP_DATABASE_USERNAME", "user_otp"),
            ("USER_OTP_DATABASE_PASSWORD", "user_otp"),
        ])
        .output()
        .expect("run user-otp purge");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("purged 1 codes"), "{stdout}");
    assert_eq!(rows(&stack, "otp_code").await, 1, "the young code stays");
    assert_eq!(rows(&stack, "otp_request_outcome").await, 1);
    assert_eq!(rows(&stack, "otp_code_identity").await, 0);
    let old_history: i64 = stack
        .db
        .query_one(
            "SELECT (SELECT count(*) FROM otp_send_history WHERE identity = '9876543250')
                  + (SELECT count(*) FROM otp_guess_budget WHERE identity = '9876543250')",
            &[],
        )
        .await
        .expect("history")
        .get(0);
    assert_eq!(old_history, 0);

    // The same event replayed (same id, value and timestamp) once it is older than the
    // validity: recorded stale, no second SMS.
    let age = Duration::from_millis(u64::try_from(now_ms - written_at).expect("age"));
    tokio::time::sleep(Duration::from_secs(31).saturating_sub(age)).await;
    stack
        .produce_exact(Some(key), Some(&value), headers, Some(written_at))
        .await;
    assert_eq!(stack.final_outcome("old-1").await, "stale");
    assert_eq!(event_count(&stack.topics.sms).await, 2);
    worker.stop().await;
}
