//! Liveness (`GET /user-otp/health`: the process answers) and readiness
//! (`GET /user-otp/health/ready`: the producer reaches a broker and PostgreSQL answers, so
//! `_send` and `_validate` can succeed).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

/// How long readiness waits for a broker's metadata answer.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn liveness() -> Json<Value> {
    Json(json!({"status": "UP"}))
}

pub async fn readiness(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (kafka, database) = tokio::join!(
        state
            .producer
            .broker_reachable(&state.request_topic, READINESS_TIMEOUT),
        tokio::time::timeout(READINESS_TIMEOUT, state.store.is_reachable()),
    );
    let database = database.unwrap_or(false);
    let up = |ok: bool| if ok { "UP" } else { "DOWN" };
    let status = if kafka && database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(
            json!({"status": up(kafka && database), "kafka": up(kafka), "database": up(database)}),
        ),
    )
}
