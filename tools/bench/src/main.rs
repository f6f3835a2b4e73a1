//! `user-otp-bench`: the benchmark (`bench`) and fault drills (`drill`) of user-otp, against the
//! real local Kafka and PostgreSQL (`scripts/services up`), a release build of `user-otp` run as
//! separate processes, and the release fake egov-user started here (synthetic citizens `7…`).
//! Run through `scripts/bench` and `scripts/drill`. Every figure it prints is measured in that
//! run; nothing is a constant.

mod audit;
mod cgroup;
mod clean;
mod cpu;
mod drill;
mod env;
mod figures;
mod group;
mod http_load;
mod kafka_io;
mod measure;
mod pod;
mod report;
mod stack;
mod window;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};

use env::{free_port, sibling_binary, wait_until, Local, Service};

#[derive(Parser)]
#[command(name = "user-otp-bench")]
struct Cli {
    /// The user-otp binary to measure (default: the one built next to this benchmark). With a
    /// binary built from another commit, one benchmark build measures a before and an after.
    #[arg(long, global = true)]
    service_binary: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Throughput, latency, HTTP, memory and growth figures, each the median of `--runs`
    /// rounds with its range.
    Bench {
        /// Smaller sizes: the whole run takes a few minutes.
        #[arg(long)]
        quick: bool,
        /// Rounds of every measurement (default 3).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Also write the figures as one JSON object to this file.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// Preloaded requests for the worker throughput run (default: 40,000 quick, 100,000 full).
        #[arg(long)]
        requests: Option<usize>,
        /// Codes already stored before the worker throughput run (default 0).
        #[arg(long, default_value_t = 0)]
        prefill: u64,
        /// Only these parts (comma-separated: worker, latency, http, growth, per-pod); default
        /// all. The worker part runs with every part but per-pod (latency and HTTP use its
        /// stack); `--only per-pod` runs the per-pod part alone.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// CPU limit of the per-pod part's single worker and `serve` process, in vCPU (a CFS
        /// quota of vCPU × 100,000 µs per 100,000 µs).
        #[arg(long, default_value_t = 0.2)]
        pod_vcpu: f64,
        /// CPU limit of each worker of the per-pod scaling runs (1, 2, 4 workers), in vCPU.
        #[arg(long, default_value_t = 0.1)]
        pod_scale_vcpu: f64,
        /// Preloaded requests of the per-pod single worker (default: 10,000 quick, 30,000 full).
        #[arg(long)]
        pod_requests: Option<usize>,
        /// Requests per worker of the per-pod scaling runs, k workers getting k times as many
        /// (default: 5,000 quick, 12,000 full).
        #[arg(long)]
        pod_scale_requests: Option<usize>,
    },
    /// Fault drills, each ending with an audit line.
    Drill {
        /// kill-worker, kill-worker-dynamic, kafka-restart, pg-restart, user-outage, fuzz, or all.
        name: String,
        #[arg(long)]
        quick: bool,
    },
    /// Deletes what earlier benchmark and test runs left on the local broker and PostgreSQL
    /// (topics and databases named as the benchmark and the integration tests name theirs).
    Clean,
}

