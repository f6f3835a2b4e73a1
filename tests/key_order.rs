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
    assert_eq!(stack.outcome_now("stuck").await, None, "still at egov-user");
    assert_eq!(
        stack.outcome_now("same-key-later").await,
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
        stack.outcome_now("foreign").await.as_deref(),
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

#[tokio::test]
async fn users_egov_user_cannot_answer_for_hold_back_neither_their_batch_nor_the_worker() {
    let stack = Stack::start(&[("USER_OTP_USER_TIMEOUT_MS", "500")]).await;
    // More numbers egov-user hangs on than there are batches in flight.
    let stuck = |i: usize| format!("98800000{i:02}");
    for i in 0..14 {
        stack.users_hang_for(&stuck(i)).await;
    }
    // Produced before the worker starts: stuck and answerable keys mixed in its first batches,
    // the stuck ones not first.
    stack
        .produce_to_partition(0, "9881000000", Some("first"))
        .await;
    for i in 0..7 {
        stack
            .produce_to_partition(0, &stuck(i), Some(&format!("stuck-{i}")))
            .await;
        stack
            .produce_to_partition(
                0,
                &format!("98810000{:02}", i + 1),
                Some(&format!("fine-{i}")),
            )
            .await;
    }
    let worker = stack.spawn_worker();
    stack.sms_for("first").await;
    for i in 0..7 {
        stack.sms_for(&format!("fine-{i}")).await;
    }
    // Then one stuck key at a time into an idle worker, each starting a batch of its own, until
    // every batch slot holds one; later keys are still served.
    for i in 7..14 {
        stack
            .produce_to_partition(0, &stuck(i), Some(&format!("stuck-{i}")))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..5 {
        stack
            .produce_to_partition(0, &format!("98820000{i:02}"), Some(&format!("later-{i}")))
            .await;
    }
    for i in 0..5 {
        stack.sms_for(&format!("later-{i}")).await;
    }
    for i in 0..14 {
        assert_eq!(
            stack.outcome_now(&format!("stuck-{i}")).await,
            None,
            "deferred, not decided without egov-user"
        );
    }
    // egov-user answers again: every deferred request is served.
    stack.users_know_nobody().await;
    for i in 0..14 {
        stack.sms_for(&format!("stuck-{i}")).await;
    }
    worker.stop().await;
}

#[tokio::test]
async fn a_pending_request_this_process_recorded_waits_out_the_grace_before_recovery() {
    let stack = Stack::start(&[]).await;
    let mut settings = stack.settings.clone();
    settings.kafka.group_instance_id = Some("worker-a".into());
    let worker = stack.spawn_worker_with(settings);
    stack
        .produce_to_partition(0, "9890000001", Some("warm-up"))
        .await;
    stack.sms_for("warm-up").await;
    // Recorded pending by this worker id while this process runs: its SMS may still be in this
    // process's producer (a copy under another message key, in another batch).
    stack
        .leave_pending_as("copy", "9890000000", "worker-a")
        .await;
    let started = std::time::Instant::now();
    stack
        .produce_to_partition(0, "9890000000", Some("copy"))
        .await;
    stack
        .produce_to_partition(0, "9890000002", Some("next-key"))
        .await;
    stack.sms_for("next-key").await;
    assert_eq!(
        stack.outcome_now("copy").await.as_deref(),
        Some("sms_pending"),
        "not recovered while this process may still be sending it"
    );
    assert_eq!(stack.final_outcome("copy").await, "sent", "then it is");
    assert!(
        started.elapsed() >= Duration::from_secs(8),
        "recovered after {:?}, inside the 10 s grace",
        started.elapsed()
    );
    worker.stop().await;
}
