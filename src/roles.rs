//! The process roles behind the CLI: `serve` (HTTP), `worker`, `all` (both), `migrate`.
//! Each takes the validated settings and a shutdown token, and returns when the token is
//! cancelled and its work is drained.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::http::{self, AppState};
use crate::kafka::EventProducer;

/// How long shutdown waits for queued events to be acknowledged.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP role: binds `USER_OTP_HTTP_PORT` on all interfaces and serves until shutdown, then
/// finishes in-flight requests and flushes the producer.
pub async fn serve(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let producer = EventProducer::new(&settings.kafka).context("creating the Kafka producer")?;
    let address = SocketAddr::from((Ipv4Addr::UNSPECIFIED, settings.http.port));
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding HTTP port {}", settings.http.port))?;
    tracing::info!(%address, request_topic = %settings.kafka.request_topic, "HTTP server listening");
    let state = AppState::new(settings, producer.clone());
    http::serve(listener, state, shutdown)
        .await
        .context("HTTP server")?;
    tracing::info!("HTTP server stopped; flushing the producer");
    producer
        .flush(FLUSH_TIMEOUT)
        .await
        .context("flushing the Kafka producer")?;
    Ok(())
}

/// The worker role. Not built yet (issue 4): it says so instead of pretending.
pub async fn worker(_settings: &Settings, _shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::bail!("the worker role is not implemented yet: request events stay on the topic")
}

/// Both roles in one process (the local default). Until the worker exists, only the HTTP role
/// runs, with a warning.
pub async fn all(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    tracing::warn!("the worker role is not implemented yet: request events stay on the topic");
    serve(settings, shutdown).await
}

/// Applies the database migrations. Not built yet (issue 4).
pub async fn migrate(_settings: &Settings) -> anyhow::Result<()> {
    anyhow::bail!("migrations are not implemented yet: the OTP store arrives with the worker")
}
