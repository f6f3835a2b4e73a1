//! Fault drills: requests flow through a worker while something breaks; then an audit reads
//! PostgreSQL and the topics and prints
//! `drill NAME: sent N, outcomes N, lost N, duplicate_sms N, dead_lettered N, crashes N`.
//!
//! - `kill-worker`: kill -9 the worker 5 times while the requests flow, restarting it each time
//!   (static group membership, so the restarted worker resumes at once); reports each restart's
//!   time until work resumed.
//! - `kill-worker-dynamic`: the same without static membership: each restart is a new member,
//!   which gets the partitions once the group has waited out the killed member's session
//!   timeout (10 s), and then waits out what is left of the pending grace of the killed worker's
//!   pending requests (their keys only); the time until work resumed should stay within the
//!   session timeout + 1 s.
//! - `kafka-restart`: restart the broker once mid-run (`scripts/services restart kafka`).
//! - `pg-restart`: restart PostgreSQL once mid-run.
//! - `user-outage`: the fake egov-user answers 50 % 503 with up to 2 s delay for a while.
//! - `fuzz`: malformed and fuzzed events mixed with valid ones; every malformed one must be on
//!   the dead-letter topic with a reason, every valid one served.
//! - `flood-one-number`: many register requests for one number (one Kafka key, so one
//!   partition and one queue in the worker's key order), then requests for other numbers;
//!   reports the seconds from the worker's start until every one has its outcome, with the
//!   default send limits (the flood gets one SMS, the limits refuse the rest).
//!
//! Every drill is bounded (a deadline on each wait) and a worker that exits on its own counts as
//! a crash (and is restarted, so the audit still sees the rest served).

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::Rng;
use serde_json::json;

use crate::audit::{audit, Audit};
use crate::env::{unique, Local, Service};
use crate::kafka_io::{self, Event};
use crate::measure::requests;
use crate::stack::Stack;
use kafka_raw_header as raw_header;

const ALL: [&str; 7] = [
    "kill-worker",
    "kill-worker-dynamic",
    "kafka-restart",
    "pg-restart",
    "user-outage",
    "fuzz",
    "flood-one-number",
];

/// Longest any drill may wait for its requests to be served.
const DRILL_DEADLINE: Duration = Duration::from_secs(900);

pub(crate) async fn run(
    local: &Local,
    user_host: &str,
    name: &str,
    quick: bool,
) -> anyhow::Result<()> {
    let names: Vec<&str> = if name == "all" {
        ALL.to_vec()
    } else if ALL.contains(&name) {
        vec![name]
    } else {
        bail!("unknown drill {name}: one of {} or all", ALL.join(", "));
    };
    let mut failed = Vec::new();
    let mut lines = Vec::new();
    for drill in names {
        eprintln!("drill {drill}: starting");
        let started = Instant::now();
        let (audit, crashes) = match drill {
            "kill-worker" => kill_worker(local, user_host, quick, Membership::Static).await?,
            "kill-worker-dynamic" => {
                kill_worker(local, user_host, quick, Membership::Dynamic).await?
            }
            "kafka-restart" => restart_service(local, user_host, quick, "kafka").await?,
            "pg-restart" => restart_service(local, user_host, quick, "postgres").await?,
            "user-outage" => user_outage(local, user_host, quick).await?,
            "flood-one-number" => flood_one_number(local, user_host, quick).await?,
            _ => fuzz(local, user_host, quick).await?,
        };
        let line = format!(
            "drill {drill}: sent {}, outcomes {}, lost {}, duplicate_sms {}, dead_lettered {}, crashes {}",
            audit.sent, audit.outcomes, audit.lost, audit.duplicate_sms, audit.dead_lettered, crashes
        );
        eprintln!(
            "drill {drill}: took {:.0} s",
            started.elapsed().as_secs_f64()
        );
        println!("{line}");
        if audit.lost > 0 || audit.duplicate_sms > 0 || crashes > 0 {
            failed.push(drill);
        }
        lines.push(line);
    }
    if !failed.is_empty() {
        bail!(
            "drills that lost, duplicated or crashed: {}",
            failed.join(", ")
        );
    }
    Ok(())
}

