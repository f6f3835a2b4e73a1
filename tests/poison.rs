//! No input stops the worker: each kind of poison event is confined to itself (dead-lettered
//! with its reason) and the service goes on serving the same key and every other key. Against
//! the real broker and PostgreSQL.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::raw_header::produce_with_raw_header_name;
use common::stack::Stack;
use common::tcp_proxy::TcpProxy;
use common::*;
use rdkafka::Message;
use serde_json::json;

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms")
}

fn request_body(tenant: &str, mobile: &str) -> Vec<u8> {
    json!({"otp": {"mobileNumber": mobile, "tenantId": tenant, "type": "register"}})
        .to_string()
        .into_bytes()
}

#[tokio::test]
async fn a_header_name_that_is_not_utf8_is_dead_lettered_and_the_worker_stays_up() {
    let stack = Stack::start(&[]).await;
    let worker = stack.spawn_worker();
    let key = b"pb:9800000001";
    let topic = stack.topics.request.clone();
    let value = request_body("pb", "9800000001");
    tokio::task::spawn_blocking(move || {
        produce_with_raw_header_name(
            &kafka_bootstrap(),
            &topic,
            key,
            &value,
            b"\xff\xfe-trace",
            None,
        )
        .expect("raw event written");
    })
    .await
    .expect("raw producer");

    let dead = wait_for_event(&stack.topics.dead_letter, "the raw event", |m| {
        header(m, "x-dead-letter-reason").is_some()
    })
    .await;
    assert_eq!(
        header(&dead, "x-dead-letter-reason").as_deref(),
        Some("unreadable_header")
    );
    assert_eq!(dead.key(), Some(&key[..]));
    assert_eq!(dead.payload(), Some(&request_body("pb", "9800000001")[..]));
    stack.assert_still_serving(&worker, key).await;
    worker.stop().await;
}

#[tokio::test]
async fn an_oversize_invalid_event_is_dead_lettered_cut_to_fit() {
    let stack = Stack::start(&[]).await;
    let worker = stack.spawn_worker();
    // Accepted by the broker (≤ 1,048,588 bytes), larger than the producer's 1,000,000.
    let value = vec![b'{'; 1_040_000];
    let (partition, offset) = stack
        .produce_exact(Some(b"pb:big"), Some(&value), &[], None)
        .await;

    let dead = stack.dead_letter_at(partition, offset).await;
    assert_eq!(
        header(&dead, "x-dead-letter-reason").as_deref(),
        Some("malformed")
    );
    assert_eq!(
        header(&dead, "x-dead-letter-value").as_deref(),
        Some("truncated")
    );
    assert_eq!(
        header(&dead, "x-dead-letter-original-size").as_deref(),
        Some("1040000")
    );
    let kept = dead.payload().expect("a value").len();
    assert!(kept > 990_000 && kept < 1_000_000, "{kept}");
    stack.assert_still_serving(&worker, b"pb:big").await;
    worker.stop().await;
}

#[tokio::test]
async fn a_null_value_is_dead_lettered_as_null() {
    let stack = Stack::start(&[]).await;
    let worker = stack.spawn_worker();
    let (partition, offset) = stack
        .produce_exact(Some(b"pb:null"), None, &[("x-request-id", b"null-1")], None)
        .await;

    let dead = stack.dead_letter_at(partition, offset).await;
    assert_eq!(dead.payload(), None, "the value stays null");
    assert_eq!(
        header(&dead, "x-dead-letter-reason").as_deref(),
        Some("malformed")
    );
    assert_eq!(header(&dead, "x-dead-letter-value"), None);
    assert_eq!(header(&dead, "x-request-id").as_deref(), Some("null-1"));
    stack.assert_still_serving(&worker, b"pb:null").await;
    worker.stop().await;
}

