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

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::config::DatabaseSettings;

pub use codes::{CodeStatus, NewestCode};
pub use outcomes::{ExistingOutcome, NewCode, NewOutcome, Outcome, SourcePosition};

/// A database failure: transient (connection lost, server restarting) or a bug.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database pool set-up: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
}

/// The store: a connection pool and the statements on it.
#[derive(Clone)]
pub struct OtpStore {
    pool: Pool,
}

impl OtpStore {
    /// A pool for `settings` (connections are opened lazily).
    pub fn new(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let manager = Manager::from_config(
            settings.pg_config(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .build()?;
        Ok(Self { pool })
    }

    /// Applies missing migrations (see [`migrate`]).
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        migrate::run(&self.pool).await
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