/// How a drill's worker joins its consumer group.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Membership {
    /// With a group instance id (`USER_OTP_KAFKA_GROUP_INSTANCE_ID`), kept across restarts.
    Static,
    /// Without one: every start is a new member.
    Dynamic,
}

/// One worker process, restarted (and counted) when it exits by itself.
struct Worker {
    process: Option<Service>,
    binary: std::path::PathBuf,
    env: HashMap<String, String>,
    crashes: usize,
}

impl Worker {
    fn start(stack: &Stack) -> anyhow::Result<Self> {
        Self::start_as(stack, Membership::Static)
    }

    fn start_as(stack: &Stack, membership: Membership) -> anyhow::Result<Self> {
        Self::start_with(stack, membership, stack.service_env(0))
    }

    /// A worker with the default abuse controls (send limits, pumping guard), which the
    /// benchmark's environment turns off.
    fn start_with_default_limits(stack: &Stack) -> anyhow::Result<Self> {
        let mut env = stack.service_env(0);
        env.retain(|key, _| {
            !key.starts_with("USER_OTP_SEND_")
                && !key.starts_with("USER_OTP_PUMPING_")
                && !key.starts_with("USER_OTP_VALIDATE_")
        });
        Self::start_with(stack, Membership::Static, env)
    }

    fn start_with(
        stack: &Stack,
        membership: Membership,
        mut env: HashMap<String, String>,
    ) -> anyhow::Result<Self> {
        if membership == Membership::Static {
            env.insert("USER_OTP_KAFKA_GROUP_INSTANCE_ID".into(), unique("worker"));
        }
        let mut worker = Self {
            process: None,
            binary: stack.local.service_binary.clone(),
            env,
            crashes: 0,
        };
        worker.spawn()?;
        Ok(worker)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        self.process = Some(Service::start(
            "worker",
            &self.binary,
            &["worker"],
            &self.env,
        )?);
        Ok(())
    }

    /// Restarts the worker if it exited on its own (a crash).
    fn check(&mut self) -> anyhow::Result<()> {
        if let Some(process) = self.process.as_mut() {
            if process.exited() {
                eprintln!("  worker exited on its own: counted as a crash, restarting");
                self.crashes += 1;
                self.spawn()?;
            }
        }
        Ok(())
    }

    fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(process) = self.process.take() {
            process.crash()?;
        }
        Ok(())
    }

    fn stop(mut self) -> anyhow::Result<usize> {
        self.check()?;
        if let Some(process) = self.process.take() {
            process.stop(Duration::from_secs(20))?;
        }
        Ok(self.crashes)
    }
}

