//! `POST /user-otp/v1/_send` against the real broker: what reaches the request topic, and the
//! exact legacy answers for every validation row and every kind of bad input.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A test app writing to a fresh request topic.
async fn app_with_topic() -> (TestApp, String) {
    let topic = unique_name("otp-request");
    create_topic(&topic).await;
    let app = TestApp::spawn(&settings(&[("USER_OTP_REQUEST_TOPIC", &topic)])).await;
    (app, topic)
}

async fn status_and_text(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The legacy 400 body, byte for byte (member order included).
fn invalid_request_body(fields: &[(&str, &str, &str)]) -> String {
    let fields: Vec<String> = fields
        .iter()
        .map(|(code, message, field)| {
            format!(r#"{{"code":"{code}","message":"{message}","field":"{field}"}}"#)
        })
        .collect();
    format!(
        r#"{{"responseInfo":null,"error":{{"code":400,"message":"Invalid OTP request","description":null,"fields":[{}]}}}}"#,
        fields.join(",")
    )
}

#[tokio::test]
async fn a_valid_send_puts_exactly_one_event_on_the_request_topic() {
    let (app, topic) = app_with_topic().await;
    let response = app
        .send(&json!({
            "RequestInfo": {"apiId": "Rainmaker", "msgId": "20170310130900|en_IN", "authToken": "t0ken"},
            "otp": {"mobileNumber": "9876543210", "tenantId": "pb.amritsar", "type": "Register",
                    "userType": "CITIZEN", "locale": "en_IN", "countryCode": "+91", "extra": 1}
        }))
        .await;
    let response_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("x-request-id response header");
    assert_eq!(
        status_and_text(response).await,
        (
            201,
            r#"{"responseInfo":null,"isSuccessful":true}"#.to_owned()
        )
    );

    let events = read_events(&topic, 1).await;
    assert_eq!(event_count(&topic).await, 1, "exactly one event");
    let event = &events[0];
    assert_eq!(key_text(event), "pb:9876543210");
    let request_id = header(event, "x-request-id").expect("x-request-id header");
    assert!(uuid::Uuid::parse_str(&request_id).is_ok(), "{request_id}");
    assert_eq!(request_id, response_id);
    let value = payload_json(event);
    assert_matches_schema("otp-request-event.schema.json", &value);
    assert_eq!(
        value,
        json!({"RequestInfo": {"apiId": "Rainmaker", "msgId": "20170310130900|en_IN"},
               "otp": {"mobileNumber": "9876543210", "tenantId": "pb.amritsar", "type": "register",
                       "userType": "CITIZEN", "locale": "en_IN", "countryCode": "+91"}})
    );
}

#[tokio::test]
async fn a_callers_request_id_and_lower_case_request_info_are_honoured() {
    let (app, topic) = app_with_topic().await;
    let response = app
        .client
        .post(app.url("/user-otp/v1/_send"))
        .header("X-Request-Id", "caller-id-42")
        .json(
            &json!({"requestInfo": {}, "otp": {"mobileNumber": "EMP-PB-0001",
            "tenantId": "pb.amritsar", "type": "PASSWORDRESET", "userType": "Employee"}}),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 201);
    let events = read_events(&topic, 1).await;
    assert_eq!(
        header(&events[0], "x-request-id").as_deref(),
        Some("caller-id-42")
    );
    assert_eq!(key_text(&events[0]), "pb:EMP-PB-0001");
    let value = payload_json(&events[0]);
    assert_matches_schema("otp-request-event.schema.json", &value);
    assert_eq!(value["otp"]["type"], "passwordreset");
    assert_eq!(value["RequestInfo"], json!({}));
}

#[tokio::test]
async fn every_validation_row_answers_its_exact_legacy_error_and_writes_nothing() {
    type Field = (&'static str, &'static str, &'static str);
    const TENANT: Field = (
        "OTP.TENANT_ID_MANDATORY",
        "Tenant field is mandatory",
        "otp.tenantId",
    );
    const MOBILE: Field = (
        "OTP.MOBILE_NUMBER_MANDATORY",
        "Mobile number field is mandatory",
        "otp.mobileNumber",
    );
    const TYPE: Field = (
        "OTP.REQUEST_TYPE_MANDATORY",
        "Request type (register, passwordreset,login) is mandatory",
        "otp.type",
    );
    const NUMERIC: Field = (
        "OTP.MOBILE_NUMBER_INVALID",
        "Mobile number field should be numeric.",
        "otp.mobileNumber",
    );
    const LENGTH: Field = (
        "OTP.MOBILE_NUMBER_INVALIDLENGTH",
        "Mobile number length should be min 10 and max 13 digits",
        "otp.mobileNumber",
    );

    let (app, topic) = app_with_topic().await;
    let rows: Vec<(Value, Vec<Field>)> = vec![
        (
            json!({"otp": {"mobileNumber": "9876543210", "type": "login"}}),
            vec![TENANT],
        ),
        (
            json!({"otp": {"mobileNumber": "9876543210", "tenantId": ""}}),
            vec![TENANT],
        ),
        (
            json!({"otp": {"tenantId": "pb", "type": "passwordreset"}}),
            vec![MOBILE],
        ),
        (
            json!({"otp": {"tenantId": "pb", "mobileNumber": ""}}),
            vec![MOBILE, NUMERIC, LENGTH],
        ),
        (
            json!({"otp": {"tenantId": "pb", "mobileNumber": "9876543210", "type": "signup"}}),
            vec![TYPE],
        ),
        (
            json!({"RequestInfo": {}}),
            vec![TENANT, MOBILE, TYPE, NUMERIC, LENGTH],
        ),
        (
            json!({"otp": {"tenantId": "pb", "mobileNumber": "98765x3210"}}),
            vec![NUMERIC, LENGTH],
        ),
        (
            json!({"otp": {"tenantId": "pb", "mobileNumber": "987654321", "type": "login"}}),
            vec![LENGTH],
        ),
        (
            json!({"otp": {"tenantId": "pb", "mobileNumber": "98765432101234"}}),
            vec![LENGTH],
        ),
        (
            json!({"otp": {"mobileNumber": "12", "type": "bogus"}}),
            vec![TENANT, TYPE, LENGTH],
        ),
    ];
    for (body, fields) in rows {
        let answer = status_and_text(app.send(&body).await).await;
        assert_eq!(answer, (400, invalid_request_body(&fields)), "{body}");
    }
    assert_eq!(
        event_count(&topic).await,
        0,
        "invalid requests reach no topic"
    );
}

#[tokio::test]
async fn unreadable_bodies_get_a_400_envelope() {
    let (app, topic) = app_with_topic().await;
    let post = |body: Vec<u8>, content_type: &'static str| {
        app.client
            .post(app.url("/user-otp/v1/_send"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (b"{\"otp\": ".to_vec(), "application/json", "not valid JSON"),
        (
            b"[1,2]".to_vec(),
            "application/json",
            "must be a JSON object",
        ),
        (
            br#"{"otp": {"mobileNumber": ["9876543210"]}}"#.to_vec(),
            "application/json",
            "otp.mobileNumber must be a string",
        ),
        (
            br#"{"otp": {"mobileNumber": "9876543210", "tenantId": "pb"}}"#.to_vec(),
            "text/plain",
            "Content-Type",
        ),
        (
            vec![b' '; 70_000],
            "application/json",
            "larger than 65536 bytes",
        ),
    ];
    for (body, content_type, needle) in cases {
        let response = post(body, content_type).await.expect("request");
        assert_eq!(response.status().as_u16(), 400, "{needle}");
        let value: Value = response.json().await.expect("JSON envelope");
        assert_eq!(value["responseInfo"], Value::Null, "{value}");
        assert_eq!(value["error"]["code"], 400, "{value}");
        assert_eq!(value["error"]["message"], "Malformed request", "{value}");
        assert_eq!(value["error"]["fields"], json!([]), "{value}");
        let description = value["error"]["description"].as_str().unwrap_or_default();
        assert!(description.contains(needle), "{description} lacks {needle}");
    }
    assert_eq!(event_count(&topic).await, 0);
}

#[tokio::test]
async fn unknown_paths_and_methods_get_envelopes_and_health_answers() {
    let (app, _topic) = app_with_topic().await;
    let missing = app.get("/nope").await;
    assert_eq!(missing.status().as_u16(), 404);
    let value: Value = missing.json().await.expect("JSON");
    assert_eq!(value["error"]["code"], 404);
    let wrong_method = app.get("/user-otp/v1/_send").await;
    assert_eq!(wrong_method.status().as_u16(), 405);
    let value: Value = wrong_method.json().await.expect("JSON");
    assert_eq!(value["error"]["code"], 405);

    for live in ["/user-otp/health", "/otp/health"] {
        assert_eq!(app.get(live).await.status().as_u16(), 200, "{live}");
    }
    let ready = app.get("/user-otp/health/ready").await;
    assert_eq!(ready.status().as_u16(), 200);
    let body: Value = ready.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"status": "UP", "kafka": "UP"}),
        "_send needs the broker"
    );
    let ready = app.get("/otp/health/ready").await;
    assert_eq!(ready.status().as_u16(), 200);
    let body: Value = ready.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"status": "UP", "database": "UP"}),
        "the OTP API needs PostgreSQL"
    );
}

#[tokio::test]
async fn an_unreachable_broker_gives_503_within_the_send_timeout() {
    // Nothing listens on port 1: every connection attempt is refused at once.
    let settings = settings(&[
        ("USER_OTP_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1"),
        ("USER_OTP_KAFKA_SEND_TIMEOUT_MS", "1500"),
    ]);
    let app = TestApp::spawn(&settings).await;
    let started = Instant::now();
    let response = app
        .send(&json!({"otp": {"mobileNumber": "9876543210", "tenantId": "pb"}}))
        .await;
    let elapsed = started.elapsed();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let value: Value = response.json().await.expect("JSON envelope");
    assert_eq!(
        value,
        json!({"responseInfo": null, "error": {"code": 503, "message": "Service unavailable",
            "description": "The OTP request could not be queued; try again later", "fields": []}})
    );
    assert!(
        elapsed < Duration::from_millis(1500 + 500 + 1000),
        "answered after {elapsed:?}"
    );
    let ready = app.get("/user-otp/health/ready").await;
    assert_eq!(ready.status().as_u16(), 503);
    // The egov-otp API does not need the broker.
    let ready = app.get("/otp/health/ready").await;
    assert_eq!(ready.status().as_u16(), 200);
}
