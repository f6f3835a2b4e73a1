//! Kafka plumbing for the benchmark and drills: topics, fast preloading, reading a topic to its
//! end.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// One request event to write.
pub(crate) struct Event {
    pub key: String,
    pub payload: Vec<u8>,
    pub request_id: String,
}

/// One event read back.
pub(crate) struct Record {
    pub request_id: Option<String>,
    /// The `x-dead-letter-reason` header, on dead letters.
    pub reason: Option<String>,
    pub timestamp_ms: i64,
    pub payload: Vec<u8>,
}

pub(crate) async fn create_topics(
    bootstrap: &str,
    names: &[&str],
    partitions: i32,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(1)))
        .collect();
    for result in admin.create_topics(&topics, &AdminOptions::new()).await? {
        if let Err((topic, error)) = result {
            bail!("creating topic {topic}: {error}");
        }
    }
    Ok(())
}

/// Deletes `names` (a topic already gone is not an error).
///
/// # Errors
/// When the broker cannot be reached or refuses a deletion for another reason.
pub(crate) async fn delete_topics(bootstrap: &str, names: &[&str]) -> anyhow::Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    for result in admin.delete_topics(names, &AdminOptions::new()).await? {
        if let Err((topic, error)) = result {
            if error != rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition {
                bail!("deleting topic {topic}: {error}");
            }
        }
    }
    Ok(())
}

/// Every topic name on the broker, with its partition count.
///
/// # Errors
/// When the broker does not answer a metadata request within 10 s.
pub(crate) fn topics(bootstrap: &str) -> anyhow::Result<Vec<(String, usize)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
    Ok(metadata
        .topics()
        .iter()
        .map(|t| (t.name().to_owned(), t.partitions().len()))
        .collect())
}

pub(crate) fn producer(bootstrap: &str, linger_ms: u32) -> anyhow::Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // Up to the broker's own limit: the fuzz drill writes events above librdkafka's default.
        .set("message.max.bytes", "2000000")
        .set("linger.ms", linger_ms.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .create()?)
}

/// Sends one event without waiting for its acknowledgement.
pub(crate) fn send(
    producer: &FutureProducer,
    topic: &str,
    event: &Event,
    timestamp_ms: Option<i64>,
) -> anyhow::Result<DeliveryFuture> {
    let headers = OwnedHeaders::new().insert(Header {
        key: "x-request-id",
        value: Some(event.request_id.as_str()),
    });
    let mut record = FutureRecord::to(topic)
        .key(&event.key)
        .payload(&event.payload)
        .headers(headers);
    if let Some(ts) = timestamp_ms {
        record = record.timestamp(ts);
    }
    producer
        .send_result(record)
        .map_err(|(error, _)| anyhow::anyhow!("queueing an event: {error}"))
}

/// Writes one event with a null or given value, an `x-request-id` header and an optional
/// timestamp, and waits for its acknowledgement.
pub(crate) async fn send_raw(
    producer: &FutureProducer,
    topic: &str,
    key: &[u8],
    value: Option<&[u8]>,
    request_id: &str,
    timestamp_ms: Option<i64>,
) -> anyhow::Result<()> {
    let headers = OwnedHeaders::new().insert(Header {
        key: "x-request-id",
        value: Some(request_id),
    });
    let mut record: FutureRecord<'_, [u8], [u8]> =
        FutureRecord::to(topic).key(key).headers(headers);
    if let Some(value) = value {
        record = record.payload(value);
    }
    if let Some(ts) = timestamp_ms {
        record = record.timestamp(ts);
    }
    let delivery = producer
        .send_result(record)
        .map_err(|(error, _)| anyhow::anyhow!("queueing an event: {error}"))?;
    acknowledged(delivery).await
}

/// Writes every event, many in flight, and waits until all are acknowledged.
pub(crate) async fn preload(
    bootstrap: &str,
    topic: &str,
    events: &[Event],
) -> anyhow::Result<Duration> {
    let producer = producer(bootstrap, 5)?;
    let started = Instant::now();
    let mut in_flight: VecDeque<DeliveryFuture> = VecDeque::new();
    for event in events {
        in_flight.push_back(send(&producer, topic, event, None)?);
        if in_flight.len() >= 50_000 {
            if let Some(delivery) = in_flight.pop_front() {
                acknowledged(delivery).await?;
            }
        }
    }
    for delivery in in_flight {
        acknowledged(delivery).await?;
    }
    Ok(started.elapsed())
}

