//! Liveness and readiness, per path and per role (README "Health").
//!
//! - `GET /user-otp/health`, `GET /otp/health`: liveness: the process answers.
//! - `GET /user-otp/health/ready`: what `_send` needs, a broker answering a metadata request; in
//!   role `all` also PostgreSQL, since the worker in the same process needs both; in sync mode
//!   also the outcome listener being positioned (`outcomes`, [`super::outcome_waiters`]).
//! - `GET /otp/health/ready`: what the egov-otp API needs, PostgreSQL answering `SELECT 1`.
//!
//! Readiness is cheap: each dependency is checked at most once per [`CACHE_FOR`], concurrent
//! probes wait for the one check in progress instead of starting their own, and a check never
//! takes longer than [`CHECK_TIMEOUT`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::AppState;

/// How long a readiness result is reused.
pub(super) const CACHE_FOR: Duration = Duration::from_secs(1);

/// Longest one dependency check may take.
pub(super) const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The last result of each dependency check, shared by every request.
#[derive(Clone, Default)]
pub struct Readiness {
    broker: Arc<Mutex<Option<(Instant, bool)>>>,
    database: Arc<Mutex<Option<(Instant, bool)>>>,
    /// The worker runs in this process too (role `all`): `_send`'s readiness includes
    /// PostgreSQL.
    pub with_worker: bool,
}

/// `check`'s cached result in `slot`, or a fresh one when older than [`CACHE_FOR`].
async fn cached<F>(slot: &Mutex<Option<(Instant, bool)>>, check: F) -> bool
where
    F: std::future::Future<Output = bool>,
{
    let mut last = slot.lock().await;
    if let Some((at, up)) = *last {
        if at.elapsed() < CACHE_FOR {
            return up;
        }
    }
    let up = tokio::time::timeout(CHECK_TIMEOUT, check)
        .await
        .unwrap_or(false);
    *last = Some((Instant::now(), up));
    up
}

async fn broker_up(state: &AppState) -> bool {
    cached(
        &state.readiness.broker,
        state
            .producer
            .broker_reachable(&state.request_topic, CHECK_TIMEOUT),
    )
    .await
}

async fn database_up(state: &AppState) -> bool {
    cached(&state.readiness.database, state.store.is_reachable()).await
}

fn answer(parts: &[(&str, bool)]) -> (StatusCode, Json<Value>) {
    let up = |ok: bool| if ok { "UP" } else { "DOWN" };
    let all = parts.iter().all(|(_, ok)| *ok);
    let mut body = json!({"status": up(all)});
    for (name, ok) in parts {
        body[*name] = json!(up(*ok));
    }
    let status = if all {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

pub(super) async fn liveness() -> Json<Value> {
    Json(json!({"status": "UP"}))
}

/// `_send` (and, in role `all`, the worker): the broker, plus PostgreSQL with the worker.
pub(super) async fn send_readiness(
    State(state): State<Arc<AppState>>,
) -> (StatusCode, Json<Value>) {
    let mut parts = Vec::with_capacity(3);
    if state.readiness.with_worker {
        let (kafka, database) = tokio::join!(broker_up(&state), database_up(&state));
        parts.extend([("kafka", kafka), ("database", database)]);
    } else {
        parts.push(("kafka", broker_up(&state).await));
    }
    if let Some(waiters) = &state.outcome_waiters {
        parts.push(("outcomes", waiters.is_positioned()));
    }
    answer(&parts)
}

/// The egov-otp API: PostgreSQL.
pub(super) async fn otp_readiness(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    answer(&[("database", database_up(&state).await)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_result_is_reused_for_a_second_and_concurrent_probes_share_one_check() {
        let slot = Mutex::new(None);
        let checks = AtomicUsize::new(0);
        let check = || async {
            checks.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            true
        };
        let probes = (0..50).map(|_| cached(&slot, check()));
        let results = futures::future::join_all(probes).await;
        assert!(results.iter().all(|up| *up));
        assert_eq!(checks.load(Ordering::SeqCst), 1);
        *slot.lock().await = Some((Instant::now() - CACHE_FOR, false));
        assert!(
            cached(&slot, check()).await,
            "an old result is checked again"
        );
        assert_eq!(checks.load(Ordering::SeqCst), 2);
    }
}
