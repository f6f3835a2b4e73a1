//! HTTP load: `_send` against a trivial handler of the same server, and `_validate`.
//! A closed-loop generator: `concurrency` tasks, each sending its next request as soon as the
//! previous answer arrived, for a fixed time, over kept-alive connections. The first
//! [`WARMUP`] of each load is not counted (connections are opened, pools filled).
//!
//! The generator runs on the same 2 cores as the server: each load reports the server's CPU
//! time per answered request, which does not depend on how fast the generator is.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cgroup::{Cap, Cgroup};
use crate::cpu::{Meter, Metered};
use crate::env::{free_port, wait_until, Service};
use crate::kafka_io;
use crate::stack::Stack;

/// Time at the start of each load that is not counted.
const WARMUP: Duration = Duration::from_millis(500);

pub(crate) struct Load {
    pub rps: f64,
    pub ok: u64,
    pub failed: u64,
    /// The server process's CPU time per answered request, in µs.
    pub server_cpu_us_per_req: f64,
    /// Share of the box's CPU the load generator (this process) used, 0..=cores.
    pub generator_cores: f64,
}

/// What one request of a load is.
#[derive(Clone, Copy)]
enum Kind {
    Send,
    Health,
    ValidateRight,
    ValidateWrong,
}

/// `_validate` with a wrong code, for numbers with a live code and for numbers without any:
/// interleaved one at a time, medians in ms (the enumeration guard of issue 9).
pub(crate) struct ValidateGap {
    pub samples: usize,
    pub live_median_ms: f64,
    pub none_median_ms: f64,
}

pub(crate) struct HttpRun {
    pub gap: ValidateGap,
    pub shim: Load,
    pub trivial: Load,
    pub validate_right: Load,
    pub validate_wrong: Load,
    pub serve_peak_rss_mb: f64,
}

/// `user-otp serve` running on a stack, answering on `base`.
struct Serve {
    process: Service,
    base: String,
    client: reqwest::Client,
}

/// Starts `user-otp serve` on `stack` (in a cgroup of its own when `cap` is given) and waits
/// until it answers. The cgroup is returned apart: drop it after the process is stopped.
async fn start_serve(
    stack: &Stack,
    concurrency: usize,
    cap: Option<&Cap>,
) -> anyhow::Result<(Serve, Option<Cgroup>)> {
    let port = free_port()?;
    let process = Service::start(
        "serve",
        &stack.local.service_binary,
        &["serve"],
        &stack.service_env(port),
    )?;
    let cgroup = cap.map(|c| c.apply("serve", process.pid())).transpose()?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let health = format!("{base}/user-otp/health");
    wait_until("serve to answer", Duration::from_secs(60), || async {
        client.get(&health).send().await.is_ok()
    })
    .await?;
    Ok((
        Serve {
            process,
            base,
            client,
        },
        cgroup,
    ))
}

/// Starts `user-otp serve` on `stack` and measures `_send`, the liveness handler, and
/// `_validate` with the codes of the SMS events already on the stack's SMS topic.
pub(crate) async fn run(
    stack: &Stack,
    seconds: u64,
    concurrency: usize,
) -> anyhow::Result<HttpRun> {
    let (serve, _uncapped) = start_serve(stack, concurrency, None).await?;
    let (client, base) = (&serve.client, serve.base.as_str());
    let codes = Arc::new(sms_codes(stack).await?);
    let gap = validate_gap(client, base, &codes[codes.len() / 2..]).await;
    let duration = Duration::from_secs(seconds);
    let server = serve.process.pid();
    let load = |kind| hammer(client, base, kind, concurrency, duration, &codes, server);
    let shim = load(Kind::Send).await;
    let trivial = load(Kind::Health).await;
    let validate_right = load(Kind::ValidateRight).await;
    let validate_wrong = load(Kind::ValidateWrong).await;
    let serve_peak_rss_mb = serve.process.peak_rss_mb().unwrap_or(f64::NAN);
    serve.process.stop(Duration::from_secs(20))?;
    Ok(HttpRun {
        gap,
        shim,
        trivial,
        validate_right,
        validate_wrong,
        serve_peak_rss_mb,
    })
}

/// One load on a capped server, with how often the CFS throttled it meanwhile.
pub(crate) struct PodLoad {
    pub load: Load,
    /// Share of the CFS periods in which the server used up its quota, over the load (its
    /// 0.5 s warm-up included), in %.
    pub throttled_pct: Option<f64>,
}

/// `_send` (the shim) and `_validate` (right codes) on a capped `serve` process.
pub(crate) struct PodHttp {
    pub send: PodLoad,
    pub validate: PodLoad,
}

/// Starts `user-otp serve` on `stack` in a cgroup capped by `cap` and measures `_send` and
/// `_validate` (with the right codes of the SMS events on the stack's SMS topic), as [`run`]
/// does uncapped.
pub(crate) async fn capped(
    stack: &Stack,
    seconds: u64,
    concurrency: usize,
    cap: &Cap,
) -> anyhow::Result<PodHttp> {
    let (serve, cgroup) = start_serve(stack, concurrency, Some(cap)).await?;
    let codes = Arc::new(sms_codes(stack).await?);
    let duration = Duration::from_secs(seconds);
    let throttled =
        |kind| throttled_load(&serve, cgroup.as_ref(), kind, concurrency, duration, &codes);
    let send = throttled(Kind::Send).await;
    let validate = throttled(Kind::ValidateRight).await;
    serve.process.stop(Duration::from_secs(20))?;
    drop(cgroup);
    Ok(PodHttp { send, validate })
}

