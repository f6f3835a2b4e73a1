//! The HTTP server: the `_send` shim, health checks, and the egov-otp API (`/otp/v1/…`).
//!
//! Every answer is JSON. Errors use DIGIT's legacy envelope ([`envelope`]), including unknown
//! paths, wrong methods and panics, so a caller never sees a plain-text or empty error.

mod client_limit;
pub mod envelope;
mod health;
mod json_body;
mod otp_api;
pub mod outcome_waiters;
mod send;
mod server;
mod validation_outcome;

use std::any::Any;
use std::sync::Arc;

use axum::error_handling::HandleErrorLayer;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::BoxError;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::{HttpSettings, Settings};
use crate::domain::abuse::country::CountryAllowList;
use crate::domain::abuse::guess_budget::GuessBudget;
use crate::domain::keyring::Keyring;
use crate::kafka::{BestEffortProducer, EventProducer};
use crate::store::OtpStore;
use envelope::LegacyError;

/// Which APIs one listener serves: `_send` (with its health paths under the context path) and
/// the egov-otp API (with its health paths under `USER_OTP_OTP_API_PATH`). The egov-otp API has
/// no authentication of its own, so an operator may keep it off the public port
/// (`USER_OTP_OTP_API_PORT`) or run it alone (role `otp-api`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Apis {
    /// `<context>/v1/_send`, `<context>/health`, `<context>/health/ready`.
    pub send: bool,
    /// `<otp>/v1/_validate`, `<otp>/v1/_search`, `<otp>/health`, `<otp>/health/ready`.
    pub otp: bool,
}

impl Apis {
    /// Both on one listener (the default: `USER_OTP_OTP_API_PORT` unset).
    pub const BOTH: Self = Self {
        send: true,
        otp: true,
    };
    /// `_send` alone (the public port when the egov-otp API has its own).
    pub const SEND: Self = Self {
        send: true,
        otp: false,
    };
    /// The egov-otp API alone (its own port, or role `otp-api`).
    pub const OTP: Self = Self {
        send: false,
        otp: true,
    };
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub producer: EventProducer,
    /// Writes the validation outcomes, fire and forget.
    pub announcer: BestEffortProducer,
    pub store: OtpStore,
    /// The current HMAC key and the previous ones that still verify codes.
    pub keyring: Keyring,
    /// Wrong codes per identity per rolling hour.
    pub guess_budget: GuessBudget,
    /// A code's validity; `_search` reports a validation only this long.
    pub code_ttl: std::time::Duration,
    /// Country codes `_send` accepts.
    pub allowed_country_codes: Arc<CountryAllowList>,
    /// The per-client limit of `_send` (off when `None`).
    pub client_limit: Option<Arc<client_limit::ClientLimit>>,
    pub request_topic: Arc<str>,
    /// Where validations are announced (`USER_OTP_OUTCOME_TOPIC`).
    pub outcome_topic: Arc<str>,
    pub max_body_bytes: usize,
    pub max_failed_attempts: i32,
    /// Timeouts and the concurrency limit of the server.
    pub limits: HttpSettings,
    /// Cached dependency checks for the readiness paths.
    pub readiness: health::Readiness,
    /// In sync mode, where `_send` waits for outcomes ([`Self::with_outcome_waiters`]).
    pub outcome_waiters: Option<Arc<outcome_waiters::OutcomeWaiters>>,
}

impl AppState {
    pub fn new(
        settings: &Settings,
        producer: EventProducer,
        announcer: BestEffortProducer,
        store: OtpStore,
    ) -> Self {
        Self {
            producer,
            announcer,
            store,
            keyring: Keyring::from_settings(settings),
            guess_budget: settings.abuse.guess_budget,
            code_ttl: settings.otp.code_ttl,
            allowed_country_codes: Arc::new(settings.abuse.allowed_country_codes.clone()),
            client_limit: client_limit::ClientLimit::new(
                settings.abuse.client_limit_per_minute,
                settings.abuse.client_address_header.clone(),
            )
            .map(Arc::new),
            request_topic: settings.kafka.request_topic.as_str().into(),
            outcome_topic: settings.kafka.outcome_topic.as_str().into(),
            max_body_bytes: settings.http.max_body_bytes,
            max_failed_attempts: i32::try_from(settings.otp.max_failed_attempts)
                .unwrap_or(i32::MAX),
            limits: settings.http.clone(),
            readiness: health::Readiness::default(),
            outcome_waiters: None,
        }
    }

