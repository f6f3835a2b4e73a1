//! Liveness (`GET /user-otp/health`: the process answers) and readiness
//! (`GET /user-otp/health/ready`: the producer reaches a broker, so `_send` can succeed).

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
    if state
        .producer
        .broker_reachable(&state.request_topic, READINESS_TIMEOUT)
        .await
    {
        (StatusCode::OK, Json(json!({"status": "UP", "kafka": "UP"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "DOWN", "kafka": "DOWN"})),
        )
    }
}
