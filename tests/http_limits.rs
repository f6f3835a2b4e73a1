//! The HTTP server's bounds: slow or half-open connections are closed after the header-read
//! timeout, requests over the concurrency limit are shed with the legacy 503, and an unreachable
//! PostgreSQL answers 503 within about a second instead of queueing callers.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A test app writing to a fresh request topic, with extra settings.
async fn app_with(vars: &[(&str, &str)]) -> TestApp {
    let topic = unique_name("otp-request");
    create_topic(&topic).await;
    let mut all = vec![("USER_OTP_REQUEST_TOPIC", topic.as_str())];
    all.extend_from_slice(vars);
    TestApp::spawn(&settings(&all)).await
}

async fn valid_send(app: &TestApp) -> reqwest::Response {
    app.send(&json!({"otp": {"mobileNumber": "9840000000", "tenantId": "pb", "type": "register"}}))
        .await
}

/// True when the server closed `stream` (end of stream or reset) within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 512];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // hyper may answer 408 before closing; read on until the close.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn half_open_connections_are_closed_after_the_header_timeout_while_send_answers() {
    let app = app_with(&[("USER_OTP_HTTP_HEADER_READ_TIMEOUT_MS", "1000")]).await;
    let mut stalled = Vec::new();
    for i in 0..400 {
        let mut stream = TcpStream::connect(app.address).await.expect("connect");
        // Half a request (no blank line ends the head); half the connections send nothing.
        if i % 2 == 0 {
            stream
                .write_all(b"POST /user-otp/v1/_send HTTP/1.1\r\nHost: x\r\nContent-Ty")
                .await
                .expect("write");
        }
        stalled.push(stream);
    }
    let started = Instant::now();
    assert_eq!(
        valid_send(&app).await.status().as_u16(),
        201,
        "_send still answers"
    );
    let mut still_open = 0;
    for stream in &mut stalled {
        let left = Duration::from_secs(4).saturating_sub(started.elapsed());
        if !closed_within(stream, left).await {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open, 0,
        "connections still open 4 s after a 1 s header timeout"
    );
    assert_eq!(valid_send(&app).await.status().as_u16(), 201);
}

#[tokio::test]
async fn requests_over_the_concurrency_limit_are_shed_with_503() {
    let app = app_with(&[
        ("USER_OTP_HTTP_MAX_CONCURRENT_REQUESTS", "2"),
        ("USER_OTP_HTTP_REQUEST_TIMEOUT_MS", "1500"),
    ])
    .await;
    // Two requests whose bodies never come hold both permits.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(app.address).await.expect("connect");
        stream
            .write_all(
                b"POST /user-otp/v1/_send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
            )
            .await
            .expect("write");
        slow.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shed = valid_send(&app).await;
    assert_eq!(shed.status().as_u16(), 503);
    assert_eq!(
        shed.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = shed.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], 503);
    assert_eq!(body["error"]["message"], "Service unavailable");
    // Probes are never shed: a flood of slow requests cannot get a pod restarted.
    for probe in ["/user-otp/health", "/otp/health", "/otp/health/ready"] {
        assert_eq!(app.get(probe).await.status().as_u16(), 200, "{probe}");
    }
    // The slow ones time out (503 too) and free their permits.
    for stream in &mut slow {
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
            .await
            .expect("answered within the request timeout")
            .expect("read");
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    }
    assert_eq!(valid_send(&app).await.status().as_u16(), 201);
}

#[tokio::test]
async fn an_unreachable_database_answers_503_within_about_a_second() {
    // A "database" that accepts connections and never answers.
    let blackhole = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = blackhole.local_addr().expect("address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = blackhole.accept().await {
            held.push(stream);
        }
    });
    let url = format!("jdbc:postgresql://{address}/user_otp");
    let app = app_with(&[("USER_OTP_DATABASE_URL", &url)]).await;
    let started = Instant::now();
    let calls = (0..20).map(|_| {
        app.client
            .post(app.url("/otp/v1/_validate"))
            .json(&json!({"otp": {"otp": "123456", "identity": "9840000000", "tenantId": "pb"}}))
            .send()
    });
    for answer in futures::future::join_all(calls).await {
        let answer = answer.expect("answered");
        assert_eq!(answer.status().as_u16(), 503);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_millis(3_000), "took {took:?}");
}
