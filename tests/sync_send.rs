//! `_send`'s sync mode (`USER_OTP_SEND_MODE=sync`, contract §1 "Outcome errors"): the shim waits
//! for the request's outcome on the outcome topic and answers the Java service's error for it,
//! or 201. Run as two shim and two worker processes of the real binary, so the outcome has to
//! travel through Kafka to whichever shim took the request. The async default is unchanged.

mod common;

use std::time::Instant;

use common::processes::ServiceProcess;
use common::stack::Stack;
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, ResponseTemplate};

/// The sync shims' wait: long enough for a worker that is still joining its group, and the
/// bound every outcome-based answer must beat.
const WAIT_MS: u64 = 8_000;

/// The Java service's outcome error body, byte for byte.
fn outcome_error(message: &str, code: &str, field_message: &str) -> String {
    format!(
        r#"{{"responseInfo":null,"error":{{"code":400,"message":"{message}","description":null,"fields":[{{"code":"{code}","message":"{field_message}","field":"otp.mobileNumber"}}]}}}}"#
    )
}

fn body(mobile: &str, otp_type: &str) -> Value {
    json!({"RequestInfo": {"apiId": "Rainmaker"},
           "otp": {"mobileNumber": mobile, "tenantId": "pb.amritsar", "type": otp_type}})
}

/// POSTs a `_send` with `X-Request-Id: id` to `shim`; the status, the body and how long it took.
async fn send(shim: &ServiceProcess, mobile: &str, otp_type: &str, id: &str) -> (u16, String, u64) {
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(shim.url("/user-otp/v1/_send"))
        .header("X-Request-Id", id)
        .json(&body(mobile, otp_type))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    (status, text, took)
}

/// Two sync shims and two workers on `stack`, once every partition of the request topic is
/// served (twelve warm-up requests, spread over the partitions by their keys, reach an outcome).
async fn two_and_two(stack: &Stack) -> (Vec<ServiceProcess>, Vec<ServiceProcess>) {
    let wait = WAIT_MS.to_string();
    let shim_env = [
        ("USER_OTP_SEND_MODE", "sync"),
        ("USER_OTP_SYNC_WAIT_MS", wait.as_str()),
    ];
    let worker_env = [("USER_OTP_SEND_COOLDOWN_SECONDS", "60")];
    let shims: Vec<ServiceProcess> = (0..2)
        .map(|_| ServiceProcess::spawn(stack, "serve", &shim_env))
        .collect();
    let workers: Vec<ServiceProcess> = (0..2)
        .map(|_| ServiceProcess::spawn(stack, "worker", &worker_env))
        .collect();
    for shim in &shims {
        shim.wait_ready("/user-otp/health/ready").await;
    }
    for i in 0..12 {
        stack
            .produce_request(&format!("80000000{i:02}"), "register", &format!("warm-{i}"))
            .await;
    }
    for i in 0..12 {
        assert_eq!(stack.final_outcome(&format!("warm-{i}")).await, "sent");
    }
    (shims, workers)
}

