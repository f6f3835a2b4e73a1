//! A whole user-otp stack for one test: fresh topics and database, a wiremock egov-user, the
//! HTTP role in-process, and workers started on demand.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use user_otp::config::Settings;
use user_otp::store::OtpStore;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

pub struct Topics {
    pub request: String,
    pub sms: String,
    pub email: String,
    pub dead_letter: String,
    pub outcome: String,
}

pub struct Stack {
    pub topics: Topics,
    pub database: String,
    pub users: MockServer,
    pub settings: Settings,
    pub app: TestApp,
    pub db: tokio_postgres::Client,
    producer: FutureProducer,
}

/// A worker running in this process.
pub struct RunningWorker {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl RunningWorker {
    /// Shuts the worker down and checks it stopped cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("join").expect("worker ran");
    }
}

impl Stack {
    /// Topics, database (migrated), egov-user mock (answers "no such user" unless told
    /// otherwise) and the HTTP role; `vars` are extra settings.
    pub async fn start(vars: &[(&str, &str)]) -> Self {
        let topics = Topics {
            request: unique_name("otp-request"),
            sms: unique_name("otp-sms"),
            email: unique_name("otp-email"),
            dead_letter: unique_name("otp-dlq"),
            outcome: unique_name("otp-outcome"),
        };
        for topic in [
            &topics.request,
            &topics.sms,
            &topics.email,
            &topics.dead_letter,
            &topics.outcome,
        ] {
            create_topic(topic).await;
        }
        let database = fresh_database().await;
        let users = MockServer::start().await;
        mount_no_such_user(&users).await;
        let url = database_url(&database);
        let mut all: Vec<(&str, &str)> = vec![
            ("USER_OTP_REQUEST_TOPIC", &topics.request),
            ("USER_OTP_SMS_TOPIC", &topics.sms),
            ("USER_OTP_EMAIL_TOPIC", &topics.email),
            ("USER_OTP_DEAD_LETTER_TOPIC", &topics.dead_letter),
            ("USER_OTP_OUTCOME_TOPIC", &topics.outcome),
            ("USER_OTP_DATABASE_URL", &url),
        ];
        let user_host = users.uri();
        let group = unique_name("group");
        all.push(("USER_OTP_USER_HOST", &user_host));
        all.push(("USER_OTP_CONSUMER_GROUP", &group));
        all.extend_from_slice(vars);
        let settings = settings(&all);
        OtpStore::new(&settings.database)
            .expect("store")
            .migrate()
            .await
            .expect("migrations");
        let app = TestApp::spawn(&settings).await;
        let db = pg_connect(&database).await;
        Self {
            topics,
            database,
            users,
            settings,
            app,
            db,
            producer: test_producer(),
        }
    }