#[tokio::test]
async fn a_long_tenant_is_refused_by_send_and_dead_lettered_as_an_event() {
    let stack = Stack::start(&[]).await;
    let worker = stack.spawn_worker();
    let tenant = "t".repeat(4_000);

    let answer = stack
        .app
        .send(
            &json!({"otp": {"mobileNumber": "9800000002", "tenantId": tenant, "type": "register"}}),
        )
        .await;
    assert_eq!(answer.status().as_u16(), 400);
    let body: serde_json::Value = answer.json().await.expect("JSON");
    assert_eq!(body["error"]["fields"][0]["code"], "OTP.TENANT_ID_INVALID");
    assert_eq!(body["error"]["fields"][0]["field"], "otp.tenantId");

    let key = format!("{tenant}:9800000002").into_bytes();
    stack
        .produce_exact(
            Some(&key),
            Some(&request_body(&tenant, "9800000002")),
            &[("x-request-id", b"long-tenant")],
            None,
        )
        .await;
    let dead = stack.dead_letter_for("long-tenant").await;
    assert_eq!(
        header(&dead, "x-dead-letter-reason").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(
        header(&dead, "x-dead-letter-detail").as_deref(),
        Some("OTP.TENANT_ID_INVALID")
    );
    stack.assert_still_serving(&worker, &key).await;
    worker.stop().await;
}

#[tokio::test]
async fn a_stale_event_with_a_nul_in_its_tenant_is_dead_lettered_not_recorded() {
    let stack = Stack::start(&[]).await;
    let worker = stack.spawn_worker();
    let an_hour_ago = now_ms() - 3_600_000;
    stack
        .produce_exact(
            Some(b"pb:9800000003"),
            Some(&request_body("pb\u{0}x", "9800000003")),
            &[("x-request-id", b"stale-nul")],
            Some(an_hour_ago),
        )
        .await;
    let dead = stack.dead_letter_for("stale-nul").await;
    assert_eq!(
        header(&dead, "x-dead-letter-reason").as_deref(),
        Some("invalid_request")
    );
    stack.assert_still_serving(&worker, b"pb:9800000003").await;
    worker.stop().await;
}

#[tokio::test]
async fn a_permanent_database_error_on_one_event_dead_letters_it_and_serves_the_99_others() {
    let stack = Stack::start(&[]).await;
    // PostgreSQL refuses this one request's outcome (an integrity error, SQLSTATE 23514).
    stack
        .db
        .batch_execute(
            "ALTER TABLE otp_request_outcome ADD CONSTRAINT test_poison \
             CHECK (request_id NOT LIKE '%poison%')",
        )
        .await
        .expect("constraint");
    // One key: all 100 on one partition, so they arrive as one batch.
    for i in 0..100 {
        let id = if i == 57 {
            "batch-poison".to_owned()
        } else {
            format!("batch-{i}")
        };
        stack
            .produce_exact(
                Some(b"pb:batch"),
                Some(&request_body("pb", &format!("98100{i:05}"))),
                &[("x-request-id", id.as_bytes())],
                None,
            )
            .await;
    }
    let worker = stack.spawn_worker();

    let dead = stack.dead_letter_for("batch-poison").await;
    assert_eq!(
        header(&dead, "x-dead-letter-reason").as_deref(),
        Some("database_rejected")
    );
    assert_eq!(
        header(&dead, "x-dead-letter-sqlstate").as_deref(),
        Some("23514")
    );
    let detail = header(&dead, "x-dead-letter-detail").expect("detail");
    assert!(detail.contains("test_poison"), "{detail}");
    read_events(&stack.topics.sms, 99).await;
    for i in (0..100).filter(|i| *i != 57) {
        assert_eq!(stack.final_outcome(&format!("batch-{i}")).await, "sent");
    }
    assert_eq!(event_count(&stack.topics.sms).await, 99);
    assert_eq!(event_count(&stack.topics.dead_letter).await, 1);
    stack.assert_still_serving(&worker, b"pb:batch").await;
    worker.stop().await;
}

#[tokio::test]
async fn a_20_second_database_outage_dead_letters_nothing_and_serves_everything_after() {
    let stack = Stack::start(&[]).await;
    let proxy = TcpProxy::start(&pg_host_port()).await;
    let mut settings = stack.settings.clone();
    settings.database.host = proxy.address.ip().to_string();
    settings.database.port = proxy.address.port();
    let worker = stack.spawn_worker_with(settings);
    stack
        .produce_request("9820000000", "register", "before-outage")
        .await;
    stack.sms_for("before-outage").await;

    proxy.cut();
    for i in 0..20 {
        stack
            .produce_request(
                &format!("98200000{i:02}"),
                "register",
                &format!("outage-{i}"),
            )
            .await;
    }
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        event_count(&stack.topics.sms).await,
        1,
        "nothing sent while cut"
    );
    proxy.restore();

    read_events(&stack.topics.sms, 21).await;
    for i in 0..20 {
        assert_eq!(stack.final_outcome(&format!("outage-{i}")).await, "sent");
    }
    assert_eq!(event_count(&stack.topics.dead_letter).await, 0);
    stack.assert_still_serving(&worker, b"pb:9820000000").await;
    worker.stop().await;
}

