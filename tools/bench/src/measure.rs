//! The worker measurements: end-to-end throughput on preloaded requests, timed over the served
//! window ([`crate::window`]), and latency under a fixed offered load.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::json;

use crate::audit::{audit, Audit};
use crate::cgroup::{Cap, Cgroup, Throttling};
use crate::cpu::{self, Meter, Metered, Usage};
use crate::env::{unique, wait_until, Local, Service};
use crate::group;
use crate::kafka_io::{self, Event};
use crate::stack::Stack;
use crate::window::Window;

/// Partitions of the benchmark's request topic (DIGIT's topics have 3).
pub(crate) const PARTITIONS: i32 = 3;

/// Partitions of the request topic of `worker_rps_12` and of the per-pod scaling runs: enough
/// for 4 workers with 3 each (issue 10 compares 12 with 3).
pub(crate) const SCALE_PARTITIONS: i32 = 12;

/// `n` request events: even ones register a new number (`9…`, unknown to egov-user), odd ones
/// log in a known citizen (`7…`, the fake's synthetic users). Every one earns an SMS.
pub(crate) fn requests(n: usize, tag: &str) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let (mobile, otp_type) = if i % 2 == 0 {
                (format!("9{i:09}"), "register")
            } else {
                (format!("7{i:09}"), "login")
            };
            Event {
                key: format!("pb:{mobile}"),
                payload: json!({"RequestInfo": {"apiId": "bench"},
                    "otp": {"mobileNumber": mobile, "tenantId": "pb.amritsar", "type": otp_type}})
                .to_string()
                .into_bytes(),
                request_id: format!("{tag}-{i}"),
            }
        })
        .collect()
}

pub(crate) struct WorkerRun {
    pub stack: Stack,
    pub requests: usize,
    /// The served window, in s: from the timestamp of the first SMS event of these requests to
    /// that of the last one, over all worker processes. Both are producer-side `CreateTime`s
    /// that librdkafka stamps as the worker hands the event to its producer (the worker sets no
    /// timestamp of its own). Process start, group join and the first fetch are before the
    /// window (`startup_seconds`); everything after the first SMS, rebalances included, is in
    /// it.
    pub served_seconds: f64,
    /// Requests per second over the served window: (`requests` − 1) / `served_seconds` (the
    /// window spans requests − 1 intervals between the first and the last SMS; requests the
    /// audit finds lost are not counted). Comparable
    /// with [`kafka_io::Passthrough::rps`], timed the same way.
    pub rps: f64,
    /// From starting the processes to the first SMS event, in s.
    pub startup_seconds: f64,
    pub peak_rss_mb: f64,
    pub audit: Audit,
    /// CPU seconds per process over the run (worker processes summed as `worker`).
    pub cpu: Usage,
    /// How often the CFS throttled the capped workers (summed over their cgroups); `None`
    /// uncapped.
    pub throttling: Option<Throttling>,
}

/// What one worker throughput run is.
pub(crate) struct Setup<'a> {
    /// Requests written to the request topic (every one counted).
    pub requests: usize,
    /// Worker processes, all in one consumer group.
    pub workers: usize,
    /// Codes stored before the run.
    pub prefill: u64,
    /// Partitions of the request topic (at least `workers`).
    pub partitions: i32,
    /// Each worker in a cgroup of its own with this CPU cap.
    pub cap: Option<&'a Cap>,
    /// Write the requests once the workers' group has settled (every worker a member, every
    /// partition assigned) instead of before the workers start: no rebalance inside the served
    /// window. The per-pod scaling runs do (see the README, "Per-pod figures").
    pub settle_first: bool,
}

impl Setup<'_> {
    /// `requests` preloaded for `workers` uncapped workers on `partitions` partitions.
    pub(crate) fn preloaded(requests: usize, workers: usize, partitions: i32) -> Self {
        Self {
            requests,
            workers,
            prefill: 0,
            partitions,
            cap: None,
            settle_first: false,
        }
    }
}

/// How long to wait for every request's outcome: 60 s plus 5 ms per request (a run slower than
/// 200 req/s is broken, not slow), at most 20 minutes.
fn outcome_timeout(requests: usize) -> Duration {
    Duration::from_secs((60 + requests as u64 / 200).min(1200))
}

