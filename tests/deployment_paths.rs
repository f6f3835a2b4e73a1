//! Where the service answers (README "Deploying on DIGIT"): `_send` and its health paths under
//! the context path (`SERVER_SERVLET_CONTEXT_PATH`, NalJalSeva's `/<state>/user-otp`), the
//! egov-otp API under `/otp` with `/otp/health`, the egov-otp API on its own port and then absent
//! from the public one, and the `otp-api` role serving only it. Every health path answers
//! actuator-style JSON.

mod common;

use common::processes::{free_port, ServiceProcess};
use common::stack::Stack;
use serde_json::{json, Value};

async fn get(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

async fn post(url: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

fn send_body() -> Value {
    json!({"RequestInfo": {}, "otp": {"mobileNumber": "9000000001", "tenantId": "as.guwahati", "type": "register"}})
}

fn validate_body() -> Value {
    json!({"RequestInfo": {}, "otp": {"otp": "123456", "identity": "9000000001", "tenantId": "as"}})
}

fn search_body() -> Value {
    json!({"RequestInfo": {}, "otp": {"uuid": "0190a0b0-0000-7000-8000-000000000000", "tenantId": "as"}})
}

#[tokio::test]
async fn a_state_context_path_moves_send_and_its_probes_and_the_old_path_is_gone() {
    let stack = Stack::start(&[("SERVER_SERVLET_CONTEXT_PATH", "/assam/user-otp")]).await;
    let app = &stack.app;
    let (status, _) = post(&app.url("/assam/user-otp/v1/_send"), &send_body()).await;
    assert_eq!(status, 201);
    assert_eq!(
        get(&app.url("/assam/user-otp/health")).await,
        (200, json!({"status": "UP"}))
    );
    let (status, ready) = get(&app.url("/assam/user-otp/health/ready")).await;
    assert_eq!((status, &ready["status"]), (200, &json!("UP")), "{ready}");
    let (status, body) = post(&app.url("/user-otp/v1/_send"), &send_body()).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], 404, "the legacy envelope: {body}");
    assert_eq!(get(&app.url("/user-otp/health")).await.0, 404);
    // The egov-otp API keeps its own path.
    assert_eq!(
        get(&app.url("/otp/health")).await,
        (200, json!({"status": "UP"}))
    );
    assert_eq!(
        get(&app.url("/otp/health/ready")).await,
        (200, json!({"status": "UP", "database": "UP"}))
    );
    assert_eq!(
        post(&app.url("/otp/v1/_search"), &search_body()).await.0,
        200
    );
}

#[tokio::test]
async fn the_egov_otp_api_on_its_own_port_is_absent_from_the_public_port() {
    let stack = Stack::start(&[]).await;
    let otp_port = free_port().to_string();
    let shim = ServiceProcess::spawn(&stack, "serve", &[("USER_OTP_OTP_API_PORT", &otp_port)]);
    shim.wait_ready("/user-otp/health/ready").await;
    let otp = |path: &str| format!("http://127.0.0.1:{otp_port}{path}");

    assert_eq!(
        post(&shim.url("/user-otp/v1/_send"), &send_body()).await.0,
        201
    );
    for path in ["/otp/health", "/otp/health/ready"] {
        assert_eq!(get(&shim.url(path)).await.0, 404, "public {path}");
    }
    assert_eq!(
        post(&shim.url("/otp/v1/_validate"), &validate_body())
            .await
            .0,
        404
    );
    assert_eq!(
        post(&shim.url("/otp/v1/_search"), &search_body()).await.0,
        404
    );

    assert_eq!(
        get(&otp("/otp/health")).await,
        (200, json!({"status": "UP"}))
    );
    assert_eq!(get(&otp("/otp/health/ready")).await.0, 200);
    let (status, answer) = post(&otp("/otp/v1/_validate"), &validate_body()).await;
    assert_ne!(status, 404, "{answer}");
    assert_eq!(post(&otp("/otp/v1/_search"), &search_body()).await.0, 200);
    assert_eq!(post(&otp("/user-otp/v1/_send"), &send_body()).await.0, 404);
    assert_eq!(get(&otp("/user-otp/health")).await.0, 404);
}

#[tokio::test]
async fn the_otp_api_role_serves_only_the_egov_otp_api() {
    let stack = Stack::start(&[]).await;
    let egov_otp = ServiceProcess::spawn(&stack, "otp-api", &[]);
    egov_otp.wait_ready("/otp/health/ready").await;
    assert_eq!(
        get(&egov_otp.url("/otp/health")).await,
        (200, json!({"status": "UP"}))
    );
    assert_eq!(
        post(&egov_otp.url("/otp/v1/_search"), &search_body())
            .await
            .0,
        200
    );
    let (status, answer) = post(&egov_otp.url("/otp/v1/_validate"), &validate_body()).await;
    assert_ne!(status, 404, "{answer}");
    assert_eq!(
        post(&egov_otp.url("/user-otp/v1/_send"), &send_body())
            .await
            .0,
        404
    );
    assert_eq!(get(&egov_otp.url("/user-otp/health")).await.0, 404);

    let own_port = free_port().to_string();
    let on_its_port =
        ServiceProcess::spawn(&stack, "otp-api", &[("USER_OTP_OTP_API_PORT", &own_port)]);
    let url = format!("http://127.0.0.1:{own_port}/otp/health/ready");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while reqwest::get(&url).await.map(|r| r.status().as_u16()).ok() != Some(200) {
        assert!(
            std::time::Instant::now() < deadline,
            "otp-api never served its own port"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        reqwest::get(on_its_port.url("/otp/health")).await.is_err(),
        "nothing listens on the HTTP port"
    );
}
