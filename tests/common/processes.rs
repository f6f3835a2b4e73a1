//! The service binary run as separate processes (`user-otp serve`, `user-otp worker`) against
//! a test's stack, for tests of several instances working together. Each process is killed
//! when its handle is dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::stack::Stack;

/// The binary cargo built for this test run.
pub const BINARY: &str = env!("CARGO_BIN_EXE_user-otp");

/// One running service process.
pub struct ServiceProcess {
    child: Child,
    /// The HTTP port (roles serving HTTP).
    pub port: u16,
}

impl ServiceProcess {
    /// Starts `user-otp <role>` with the stack's settings, then `extra` (which win), on a free
    /// HTTP port.
    pub fn spawn(stack: &Stack, role: &str, extra: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = Command::new(BINARY);
        command
            .arg(role)
            .env_clear()
            .envs(stack.process_env())
            .env("USER_OTP_HTTP_PORT", port.to_string())
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().expect("spawn the service binary");
        Self { child, port }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until `GET path` answers 200 (at most 30 s).
    pub async fn wait_ready(&self, path: &str) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = client
                .get(self.url(path))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "{path} never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}
