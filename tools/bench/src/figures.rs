//! What each measurement contributes to a round, by figure name (units in the name).

use crate::cpu::Usage;
use crate::http_load::{HttpRun, Load, PodHttp};
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
        set(
            round,
            "worker_vs_passthrough",
            ratio(worker, passthrough.rps),
        );
    }
}

/// The same requests on a 12-partition request topic, and its throughput relative to the
/// 3-partition `worker_rps`.
pub(crate) fn worker_12(round: &mut Round, run: &WorkerRun) {
    set(round, "worker_rps_12", run.rps);
    set(round, "worker_12_served_seconds", run.served_seconds);
    set(round, "worker_12_startup_seconds", run.startup_seconds);
    set(round, "worker_12_lost", run.audit.lost as f64);
    set(
        round,
        "worker_12_duplicate_sms",
        run.audit.duplicate_sms as f64,
    );
    if let Some(three) = round.get("worker_rps").copied() {
        set(round, "worker_12_vs_3", ratio(run.rps, three));
    }
    cpu(round, "worker_12", &run.cpu, run.requests);
}

/// `numerator / denominator`, NaN (left out of the table) when the denominator is not positive.
fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        f64::NAN
    }
}

/// A capped worker run: `{name}_rps_{vcpu}` and its window, start-up, audit, throttling and CPU
/// per request (`{name}_{vcpu}_cpu_us_per_req_{process}`). Lost and duplicate requests of
/// every per-pod run add up in `pod_lost` and `pod_duplicate_sms`.
pub(crate) fn pod_worker(round: &mut Round, name: &str, vcpu: &str, run: &WorkerRun) {
    set(round, &format!("{name}_rps_{vcpu}"), run.rps);
    set(
        round,
        &format!("{name}_requests_{vcpu}"),
        run.requests as f64,
    );
    set(
        round,
        &format!("{name}_served_seconds_{vcpu}"),
        run.served_seconds,
    );
    set(
        round,
        &format!("{name}_startup_seconds_{vcpu}"),
        run.startup_seconds,
    );
    if let Some(pct) = run.throttling.and_then(|t| t.pct()) {
        set(round, &format!("{name}_throttled_pct_{vcpu}"), pct);
    }
    for (key, value) in [
        ("pod_lost", run.audit.lost),
        ("pod_duplicate_sms", run.audit.duplicate_sms),
    ] {
        let sum = round.get(key).copied().unwrap_or(0.0) + value as f64;
        set(round, key, sum);
    }
    cpu(round, &format!("{name}_{vcpu}"), &run.cpu, run.requests);
}

/// `pod_scaling_{k}x` = throughput of k capped workers / that of one, for each k measured
/// beyond 1 (`workers`), from the round's `pod_workers_{k}_rps_{vcpu}`.
pub(crate) fn pod_scaling(round: &mut Round, vcpu: &str, workers: &[usize]) {
    let rps = |k: usize| round.get(&format!("pod_workers_{k}_rps_{vcpu}")).copied();
    let Some(one) = rps(1) else {
        return;
    };
    let factors: Vec<(usize, f64)> = workers
        .iter()
        .filter(|&&k| k > 1)
        .filter_map(|&k| Some((k, ratio(rps(k)?, one))))
        .collect();
    for (k, factor) in factors {
        set(round, &format!("pod_scaling_{k}x"), factor);
    }
}

/// The capped `serve` process under the HTTP loads: `_send` and `_validate`.
pub(crate) fn pod_http(round: &mut Round, vcpu: &str, http: &PodHttp) {
    for (name, pod) in [("pod_send", &http.send), ("pod_validate", &http.validate)] {
        served(round, name, &format!("_{vcpu}"), &pod.load);
        if let Some(pct) = pod.throttled_pct {
            set(round, &format!("{name}_throttled_pct_{vcpu}"), pct);
        }
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

/// What an HTTP load's server answered: `{name}_rps{suffix}`, `_failed`, `_server_cpu_us_per_req`.
fn served(round: &mut Round, name: &str, suffix: &str, load: &Load) {
    set(round, &format!("{name}_rps{suffix}"), load.rps);
    set(round, &format!("{name}_failed{suffix}"), load.failed as f64);
    set(
        round,
        &format!("{name}_server_cpu_us_per_req{suffix}"),
        load.server_cpu_us_per_req,
    );
}

fn load(round: &mut Round, name: &str, load: &Load) {
    served(round, name, "", load);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_is_k_workers_over_one() {
        let mut round = Round::new();
        round.insert("pod_workers_1_rps_0.1".into(), 1_000.0);
        round.insert("pod_workers_2_rps_0.1".into(), 1_900.0);
        round.insert("pod_workers_4_rps_0.1".into(), 3_500.0);
        pod_scaling(&mut round, "0.1", &[1, 2, 4]);
        assert_eq!(round.get("pod_scaling_2x"), Some(&1.9));
        assert_eq!(round.get("pod_scaling_4x"), Some(&3.5));
        assert_eq!(round.get("pod_scaling_1x"), None);
    }

    #[test]
    fn scaling_needs_the_one_worker_run() {
        let mut round = Round::new();
        round.insert("pod_workers_2_rps_0.1".into(), 1_900.0);
        pod_scaling(&mut round, "0.1", &[1, 2]);
        assert_eq!(round.get("pod_scaling_2x"), None);
        round.insert("pod_workers_1_rps_0.1".into(), 0.0);
        pod_scaling(&mut round, "0.1", &[1, 2]);
        assert!(round.get("pod_scaling_2x").is_some_and(|v| v.is_nan()));
    }
}
