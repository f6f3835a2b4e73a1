//! Bounded memory without head-of-line blocking: a partition whose backlog is stuck behind one
//! request holds at most its share of the in-flight bytes (it is paused, not buffered), and
//! every other partition keeps being served meanwhile. Against the real broker and PostgreSQL.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::stack::Stack;
use serde_json::json;
use user_otp::worker::InFlight;

/// A valid register request carrying `padding` bytes of RequestInfo (byte-heavy, still valid).
fn heavy_request(mobile: &str, padding: usize) -> Vec<u8> {
    json!({"RequestInfo": {"apiId": "x".repeat(padding)},
           "otp": {"mobileNumber": mobile, "tenantId": "pb", "type": "register"}})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn a_stuck_partition_with_a_byte_heavy_backlog_is_paused_while_other_partitions_are_served() {
    // 3 MiB for the worker: 1 MiB per partition (3 partitions).
    let stack = Stack::start(&[
        ("USER_OTP_WORKER_MAX_IN_FLIGHT_BYTES", "3145728"),
        ("USER_OTP_USER_TIMEOUT_MS", "500"),
    ])
    .await;
    // egov-user never answers for this one user: the batch holding its request retries, and
    // every later event of its key (all of partition 0 below) waits behind it.
    stack.users_hang_for("9850000000").await;
    let totals = Arc::new(InFlight::default());
    let worker = stack.spawn_worker_observed(stack.settings.clone(), totals.clone());
    stack
        .produce_to_partition(0, "9850000000", Some("stuck"))
        .await;
    // 40 events of 300 KB behind it on the same partition: 12 MB.
    for i in 0..40 {
        stack
            .produce_value_to_partition(
                0,
                "9850000000",
                &heavy_request(&format!("98500001{i:02}"), 300_000),
                Some(&format!("heavy-{i}")),
            )
            .await;
    }
    // Meanwhile the other partitions flow.
    for (partition, mobile) in [(1, "9851000001"), (2, "9851000002")] {
        let id = format!("free-{partition}");
        stack
            .produce_to_partition(partition, mobile, Some(&id))
            .await;
        stack.sms_for(&id).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(totals.pauses() >= 1, "the stuck partition was paused");
    let peak = totals.peak_bytes();
    assert!(
        peak < 1_048_576 + 2 * 310_000,
        "held {peak} bytes at most; a partition's share is 1 MiB"
    );
    assert_eq!(stack.final_outcome("free-1").await, "sent");

    // egov-user answers again: the backlog drains, the partition resumes, everything is served.
    stack.users_know_nobody().await;
    for i in 0..40 {
        assert_eq!(stack.final_outcome(&format!("heavy-{i}")).await, "sent");
    }
    assert_eq!(stack.final_outcome("stuck").await, "sent");
    stack.assert_still_serving(&worker, b"pb:9850000000").await;
    assert!(totals.peak_bytes() < 1_048_576 + 2 * 310_000);
    worker.stop().await;
}
