//! The process roles behind the CLI: `serve` (HTTP: `_send` and the egov-otp API), `worker`,
//! `all` (both), `otp-api` (the egov-otp API alone), `migrate`, and the one-shot `purge`.
//! Each takes the validated settings and a shutdown token, and returns when the token is
//! cancelled and its work is drained. Every role but `migrate` applies pending migrations first
//! (safe with several instances starting at once), or with `USER_OTP_MIGRATE_ON_START=false`
//! only checks that the schema has every migration this build needs.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{SendMode, Settings};
use crate::http::outcome_waiters::OutcomeWaiters;
use crate::http::{self, Apis, AppState};
use crate::kafka::{BestEffortProducer, EventProducer};
use crate::store::OtpStore;
use crate::worker;

/// How long shutdown waits for queued events to be acknowledged.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP role alone.
pub async fn serve(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = migrated_store(settings).await?;
    serve_with(settings, store, false, shutdown).await
}

/// The worker role alone.
pub async fn worker(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = migrated_store(settings).await?;
    worker::run(settings, store, shutdown).await
}

/// Both roles in one process (the local default). If one stops with an error, the other is
/// shut down too and the error is returned.
pub async fn all(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = migrated_store(settings).await?;
    let both = shutdown.child_token();
    let stop_both = |result: anyhow::Result<()>| {
        if result.is_err() {
            both.cancel();
        }
        result
    };
    let (served, worked) = tokio::join!(
        async { stop_both(serve_with(settings, store.clone(), true, both.clone()).await) },
        async { stop_both(worker::run(settings, store.clone(), both.clone()).await) },
    );
    served.and(worked)
}

/// Deletes every row older than the retention once (as the worker does on schedule) and exits.
pub async fn purge(settings: &Settings) -> anyhow::Result<()> {
    let store = migrated_store(settings).await?;
    let retention = settings.retention;
    let purged = store
        .purge(
            retention.retention,
            retention.purge_batch_rows,
            Duration::ZERO,
        )
        .await
        .context("purging rows past the retention")?;
    tracing::info!(
        codes = purged.codes,
        code_identities = purged.code_identities,
        outcomes = purged.outcomes,
        send_history = purged.send_history,
        guess_budgets = purged.guess_budgets,
        retention_hours = retention.retention.as_secs() / 3600,
        "purge done"
    );
    println!(
        "purged {} codes, {} code identities, {} outcomes, {} send histories, {} guess budgets older than {} h",
        purged.codes,
        purged.code_identities,
        purged.outcomes,
        purged.send_history,
        purged.guess_budgets,
        retention.retention.as_secs() / 3600
    );
    Ok(())
}

/// Applies the database migrations and exits. As `USER_OTP_MIGRATE_USERNAME` (DIGIT's
/// `FLYWAY_USER`) when set, which then grants the datasource user what the service needs; else
/// as the datasource user.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let app_user = &settings.database.username;
    let owner = settings
        .migration
        .owner
        .as_ref()
        .unwrap_or(&settings.database);
    let store = OtpStore::new(owner)?;
    let applied = store.migrate().await.with_context(|| {
        format!(
            "applying migrations on {}:{}/{} as {}",
            owner.host, owner.port, owner.dbname, owner.username
        )
    })?;
    tracing::info!(applied, user = %owner.username, "migrations up to date");
    if owner.username != *app_user {
        store
            .grant_to(app_user)
            .await
            .with_context(|| format!("granting {app_user} the service's privileges"))?;
    }
    Ok(())
}

/// The store, with migrations applied (`USER_OTP_MIGRATE_ON_START`, the default) or checked.
///
/// # Errors
/// A migration fails, or (migration at start-up off) the schema lacks a migration this build
/// needs: then the error names `user-otp migrate`.
async fn migrated_store(settings: &Settings) -> anyhow::Result<OtpStore> {
    let db = &settings.database;
    let store = OtpStore::new(db)?;
    if settings.migration.on_start {
        store.migrate().await.with_context(|| {
            format!(
                "applying migrations on {}:{}/{} as {} (a user without DDL rights: run `user-otp migrate` as the schema owner with USER_OTP_MIGRATE_USERNAME, then start with USER_OTP_MIGRATE_ON_START=false)",
                db.host, db.port, db.dbname, db.username
            )
        })?;
        return Ok(store);
    }
    let check = store.schema_check().await.with_context(|| {
        format!(
            "checking the schema version on {}:{}/{} as {}",
            db.host, db.port, db.dbname, db.username
        )
    })?;
    if !check.is_current() {
        anyhow::bail!(
            "the database schema lacks migrations {:?} that this build needs (version {}); run `user-otp migrate` first (USER_OTP_MIGRATE_ON_START is false)",
            check.missing,
            check.needed
        );
    }
    tracing::info!(version = check.needed, "database schema is current");
    Ok(store)
}

