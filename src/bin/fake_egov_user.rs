//! FAKE egov-user, for local runs and demos only: never deploy it.
//!
//! Answers `POST /user/_search` the way DIGIT's egov-user does for the two searches user-otp
//! makes (contract §3), from a JSON file of example users:
//! - `{"tenantId":"pb.amritsar","userType":"EMPLOYEE","mobileNumber":"…"}` matches employees of
//!   exactly that tenant with that mobile number;
//! - `{"tenantId":"pb","userType":"CITIZEN","userName":"…"}` (any other user type) matches users
//!   of that state tenant (or its cities) with that user name.
//!
//! The answer is `{"responseInfo":{…},"user":[…]}`; an empty `user` array means "no such user".

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use clap::Parser;
use serde_json::{json, Value};

/// FAKE egov-user for local development: answers POST /user/_search from a JSON file.
#[derive(Parser)]
#[command(name = "fake-egov-user")]
struct Args {
    /// Port to listen on (127.0.0.1 only).
    #[arg(long, default_value_t = 8081)]
    port: u16,
    /// JSON array of users, in egov-user's user shape.
    #[arg(long, default_value = "dev/fake-egov-users.json")]
    users: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.users)
        .with_context(|| format!("reading {}", args.users.display()))?;
    let users: Vec<Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} must be a JSON array of users", args.users.display()))?;
    let app = Router::new()
        .route("/user/_search", post(search))
        .with_state(Arc::new(users));
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}"))?;
    eprintln!("fake-egov-user (FAKE, development only) listening on {address}");
    axum::serve(listener, app).await?;
    Ok(())
}

async fn search(
    State(users): State<Arc<Vec<Value>>>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> (StatusCode, Json<Value>) {
    let Ok(Json(query)) = body else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"Errors": [{"code": "INVALID_REQUEST", "message": "JSON body required"}]})),
        );
    };
    let text = |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let tenant = text(&query, "tenantId").unwrap_or_default();
    let is_employee_search =
        text(&query, "userType").is_some_and(|t| t.eq_ignore_ascii_case("EMPLOYEE"));
    let found: Vec<Value> = users
        .iter()
        .filter(|user| {
            let user_tenant = text(user, "tenantId").unwrap_or_default();
            let user_type = text(user, "type").unwrap_or_default();
            if is_employee_search {
                user_type == "EMPLOYEE"
                    && user_tenant == tenant
                    && text(user, "mobileNumber") == text(&query, "mobileNumber")
                    && text(&query, "mobileNumber").is_some()
            } else {
                user_type != "EMPLOYEE"
                    && (user_tenant == tenant || user_tenant.starts_with(&format!("{tenant}.")))
                    && text(user, "userName") == text(&query, "userName")
                    && text(&query, "userName").is_some()
            }
        })
        .cloned()
        .collect();
    (
        StatusCode::OK,
        Json(json!({
            "responseInfo": {"apiId": "fake-egov-user", "status": "successful"},
            "user": found
        })),
    )
}
