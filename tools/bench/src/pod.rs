//! The per-pod part (`--only per-pod`; part of every run by default): the service as DIGIT runs
//! it, each process in a pod with a small CPU limit. Every `user-otp worker` and `user-otp
//! serve` process of this part runs in a cgroup of its own with a CFS quota ([`crate::cgroup`]),
//! as a Kubernetes CPU limit would cap its pod:
//!
//! - one worker at `--pod-vcpu` (default 0.2) on the usual 3-partition request topic, its
//!   preloaded requests timed over the served window (`pod_worker_rps_0.2`);
//! - `serve` at `--pod-vcpu` under the HTTP loads: the shim's `_send` and `_validate` with the
//!   right codes of that worker's SMS (`pod_send_rps_0.2`, `pod_validate_rps_0.2`);
//! - 1, 2 and 4 workers at `--pod-scale-vcpu` (default 0.1) each, in one consumer group on a
//!   12-partition request topic (`pod_workers_{1,2,4}_rps_0.1`), and the scaling factors
//!   `pod_scaling_2x`, `pod_scaling_4x` (k workers' throughput over one's). A scaling run
//!   starts its workers, waits until their group has settled (every worker a member, all 12
//!   partitions assigned, [`crate::group`]) and only then writes its requests (`k ×` the
//!   per-worker count, so each run lasts about as long), all at once, far faster than the
//!   workers serve them: no rebalance falls inside the served window, which is first → last
//!   SMS over all the workers. The rate counts every request; the audit checks that none was
//!   lost or sent twice (`pod_lost`, `pod_duplicate_sms`).
//!
//! Each run also reports its own CPU µs per request per process
//! (`pod_worker_0.2_cpu_us_per_req_worker`, …) and how often the CFS throttled the capped
//! processes (`…_throttled_pct_…`: near 100 % means the quota, not the work available, was the
//! limit).

use anyhow::Context;

use crate::cgroup::Cap;
use crate::env::Local;
use crate::figures;
use crate::http_load;
use crate::measure::{self, Setup, WorkerRun, PARTITIONS, SCALE_PARTITIONS};
use crate::report::Round;

/// Worker processes of the scaling runs.
pub(crate) const SCALE_WORKERS: [usize; 3] = [1, 2, 4];

/// What the per-pod part runs with.
pub(crate) struct Plan {
    /// The cap of the single worker and of `serve` (`--pod-vcpu`).
    pub cap: Cap,
    /// The cap of each worker of the scaling runs (`--pod-scale-vcpu`).
    pub scale_cap: Cap,
    /// Preloaded requests of the single capped worker.
    pub worker_requests: usize,
    /// Preloaded requests per worker of a scaling run (k workers get k times as many).
    pub scale_requests_per_worker: usize,
    /// Length of each HTTP load on the capped `serve`, in s.
    pub http_seconds: u64,
    pub http_concurrency: usize,
}

/// Runs the per-pod part once and adds its figures to `round`. Every stack it creates is
/// removed again; every cgroup too.
pub(crate) async fn run(
    local: &Local,
    user_host: &str,
    plan: &Plan,
    round: &mut Round,
) -> anyhow::Result<()> {
    let vcpu = plan.cap.quota.label();
    eprintln!(
        "  per-pod: 1 worker at {vcpu} vCPU, {} preloaded requests",
        plan.worker_requests
    );
    let setup = Setup {
        cap: Some(&plan.cap),
        ..Setup::preloaded(plan.worker_requests, 1, PARTITIONS)
    };
    let run = measure::worker_throughput(local, user_host, &setup)
        .await
        .context("the capped worker")?;
    warn_on_audit("the capped worker", &run);
    figures::pod_worker(round, "pod_worker", &vcpu, &run);

    eprintln!("  per-pod: serve at {vcpu} vCPU: _send, _validate");
    let http = http_load::capped(
        &run.stack,
        plan.http_seconds,
        plan.http_concurrency,
        &plan.cap,
    )
    .await
    .context("the capped serve")?;
    run.stack.remove().await?;
    figures::pod_http(round, &vcpu, &http);

    let scale = plan.scale_cap.quota.label();
    for workers in SCALE_WORKERS {
        let requests = plan.scale_requests_per_worker * workers;
        eprintln!(
            "  per-pod: {workers} worker(s) at {scale} vCPU each, {SCALE_PARTITIONS} partitions, \
             {requests} requests written once the group settled"
        );
        let setup = Setup {
            cap: Some(&plan.scale_cap),
            settle_first: true,
            ..Setup::preloaded(requests, workers, SCALE_PARTITIONS)
        };
        let run = measure::worker_throughput(local, user_host, &setup)
            .await
            .with_context(|| format!("{workers} capped workers"))?;
        run.stack.remove().await?;
        warn_on_audit(&format!("{workers} capped workers"), &run);
        figures::pod_worker(round, &format!("pod_workers_{workers}"), &scale, &run);
    }
    figures::pod_scaling(round, &scale, &SCALE_WORKERS);
    Ok(())
}

/// Says so when a run lost requests or sent an SMS twice (the figures count them too).
fn warn_on_audit(what: &str, run: &WorkerRun) {
    let audit = &run.audit;
    if audit.lost > 0 || audit.duplicate_sms > 0 {
        eprintln!(
            "WARNING: {what}: {} of {} requests lost, {} duplicate SMS",
            audit.lost, audit.sent, audit.duplicate_sms
        );
    }
}
