//! Privacy of what the service leaves behind: with every log line captured at debug level, the
//! whole path (`_send` → worker → SMS → `_validate`) logs no code and no full mobile number,
//! and the database holds no plain code.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::stack::{code_in, Stack};
use common::*;
use serde_json::json;

/// A `MakeWriter` appending every log line to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_code_and_no_full_mobile_number_in_logs_or_database() {
    let captured = Captured::default();
    // The service's own filter, at debug level for everything it allows.
    tracing_subscriber::fmt()
        .with_env_filter(user_otp::telemetry::filter("debug"))
        .with_writer(captured.clone())
        .with_ansi(false)
        .try_init()
        .expect("the only subscriber in this test binary");

    let stack = Stack::start(&[]).await;
    stack
        .known_citizen("7012345678", "7012345678", Some("citizen@example.org"))
        .await;
    let worker = stack.spawn_worker();
    let mobile = "9123456780";
    let sent = stack
        .app
        .send(&json!({"otp": {"mobileNumber": mobile, "tenantId": "pb", "type": "register"}}))
        .await;
    assert_eq!(sent.status().as_u16(), 201);
    let login = stack
        .app
        .send(&json!({"otp": {"mobileNumber": "7012345678", "tenantId": "pb", "type": "login"}}))
        .await;
    assert_eq!(login.status().as_u16(), 201);
    let sms = read_events(&stack.topics.sms, 2).await;
    let sent: Vec<(String, String)> = sms
        .iter()
        .map(|m| {
            let value = payload_json(m);
            let to = value["mobileNumber"].as_str().expect("mobile").to_owned();
            (to, code_in(value["message"].as_str().expect("message")))
        })
        .collect();
    let wrong = if sent[0].1 == "000000" {
        "111111"
    } else {
        "000000"
    };
    assert_eq!(stack.validate(&sent[0].0, "pb", wrong).await.0, 400);
    for (to, code) in &sent {
        assert_eq!(stack.validate(to, "pb", code).await.0, 200);
    }
    let codes: Vec<String> = sent.into_iter().map(|(_, code)| code).collect();
    worker.stop().await;

    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
    assert!(
        logs.contains("OTP request queued"),
        "logs were captured: {logs}"
    );
    assert!(logs.contains("OTP validated"), "logs were captured");
    assert!(logs.contains("******6780"), "masked numbers are logged");
    for secret in [mobile, "7012345678", "citizen@example.org"] {
        let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "log lines contain {secret}: {leaks:#?}");
    }
    for code in &codes {
        // A code is 6 digits: look for it as a word, not inside a longer number or id.
        let as_word = logs
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| word == code);
        assert!(!as_word, "a log line contains the code {code}");
    }

    for table in ["otp_code", "otp_code_identity", "otp_request_outcome"] {
        let rows = stack
            .db
            .query(&format!("SELECT row_to_json(t)::text FROM {table} t"), &[])
            .await
            .expect("dump");
        assert!(!rows.is_empty() || table != "otp_code", "{table} has rows");
        for row in rows {
            let text: String = row.get(0);
            for code in &codes {
                assert!(
                    !text.contains(code.as_str()),
                    "{table} holds a plain code: {text}"
                );
            }
        }
    }
}