    /// The environment of a service process for this stack: the test broker and database,
    /// the abuse controls off ([`LIMITS_OFF`]), this stack's topics, egov-user and consumer
    /// group (see `processes`).
    pub fn process_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("USER_OTP_PROFILE", "development".to_owned()),
            ("USER_OTP_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap()),
            ("USER_OTP_DATABASE_URL", database_url(&self.database)),
            (
                "USER_OTP_DATABASE_USERNAME",
                self.settings.database.username.clone(),
            ),
            ("USER_OTP_DATABASE_PASSWORD", "user_otp".to_owned()),
            ("USER_OTP_REQUEST_TOPIC", self.topics.request.clone()),
            ("USER_OTP_SMS_TOPIC", self.topics.sms.clone()),
            ("USER_OTP_EMAIL_TOPIC", self.topics.email.clone()),
            (
                "USER_OTP_DEAD_LETTER_TOPIC",
                self.topics.dead_letter.clone(),
            ),
            ("USER_OTP_OUTCOME_TOPIC", self.topics.outcome.clone()),
            ("USER_OTP_USER_HOST", self.users.uri()),
            (
                "USER_OTP_CONSUMER_GROUP",
                self.settings.kafka.consumer_group.clone(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(
            LIMITS_OFF
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env
    }

    /// egov-user forgets every answer it was given and knows no user (its state at start).
    pub async fn users_know_nobody(&self) {
        self.users.reset().await;
        mount_no_such_user(&self.users).await;
    }

    /// egov-user takes 600 s to answer a search for `user_name` (others are answered as before):
    /// a request for that user is stuck in its batch until [`Stack::users_know_nobody`].
    pub async fn users_hang_for(&self, user_name: &str) {
        Mock::given(method("POST"))
            .and(path("/user/_search"))
            .and(body_partial_json(json!({"userName": user_name})))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"user": []}))
                    .set_delay(Duration::from_secs(600)),
            )
            .with_priority(1)
            .mount(&self.users)
            .await;
    }

    /// egov-user knows a citizen with this user name (and mobile, email).
    pub async fn known_citizen(&self, user_name: &str, mobile: &str, email: Option<&str>) {
        Mock::given(method("POST"))
            .and(path("/user/_search"))
            .and(body_partial_json(json!({"userName": user_name})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"user": [{
                "id": 1, "uuid": "u-1", "userName": user_name, "mobileNumber": mobile,
                "emailId": email, "tenantId": "pb", "type": "CITIZEN"}]})))
            .with_priority(1)
            .mount(&self.users)
            .await;
    }

    pub fn spawn_worker(&self) -> RunningWorker {
        self.spawn_worker_with(self.settings.clone())
    }

    /// A worker with other settings (e.g. its database reached through a [`TcpProxy`]).
    ///
    /// [`TcpProxy`]: super::tcp_proxy::TcpProxy
    pub fn spawn_worker_with(&self, settings: Settings) -> RunningWorker {
        self.spawn_worker_observed(settings, Default::default())
    }

    /// A worker with `settings` that keeps `totals` up to date with what it holds.
    pub fn spawn_worker_observed(
        &self,
        settings: Settings,
        totals: std::sync::Arc<user_otp::worker::InFlight>,
    ) -> RunningWorker {
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            let store = OtpStore::new(&settings.database)?;
            user_otp::worker::run_observed(&settings, store, token, totals).await
        });
        RunningWorker { shutdown, task }
    }

    /// Writes a request event (as any DIGIT producer would) to the request topic.
    pub async fn produce(&self, key: &str, payload: &[u8], request_id: Option<&str>) {
        self.produce_to(&self.topics.request, key, payload, request_id)
            .await;
    }

    /// Writes one event with an optional `x-request-id` header to any topic.
    pub async fn produce_to(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        request_id: Option<&str>,
    ) {
        let mut headers = OwnedHeaders::new();
        if let Some(id) = request_id {
            headers = headers.insert(Header {
                key: "x-request-id",
                value: Some(id),
            });
        }
        self.producer
            .send(
                FutureRecord::to(topic)
                    .key(key)
                    .payload(payload)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
    }

    /// Writes a request event exactly as given: optional key, value (`None`: null), headers,
    /// and timestamp (ms since the epoch; `None`: now); returns its partition and offset.
    pub async fn produce_exact(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
        timestamp_ms: Option<i64>,
    ) -> (i32, i64) {
        let topic = self.topics.request.clone();
        self.produce_exact_to(&topic, key, value, headers, timestamp_ms)
            .await
    }

    /// Writes a register request for `mobile` to partition `partition` of the request topic,
    /// with request id `id` (none: the worker derives one from the offset); returns the offset.
    pub async fn produce_to_partition(
        &self,
        partition: i32,
        mobile: &str,
        id: Option<&str>,
    ) -> i64 {
        self.produce_value_to_partition(partition, mobile, &Self::request(mobile, "register"), id)
            .await
    }

    /// Writes `value` with key `pb:<mobile>` to partition `partition` of the request topic.
    pub async fn produce_value_to_partition(
        &self,
        partition: i32,
        mobile: &str,
        value: &[u8],
        id: Option<&str>,
    ) -> i64 {
        let mut headers = OwnedHeaders::new();
        if let Some(id) = id {
            headers = headers.insert(Header {
                key: "x-request-id",
                value: Some(id),
            });
        }
        let key = format!("pb:{mobile}");
        let record = FutureRecord::to(&self.topics.request)
            .partition(partition)
            .key(&key)
            .payload(value)
            .headers(headers);
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .map(|delivery| delivery.offset)
            .map_err(|(e, _)| e)
            .expect("produce")
    }

    /// [`Stack::produce_exact`] to any topic.
    pub async fn produce_exact_to(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
        timestamp_ms: Option<i64>,
    ) -> (i32, i64) {
        let headers = headers
            .iter()
            .fold(OwnedHeaders::new(), |acc, (name, value)| {
                acc.insert(Header {
                    key: name,
                    value: Some(*value),
                })
            });
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(value) = value {
            record = record.payload(value);
        }
        if let Some(timestamp) = timestamp_ms {
            record = record.timestamp(timestamp);
        }
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .map(|delivery| (delivery.partition, delivery.offset))
            .map_err(|(e, _)| e)
            .expect("produce")
    }

    /// The SMS event carrying request id `id` (waits up to 30 s).
    pub async fn sms_for(&self, id: &str) -> rdkafka::message::OwnedMessage {
        wait_for_event(&self.topics.sms, id, |m| {
            header(m, "x-request-id").as_deref() == Some(id)
        })
        .await
    }

    /// The dead letter of the request event at `offset` of `partition` (waits up to 30 s).
    pub async fn dead_letter_at(
        &self,
        partition: i32,
        offset: i64,
    ) -> rdkafka::message::OwnedMessage {
        wait_for_event(&self.topics.dead_letter, "a dead letter", |m| {
            header(m, "x-dead-letter-source-partition") == Some(partition.to_string())
                && header(m, "x-dead-letter-source-offset") == Some(offset.to_string())
        })
        .await
    }

    /// The outcome event of `subject` (`request` or `validation`) whose `requestId` is
    /// `request_id` as the worker keys it (e.g. `caller:req-1`), checked against
    /// `schemas/outcome-event.schema.json` (waits up to 30 s).
    pub async fn outcome_event(&self, subject: &str, request_id: &str) -> Value {
        let message = wait_for_event(&self.topics.outcome, request_id, |m| {
            let value = payload_json(m);
            value["subject"] == subject && value["requestId"] == request_id
        })
        .await;
        let value = payload_json(&message);
        assert_matches_schema("outcome-event.schema.json", &value);
        value
    }

    /// The dead letter whose `x-request-id` header is `id` (waits up to 30 s).
    pub async fn dead_letter_for(&self, id: &str) -> rdkafka::message::OwnedMessage {
        wait_for_event(&self.topics.dead_letter, id, |m| {
            header(m, "x-request-id").as_deref() == Some(id)
        })
        .await
    }

    /// The service still serves: a valid request written with Kafka key `same_key` (so on the
    /// same partition, behind whatever was there) and one on another key both get their SMS
    /// within 30 s, and `worker` is still running.
    pub async fn assert_still_serving(&self, worker: &RunningWorker, same_key: &[u8]) {
        let (same, other) = (unique_name("after-same"), unique_name("after-other"));
        self.produce_exact(
            Some(same_key),
            Some(&Self::request("9222222222", "register")),
            &[("x-request-id", same.as_bytes())],
            None,
        )
        .await;

        self.produce_request("9111111111", "register", &other).await;
        self.sms_for(&same).await;
        self.sms_for(&other).await;
        assert!(!worker.task.is_finished(), "the worker stopped");
    }

    /// Leaves the register request `request_id` for `mobile` as a crashed worker would: outcome
    /// `sms_pending` (keyed as the worker keys it) with a stored code whose SMS may or may not have
    /// reached the broker. Returns the code's id.
    pub async fn leave_pending(&self, request_id: &str, mobile: &str) -> uuid::Uuid {
        self.leave_pending_as(request_id, mobile, "a-crashed-worker")
            .await
    }

    /// As [`Stack::leave_pending`], recorded by the worker named `worker_id` (its
    /// `USER_OTP_KAFKA_GROUP_INSTANCE_ID`).
    pub async fn leave_pending_as(
        &self,
        request_id: &str,
        mobile: &str,
        worker_id: &str,
    ) -> uuid::Uuid {
        use user_otp::domain::code::CodeHasher;
        use user_otp::domain::request_id::fingerprint;
        use user_otp::domain::RawOtpRequest;
        use user_otp::store::{NewCode, NewOutcome, OtpStore, Outcome, SourcePosition};
        let settings = &self.settings;
        let hasher = CodeHasher::new(&settings.hmac_key_id, settings.hmac_secret.bytes());
        let request = RawOtpRequest::from_json_bytes(&Stack::request(mobile, "register"))
            .expect("parses")
            .validate()
            .expect("valid");
        let store = OtpStore::new(&settings.database).expect("store");
        let id = uuid::Uuid::new_v4();
        let key = (
            format!("caller:{request_id}"),
            fingerprint(&hasher, &request),
        );
        let recorded = store
            .record_batch(
                &[NewOutcome {
                    request_id: key.0.clone(),
                    fingerprint: key.1.clone(),
                    tenant_id: "pb".into(),
                    otp_type: "register",
                    outcome: Outcome::SmsPending,
                    source: SourcePosition {
                        topic: self.topics.request.as_str().into(),
                        partition: 0,
                        offset: 0,
                    },
                    code: Some(NewCode {
                        id,
                        identity: mobile.into(),
                        identities: vec![mobile.into()],
                        key_id: "k1".into(),
                        hash: vec![0; 32],
                        valid_for: Duration::from_secs(600),
                    }),
                    detail: None,
                    test_number: false,
                }],
                worker_id,
                &Default::default(),
            )
            .await
            .expect("record");
        assert_eq!(recorded.won, [key]);
        id
    }

    /// Writes a request event for `mobile` (key `pb:<mobile>`) with request id `id`.
    pub async fn produce_request(&self, mobile: &str, otp_type: &str, id: &str) {
        self.produce(
            &format!("pb:{mobile}"),
            &Self::request(mobile, otp_type),
            Some(id),
        )
        .await;
    }

    /// A register/login/passwordreset request event body.
    pub fn request(mobile: &str, otp_type: &str) -> Vec<u8> {
        json!({"RequestInfo": {"apiId": "test"},
               "otp": {"mobileNumber": mobile, "tenantId": "pb.amritsar", "type": otp_type}})
        .to_string()
        .into_bytes()
    }

    /// The outcome recorded now for the request whose `x-request-id` was `request_id`
    /// (`None`: nothing yet; `sms_pending` included).
    pub async fn outcome_now(&self, request_id: &str) -> Option<String> {
        self.db
            .query_opt(
                "SELECT outcome FROM otp_request_outcome WHERE request_id = $1",
                &[&format!("caller:{request_id}")],
            )
            .await
            .expect("query")
            .map(|row| row.get(0))
    }

    /// The recorded outcome of the request whose `x-request-id` was `request_id` (the worker
    /// keys it as `caller:<id>`), waiting up to 30 s for it to be final. With several requests
    /// under that id (other fingerprints), the newest.
    pub async fn final_outcome(&self, request_id: &str) -> String {
        self.final_outcome_stored(&format!("caller:{request_id}"))
            .await
    }

    /// The final outcome recorded under the worker's own request id `stored` (e.g.
    /// `offset:<topic>/<partition>/<offset>`), waiting up to 30 s.
    pub async fn final_outcome_stored(&self, stored: &str) -> String {
        let request_id = stored;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let row = self
                .db
                .query_opt(
                    "SELECT outcome FROM otp_request_outcome WHERE request_id = $1 \
                     ORDER BY created_at DESC LIMIT 1",
                    &[&stored],
                )
                .await
                .expect("query");
            if let Some(outcome) = row.map(|r| r.get::<_, String>(0)) {
                if outcome != "sms_pending" {
                    return outcome;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no final outcome for {request_id} after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Codes stored (hashes), all requests together.
    pub async fn code_count(&self) -> i64 {
        self.db
            .query_one("SELECT count(*) FROM otp_code", &[])
            .await
            .expect("count")
            .get(0)
    }

    /// POSTs `/otp/v1/_validate`.
    pub async fn validate(&self, identity: &str, tenant_id: &str, otp: &str) -> (u16, Value) {
        let response = self
            .app
            .client
            .post(self.app.url("/otp/v1/_validate"))
            .json(&json!({"RequestInfo": {"action": "validate", "ts": 0},
                "otp": {"otp": otp, "identity": identity, "tenantId": tenant_id, "userType": "CITIZEN"}}))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON answer"))
    }
}

/// Every search answers "no such user" (at a low priority, so specific mocks win).
async fn mount_no_such_user(users: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/user/_search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"user": []})))
        .with_priority(10)
        .mount(users)
        .await;
}

fn test_producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        // Events up to the broker's own limit (1,048,588 bytes), above librdkafka's default.
        .set("message.max.bytes", "2000000")
        .set("linger.ms", "0")
        .create()
        .expect("producer")
}

/// The code in an SMS text: its last run of digits.
pub fn code_in(message: &str) -> String {
    let digits: Vec<&str> = message
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| !run.is_empty())
        .collect();
    digits
        .last()
        .map(|d| (*d).to_owned())
        .expect("a code in the SMS")
}

/// The expected legacy answer to a failed validation.
pub fn validation_unsuccessful() -> Value {
    json!({"responseInfo": null, "error": {"code": 400, "message": "OTP validation unsuccessful",
        "description": null, "fields": [{"code": "OTP.VALIDATION_UNSUCCESSFUL",
        "message": "OTP validation unsuccessful", "field": "otp.otp"}]}})
}
