//! Retention: rows older than `USER_OTP_RETENTION_HOURS` (codes, their extra identities,
//! outcomes, send history, guess budgets) are deleted in small statements of at most
//! `USER_OTP_PURGE_BATCH_ROWS` rows per table (`sql/purge.sql`), each its own short transaction,
//! so the purge never holds many locks and never blocks the worker or `_validate` for long.
//!
//! Why this is safe for replays: the retention is never shorter than the code validity (start-up
//! refuses it), and the worker records an event older than the code validity as `stale` without
//! sending, so an event whose outcome was purged cannot earn a second SMS. The replay window is
//! therefore the code validity: replaying a request within it is idempotent on its request id;
//! beyond it, stale.

use std::time::Duration;

use super::{OtpStore, StoreError};

/// Rows one purge deleted, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub codes: u64,
    pub code_identities: u64,
    pub outcomes: u64,
    pub send_history: u64,
    pub guess_budgets: u64,
}

impl Purged {
    /// All rows deleted, every table together.
    pub fn total(&self) -> u64 {
        self.codes + self.code_identities + self.outcomes + self.send_history + self.guess_budgets
    }

    fn add(&mut self, other: &Self) {
        self.codes += other.codes;
        self.code_identities += other.code_identities;
        self.outcomes += other.outcomes;
        self.send_history += other.send_history;
        self.guess_budgets += other.guess_budgets;
    }
}

impl OtpStore {
    /// One purge statement: up to `batch_rows` rows per table older than `retention`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn purge_once(
        &self,
        retention: Duration,
        batch_rows: i64,
    ) -> Result<Purged, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(include_str!("sql/purge.sql")).await?;
        let row = client
            .query_one(&statement, &[&retention.as_secs_f64(), &batch_rows])
            .await?;
        let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
        Ok(Purged {
            codes: count(0),
            code_identities: count(1),
            outcomes: count(2),
            send_history: count(3),
            guess_budgets: count(4),
        })
    }

    /// Purges until no table has rows older than `retention`, `batch_rows` per statement
    /// (pausing `pause` between statements so other work gets the database); returns the total.
    ///
    /// # Errors
    /// [`StoreError`] of the statement that failed (what was deleted before stays deleted).
    pub async fn purge(
        &self,
        retention: Duration,
        batch_rows: i64,
        pause: Duration,
    ) -> Result<Purged, StoreError> {
        let mut total = Purged::default();
        loop {
            let purged = self.purge_once(retention, batch_rows).await?;
            total.add(&purged);
            let full = [
                purged.codes,
                purged.code_identities,
                purged.outcomes,
                purged.send_history,
                purged.guess_budgets,
            ]
            .iter()
            .any(|n| i64::try_from(*n).unwrap_or(i64::MAX) >= batch_rows);
            if !full {
                return Ok(total);
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }
}
