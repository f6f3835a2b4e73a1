//! The `user-otp` binary as an operator meets it: its roles, config errors that name the key,
//! and a graceful stop on SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_user-otp");

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(BINARY)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run user-otp")
}

#[test]
fn help_lists_every_role() {
    let output = run(&["--help"], &[]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for role in ["serve", "worker", "all", "otp-api", "migrate", "purge"] {
        assert!(text.contains(role), "--help lacks {role}: {text}");
    }
}

#[test]
fn an_invalid_value_exits_non_zero_with_one_line_naming_the_key() {
    let cases = [
        ("EGOV_OTP_LENGTH", "six"),
        ("SPRING_DATASOURCE_URL", "postgres.backbone:5432/devdb"),
        ("SERVER_PORT", "http"),
    ];
    for (key, value) in cases {
        let output = run(
            &["serve"],
            &[("USER_OTP_PROFILE", "development"), (key, value)],
        );
        assert_eq!(output.status.code(), Some(2), "{key}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(key), "{stderr}");
    }
}

#[test]
fn production_refuses_to_start_without_an_hmac_secret() {
    let output = run(&["serve"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("USER_OTP_HMAC_SECRET"), "{stderr}");
}

#[test]
fn serve_stops_gracefully_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut child = Command::new(BINARY)
        .arg("serve")
        .env_clear()
        .env("USER_OTP_PROFILE", "development")
        .env("USER_OTP_HTTP_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn production_refuses_test_numbers_unless_allowed_naming_the_key() {
    let base = [
        ("USER_OTP_HMAC_SECRET", "0123456789abcdef0123456789abcdef"),
        ("USER_OTP_TEST_NUMBERS", "9999999999:123456"),
    ];
    let output = run(&["serve"], &base);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("USER_OTP_TEST_NUMBERS"), "{stderr}");
    assert!(stderr.contains("USER_OTP_ALLOW_TEST_NUMBERS"), "{stderr}");
    assert!(
        !stderr.contains("123456"),
        "the code is not echoed: {stderr}"
    );
}