/// The HTTP role: serves `_send` (and the egov-otp API, unless `USER_OTP_OTP_API_PORT` gives it
/// a port of its own) on `USER_OTP_HTTP_PORT`, on all interfaces, until shutdown; then finishes
/// in-flight requests and flushes the producer. `with_worker`: the worker runs in this process
/// too (its readiness then includes PostgreSQL).
async fn serve_with(
    settings: &Settings,
    store: OtpStore,
    with_worker: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let producer = EventProducer::new(&settings.kafka).context("creating the Kafka producer")?;
    let announcer =
        BestEffortProducer::new(&settings.kafka).context("creating the Kafka producer")?;
    let mut state = AppState::new(settings, producer.clone(), announcer.clone(), store);
    if with_worker {
        state = state.with_worker();
    }
    if let SendMode::Sync { wait } = settings.http.send_mode {
        let waiters = OutcomeWaiters::start(&settings.kafka, shutdown.child_token())
            .context("creating the outcome listener")?;
        tracing::info!(
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            outcome_topic = %settings.kafka.outcome_topic,
            "_send in sync mode: it waits for each request's outcome"
        );
        state = state.with_outcome_waiters(waiters);
    }
    let (public_apis, otp_listener) = match settings.http.otp_api_port {
        Some(port) => (Apis::SEND, Some(bind(port, "the egov-otp API").await?)),
        None => (Apis::BOTH, None),
    };
    let public = bind(settings.http.port, "_send").await?;
    tracing::info!(
        port = settings.http.port,
        context_path = %settings.http.context_path,
        request_topic = %settings.kafka.request_topic,
        "HTTP server listening"
    );
    let otp_served = async {
        match otp_listener {
            Some(listener) => {
                http::serve(listener, state.clone(), Apis::OTP, shutdown.clone()).await
            }
            None => Ok(()),
        }
    };
    let (public_served, otp_served) = tokio::join!(
        http::serve(public, state.clone(), public_apis, shutdown.clone()),
        otp_served
    );
    public_served.context("HTTP server")?;
    otp_served.context("egov-otp API server")?;
    tracing::info!("HTTP server stopped; flushing the producer");
    flush(&producer, &announcer).await
}

/// The egov-otp API alone (role `otp-api`, the `egov-otp` Service): on `USER_OTP_OTP_API_PORT`
/// when set, else on `USER_OTP_HTTP_PORT`.
pub async fn otp_api(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = migrated_store(settings).await?;
    let producer = EventProducer::new(&settings.kafka).context("creating the Kafka producer")?;
    let announcer =
        BestEffortProducer::new(&settings.kafka).context("creating the Kafka producer")?;
    let state = AppState::new(settings, producer.clone(), announcer.clone(), store);
    let port = settings.http.otp_api_port.unwrap_or(settings.http.port);
    let listener = bind(port, "the egov-otp API").await?;
    tracing::info!(
        port,
        otp_api_path = %settings.http.otp_api_path,
        "egov-otp API listening"
    );
    http::serve(listener, state, Apis::OTP, shutdown)
        .await
        .context("egov-otp API server")?;
    flush(&producer, &announcer).await
}

/// A listener on `port` of every interface, for `what`.
async fn bind(port: u16, what: &str) -> anyhow::Result<TcpListener> {
    let address = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    TcpListener::bind(address)
        .await
        .with_context(|| format!("binding port {port} for {what}"))
}

/// Waits for queued events (requests, validation outcomes) to be acknowledged.
async fn flush(producer: &EventProducer, announcer: &BestEffortProducer) -> anyhow::Result<()> {
    let (requests, outcomes) = tokio::join!(
        producer.flush(FLUSH_TIMEOUT),
        announcer.flush(FLUSH_TIMEOUT)
    );
    requests.context("flushing the Kafka producer")?;
    outcomes.context("flushing the validation outcomes")
}
