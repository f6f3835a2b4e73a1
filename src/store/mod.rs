//! The OTP store in PostgreSQL: codes (only keyed hashes), their identities, and request
//! outcomes. SQL lives in `sql/*.sql`; every statement is prepared once per connection
//! (`prepare_cached`).
//!
//! Idempotency is the database's job: `otp_request_outcome.request_id` is the primary key, and
//! a code is inserted in the same statement as its request's outcome and only when that insert
//! won, so a redelivered or replayed event can neither record a second outcome nor create a
//! second code, however many workers race for it.

mod codes;
pub mod migrate;
mod outcomes;
mod purge;
mod tls;

pub use tls::TlsSetupError;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::config::{DatabaseSettings, SslMode};
use crate::failure::{sqlstate_kind, Classify, FailureKind};

pub use codes::{CodeStatus, NewestCode, Settled, Settlement, ValidationView};
pub use outcomes::{
    BatchRecorded, ExistingOutcome, NewCode, NewOutcome, Outcome, Recorded, RequestKey,
    SourcePosition,
};
pub use purge::Purged;

/// A database failure. [`Classify::kind`] says what to do about it (by SQLSTATE class); the
/// message names the SQLSTATE and the server's message, never the error's detail (PostgreSQL
/// quotes row values there, e.g. mobile numbers).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {}", describe(.0))]
    Database(#[from] tokio_postgres::Error),
    #[error("database pool: {}", describe_pool(.0))]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database pool set-up: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
}

impl StoreError {
    /// The SQLSTATE of an error the server reported (e.g. `22021`).
    pub fn sqlstate(&self) -> Option<&str> {
        self.database_error()
            .and_then(tokio_postgres::Error::code)
            .map(tokio_postgres::error::SqlState::code)
    }

    /// The server's message, without its detail (which may quote values).
    pub fn server_message(&self) -> Option<&str> {
        self.database_error()
            .and_then(tokio_postgres::Error::as_db_error)
            .map(tokio_postgres::error::DbError::message)
    }

    fn database_error(&self) -> Option<&tokio_postgres::Error> {
        match self {
            Self::Database(error) | Self::Pool(deadpool_postgres::PoolError::Backend(error)) => {
                Some(error)
            }
            _ => None,
        }
    }
}

impl Classify for StoreError {
    fn kind(&self) -> FailureKind {
        use deadpool_postgres::PoolError;
        match self {
            Self::Database(error) | Self::Pool(PoolError::Backend(error)) => match error.code() {
                Some(state) => sqlstate_kind(state.code()),
                // No SQLSTATE: I/O, a closed connection, a connect timeout.
                None => FailureKind::Transient,
            },
            Self::Pool(
                PoolError::Timeout(_) | PoolError::Closed | PoolError::PostCreateHook(_),
            ) => FailureKind::Transient,
            Self::Pool(PoolError::NoRuntimeSpecified)
            | Self::Build(_)
            | Self::Corrupt(_)
            | Self::Tls(_) => FailureKind::Systemic,
        }
    }
}

/// `SQLSTATE <code>: <message>` for a server error, else the driver's own description with its
/// causes (e.g. `error performing TLS handshake: … certificate verify failed`: the operator's
/// first clue).
fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("SQLSTATE {}: {}", db.code().code(), db.message());
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

fn describe_pool(error: &deadpool_postgres::PoolError) -> String {
    match error {
        deadpool_postgres::PoolError::Backend(error) => describe(error),
        deadpool_postgres::PoolError::Timeout(kind) => format!("timed out ({kind:?})"),
        other => other.to_string(),
    }
}

/// The store: a connection pool and the statements on it.
#[derive(Clone)]
pub struct OtpStore {
    pool: Pool,
}

impl OtpStore {
    /// A pool for `settings` (connections are opened lazily).
    pub fn new(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match settings.ssl_mode {
            SslMode::Disable => Manager::from_config(settings.pg_config(), NoTls, config),
            _ => Manager::from_config(settings.pg_config(), tls::connector(settings)?, config),
        };
        // Bounded waits: an unreachable PostgreSQL fails a call within about the connect
        // timeout instead of queueing callers behind it.
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(settings.wait_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .build()?;
        Ok(Self { pool })
    }

    /// Applies missing migrations (see [`migrate`]).
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        migrate::run(&self.pool).await
    }

    /// Where the schema stands against this build's migrations (see [`migrate::check`]).
    ///
    /// # Errors
    /// The database cannot be reached or the migration history cannot be read.
    pub async fn schema_check(&self) -> Result<migrate::SchemaCheck, StoreError> {
        migrate::check(&self.pool).await
    }

    /// Grants `role` what the service needs on its tables (see [`migrate::grant`]).
    ///
    /// # Errors
    /// The connected user may not grant, or `role` does not exist.
    pub async fn grant_to(&self, role: &str) -> Result<(), StoreError> {
        migrate::grant(&self.pool, role).await
    }

    /// True when a connection can run a trivial query.
    pub async fn is_reachable(&self) -> bool {
        match self.pool.get().await {
            Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }
}