/// One load on `serve`, with the throttling of its cgroup over it.
async fn throttled_load(
    serve: &Serve,
    cgroup: Option<&Cgroup>,
    kind: Kind,
    concurrency: usize,
    duration: Duration,
    codes: &Arc<Vec<(String, String)>>,
) -> PodLoad {
    let before = cgroup.map(Cgroup::throttling);
    let load = hammer(
        &serve.client,
        &serve.base,
        kind,
        concurrency,
        duration,
        codes,
        serve.process.pid(),
    )
    .await;
    let throttled_pct = cgroup
        .zip(before)
        .and_then(|(c, before)| c.throttling().since(before).pct());
    PodLoad {
        load,
        throttled_pct,
    }
}

/// Up to 500 pairs of wrong-code validations, one for a number of `live` (which still has its
/// code), one for a number nobody was sent a code, alternating which goes first.
async fn validate_gap(
    client: &reqwest::Client,
    base: &str,
    live: &[(String, String)],
) -> ValidateGap {
    let samples = live.len().min(500);
    let timed = |mobile: String, code: &str| {
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let request = validate(client, base, &mobile, wrong);
        async move {
            let started = Instant::now();
            let answered = request.send().await;
            if let Ok(response) = answered {
                let _ = response.bytes().await;
            }
            started.elapsed().as_secs_f64() * 1000.0
        }
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for (i, (mobile, code)) in live.iter().take(samples).enumerate() {
        let unknown = format!("5{:09}", i);
        if i % 2 == 0 {
            with.push(timed(mobile.clone(), code).await);
            without.push(timed(unknown, code).await);
        } else {
            without.push(timed(unknown, code).await);
            with.push(timed(mobile.clone(), code).await);
        }
    }
    ValidateGap {
        samples,
        live_median_ms: median(&mut with),
        none_median_ms: median(&mut without),
    }
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    match samples.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => samples[n / 2],
        n => (samples[n / 2 - 1] + samples[n / 2]) / 2.0,
    }
}

/// (mobile, code) of every SMS on the stack's SMS topic.
async fn sms_codes(stack: &Stack) -> anyhow::Result<Vec<(String, String)>> {
    Ok(kafka_io::read_all(&stack.local.kafka, &stack.sms_topic)
        .await?
        .into_iter()
        .filter_map(|record| {
            let value: serde_json::Value = serde_json::from_slice(&record.payload).ok()?;
            let mobile = value["mobileNumber"].as_str()?.to_owned();
            let message = value["message"].as_str()?;
            let code: String = message
                .split(|c: char| !c.is_ascii_digit())
                .rfind(|run| !run.is_empty())?
                .to_owned();
            Some((mobile, code))
        })
        .collect())
}

async fn hammer(
    client: &reqwest::Client,
    base: &str,
    kind: Kind,
    concurrency: usize,
    duration: Duration,
    codes: &Arc<Vec<(String, String)>>,
    server: u32,
) -> Load {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let counter = Arc::new(AtomicUsize::new(0));
    let counting_from = Instant::now() + WARMUP;
    let deadline = counting_from + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, base, codes) = (client.clone(), base.to_owned(), codes.clone());
            let (ok, failed, counter) = (ok.clone(), failed.clone(), counter.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let Some(request) = build(&client, &base, kind, i, &codes) else {
                        break;
                    };
                    let answered = match request.send().await {
                        Ok(response) if response.status().is_success() == expects_success(kind) => {
                            // Read the body so the connection is reused.
                            let _ = response.bytes().await;
                            &ok
                        }
                        _ => &failed,
                    };
                    if Instant::now() >= counting_from {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep_until(counting_from.into()).await;
    let processes = [
        Metered::process("server", server),
        Metered::process("bench", std::process::id()),
    ];
    let meter = Meter::start(&processes);
    let measuring = Instant::now();
    for task in tasks {
        let _ = task.await;
    }
    let usage = meter.read();
    let seconds = measuring.elapsed().as_secs_f64();
    let ok = ok.load(Ordering::Relaxed);
    let answered = (ok + failed.load(Ordering::Relaxed)).max(1) as f64;
    Load {
        rps: ok as f64 / seconds,
        ok,
        failed: failed.load(Ordering::Relaxed),
        server_cpu_us_per_req: usage.of("server").unwrap_or(f64::NAN) * 1e6 / answered,
        generator_cores: usage.of("bench").unwrap_or(f64::NAN) / seconds,
    }
}

fn expects_success(kind: Kind) -> bool {
    !matches!(kind, Kind::ValidateWrong)
}

fn build(
    client: &reqwest::Client,
    base: &str,
    kind: Kind,
    i: usize,
    codes: &[(String, String)],
) -> Option<reqwest::RequestBuilder> {
    let half = codes.len() / 2;
    Some(match kind {
        Kind::Health => client.get(format!("{base}/user-otp/health")),
        Kind::Send => client
            .post(format!("{base}/user-otp/v1/_send"))
            .json(&json!({
            "RequestInfo": {"apiId": "bench"},
            "otp": {"mobileNumber": format!("6{:09}", i % 1_000_000_000),
                    "tenantId": "pb.amritsar", "type": "register"}})),
        // Each right code once (first half of the codes), wrong codes on the second half.
        Kind::ValidateRight => {
            let (mobile, code) = codes.get(i).filter(|_| i < half)?;
            validate(client, base, mobile, code)
        }
        Kind::ValidateWrong => {
            let (mobile, code) = codes.get(half + i % (codes.len() - half).max(1))?;
            let wrong = if code == "000000" { "111111" } else { "000000" };
            validate(client, base, mobile, wrong)
        }
    })
}

fn validate(
    client: &reqwest::Client,
    base: &str,
    mobile: &str,
    code: &str,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/otp/v1/_validate"))
        .json(&json!({
        "RequestInfo": {}, "otp": {"otp": code, "identity": mobile, "tenantId": "pb"}}))
}