/// Writes `setup.requests` requests and starts `setup.workers` worker processes in one consumer
/// group (each with its own static group instance id, and each in a cgroup of its own capped at
/// `setup.cap` when given), in the order `setup.settle_first` says; then waits until every
/// request has its final outcome (on a timeout it warns and the audit counts the rest as lost).
/// `setup.prefill` rows are put in the code table first. Throughput is timed over the served
/// window (see [`WorkerRun`]) and counts the requests served.
pub(crate) async fn worker_throughput(
    local: &Local,
    user_host: &str,
    setup: &Setup<'_>,
) -> anyhow::Result<WorkerRun> {
    let (n, workers, prefill, cap) = (setup.requests, setup.workers, setup.prefill, setup.cap);
    let partitions = setup.partitions.max(workers as i32);
    let stack = Stack::create(local, user_host, partitions).await?;
    if prefill > 0 {
        prefill_codes(&stack, prefill).await?;
    }
    let events = requests(n, "tp");
    if !setup.settle_first {
        kafka_io::preload(&local.kafka, &stack.request_topic, &events).await?;
    }
    let mut env = stack.service_env(0);
    if prefill > 0 {
        // The purge runs through the measurement (rows past the retention are waiting).
        env.insert("USER_OTP_PURGE_INTERVAL_SECONDS".into(), "10".into());
    }
    let mut meter = Meter::start(&cpu::local_stack(&local.state_dir));
    let started_ms = now_ms();
    // Each process with its own cgroup (dropped, so removed, after the process is stopped).
    let mut processes: Vec<(Service, Option<Cgroup>)> = Vec::with_capacity(workers);
    for i in 0..workers {
        let name = format!("worker-{i}");
        let mut env = env.clone();
        // As a StatefulSet pod's name would: one static member per process.
        env.insert("USER_OTP_KAFKA_GROUP_INSTANCE_ID".into(), unique(&name));
        let process = Service::start(&name, &local.service_binary, &["worker"], &env)?;
        let cgroup = cap.map(|c| c.apply(&name, process.pid())).transpose()?;
        meter.add(Metered::process("worker", process.pid()));
        processes.push((process, cgroup));
    }
    if setup.settle_first {
        group::wait_settled(
            &local.kafka,
            &stack.group,
            workers,
            partitions as usize,
            Duration::from_secs(120),
        )
        .await?;
        kafka_io::preload(&local.kafka, &stack.request_topic, &events).await?;
    }
    let target = n as i64;
    let finished = wait_until("every request's outcome", outcome_timeout(n), || async {
        stack.final_outcomes().await.unwrap_or(0) >= target
    })
    .await;
    if let Err(error) = finished {
        eprintln!("WARNING: {error:#}; the audit counts the rest as lost");
    }
    let cpu = meter.read();
    let throttling = cap.map(|_| {
        processes
            .iter()
            .filter_map(|(_, cgroup)| cgroup.as_ref().map(Cgroup::throttling))
            .fold(Throttling::default(), Throttling::add)
    });
    let peak_rss_mb = processes
        .iter()
        .filter_map(|(process, _)| process.peak_rss_mb())
        .fold(0.0, f64::max);
    for (process, cgroup) in processes {
        process.stop(Duration::from_secs(20))?;
        drop(cgroup);
    }
    let ids: Vec<String> = events.into_iter().map(|e| e.request_id).collect();
    let audit = audit(&stack, &ids).await?;
    if prefill > 0 {
        // A large database left behind keeps autovacuum and checkpoints busy through the runs
        // that follow.
        stack.drop_database().await?;
    }
    let window = Window {
        first_ms: audit.first_sms_ms.unwrap_or(started_ms),
        last_ms: audit.last_sms_ms.unwrap_or(started_ms),
    };
    Ok(WorkerRun {
        stack,
        requests: n,
        served_seconds: window.seconds(),
        rps: window.rate(n.saturating_sub(audit.lost)),
        startup_seconds: (window.first_ms - started_ms) as f64 / 1000.0,
        peak_rss_mb,
        audit,
        cpu,
        throttling,
    })
}

/// Fills the store with `rows` expired, validated codes of other numbers, spread over the last
/// 23 hours (what the purge keeps of a steady rate of `rows` per day), plus a tenth more older
/// than the 24-hour retention, which the worker's purge (every 10 s in these runs) deletes
/// while the measurement runs; with their outcomes.
async fn prefill_codes(stack: &Stack, rows: u64) -> anyhow::Result<()> {
    let rows = i64::try_from(rows)?;
    let started = Instant::now();
    stack
        .db
        .execute(
            "INSERT INTO otp_code (id, request_id, tenant_id, identity, key_id, code_hash,
                                   created_at, expires_at, validated_at)
             SELECT gen_random_uuid(), 'prefill-' || g, 'pb', '8' || lpad(g::text, 9, '0'), 'k1',
                    sha256(g::text::bytea), at, at + interval '10 minutes', at
             FROM generate_series(1, $1::bigint + $1::bigint / 10) AS g,
                  LATERAL (SELECT CASE WHEN g > $1::bigint
                                       THEN now() - interval '25 hours'
                                       ELSE now() - make_interval(secs => (g % 82800)::double precision)
                                  END AS at) AS t
             ORDER BY at",
            &[&rows],
        )
        .await
        .context("prefilling otp_code")?;
    stack
        .db
        .batch_execute(
            "INSERT INTO otp_request_outcome (request_id, fingerprint, tenant_id, otp_type, outcome,
                                              code_id, source_topic, source_partition, source_offset,
                                              created_at)
                 SELECT request_id, substr(code_hash, 1, 16), tenant_id, 'register', 'sent', id,
                        'prefill', 0, 0, created_at
                 FROM otp_code",
        )
        .await
        .context("prefilling outcomes")?;
    // Settle the bulk load (visibility map, statistics) so autovacuum does not start on it in
    // the middle of the measurement. VACUUM refuses to run inside a multi-statement batch.
    for table in ["otp_code", "otp_request_outcome"] {
        stack
            .db
            .batch_execute(&format!("VACUUM ANALYZE {table}"))
            .await
            .with_context(|| format!("vacuuming {table}"))?;
    }
    eprintln!(
        "  prefilled {rows} codes in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(crate) struct Latency {
    pub requests: usize,
    /// What the generator actually offered over the measured window, per s (below the target
    /// rate when the load generator itself was starved of CPU).
    pub offered_rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub expired_sms: usize,
    /// CPU seconds per process over the measured window.
    pub cpu: Usage,
}

