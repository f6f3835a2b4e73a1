//! A group of events written as one (`EventProducer::send_all`, the worker's outcome events):
//! one answer per record, in the records' order; a record the producer refuses is answered
//! with its own error and costs nothing to the others.

mod common;

use common::*;
use rdkafka::Message;
use user_otp::failure::{Classify, FailureKind};
use user_otp::kafka::{EventProducer, GroupRecord};

#[tokio::test]
async fn each_record_of_a_group_gets_its_own_answer_in_order() {
    let topic = unique_name("groups");
    create_topic(&topic).await;
    let settings = settings(&[("USER_OTP_KAFKA_MESSAGE_MAX_BYTES", "65536")]);
    let producer = EventProducer::new(&settings.kafka).expect("producer");
    let too_large = vec![b'x'; 100_000];
    let payloads: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("{{\"n\":{i}}}").into_bytes())
        .collect();
    let headers = [("x-request-id", Some(&b"group-test"[..]))];
    let mut records: Vec<GroupRecord<'_>> = payloads
        .iter()
        .map(|payload| GroupRecord {
            topic: &topic,
            key: Some(b"k"),
            payload: Some(payload),
            headers: &headers,
        })
        .collect();
    // The third record is over message.max.bytes: refused at once, for good.
    records.insert(
        2,
        GroupRecord {
            topic: &topic,
            key: Some(b"k"),
            payload: Some(&too_large),
            headers: &headers,
        },
    );

    let answers = producer.send_all(&records).await;

    assert_eq!(answers.len(), 6, "one answer per record");
    for (index, answer) in answers.iter().enumerate() {
        if index == 2 {
            let error = answer
                .as_ref()
                .expect_err("the oversized record is refused");
            assert_eq!(error.kind(), FailureKind::Poison, "{error}");
        } else {
            assert!(answer.is_ok(), "record {index}: {answer:?}");
        }
    }
    // The five others are on the topic, in order (one key, one partition), with their header.
    let written = read_events(&topic, 5).await;
    let values: Vec<String> = written
        .iter()
        .map(|m| String::from_utf8(m.payload().expect("payload").to_vec()).expect("utf-8"))
        .collect();
    assert_eq!(
        values,
        [
            "{\"n\":0}",
            "{\"n\":1}",
            "{\"n\":2}",
            "{\"n\":3}",
            "{\"n\":4}"
        ]
    );
    assert!(written
        .iter()
        .all(|m| header(m, "x-request-id").as_deref() == Some("group-test")));
    assert_eq!(event_count(&topic).await, 5);
}

#[tokio::test]
async fn an_empty_group_answers_at_once() {
    let settings = settings(&[]);
    let producer = EventProducer::new(&settings.kafka).expect("producer");
    let started = std::time::Instant::now();
    assert!(producer.send_all(&[]).await.is_empty());
    assert!(started.elapsed() < std::time::Duration::from_millis(100));
}
