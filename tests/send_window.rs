//! One request, one SMS, even when the broker refuses SMS events for longer than the pending
//! grace and a copy of the request (same request id and body, another message key, so another
//! batch) arrives meanwhile. A batch hands an SMS to the producer only within its send window
//! (`batch::sms_send_window`, 4 s by default), so by the end of the grace everything it produced
//! is delivered or failed; a recovery claims the pending request (compare-and-set on its recording time,
//! which it restarts), so two runs never recover it at once. Real broker and PostgreSQL.

mod common;

use std::time::{Duration, Instant};

use common::stack::Stack;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

/// The SMS topic refuses every event (a tiny `max.message.bytes`, retried as systemic) for 18 s
/// after the request is recorded; 12 s in, past the 10 s grace, a copy of the request arrives
/// under no message key. When the topic accepts events again, exactly one SMS has gone out
/// (before: the first batch was still retrying and the copy recovered it at once: two SMS, the
/// first with a code that no longer worked).
#[tokio::test]
async fn one_request_gives_one_sms_when_its_send_fails_past_the_grace_and_a_copy_arrives() {
    let sms = retried_send(true).await;
    assert_eq!(sms.len(), 1, "one request, {} SMS: {sms:?}", sms.len());
}

/// The same without the copy: the request is recovered after the grace and sent once.
#[tokio::test]
async fn one_request_gives_one_sms_when_its_send_fails_past_the_grace() {
    let sms = retried_send(false).await;
    assert_eq!(sms.len(), 1, "{sms:?}");
}

/// The messages (with their codes) of the SMS events on `topic` carrying `x-request-id: id`,
/// read for `for_how_long`.
async fn sms_count(topic: &str, id: &str, for_how_long: Duration) -> Vec<String> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", common::kafka_bootstrap())
        .set("group.id", common::unique_name("send-window-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut partitions = TopicPartitionList::new();
    for partition in 0..common::PARTITIONS {
        partitions
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&partitions).expect("assign");
    let deadline = Instant::now() + for_how_long;
    let mut found = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(message)) => {
                let message = message.detach();
                if common::header(&message, "x-request-id").as_deref() == Some(id) {
                    found.push(common::payload_json(&message)["message"].to_string());
                }
            }
            Ok(Err(e)) => panic!("reading {topic}: {e}"),
            Err(_) => return found,
        }
    }
}

async fn set_max_message_bytes(topic: &str, bytes: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", common::kafka_bootstrap())
        .create()
        .expect("admin client");
    let config = AlterConfig::new(ResourceSpecifier::Topic(topic)).set("max.message.bytes", bytes);
    let result = admin
        .alter_configs([&config], &AdminOptions::new())
        .await
        .expect("alter configs");
    assert!(result.iter().all(Result::is_ok), "{result:?}");
}

async fn retried_send(copy: bool) -> Vec<String> {
    let stack = Stack::start(&[]).await;
    let worker = stack.spawn_worker();
    // Warm up (group joined, SMS topic metadata known).
    stack
        .produce_to_partition(0, "9830000009", Some("warm-up"))
        .await;
    stack.sms_for("warm-up").await;
    set_max_message_bytes(&stack.topics.sms, "64").await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let body = Stack::request("9830000000", "register");
    stack
        .produce_exact(
            Some(b"pb:9830000000"),
            Some(&body),
            &[("x-request-id", b"dup")],
            None,
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while stack.outcome_now("dup").await.is_none() {
        assert!(Instant::now() < deadline, "never recorded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The first batch keeps retrying its SMS past the pending grace (10 s by default).
    tokio::time::sleep(Duration::from_secs(12)).await;
    // A copy of the same request under no message key (a DIGIT producer replaying the topic,
    // a raw producer): another lock key, so another batch.
    if copy {
        stack
            .produce_exact(None, Some(&body), &[("x-request-id", b"dup")], None)
            .await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    set_max_message_bytes(&stack.topics.sms, "1048588").await;
    assert_eq!(stack.final_outcome("dup").await, "sent");
    let sms = sms_count(&stack.topics.sms, "dup", Duration::from_secs(10)).await;
    worker.stop().await;
    sms
}