/// Waits until `target` requests have final outcomes (or dead letters when `dead_too`),
/// restarting a crashed worker meanwhile.
async fn wait_served(stack: &Stack, worker: &mut Worker, target: i64) -> anyhow::Result<()> {
    let deadline = Instant::now() + DRILL_DEADLINE;
    while stack.final_outcomes().await.unwrap_or(0) < target {
        worker.check()?;
        if Instant::now() > deadline {
            bail!("requests not served within {DRILL_DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn preloaded(
    local: &Local,
    user_host: &str,
    n: usize,
    tag: &str,
) -> anyhow::Result<(Stack, Vec<String>)> {
    let stack = Stack::create(local, user_host, 3).await?;
    let events = requests(n, tag);
    kafka_io::preload(&local.kafka, &stack.request_topic, &events).await?;
    Ok((stack, events.into_iter().map(|e| e.request_id).collect()))
}

async fn kill_worker(
    local: &Local,
    user_host: &str,
    quick: bool,
    membership: Membership,
) -> anyhow::Result<(Audit, usize)> {
    let n = if quick { 20_000 } else { 100_000 };
    let (stack, ids) = preloaded(local, user_host, n, "kw").await?;
    let mut worker = Worker::start_as(&stack, membership)?;
    let mut restarts = Vec::new();
    for k in 1..=5 {
        wait_served(&stack, &mut worker, (n * k / 6) as i64).await?;
        worker.kill()?;
        let before = stack.final_outcomes().await?;
        let restarted = Instant::now();
        worker.spawn()?;
        let deadline = restarted + Duration::from_secs(120);
        while stack.final_outcomes().await.unwrap_or(0) <= before {
            worker.check()?;
            if Instant::now() > deadline {
                bail!("work did not resume within 120 s of restart {k}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        restarts.push(restarted.elapsed().as_secs_f64());
    }
    wait_served(&stack, &mut worker, n as i64).await?;
    let crashes = worker.stop()?;
    let formatted: Vec<String> = restarts.iter().map(|s| format!("{s:.2}")).collect();
    let name = match membership {
        Membership::Static => "kill-worker",
        Membership::Dynamic => "kill-worker-dynamic",
    };
    println!(
        "drill {name}: seconds from restart to resumed work: {}",
        formatted.join(", ")
    );
    Ok((audit(&stack, &ids).await?, crashes))
}

async fn restart_service(
    local: &Local,
    user_host: &str,
    quick: bool,
    service: &str,
) -> anyhow::Result<(Audit, usize)> {
    let n = if quick { 20_000 } else { 100_000 };
    let (stack, ids) = preloaded(local, user_host, n, &format!("{service}-restart")).await?;
    let mut worker = Worker::start(&stack)?;
    wait_served(&stack, &mut worker, (n / 3) as i64).await?;
    eprintln!("  restarting {service}");
    let status = Command::new("scripts/services")
        .args(["restart", service])
        .stdout(std::process::Stdio::null())
        .status()
        .context("scripts/services restart")?;
    if !status.success() {
        bail!("scripts/services restart {service} failed");
    }
    // The audit's own PostgreSQL connection did not survive a PostgreSQL restart.
    let stack = if service == "postgres" {
        Stack {
            db: crate::stack::connect(local, &stack.database).await?,
            ..stack
        }
    } else {
        stack
    };
    wait_served(&stack, &mut worker, n as i64).await?;
    let crashes = worker.stop()?;
    Ok((audit(&stack, &ids).await?, crashes))
}

async fn user_outage(
    local: &Local,
    user_host: &str,
    quick: bool,
) -> anyhow::Result<(Audit, usize)> {
    let (n, seconds) = if quick { (5_000, 15) } else { (20_000, 60) };
    let (stack, ids) = preloaded(local, user_host, n, "outage").await?;
    let client = reqwest::Client::new();
    let faults = |fail_rate: f64, max_delay_ms: u64, seconds: u64| {
        client
            .post(format!("{user_host}/fake/faults"))
            .json(&json!({"failRate": fail_rate, "maxDelayMs": max_delay_ms, "seconds": seconds}))
            .send()
    };
    faults(0.5, 2000, seconds).await?.error_for_status()?;
    let mut worker = Worker::start(&stack)?;
    wait_served(&stack, &mut worker, n as i64).await?;
    faults(0.0, 0, 0).await?.error_for_status()?;
    let crashes = worker.stop()?;
    Ok((audit(&stack, &ids).await?, crashes))
}

async fn flood_one_number(
    local: &Local,
    user_host: &str,
    quick: bool,
) -> anyhow::Result<(Audit, usize)> {
    let (flood, others) = if quick {
        (5_000, 1_000)
    } else {
        (20_000, 5_000)
    };
    let stack = Stack::create(local, user_host, 3).await?;
    let mobile = "9555500000";
    let mut events: Vec<Event> = (0..flood)
        .map(|i| Event {
            key: format!("pb:{mobile}"),
            payload: json!({"RequestInfo": {"apiId": "bench"},
                "otp": {"mobileNumber": mobile, "tenantId": "pb.amritsar", "type": "register"}})
            .to_string()
            .into_bytes(),
            request_id: format!("flood-{i}"),
        })
        .collect();
    events.extend(requests(others, "flood-others"));
    kafka_io::preload(&local.kafka, &stack.request_topic, &events).await?;
    let ids: Vec<String> = events.into_iter().map(|e| e.request_id).collect();
    let started = Instant::now();
    let mut worker = Worker::start_with_default_limits(&stack)?;
    wait_served(&stack, &mut worker, ids.len() as i64).await?;
    let seconds = started.elapsed().as_secs_f64();
    let crashes = worker.stop()?;
    let audit = audit(&stack, &ids).await?;
    println!(
        "drill flood-one-number: {flood} requests for one number and {others} for others served in {seconds:.1} s, {} SMS",
        audit.sms
    );
    Ok((audit, crashes))
}

async fn fuzz(local: &Local, user_host: &str, quick: bool) -> anyhow::Result<(Audit, usize)> {
    let n = if quick { 10_000 } else { 100_000 };
    let stack = Stack::create(local, user_host, 3).await?;
    let valid = requests(n, "fz-valid");
    let mut rng = rand::thread_rng();
    let mut events = Vec::with_capacity(2 * n);
    for (i, event) in valid.into_iter().enumerate() {
        events.push(Event {
            key: event.key.clone(),
            payload: fuzzed(&mut rng, i),
            request_id: format!("fz-bad-{i}"),
        });
        events.push(event);
    }
    // Events no body can express, written in the middle of the traffic.
    let (first, second) = events.split_at(events.len() / 2);
    kafka_io::preload(&local.kafka, &stack.request_topic, first).await?;
    let specials = poison_events(&local.kafka, &stack.request_topic).await?;
    kafka_io::preload(&local.kafka, &stack.request_topic, second).await?;
    let mut worker = Worker::start(&stack)?;
    // The valid half: final outcomes. The other half and the specials: every one dead-lettered.
    wait_served(&stack, &mut worker, n as i64).await?;
    let expected_dead = n + specials.len();
    let deadline = Instant::now() + DRILL_DEADLINE;
    loop {
        let dead = kafka_io::read_all(&local.kafka, &stack.dead_letter_topic).await?;
        if dead.len() >= expected_dead {
            let without_reason = dead.iter().filter(|r| r.reason.is_none()).count();
            if without_reason > 0 {
                bail!("{without_reason} dead letters have no reason");
            }
            let without_id = dead.iter().filter(|r| r.request_id.is_none()).count();
            if without_id > 0 {
                bail!("{without_id} dead letters lost their request id");
            }
            break;
        }
        worker.check()?;
        if Instant::now() > deadline {
            bail!(
                "only {} of {expected_dead} malformed events dead-lettered",
                dead.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let crashes = worker.stop()?;
    let mut ids: Vec<String> = events.into_iter().map(|e| e.request_id).collect();
    ids.extend(specials);
    let mut result = audit(&stack, &ids).await?;
    // Dead-lettered events are accounted for, not lost; outcomes count only valid requests.
    result.sent = ids.len();
    Ok((result, crashes))
}

/// A kind of poison event: its name, its value (`None`: null) and its timestamp.
type PoisonKind<'a> = (&'a str, Option<&'a [u8]>, Option<i64>);

/// Writes the poison events a request body cannot express, each with its own request id, and
/// returns those ids: null values, stale events whose tenant holds U+0000, invalid events larger
/// than the producer's 1,000,000-byte limit (the broker takes up to 1,048,588), and header names
/// that are not UTF-8.
async fn poison_events(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<String>> {
    let producer = kafka_io::producer(bootstrap, 0)?;
    let an_hour_ago = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )? - 3_600_000;
    let mut ids = Vec::new();
    let stale =
        json!({"otp": {"mobileNumber": "9000000001", "tenantId": "pb\u{0}x", "type": "register"}})
            .to_string()
            .into_bytes();
    let oversize = vec![b'{'; 1_040_000];
    for i in 0..25 {
        // (kind, value: None is null, timestamp)
        let kinds: [PoisonKind<'_>; 3] = [
            ("null", None, None),
            ("stale-nul", Some(&stale), Some(an_hour_ago)),
            ("oversize", Some(&oversize), None),
        ];
        for (kind, value, timestamp) in kinds {
            if kind == "oversize" && i >= 3 {
                continue;
            }
            let id = format!("fz-poison-{kind}-{i}");
            kafka_io::send_raw(&producer, topic, b"pb:poison", value, &id, timestamp).await?;
            ids.push(id);
        }
        let id = format!("fz-poison-header-{i}");
        let (bootstrap, topic, raw_id) = (bootstrap.to_owned(), topic.to_owned(), id.clone());
        tokio::task::spawn_blocking(move || {
            raw_header::produce_with_raw_header_name(
                &bootstrap,
                &topic,
                b"pb:poison",
                b"{}",
                b"\xff\xfe-trace",
                Some(&raw_id),
            )
        })
        .await?
        .map_err(anyhow::Error::msg)?;
        ids.push(id);
    }
    Ok(ids)
}

/// A malformed or fuzzed request event body; never a valid request.
fn fuzzed(rng: &mut impl Rng, i: usize) -> Vec<u8> {
    let valid =
        json!({"otp": {"mobileNumber": format!("9{i:09}"), "tenantId": "pb", "type": "register"}})
            .to_string()
            .into_bytes();
    match rng.gen_range(0..13) {
        // Random bytes, possibly not UTF-8.
        0 => (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect(),
        // A valid body cut short.
        1 => valid[..rng.gen_range(0..valid.len())].to_vec(),
        // A valid body with one byte flipped into a quote or brace.
        2 => {
            let mut bytes = valid;
            let at = rng.gen_range(0..bytes.len());
            bytes[at] = *[b'"', b'{', b'}', b'\\', 0xff]
                .get(rng.gen_range(0..5))
                .unwrap_or(&b'"');
            if serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| {
                v["otp"]["mobileNumber"]
                    .as_str()
                    .is_some_and(|m| m.len() == 10)
            }) {
                b"{".to_vec()
            } else {
                bytes
            }
        }
        // Wrong JSON types.
        3 => json!({"otp": {"mobileNumber": [i], "tenantId": "pb"}})
            .to_string()
            .into_bytes(),
        4 => json!({"otp": "register me"}).to_string().into_bytes(),
        5 => json!([1, 2, 3]).to_string().into_bytes(),
        // Failing validation rules.
        6 => json!({"otp": {"mobileNumber": "12", "tenantId": "pb"}})
            .to_string()
            .into_bytes(),
        7 => json!({"otp": {"mobileNumber": format!("9{i:09}"), "type": "hack"}})
            .to_string()
            .into_bytes(),
        // Huge and deeply nested.
        8 => {
            json!({"otp": {"mobileNumber": "9".repeat(rng.gen_range(14..5000)), "tenantId": "pb"}})
                .to_string()
                .into_bytes()
        }
        // Beyond what DIGIT stores, or with control characters (edge validation).
        9 => json!({"otp": {"mobileNumber": format!("9{i:09}"), "tenantId": "t".repeat(4_000)}})
            .to_string()
            .into_bytes(),
        10 => json!({"otp": {"mobileNumber": format!("9{i:09}"), "tenantId": "pb\u{0}"}})
            .to_string()
            .into_bytes(),
        11 => json!({"otp": {"mobileNumber": "asha\nINFO forged", "tenantId": "pb",
                            "type": "passwordreset"}})
        .to_string()
        .into_bytes(),
        _ => format!("{}{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
    }
}
