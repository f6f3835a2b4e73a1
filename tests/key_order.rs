//! Key-ordered parallelism: events of one key are served in order, one at a time; events of
//! other keys in the same partition go on meanwhile; the committed offset never passes an
//! unfinished event. Against the real broker and PostgreSQL.

mod common;

use std::time::Duration;

use common::stack::Stack;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// The outcome recorded for caller request id `id` now (`None`: nothing yet).
async fn outcome_now(stack: &Stack, id: &str) -> Option<String> {
    stack
        .db
        .query_opt(
            "SELECT outcome FROM otp_request_outcome WHERE request_id = $1",
            &[&format!("caller:{id}")],
        )
        .await
        .expect("query")
        .map(|row| row.get(0))
}

/// The worker group's committed offset of partition 0 of the request topic (`None`: none yet).
fn committed_offset(stack: &Stack) -> Option<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.settings.kafka.bootstrap_servers)
        .set("group.id", &stack.settings.kafka.consumer_group)
        .create()
        .expect("consumer");
    let mut partitions = TopicPartitionList::new();
    partitions.add_partition(&stack.topics.request, 0);
    let committed = consumer
        .committed_offsets(partitions, Duration::from_secs(10))
        .expect("committed offsets");
    match committed.elements()[0].offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

#[tokio::test]
async fn a_stuck_key_holds_back_only_its_own_later_events_and_the_committed_offset() {
    let stack = Stack::start(&[("USER_OTP_USER_TIMEOUT_MS", "500")]).await;
    stack.users_hang_for("9860000000").await;
    let worker = stack.spawn_worker();
    let stuck = stack
        .produce_to_partition(0, "9860000000", Some("stuck"))
        .await;
    // Same partition: a later event of the stuck key, then three other keys.
    stack
        .produce_to_partition(0, "9860000000", Some("same-key-later"))
        .await;
    let mut last = stuck;
    for i in 1..=3 {
        last = stack
            .produce_to_partition(0, &format!("986000000{i}"), Some(&format!("other-{i}")))
            .await;
    }
    for i in 1..=3 {
        stack.sms_for(&format!("other-{i}")).await;
    }
    assert_eq!(
        outcome_now(&stack, "stuck").await,
        None,
        "still at egov-user"
    );
    assert_eq!(
        outcome_now(&stack, "same-key-later").await,
        None,
        "a key's later event never overtakes its earlier one"
    );
    // Served events past the stuck one are not committed: a crash now redelivers from it.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(
        committed_offset(&stack).is_none_or(|committed| committed <= stuck),
        "the committed offset stays at the oldest unfinished event"
    );

    // egov-user answers again: the key is served in order and the offset moves past it all.
    stack.users_know_nobody().await;
    let first = stack.sms_for("stuck").await;
    let second = stack.sms_for("same-key-later").await;
    assert_eq!(
        first.partition(),
        second.partition(),
        "one key, one partition"
    );
    assert!(first.offset() < second.offset(), "in request order");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while committed_offset(&stack) != Some(last + 1) {
        assert!(
            std::time::Instant::now() < deadline,
            "the committed offset never reached the end"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    worker.stop().await;
}

#[tokio::test]
async fn another_workers_pending_request_delays_only_its_own_key() {
    let stack = Stack::start(&[]).await;
    // Moments ago another worker recorded this request as pending: it may still be sending.
    stack.leave_pending("foreign", "9870000000").await;
    stack
        .produce_to_partition(0, "9870000000", Some("foreign"))
        .await;
    stack
        .produce_to_partition(0, "9870000001", Some("next-key"))
        .await;
    let worker = stack.spawn_worker();
    stack.sms_for("next-key").await;
    assert_eq!(
        outcome_now(&stack, "foreign").await.as_deref(),
        Some("sms_pending"),
        "the other key was served while the foreign request waits out its grace"
    );
    assert_eq!(
        stack.final_outcome("foreign").await,
        "sent",
        "then it is recovered"
    );
    worker.stop().await;
}
