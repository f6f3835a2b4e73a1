//! `user-otp-bench`: the benchmark (`bench`) and fault drills (`drill`) of user-otp, against the
//! real local Kafka and PostgreSQL (`scripts/services up`), a release build of `user-otp` run as
//! separate processes, and the release fake egov-user started here (synthetic citizens `7…`).
//! Run through `scripts/bench` and `scripts/drill`. Every figure it prints is measured in that
//! run; nothing is a constant.

mod audit;
mod clean;
mod cpu;
mod drill;
mod env;
mod figures;
mod http_load;
mod kafka_io;
mod measure;
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
        /// Only these parts (comma-separated: worker, latency, http, growth); default all.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Fault drills, each ending with an audit line.
    Drill {
        /// kill-worker, kafka-restart, pg-restart, user-outage, fuzz, or all.
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
        } => {
            let mut sizes = Sizes::new(quick);
            if let Some(n) = requests {
                sizes.requests = n;
            }
            let part = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
            let parts = Parts {
                prefill,
                latency: part("latency"),
                http: part("http"),
                growth: part("growth") && !quick,
            };
            bench(&local, &user_host, quick, runs.max(1), &sizes, parts, json).await
        }
        Command::Drill { name, quick } => drill::run(&local, &user_host, &name, quick).await,
        Command::Clean => Ok(()),
    };
    drop(fake);
    result
}

/// Which parts of the benchmark run (the worker throughput always does).
struct Parts {
    prefill: u64,
    latency: bool,
    http: bool,
    growth: bool,
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
    for run in 1..=runs {
        eprintln!("round {run} of {runs}");
        let round = one_round(local, user_host, sizes, &parts).await?;
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

/// One round: worker throughput and its passthrough ceiling, latency, HTTP. Every stack it
/// creates is removed again.
async fn one_round(
    local: &Local,
    user_host: &str,
    sizes: &Sizes,
    parts: &Parts,
) -> anyhow::Result<report::Round> {
    let mut round = report::Round::new();
    eprintln!("  worker throughput: {} preloaded requests", sizes.requests);
    let run = measure::worker_throughput(
        local,
        user_host,
        sizes.requests,
        1,
        parts.prefill,
        measure::PARTITIONS,
    )
    .await
    .context("worker throughput")?;
    figures::worker(&mut round, &run);
    eprintln!("  passthrough ceiling on the same events");
    let to = env::unique("bench.passthrough");
    kafka_io::create_topics(&local.kafka, &[&to], measure::PARTITIONS).await?;
    let passthrough =
        kafka_io::passthrough(&local.kafka, &run.stack.request_topic, &to, sizes.requests).await?;
    kafka_io::delete_topics(&local.kafka, &[&to]).await?;
    figures::passthrough(&mut round, &passthrough);
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
        figures::latency(&mut round, &latency);
    }
    if parts.http {
        eprintln!("  HTTP: _send vs trivial handler, _validate");
        let http = http_load::run(&run.stack, sizes.http_seconds, sizes.http_concurrency).await?;
        figures::http(&mut round, &http);
    }
    run.stack.remove().await?;
    Ok(round)
}

/// Full runs only, once: 1 vs 2 worker processes, and throughput with codes already stored.
async fn growth(local: &Local, user_host: &str, sizes: &Sizes) -> anyhow::Result<report::Round> {
    let mut round = report::Round::new();
    let p = measure::PARTITIONS;
    eprintln!("growth: 1 vs 2 worker processes");
    let one = measure::worker_throughput(local, user_host, sizes.growth_requests, 1, 0, p).await?;
    one.stack.remove().await?;
    let two = measure::worker_throughput(local, user_host, sizes.growth_requests, 2, 0, p).await?;
    two.stack.remove().await?;
    figures::growth_workers(&mut round, one.rps, two.rps, two.peak_rss_mb);
    for rows in &sizes.growth_rows {
        eprintln!("growth: worker with {rows} codes already stored");
        let grown =
            measure::worker_throughput(local, user_host, sizes.growth_requests, 1, *rows, p)
                .await?;
        grown.stack.remove().await?;
        figures::growth_rows(&mut round, *rows, grown.rps, one.rps);
    }
    Ok(round)
}
