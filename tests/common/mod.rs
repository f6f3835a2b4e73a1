//! Shared helpers for integration tests against the real local Kafka broker
//! (`scripts/services up`). Every test uses its own random topic names instead of cleaning up;
//! every wait polls with a deadline.

#![allow(dead_code)] // each test binary uses a different subset
#![allow(unreachable_pub)] // shared by every test crate; each uses a different subset

#[allow(unused_imports)]
pub use kafka_raw_header as raw_header;
pub mod processes;
pub mod stack;
pub mod tcp_proxy;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use user_otp::config::{Settings, Sources};
use user_otp::http::{self, AppState};
use user_otp::kafka::EventProducer;
use user_otp::store::OtpStore;

/// Partitions of every test topic.
pub const PARTITIONS: i32 = 3;

/// The broker started by `scripts/services`; `USER_OTP_TEST_KAFKA_BOOTSTRAP` overrides it.
pub fn kafka_bootstrap() -> String {
    std::env::var("USER_OTP_TEST_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Creates a topic with [`PARTITIONS`] partitions, retrying until the broker answers (60 s).
pub async fn create_topic(name: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .create()
        .expect("admin client");
    let deadline = Instant::now() + Duration::from_secs(60);
    let topic = NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    loop {
        let outcome = admin.create_topics([&topic], &options).await;
        match outcome.as_deref() {
            Ok([Ok(_)]) => return,
            other if Instant::now() > deadline => {
                panic!(
                    "cannot create topic {name} on {} (is `scripts/services up` running?): {other:?}",
                    kafka_bootstrap()
                )
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// The PostgreSQL cluster started by `scripts/services` (`USER_OTP_TEST_PG_HOST_PORT` overrides
/// `127.0.0.1:5433`); user and password `user_otp`, with the right to create databases.
pub fn pg_host_port() -> String {
    std::env::var("USER_OTP_TEST_PG_HOST_PORT").unwrap_or_else(|_| "127.0.0.1:5433".into())
}

const PG_USER: &str = "user_otp";

/// JDBC URL of database `name` on the test cluster.
pub fn database_url(name: &str) -> String {
    format!("jdbc:postgresql://{}/{name}", pg_host_port())
}

/// A libpq connection to database `name` of the test cluster.
pub async fn pg_connect(name: &str) -> tokio_postgres::Client {
    let (host, port) = pg_host_port()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.parse::<u16>().expect("port")))
        .expect("host:port");
    let mut config = tokio_postgres::Config::new();
    config
        .host(&host)
        .port(port)
        .user(PG_USER)
        .password(PG_USER)
        .dbname(name);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {}: {e}", pg_host_port()));
    tokio::spawn(connection);
    client
}

/// A new, empty database for one test; returns its name.
pub async fn fresh_database() -> String {
    let name = unique_name("test").replace('-', "_");
    pg_connect("user_otp")
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    name
}

/// The abuse controls, off: every test that relies on one turns it on itself (tests/abuse.rs
/// and friends), so a test about something else never trips a limit by accident.
pub const LIMITS_OFF: &[(&str, &str)] = &[
    ("USER_OTP_SEND_COOLDOWN_SECONDS", "0"),
    ("USER_OTP_SEND_LIMIT_PER_HOUR", "0"),
    ("USER_OTP_SEND_LIMIT_PER_DAY", "0"),
    ("USER_OTP_VALIDATE_FAILURES_PER_HOUR", "0"),
    ("USER_OTP_PUMPING_MODE", "off"),
];

/// Settings for a test: development profile, the test broker and database, the abuse controls
/// off ([`LIMITS_OFF`]), then the given extra variables (which win).
pub fn settings(vars: &[(&str, &str)]) -> Settings {
    let mut env: Vec<(String, String)> = vec![
        ("USER_OTP_PROFILE".into(), "development".into()),
        ("USER_OTP_KAFKA_BOOTSTRAP_SERVERS".into(), kafka_bootstrap()),
        ("USER_OTP_DATABASE_URL".into(), database_url("user_otp")),
        ("USER_OTP_DATABASE_USERNAME".into(), PG_USER.into()),
        ("USER_OTP_DATABASE_PASSWORD".into(), PG_USER.into()),
    ];
    env.extend(
        LIMITS_OFF
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::from_sources(&Sources::from_env(env).expect("sources")).expect("test settings")
}

/// The HTTP role running in this process on a random port.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub shutdown: CancellationToken,
}

impl TestApp {
    pub async fn spawn(settings: &Settings) -> Self {
        let producer = EventProducer::new(&settings.kafka).expect("producer");
        let store = OtpStore::new(&settings.database).expect("store");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        let announcer =
            user_otp::kafka::BestEffortProducer::new(&settings.kafka).expect("producer");
        let state = AppState::new(settings, producer, announcer, store);
        tokio::spawn(http::serve(
            listener,
            state,
            http::Apis::BOTH,
            shutdown.clone(),
        ));
        Self {
            address,
            client: reqwest::Client::new(),
            shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// POSTs `body` as JSON to `_send`.
    pub async fn send(&self, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url("/user-otp/v1/_send"))
            .json(body)
            .send()
            .await
            .expect("request")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A consumer assigned to every partition of `topic` from the beginning.
fn reader(topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("group.id", unique_name("test-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut partitions = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        partitions
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&partitions).expect("assign");
    consumer
}

/// Reads `count` events from every partition of `topic` (from the beginning), waiting at most
/// 30 s for them.
pub async fn read_events(topic: &str, count: usize) -> Vec<OwnedMessage> {
    let consumer = reader(topic);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut events = Vec::new();
    while events.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(message)) => events.push(message.detach()),
            Ok(Err(e)) => panic!("reading {topic}: {e}"),
            Err(_) => panic!(
                "only {} of {count} events on {topic} after 30 s",
                events.len()
            ),
        }
    }
    events
}

/// The number of events ever written to `topic` (sum of the partitions' high watermarks).
pub async fn event_count(topic: &str) -> i64 {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka_bootstrap())
            .create()
            .expect("consumer");
        (0..PARTITIONS)
            .map(|p| {
                consumer
                    .fetch_watermarks(&topic, p, Duration::from_secs(10))
                    .expect("watermarks")
                    .1
            })
            .sum()
    })
    .await
    .expect("watermarks task")
}

/// Reads `topic` from the beginning until `wanted` holds for one event, at most 30 s; returns it.
pub async fn wait_for_event(
    topic: &str,
    what: &str,
    wanted: impl Fn(&OwnedMessage) -> bool,
) -> OwnedMessage {
    let consumer = reader(topic);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(message)) => {
                let message = message.detach();
                if wanted(&message) {
                    return message;
                }
            }
            Ok(Err(e)) => panic!("reading {topic}: {e}"),
            Err(_) => panic!("no event on {topic} for {what} after 30 s"),
        }
    }
}

/// The value of header `name` of `message`, as text.
pub fn header(message: &OwnedMessage, name: &str) -> Option<String> {
    use rdkafka::message::Headers;
    message.headers().and_then(|headers| {
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    })
}

/// Validates `instance` against the JSON Schema file `schemas/<file>`.
pub fn assert_matches_schema(file: &str, instance: &serde_json::Value) {
    let path = format!("{}/schemas/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("schema file");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{instance} does not match {file}: {errors:?}"
    );
}

pub fn payload_json(message: &OwnedMessage) -> serde_json::Value {
    serde_json::from_slice(message.payload().expect("payload")).expect("JSON payload")
}

pub fn key_text(message: &OwnedMessage) -> String {
    String::from_utf8_lossy(message.key().expect("key")).into_owned()
}