    /// The same, with the outcome listener `_send` waits on in sync mode
    /// (`USER_OTP_SEND_MODE=sync`); its readiness then includes the listener being positioned.
    pub fn with_outcome_waiters(mut self, waiters: Arc<outcome_waiters::OutcomeWaiters>) -> Self {
        self.outcome_waiters = Some(waiters);
        self
    }

    /// The same, for a process that also runs the worker (role `all`): `_send`'s readiness
    /// then includes PostgreSQL.
    pub fn with_worker(mut self) -> Self {
        self.readiness.with_worker = true;
        self
    }
}

/// The routes of `apis`, with the legacy envelope for unknown paths, wrong methods and panics.
/// Paths: `_send` under `USER_OTP_CONTEXT_PATH` (default `/user-otp`), the egov-otp API under
/// `USER_OTP_OTP_API_PATH` (default `/otp`); each has `…/health` (liveness) and
/// `…/health/ready` (readiness), answering `{"status":"UP"}` as Spring Boot's actuator does.
/// The API routes (`_send`, `_validate`, `_search`) have the request timeout and concurrency
/// limit of `state.limits` (a request over the limit is shed at once with 503 and
/// `Retry-After`); the health routes have neither, so a flood of slow requests can never make a
/// probe fail.
pub fn router(state: AppState, apis: Apis) -> Router {
    // One semaphore for the whole server (axum applies a layer to each route separately; the
    // global limit shares its permits across all of them).
    let limits = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overloaded))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(
            state.limits.max_concurrent_requests,
        ))
        .timeout(state.limits.request_timeout);
    let context = state.limits.context_path.clone();
    let otp = state.limits.otp_api_path.clone();
    let mut api = Router::new();
    let mut health = Router::new();
    if apis.send {
        api = api.route(&format!("{context}/v1/_send"), post(send::send_otp));
        health = health
            .route(&format!("{context}/health"), get(health::liveness))
            .route(
                &format!("{context}/health/ready"),
                get(health::send_readiness),
            );
    }
    if apis.otp {
        api = api
            .route(&format!("{otp}/v1/_validate"), post(otp_api::validate))
            .route(&format!("{otp}/v1/_search"), post(otp_api::search));
        health = health
            .route(&format!("{otp}/health"), get(health::liveness))
            .route(&format!("{otp}/health/ready"), get(health::otp_readiness));
    }
    if apis.send || apis.otp {
        api = api.route_layer(limits);
    }
    api.merge(health)
        .fallback(|| async { LegacyError::not_found() })
        .method_not_allowed_fallback(|| async { LegacyError::method_not_allowed() })
        .layer(CatchPanicLayer::custom(panic_response))
        // Shared, not cloned per request (axum clones the state for every extractor).
        .with_state(Arc::new(state))
}

/// The answer when the concurrency limit sheds a request or it outlasts the request timeout.
async fn overloaded(error: BoxError) -> Response {
    if error.is::<tower::timeout::error::Elapsed>() {
        tracing::warn!("HTTP request timed out");
        return LegacyError::overloaded("The request took too long; try again later")
            .into_response();
    }
    if error.is::<tower::load_shed::error::Overloaded>() {
        tracing::warn!("HTTP request shed: too many requests in flight");
        return LegacyError::overloaded("Too many requests in flight; try again later")
            .into_response();
    }
    tracing::error!(%error, "HTTP middleware failed");
    LegacyError::internal().into_response()
}

fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    LegacyError::internal().into_response()
}

/// Serves `apis` until `shutdown` is cancelled, then stops accepting and finishes in-flight requests
/// (our own HTTP/1 accept loop: a header-read timeout on every connection).
///
/// # Errors
/// None so far: accept errors (e.g. out of file descriptors) are logged and retried.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    apis: Apis,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let header_read_timeout = state.limits.header_read_timeout;
    server::serve(listener, router(state, apis), header_read_timeout, shutdown).await
}