pub(crate) async fn acknowledged(delivery: DeliveryFuture) -> anyhow::Result<()> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((error, _))) => bail!("delivery failed: {error}"),
        Err(_) => bail!("producer dropped a delivery"),
    }
}

/// Every event on `topic` from the beginning to its current end.
pub(crate) async fn read_all(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<Record>> {
    let bootstrap = bootstrap.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || read_all_blocking(&bootstrap, &topic))
        .await
        .context("reader task")?
}

fn read_all_blocking(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<Record>> {
    let timeout = Duration::from_secs(10);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "user-otp-bench-reader")
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut assignment = TopicPartitionList::new();
    let mut remaining = Vec::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer.fetch_watermarks(topic, partition.id(), timeout)?;
        if high > low {
            assignment.add_partition_offset(topic, partition.id(), Offset::Beginning)?;
            remaining.push((partition.id(), high));
        }
    }
    let mut records = Vec::new();
    if remaining.is_empty() {
        return Ok(records);
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while !remaining.is_empty() {
        if Instant::now() > deadline {
            bail!("reading {topic} did not finish in 300 s");
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message?;
        let header = |name: &str| {
            message.headers().and_then(|headers| {
                // One header at a time behind catch_unwind: rdkafka panics on a header name
                // that is not UTF-8.
                (0..headers.count()).find_map(|i| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| headers.try_get(i)))
                        .ok()
                        .flatten()
                        .filter(|h| h.key == name)
                        .and_then(|h| h.value)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                })
            })
        };
        records.push(Record {
            request_id: header("x-request-id"),
            reason: header("x-dead-letter-reason"),
            timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
            payload: message.payload().unwrap_or_default().to_vec(),
        });
        let (partition, offset) = (message.partition(), message.offset());
        remaining.retain(|&(p, high)| !(p == partition && offset + 1 >= high));
    }
    Ok(records)
}

/// What the passthrough measured.
pub(crate) struct Passthrough {
    /// Events passed through (all of the source topic's `expected`).
    pub events: usize,
    /// The served window, in s: from the `CreateTime` of the first event the passthrough wrote
    /// to that of the last, read back from its output topic. Exactly how the worker's
    /// `worker_rps` is timed (first → last SMS event, [`crate::window`]): consumer creation,
    /// group join and first fetch before it; the final acknowledgements and offset stores after.
    /// A `CreateTime` is taken as the event is handed to librdkafka, so the window measures
    /// consume + enqueue, paced by the 10,000 deliveries in flight (the worker's likewise ends
    /// at its last SMS handed over).
    pub served_seconds: f64,
    /// (`events` − 1) / `served_seconds`.
    pub rps: f64,
}

/// A bare at-least-once consume → produce passthrough over `from` into `to` (the ceiling the
/// worker is compared with): up to 10,000 deliveries in flight, an offset stored once it and all
/// before it are acknowledged; librdkafka's default fetch settings. Runs until `expected`
/// events were passed through and acknowledged, then reads `to` back and times the served
/// window (see [`Passthrough`]).
pub(crate) async fn passthrough(
    bootstrap: &str,
    from: &str,
    to: &str,
    expected: usize,
) -> anyhow::Result<Passthrough> {
    use rdkafka::consumer::StreamConsumer;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", crate::env::unique("passthrough"))
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[from])?;
    let producer = producer(bootstrap, 5)?;
    let mut in_flight: VecDeque<(i32, i64, DeliveryFuture)> = VecDeque::new();
    let mut done = 0usize;
    let mut received = 0usize;
    while done < expected {
        if received < expected && in_flight.len() < 10_000 {
            let message = consumer.recv().await?;
            let record = FutureRecord::to(to)
                .key(message.key().unwrap_or_default())
                .payload(message.payload().unwrap_or_default());
            let delivery = producer
                .send_result(record)
                .map_err(|(error, _)| anyhow::anyhow!("queueing: {error}"))?;
            in_flight.push_back((message.partition(), message.offset(), delivery));
            received += 1;
            continue;
        }
        let Some((partition, offset, delivery)) = in_flight.pop_front() else {
            break;
        };
        acknowledged(delivery).await?;
        consumer.store_offset(from, partition, offset)?;
        done += 1;
    }
    drop(consumer);
    let written = read_all(bootstrap, to).await?;
    let window = crate::window::Window::of(written.iter().map(|r| r.timestamp_ms))
        .with_context(|| format!("the passthrough wrote nothing to {to}"))?;
    Ok(Passthrough {
        events: written.len(),
        served_seconds: window.seconds(),
        rps: window.rate(written.len()),
    })
}
