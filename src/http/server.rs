//! The HTTP server's accept loop, with the bounds axum's own `serve` does not set.
//!
//! - **Header-read timeout** (`USER_OTP_HTTP_HEADER_READ_TIMEOUT_MS`): a connection that has not
//!   sent a whole request head within it is closed by hyper, so half-open or slow clients cannot
//!   hold connections (and their memory) for minutes. HTTP/1 only: DIGIT's gateways speak
//!   HTTP/1.1 to services.
//! - **Request timeout** and **concurrency limit with load shedding** are tower layers on the
//!   router ([`super::router`]): a request over the limit is refused at once with the legacy 503
//!   envelope and `Retry-After`, never queued.
//!
//! Shutdown: the listener is closed, open connections finish their request in progress
//! (hyper's graceful shutdown), then `serve` returns.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Serves `app` on `listener` until `shutdown` is cancelled; connections that do not send a
/// request head within `header_read_timeout` are closed.
///
/// # Errors
/// None so far: accept errors (e.g. out of file descriptors) are logged and retried.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // hyper's own HTTP/1 builder, not hyper-util's auto one: the auto builder first waits for
    // 24 bytes to tell HTTP/2 from HTTP/1, with no timer, so a connection that sends nothing
    // would never time out. Here the header timer runs from the moment the connection is idle
    // (new, or between keep-alive requests).
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "HTTP accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let service =
            TowerToHyperService::new(app.clone().map_request(move |request: Request<Incoming>| {
                let mut request = request.map(Body::new);
                // The peer address, for the per-client limit (axum's ConnectInfo).
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            }));
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
