//! What each measurement contributes to a round, by figure name (units in the name).

use crate::cpu::Usage;
use crate::http_load::{HttpRun, Load};
use crate::kafka_io::Passthrough;
use crate::measure::{Latency, WorkerRun};
use crate::report::Round;

fn set(round: &mut Round, name: &str, value: f64) {
    round.insert(name.to_owned(), value);
}

/// CPU µs per request of every metered process, and the box's busy share (%), as
/// `{prefix}_cpu_us_per_req_{process}` and `{prefix}_box_busy_pct`.
fn cpu(round: &mut Round, prefix: &str, usage: &Usage, requests: usize) {
    let requests = requests.max(1) as f64;
    for (name, seconds) in &usage.seconds {
        let key = format!("{prefix}_cpu_us_per_req_{name}");
        let value = round.get(&key).copied().unwrap_or(0.0) + seconds * 1e6 / requests;
        set(round, &key, value);
    }
    if let Some(busy) = usage.box_busy {
        set(round, &format!("{prefix}_box_busy_pct"), busy * 100.0);
    }
}

/// Throughput over the served window, start-up, memory, the audit, CPU per request.
pub(crate) fn worker(round: &mut Round, run: &WorkerRun) {
    set(round, "worker_requests", run.requests as f64);
    set(round, "worker_served_seconds", run.served_seconds);
    set(round, "worker_rps", run.rps);
    set(round, "worker_startup_seconds", run.startup_seconds);
    set(round, "worker_peak_rss_mb", run.peak_rss_mb);
    set(round, "lost", run.audit.lost as f64);
    set(round, "duplicate_sms", run.audit.duplicate_sms as f64);
    set(round, "dead_lettered", run.audit.dead_lettered as f64);
    cpu(round, "worker", &run.cpu, run.requests);
}

/// The passthrough ceiling and the worker's share of it (both over their served windows,
/// [`crate::window`]).
pub(crate) fn passthrough(round: &mut Round, passthrough: &Passthrough) {
    set(round, "passthrough_rps", passthrough.rps);
    set(round, "passthrough_events", passthrough.events as f64);
    set(
        round,
        "passthrough_served_seconds",
        passthrough.served_seconds,
    );
    if let Some(worker) = round.get("worker_rps").copied() {
        set(round, "worker_vs_passthrough", worker / passthrough.rps);
    }
}

/// Latency under a fixed offered load.
pub(crate) fn latency(round: &mut Round, latency: &Latency) {
    set(round, "latency_offered_rps", latency.offered_rps);
    set(round, "latency_requests", latency.requests as f64);
    set(round, "latency_p50_ms", latency.p50_ms);
    set(round, "latency_p99_ms", latency.p99_ms);
    set(round, "latency_max_ms", latency.max_ms);
    set(round, "expired_sms", latency.expired_sms as f64);
    cpu(round, "latency", &latency.cpu, latency.requests);
}

fn load(round: &mut Round, name: &str, load: &Load) {
    set(round, &format!("{name}_rps"), load.rps);
    set(round, &format!("{name}_failed"), load.failed as f64);
    set(
        round,
        &format!("{name}_server_cpu_us_per_req"),
        load.server_cpu_us_per_req,
    );
    set(
        round,
        &format!("{name}_generator_cores"),
        load.generator_cores,
    );
}

/// `_send` against the trivial handler, `_validate`, the enumeration gap, the server's memory.
pub(crate) fn http(round: &mut Round, http: &HttpRun) {
    load(round, "shim", &http.shim);
    load(round, "trivial", &http.trivial);
    set(round, "shim_vs_trivial", http.shim.rps / http.trivial.rps);
    load(round, "validate", &http.validate_right);
    set(round, "validate_right_ok", http.validate_right.ok as f64);
    load(round, "validate_wrong", &http.validate_wrong);
    set(
        round,
        "validate_live_code_median_ms",
        http.gap.live_median_ms,
    );
    set(round, "validate_no_code_median_ms", http.gap.none_median_ms);
    set(round, "validate_gap_samples", http.gap.samples as f64);
    set(
        round,
        "validate_gap_ms",
        http.gap.live_median_ms - http.gap.none_median_ms,
    );
    set(round, "serve_peak_rss_mb", http.serve_peak_rss_mb);
}

/// 1 vs 2 worker processes in one consumer group.
pub(crate) fn growth_workers(round: &mut Round, one: f64, two: f64, two_peak_rss_mb: f64) {
    set(round, "worker_rps_1_process", one);
    set(round, "worker_rps_2_processes", two);
    set(round, "worker_2_processes_peak_rss_mb", two_peak_rss_mb);
}

/// Throughput with `rows` codes stored, and relative to the empty-table run of the same size.
pub(crate) fn growth_rows(round: &mut Round, rows: u64, rps: f64, empty_rps: f64) {
    set(round, &format!("worker_rps_with_{rows}_rows"), rps);
    // With the purge keeping 24 h (USER_OTP_RETENTION_HOURS), a table of `rows` codes is what
    // a steady rate of rows / 86,400 requests per second keeps.
    set(
        round,
        &format!("worker_{rows}_rows_kept_by_req_per_s"),
        rows as f64 / 86_400.0,
    );
    set(
        round,
        &format!("worker_{rows}_rows_vs_empty"),
        rps / empty_rps,
    );
}