#[tokio::test]
async fn validate_with_a_nul_in_the_identity_is_a_400_not_an_outage() {
    let stack = Stack::start(&[]).await;
    let (status, answer) = stack.validate("98765\u{0}43210", "pb", "123456").await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["message"], "Invalid OTP validation request");
    assert_eq!(answer["error"]["fields"][0]["code"], "OTP.IDENTITY_INVALID");
    let (status, answer) = stack.validate("9876543210", "pb\u{0}", "123456").await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["error"]["fields"][0]["code"],
        "OTP.TENANT_ID_INVALID"
    );
}

#[tokio::test]
async fn an_error_every_event_meets_is_an_outage_retried_not_poison_dead_lettered() {
    let stack = Stack::start(&[]).await;
    // Every outcome is refused with an integrity error (SQLSTATE 23514, a "poison" class): the
    // canary row is refused too, so this is configuration, not the events' fault.
    stack
        .db
        .batch_execute(
            "ALTER TABLE otp_request_outcome ADD CONSTRAINT test_refuse_all CHECK (false) NOT VALID",
        )
        .await
        .expect("constraint");
    let worker = stack.spawn_worker();
    for i in 0..10 {
        stack
            .produce_request(
                &format!("98600000{i:02}"),
                "register",
                &format!("blocked-{i}"),
            )
            .await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        event_count(&stack.topics.dead_letter).await,
        0,
        "nothing dead-lettered"
    );
    assert_eq!(event_count(&stack.topics.sms).await, 0);
    stack
        .db
        .batch_execute("ALTER TABLE otp_request_outcome DROP CONSTRAINT test_refuse_all")
        .await
        .expect("drop constraint");
    for i in 0..10 {
        assert_eq!(stack.final_outcome(&format!("blocked-{i}")).await, "sent");
    }
    assert_eq!(event_count(&stack.topics.dead_letter).await, 0);
    stack.assert_still_serving(&worker, b"pb:9860000000").await;
    worker.stop().await;
}

#[tokio::test]
async fn a_locale_in_msg_id_is_validated_like_otp_locale() {
    let stack = Stack::start(&[]).await;
    let worker = stack.spawn_worker();
    // A 1 MB locale after `|` in RequestInfo.msgId would make an SMS event too large to write.
    let body = json!({"RequestInfo": {"msgId": format!("1|{}", "a".repeat(1_000_000))},
        "otp": {"mobileNumber": "9870000077", "tenantId": "pb", "type": "register"}})
    .to_string()
    .into_bytes();
    stack
        .produce_exact(
            Some(b"pb:9870000077"),
            Some(&body),
            &[("x-request-id", b"big-locale")],
            None,
        )
        .await;
    let dead = stack.dead_letter_for("big-locale").await;
    assert_eq!(
        header(&dead, "x-dead-letter-detail").as_deref(),
        Some("OTP.LOCALE_INVALID")
    );
    let answer = stack
        .app
        .send(&json!({"RequestInfo": {"msgId": "1|\u{1b}[31m\nFORGED"},
            "otp": {"mobileNumber": "9870000078", "tenantId": "pb"}}))
        .await;
    assert_eq!(answer.status().as_u16(), 400);
    stack.assert_still_serving(&worker, b"pb:9870000077").await;
    worker.stop().await;
}

#[tokio::test]
async fn egov_user_refusing_every_search_is_an_outage_not_dead_letters() {
    use wiremock::matchers::method;
    use wiremock::{Mock, ResponseTemplate};
    let stack = Stack::start(&[("USER_OTP_USER_TIMEOUT_MS", "500")]).await;
    // An authorization proxy (or a wrong URL) answers every search the same way.
    stack.users.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&stack.users)
        .await;
    let worker = stack.spawn_worker();
    for i in 0..5 {
        stack
            .produce_request(
                &format!("98710000{i:02}"),
                "register",
                &format!("forbidden-{i}"),
            )
            .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        event_count(&stack.topics.dead_letter).await,
        0,
        "nothing dead-lettered"
    );
    stack.users_know_nobody().await;
    for i in 0..5 {
        assert_eq!(stack.final_outcome(&format!("forbidden-{i}")).await, "sent");
    }
    assert_eq!(event_count(&stack.topics.dead_letter).await, 0);
    worker.stop().await;
}