#[tokio::test]
async fn sync_mode_answers_each_java_outcome_error_through_any_shim_and_201_for_the_rest() {
    let stack = Stack::start(&[]).await;
    stack.known_citizen("9000000001", "9000000001", None).await;
    Mock::given(method("POST"))
        .and(path("/user/_search"))
        .and(body_partial_json(json!({"userName": "9000000004"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"user": [{
            "id": 4, "uuid": "u-4", "userName": "9000000004", "mobileNumber": null,
            "tenantId": "pb", "type": "CITIZEN"}]})))
        .with_priority(1)
        .mount(&stack.users)
        .await;
    let (shims, _workers) = two_and_two(&stack).await;

    let ready: Value = reqwest::get(shims[0].url("/user-otp/health/ready"))
        .await
        .expect("ready")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["outcomes"], "UP", "{ready}");

    let cases = [
        (&shims[0], "9000000001", "register", "s-register-exists",
         outcome_error("OTP request for register failed", "OTP.MOBILENUMBER",
                       "This MobileNumber Already Register as UserName in System. Pls try Another UserName")),
        (&shims[1], "9000000003", "passwordreset", "s-reset-unknown",
         outcome_error("OTP request for password reset failed", "OTP.UNKNOWN_MOBILE_NUMBER",
                       "Mobile number is unknown.")),
        (&shims[0], "9000000004", "passwordreset", "s-reset-no-mobile",
         outcome_error("OTP request for password reset failed", "OTP.MOBILE_NUMBER",
                       "MobileNumber Not Found For This User.")),
    ];
    for (shim, mobile, otp_type, id, expected) in cases {
        let (status, text, took) = send(shim, mobile, otp_type, id).await;
        assert_eq!((status, text.as_str()), (400, expected.as_str()), "{id}");
        assert!(
            took < WAIT_MS,
            "{id} answered from its outcome, in {took} ms"
        );
    }

    // The citizen web UI: login for a new citizen fails with OTP.UNKNOWN_CREDENTIAL, the UI
    // switches to registration, and the registration's code arrives by SMS.
    let (status, text, _) = send(&shims[1], "9000000002", "login", "s-login-new").await;
    assert_eq!(
        (status, text.as_str()),
        (
            400,
            outcome_error(
                "OTP request for login failed",
                "OTP.UNKNOWN_CREDENTIAL",
                "No such username or password"
            )
            .as_str()
        )
    );
    let (status, text, took) = send(&shims[0], "9000000002", "register", "s-register-new").await;
    assert_eq!(status, 201, "{text}");
    assert!(took < WAIT_MS, "201 from the sent outcome, in {took} ms");
    stack.sms_for("s-register-new").await;

    // A known citizen's login: 201 once sent; the same again within the cooldown: rate
    // limited, which DIGIT has no error for: 201.
    let (status, _, took) = send(&shims[1], "9000000001", "login", "s-login-known").await;
    assert_eq!(status, 201);
    assert!(took < WAIT_MS);
    // The outcome event goes out before the worker marks the SMS sent in the database, so the
    // row may still say sms_pending for a moment after the 201.
    assert_eq!(stack.final_outcome("s-login-known").await, "sent");
    let (status, _, took) = send(&shims[0], "9000000001", "login", "s-login-again").await;
    assert_eq!(status, 201);
    assert!(took < WAIT_MS);
    assert_eq!(
        stack.outcome_now("s-login-again").await.as_deref(),
        Some("rate_limited")
    );

    // Two different requests under one caller request id, at once, through both shims: each
    // gets its own answer (the reply token, not the request id, finds the waiter).
    let (first, second) = tokio::join!(
        send(&shims[0], "9000000005", "login", "s-shared"),
        send(&shims[1], "9000000001", "register", "s-shared"),
    );
    assert_eq!(first.0, 400);
    assert!(first.1.contains("OTP.UNKNOWN_CREDENTIAL"), "{}", first.1);
    assert_eq!(second.0, 400);
    assert!(second.1.contains("OTP.MOBILENUMBER"), "{}", second.1);
}

#[tokio::test]
async fn sync_mode_answers_201_when_the_outcome_does_not_come_within_the_wait() {
    let stack = Stack::start(&[]).await;
    let (_shims, _workers) = two_and_two(&stack).await;
    let short = ServiceProcess::spawn(
        &stack,
        "serve",
        &[
            ("USER_OTP_SEND_MODE", "sync"),
            ("USER_OTP_SYNC_WAIT_MS", "1000"),
        ],
    );
    short.wait_ready("/user-otp/health/ready").await;
    stack.users_hang_for("9000000006").await;
    let (status, text, took) = send(&short, "9000000006", "login", "s-slow").await;
    assert_eq!(status, 201, "{text}");
    assert!(
        (1_000..WAIT_MS).contains(&took),
        "answered after the 1 s wait: {took} ms"
    );
    assert_eq!(
        stack.outcome_now("s-slow").await,
        None,
        "still being served"
    );
}

#[tokio::test]
async fn async_mode_answers_201_whatever_the_outcome() {
    let stack = Stack::start(&[]).await;
    stack.known_citizen("9000000001", "9000000001", None).await;
    let worker = stack.spawn_worker();
    for (mobile, otp_type, id, outcome) in [
        ("9000000001", "register", "a-register-exists", "user_exists"),
        ("9000000002", "login", "a-login-unknown", "unknown_user"),
        (
            "9000000003",
            "passwordreset",
            "a-reset-unknown",
            "unknown_user",
        ),
    ] {
        let response = stack
            .app
            .client
            .post(stack.app.url("/user-otp/v1/_send"))
            .header("X-Request-Id", id)
            .json(&body(mobile, otp_type))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 201, "{id}");
        assert_eq!(stack.final_outcome(id).await, outcome, "{id}");
    }
    let ready: Value = stack
        .app
        .get("/user-otp/health/ready")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        ready.get("outcomes"),
        None,
        "no outcome listener in async mode"
    );
    worker.stop().await;
}
