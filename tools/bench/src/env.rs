//! The local stack the benchmark and drills run against (started by `scripts/services`), fresh
//! names per run, and the service processes they start and measure.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Addresses of the local services, from the same variables `scripts/services` reads.
#[derive(Debug, Clone)]
pub(crate) struct Local {
    pub kafka: String,
    pub pg_host: String,
    pub pg_port: u16,
    pub pg_user: String,
    pub pg_password: String,
    pub pg_db: String,
    /// The `user-otp` binary measured (`--service-binary`; default: the one built next to this
    /// benchmark), so one benchmark build can measure a before and an after.
    pub service_binary: PathBuf,
    /// `scripts/services`' state folder (pid files of PostgreSQL and Kafka, for CPU figures).
    pub state_dir: PathBuf,
}

impl Local {
    pub(crate) fn from_env() -> anyhow::Result<Self> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        Ok(Self {
            kafka: format!(
                "{}:{}",
                var("LOCAL_KAFKA_HOST", "127.0.0.1"),
                var("LOCAL_KAFKA_PORT", "9092")
            ),
            pg_host: "127.0.0.1".into(),
            pg_port: var("LOCAL_PG_PORT", "5433")
                .parse()
                .context("LOCAL_PG_PORT")?,
            pg_user: var("LOCAL_PG_USER", "user_otp"),
            pg_password: var("LOCAL_PG_PASSWORD", "user_otp"),
            pg_db: var("LOCAL_PG_DB", "user_otp"),
            service_binary: sibling_binary("user-otp")?,
            state_dir: crate::cpu::state_dir(),
        })
    }
}

/// A short random suffix for topic, group and database names.
pub(crate) fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..12])
}

/// A binary built next to this one (`target/release/<name>`).
pub(crate) fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("locating the bench binary")?;
    let path = me.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} not found: build it with cargo build --release",
            path.display()
        );
    }
    Ok(path)
}

/// glibc's `MALLOC_ARENA_MAX` for the service processes: the container image's value (`ENV
/// MALLOC_ARENA_MAX=2` in the Dockerfile), unless the caller's environment sets another.
pub(crate) fn service_malloc_arena_max() -> String {
    std::env::var("MALLOC_ARENA_MAX").unwrap_or_else(|_| "2".into())
}

/// A free TCP port on 127.0.0.1.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A child process that is killed when dropped.
pub(crate) struct Service {
    pub child: Child,
}

impl Service {
    pub(crate) fn start(
        name: &str,
        binary: &PathBuf,
        args: &[&str],
        env: &HashMap<String, String>,
    ) -> anyhow::Result<Self> {
        let child = Command::new(binary)
            .args(args)
            .envs(env)
            .env("MALLOC_ARENA_MAX", service_malloc_arena_max())
            .env(
                "RUST_LOG",
                std::env::var("BENCH_SERVICE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self { child })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory so far (VmHWM), in MB.
    pub(crate) fn peak_rss_mb(&self) -> Option<f64> {
        peak_rss_mb(self.pid())
    }

    /// SIGTERM, then wait (SIGKILL after `grace`).
    pub(crate) fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        signal(self.pid(), "-TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGKILL (a crash), and reap.
    pub(crate) fn crash(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// True if the process has exited (it crashed or stopped on its own).
    pub(crate) fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

pub(crate) fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Polls `probe` every 20 ms until it returns true or `timeout` passes.
pub(crate) async fn wait_until<F, Fut>(
    what: &str,
    timeout: Duration,
    mut probe: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !probe().await {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