/// Sizes of one benchmark run.
pub(crate) struct Sizes {
    pub requests: usize,
    pub latency_rate: u32,
    pub latency_warmup_seconds: u32,
    pub latency_seconds: u32,
    pub http_seconds: u64,
    pub http_concurrency: usize,
    pub growth_rows: Vec<u64>,
    pub growth_requests: usize,
    /// Preloaded requests of the per-pod single worker, sized by time: about 3 s quick, 10 s
    /// full at the ~3,000 req/s a worker did at 0.2 vCPU on this 2-core box.
    pub pod_requests: usize,
    /// Requests per worker of the per-pod scaling runs (k workers get k times as many), sized
    /// by time: about 4 s quick, 10 s full at the ~1,200 req/s a worker did at 0.1 vCPU here.
    pub pod_scale_requests: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                requests: 40_000,
                latency_rate: 2_000,
                latency_warmup_seconds: 2,
                latency_seconds: 10,
                http_seconds: 3,
                http_concurrency: 64,
                growth_rows: Vec::new(),
                growth_requests: 0,
                pod_requests: 10_000,
                pod_scale_requests: 5_000,
            }
        } else {
            Self {
                requests: 100_000,
                latency_rate: 2_000,
                latency_warmup_seconds: 5,
                latency_seconds: 30,
                http_seconds: 10,
                http_concurrency: 64,
                growth_rows: vec![1_000_000, 10_000_000],
                growth_requests: 50_000,
                pod_requests: 30_000,
                pod_scale_requests: 12_000,
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut local = Local::from_env()?;
    if let Some(binary) = cli.service_binary {
        local.service_binary = binary;
    }
    if matches!(cli.command, Command::Clean) {
        return clean::run(&local).await;
    }
    let user_port = free_port()?;
    let fake = Service::start(
        "fake-egov-user",
        &sibling_binary("fake-egov-user")?,
        &[
            "--port",
            &user_port.to_string(),
            "--users",
            "dev/fake-egov-users.json",
            "--synthetic-citizens-prefix",
            "7",
        ],
        &Default::default(),
    )?;
    let user_host = format!("http://127.0.0.1:{user_port}");
    let probe = reqwest::Client::new();
    wait_until("the fake egov-user", Duration::from_secs(30), || async {
        probe
            .post(format!("{user_host}/user/_search"))
            .json(&serde_json::json!({"tenantId": "pb", "userName": "0"}))
            .send()
            .await
            .is_ok()
    })
    .await?;
    let result = match cli.command {
        Command::Bench {
            quick,
            runs,
            json,
            requests,
            prefill,
            only,
            pod_vcpu,
            pod_scale_vcpu,
            pod_requests,
            pod_scale_requests,
        } => {
            let mut sizes = Sizes::new(quick);
            if let Some(n) = requests {
                sizes.requests = n;
            }
            if let Some(n) = pod_requests {
                sizes.pod_requests = n;
            }
            if let Some(n) = pod_scale_requests {
                sizes.pod_scale_requests = n;
            }
            let pods = PodCaps {
                vcpu: pod_vcpu,
                scale_vcpu: pod_scale_vcpu,
            };
            match Parts::new(&only, quick, prefill, pods) {
                Ok(parts) => {
                    bench(&local, &user_host, quick, runs.max(1), &sizes, parts, json).await
                }
                Err(error) => Err(error),
            }
        }
        Command::Drill { name, quick } => drill::run(&local, &user_host, &name, quick).await,
        Command::Clean => Ok(()),
    };
    drop(fake);
    result
}

/// The part names `--only` takes.
const PART_NAMES: [&str; 5] = ["worker", "latency", "http", "growth", "per-pod"];

/// Which parts of the benchmark run.
struct Parts {
    prefill: u64,
    /// Worker throughput (3 and 12 partitions) and its passthrough ceiling: with every part but
    /// per-pod alone (latency and HTTP need its stack).
    worker: bool,
    latency: bool,
    http: bool,
    growth: bool,
    /// The per-pod part's caps, when it runs.
    per_pod: Option<PodCaps>,
}

impl Parts {
    /// The parts `--only` names (all when empty; growth only in full runs).
    ///
    /// # Errors
    /// On a name that is not a part.
    fn new(only: &[String], quick: bool, prefill: u64, pods: PodCaps) -> anyhow::Result<Self> {
        if let Some(unknown) = only.iter().find(|o| !PART_NAMES.contains(&o.as_str())) {
            anyhow::bail!(
                "--only: no part {unknown:?} (parts: {})",
                PART_NAMES.join(", ")
            );
        }
        let part = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
        Ok(Self {
            prefill,
            worker: only.is_empty() || only.iter().any(|o| o != "per-pod"),
            latency: part("latency"),
            http: part("http"),
            growth: part("growth") && !quick,
            per_pod: part("per-pod").then_some(pods),
        })
    }
}

/// The per-pod part's CPU limits, in vCPU (`--pod-vcpu`, `--pod-scale-vcpu`).
struct PodCaps {
    vcpu: f64,
    scale_vcpu: f64,
}

/// The per-pod part's plan, when it runs and this machine has a writable cpu controller; the
/// cgroup version and quotas are noted in the environment either way.
fn pod_plan(
    parts: &Parts,
    sizes: &Sizes,
    figures: &mut report::Figures,
) -> anyhow::Result<Option<pod::Plan>> {
    let Some(caps) = &parts.per_pod else {
        return Ok(None);
    };
    let (quota, scale_quota) = (
        cgroup::Quota::from_vcpu(caps.vcpu).context("--pod-vcpu")?,
        cgroup::Quota::from_vcpu(caps.scale_vcpu).context("--pod-scale-vcpu")?,
    );
    let controller = match cgroup::Controller::find() {
        Ok(controller) => controller,
        Err(reason) => {
            eprintln!("per-pod part skipped: no writable cpu controller ({reason})");
            figures.note("cgroup", serde_json::json!(format!("none: {reason}")));
            return Ok(None);
        }
    };
    figures.note(
        "cgroup_version",
        serde_json::json!(controller.version.label()),
    );
    figures.note(
        "cgroup_parent",
        serde_json::json!(controller.mount.join(cgroup::PARENT).display().to_string()),
    );
    figures.note("pod_cpu_quota", serde_json::json!(quota.describe()));
    figures.note(
        "pod_scale_cpu_quota",
        serde_json::json!(scale_quota.describe()),
    );
    figures.note("pod_requests", serde_json::json!(sizes.pod_requests));
    figures.note(
        "pod_scale_requests_per_worker",
        serde_json::json!(sizes.pod_scale_requests),
    );
    Ok(Some(pod::Plan {
        cap: cgroup::Cap {
            controller: controller.clone(),
            quota,
        },
        scale_cap: cgroup::Cap {
            controller,
            quota: scale_quota,
        },
        worker_requests: sizes.pod_requests,
        scale_requests_per_worker: sizes.pod_scale_requests,
        http_seconds: sizes.http_seconds,
        http_concurrency: sizes.http_concurrency,
    }))
}

async fn bench(
    local: &Local,
    user_host: &str,
    quick: bool,
    runs: usize,
    sizes: &Sizes,
    parts: Parts,
    json: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut figures = report::Figures::new(quick, local).await?;
    clean::broker_state(local, &mut figures).await?;
    let plan = pod_plan(&parts, sizes, &mut figures)?;
    for run in 1..=runs {
        eprintln!("round {run} of {runs}");
        let round = one_round(local, user_host, sizes, &parts, plan.as_ref()).await?;
        figures.push(round);
    }
    if parts.growth {
        figures.push(growth(local, user_host, sizes).await?);
    }
    figures.note(
        "bench_seconds",
        serde_json::json!(started.elapsed().as_secs()),
    );
    figures.print();
    if let Some(path) = json {
        figures.write_json(&path)?;
    }
    Ok(())
}

/// One round: worker throughput (3 and 12 partitions) and its passthrough ceiling, latency,
/// HTTP, the per-pod part. Every stack it creates is removed again.
async fn one_round(
    local: &Local,
    user_host: &str,
    sizes: &Sizes,
    parts: &Parts,
    pods: Option<&pod::Plan>,
) -> anyhow::Result<report::Round> {
    let mut round = report::Round::new();
    if parts.worker {
        worker_part(local, user_host, sizes, parts, &mut round).await?;
    }
    if let Some(plan) = pods {
        pod::run(local, user_host, plan, &mut round).await?;
    }
    Ok(round)
}

/// Worker throughput on 3 partitions, its passthrough ceiling, the same on 12 partitions; then
/// latency and HTTP (on the 3-partition run's stack) when they run.
async fn worker_part(
    local: &Local,
    user_host: &str,
    sizes: &Sizes,
    parts: &Parts,
    round: &mut report::Round,
) -> anyhow::Result<()> {
    eprintln!("  worker throughput: {} preloaded requests", sizes.requests);
    let setup = measure::Setup {
        prefill: parts.prefill,
        ..measure::Setup::preloaded(sizes.requests, 1, measure::PARTITIONS)
    };
    let run = measure::worker_throughput(local, user_host, &setup)
        .await
        .context("worker throughput")?;
    figures::worker(round, &run);
    eprintln!("  passthrough ceiling on the same events");
    let to = env::unique("bench.passthrough");
    kafka_io::create_topics(&local.kafka, &[&to], measure::PARTITIONS).await?;
    let passthrough =
        kafka_io::passthrough(&local.kafka, &run.stack.request_topic, &to, sizes.requests).await?;
    kafka_io::delete_topics(&local.kafka, &[&to]).await?;
    figures::passthrough(round, &passthrough);
    eprintln!(
        "  worker throughput: {} preloaded requests, {} partitions",
        sizes.requests,
        measure::SCALE_PARTITIONS
    );
    let setup = measure::Setup {
        partitions: measure::SCALE_PARTITIONS,
        ..setup
    };
    let twelve = measure::worker_throughput(local, user_host, &setup)
        .await
        .context("worker throughput on 12 partitions")?;
    twelve.stack.remove().await?;
    figures::worker_12(round, &twelve);
    if parts.latency {
        eprintln!(
            "  latency: {} req/s, {} s warm-up, {} s measured",
            sizes.latency_rate, sizes.latency_warmup_seconds, sizes.latency_seconds
        );
        let latency = measure::latency(
            local,
            user_host,
            sizes.latency_rate,
            sizes.latency_warmup_seconds,
            sizes.latency_seconds,
        )
        .await?;
        figures::latency(round, &latency);
    }
    if parts.http {
        eprintln!("  HTTP: _send vs trivial handler, _validate");
        let http = http_load::run(&run.stack, sizes.http_seconds, sizes.http_concurrency).await?;
        figures::http(round, &http);
    }
    run.stack.remove().await?;
    Ok(())
}

/// Full runs only, once: 1 vs 2 worker processes, and throughput with codes already stored.
async fn growth(local: &Local, user_host: &str, sizes: &Sizes) -> anyhow::Result<report::Round> {
    let mut round = report::Round::new();
    use measure::Setup;
    let (n, p) = (sizes.growth_requests, measure::PARTITIONS);
    eprintln!("growth: 1 vs 2 worker processes");
    let one = measure::worker_throughput(local, user_host, &Setup::preloaded(n, 1, p)).await?;
    one.stack.remove().await?;
    let two = measure::worker_throughput(local, user_host, &Setup::preloaded(n, 2, p)).await?;
    two.stack.remove().await?;
    figures::growth_workers(&mut round, one.rps, two.rps, two.peak_rss_mb);
    for rows in &sizes.growth_rows {
        eprintln!("growth: worker with {rows} codes already stored");
        let grown = measure::worker_throughput(
            local,
            user_host,
            &Setup {
                prefill: *rows,
                ..Setup::preloaded(n, 1, p)
            },
        )
        .await?;
        grown.stack.remove().await?;
        figures::growth_rows(&mut round, *rows, grown.rps, one.rps);
    }
    Ok(round)
}