/// Offers `rate` requests per second to a running worker: `warmup_seconds` first (not
/// measured: the producer's and the worker's connections, pools and caches warm up), then
/// `seconds` measured. Latency is from each request event's timestamp (taken as it is produced)
/// to its SMS event's timestamp.
pub(crate) async fn latency(
    local: &Local,
    user_host: &str,
    rate: u32,
    warmup_seconds: u32,
    seconds: u32,
) -> anyhow::Result<Latency> {
    let stack = Stack::create(local, user_host, PARTITIONS).await?;
    let worker = Service::start(
        "worker",
        &local.service_binary,
        &["worker"],
        &stack.service_env(0),
    )?;
    // The worker has joined its group once a first request is served.
    let first = requests(1, "first");
    kafka_io::preload(&local.kafka, &stack.request_topic, &first).await?;
    wait_until(
        "the worker to serve a first request",
        Duration::from_secs(60),
        || async { stack.final_outcomes().await.unwrap_or(0) >= 1 },
    )
    .await?;

    let producer = kafka_io::producer(&local.kafka, 0)?;
    let warm = requests((rate * warmup_seconds) as usize, "warm");
    offer(&producer, &stack.request_topic, &warm, rate).await?;
    let total = (rate * seconds) as usize;
    let events = requests(total, "lat");
    let mut meter = Meter::start(&cpu::local_stack(&local.state_dir));
    meter.add(Metered::process("worker", worker.pid()));
    let offer_started = Instant::now();
    let sent_at = offer(&producer, &stack.request_topic, &events, rate).await?;
    let offered_rps = total as f64 / offer_started.elapsed().as_secs_f64();
    let target = (1 + warm.len() + total) as i64;
    wait_until(
        "every offered request's outcome",
        Duration::from_secs(600),
        || async { stack.final_outcomes().await.unwrap_or(0) >= target },
    )
    .await?;
    let cpu = meter.read();
    worker.stop(Duration::from_secs(20))?;

    let mut latencies = Vec::with_capacity(total);
    let mut expired_sms = 0;
    for record in kafka_io::read_all(&local.kafka, &stack.sms_topic).await? {
        let Some(sent) = record.request_id.as_ref().and_then(|id| sent_at.get(id)) else {
            continue;
        };
        latencies.push((record.timestamp_ms - sent) as f64);
        let expiry = serde_json::from_slice::<serde_json::Value>(&record.payload)
            .ok()
            .and_then(|v| v["expiryTime"].as_i64())
            .unwrap_or(0);
        if expiry <= record.timestamp_ms {
            expired_sms += 1;
        }
    }
    stack.remove().await?;
    latencies.sort_by(f64::total_cmp);
    Ok(Latency {
        requests: latencies.len(),
        offered_rps,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        expired_sms,
        cpu,
    })
}

/// Produces `events` at `rate` per second (a tick every 10 ms), each timestamped as it is
/// produced; waits for every acknowledgement. Returns each request id's timestamp (ms).
async fn offer(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    events: &[Event],
    rate: u32,
) -> anyhow::Result<HashMap<String, i64>> {
    let per_tick = (rate / 100).max(1) as usize;
    let mut ticks = tokio::time::interval(Duration::from_millis(10));
    let mut sent_at = HashMap::with_capacity(events.len());
    let mut deliveries = Vec::with_capacity(events.len());
    for chunk in events.chunks(per_tick) {
        ticks.tick().await;
        for event in chunk {
            let now = now_ms();
            deliveries.push(kafka_io::send(producer, topic, event, Some(now))?);
            sent_at.insert(event.request_id.clone(), now);
        }
    }
    for delivery in deliveries {
        kafka_io::acknowledged(delivery).await?;
    }
    Ok(sent_at)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
