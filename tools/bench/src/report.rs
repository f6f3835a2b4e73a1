//! The benchmark's figures: one JSON object (the `--json` file) and the same as a table.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::env::Local;
use crate::http_load::HttpRun;
use crate::measure::{Latency, WorkerRun};
use crate::stack;

pub(crate) struct Figures {
    values: Map<String, Value>,
}

fn round(value: f64, digits: i32) -> Value {
    let factor = 10f64.powi(digits);
    json!((value * factor).round() / factor)
}

impl Figures {
    pub(crate) async fn new(quick: bool, local: &Local) -> anyhow::Result<Self> {
        let mut values = Map::new();
        values.insert("mode".into(), json!(if quick { "quick" } else { "full" }));
        values.insert(
            "cores".into(),
            json!(std::thread::available_parallelism().map_or(0, usize::from)),
        );
        values.insert(
            "memory_gib".into(),
            json!(memory_gib().map(|g| (g * 10.0).round() / 10.0)),
        );
        values.insert("cpu".into(), json!(cpu_model()));
        values.insert(
            "kafka_version".into(),
            json!(std::env::var("KAFKA_VERSION").ok()),
        );
        values.insert(
            "librdkafka_version".into(),
            json!(rdkafka::util::get_rdkafka_version().1),
        );
        let pg = stack::connect(local, &local.pg_db).await?;
        let version: String = pg.query_one("SHOW server_version", &[]).await?.get(0);
        values.insert("postgres_version".into(), json!(version));
        values.insert(
            "rustc_version".into(),
            json!(command_output("rustc", &["--version"])),
        );
        Ok(Self { values })
    }

    fn set(&mut self, key: &str, value: Value) {
        self.values.insert(key.into(), value);
    }

    pub(crate) fn worker(&mut self, run: &WorkerRun) {
        self.set("requests", json!(run.requests));
        self.set("worker_seconds", round(run.seconds, 2));
        self.set("worker_rps", round(run.rps, 0));
        self.set("worker_peak_rss_mb", round(run.peak_rss_mb, 1));
        self.set("lost", json!(run.audit.lost));
        self.set("duplicate_sms", json!(run.audit.duplicate_sms));
        self.set("dead_lettered", json!(run.audit.dead_lettered));
        self.set("sms_events", json!(run.audit.sms));
    }

    pub(crate) fn passthrough(&mut self, rps: f64) {
        self.set("passthrough_rps", round(rps, 0));
        let worker = self
            .values
            .get("worker_rps")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        self.set("worker_vs_passthrough", round(worker / rps, 3));
    }

    pub(crate) fn latency(&mut self, latency: &Latency) {
        self.set("latency_offered_rps", json!(latency.offered_rps));
        self.set("latency_seconds", json!(latency.seconds));
        self.set("latency_requests", json!(latency.requests));
        self.set("p50_ms", round(latency.p50_ms, 1));
        self.set("p99_ms", round(latency.p99_ms, 1));
        self.set("max_ms", round(latency.max_ms, 1));
        self.set("expired_sms", json!(latency.expired_sms));
    }

    pub(crate) fn http(&mut self, http: &HttpRun) {
        self.set("shim_rps", round(http.shim.rps, 0));
        self.set("shim_failed", json!(http.shim.failed));
        self.set("trivial_rps", round(http.trivial.rps, 0));
        self.set(
            "shim_vs_trivial",
            round(http.shim.rps / http.trivial.rps, 3),
        );
        self.set("validate_gap_samples", json!(http.gap.samples));
        self.set(
            "validate_live_code_median_ms",
            round(http.gap.live_median_ms, 3),
        );
        self.set(
            "validate_no_code_median_ms",
            round(http.gap.none_median_ms, 3),
        );
        self.set(
            "validate_gap_ms",
            round(http.gap.live_median_ms - http.gap.none_median_ms, 3),
        );
        self.set("validate_rps", round(http.validate_right.rps, 0));
        self.set("validate_right_ok", json!(http.validate_right.ok));
        self.set("validate_right_failed", json!(http.validate_right.failed));
        self.set("validate_wrong_rps", round(http.validate_wrong.rps, 0));
        self.set("serve_peak_rss_mb", round(http.serve_peak_rss_mb, 1));
    }

    /// Throughput with `rows` codes stored, also relative to the empty-table run of the same
    /// size (`worker_rps_1_process`).
    pub(crate) fn growth_rows(&mut self, rows: u64, rps: f64) {
        self.set(&format!("worker_rps_with_{rows}_rows"), round(rps, 0));
        // With the purge keeping 24 h (USER_OTP_RETENTION_HOURS), a table of `rows` codes is
        // what a steady rate of rows / 86,400 requests per second keeps.
        self.set(
            &format!("worker_{rows}_rows_kept_by_req_per_s"),
            round(rows as f64 / 86_400.0, 1),
        );
        if let Some(empty) = self
            .values
            .get("worker_rps_1_process")
            .and_then(Value::as_f64)
        {
            self.set(
                &format!("worker_{rows}_rows_vs_empty"),
                round(rps / empty, 3),
            );
        }
    }

    pub(crate) fn growth_workers(&mut self, one: f64, two: f64, two_peak_rss_mb: f64) {
        self.set("worker_rps_1_process", round(one, 0));
        self.set("worker_rps_2_processes", round(two, 0));
        self.set("worker_2_processes_peak_rss_mb", round(two_peak_rss_mb, 1));
    }

    pub(crate) fn finish(&mut self, elapsed: Duration) {
        self.set("bench_seconds", round(elapsed.as_secs_f64(), 1));
    }

    pub(crate) fn print(&self) {
        println!("{:<34} value", "figure");
        for (key, value) in &self.values {
            println!("{key:<34} {value}");
        }
    }

    pub(crate) fn write_json(&self, path: &std::path::Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(&self.values)? + "\n")?;
        Ok(())
    }
}

fn memory_gib() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0 / 1024.0)
}

fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = cpuinfo.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
