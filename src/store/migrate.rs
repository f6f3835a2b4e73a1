//! Numbered SQL migrations from `migrations/`, compiled into the binary and applied in order by
//! `user-otp migrate` and at start-up.
//!
//! Safe when several instances start at once: the whole run holds a PostgreSQL advisory lock, so
//! one instance applies what is missing while the others wait and then find nothing to do. Each
//! migration runs in its own transaction together with its row in `user_otp_schema_migration`.

use deadpool_postgres::Pool;

use super::StoreError;

/// Arbitrary, fixed key of the advisory lock serialising migration runs ("user-otp" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x7573_6572_2d6f_7470;

/// `(version, name, sql)` in order.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "otp_store",
        include_str!("../../migrations/0001_otp_store.sql"),
    ),
    (
        2,
        "request_fingerprint",
        include_str!("../../migrations/0002_request_fingerprint.sql"),
    ),
    (
        3,
        "abuse_controls",
        include_str!("../../migrations/0003_abuse_controls.sql"),
    ),
];

/// Applies every migration not yet recorded; returns how many were applied.
pub async fn run(pool: &Pool) -> Result<usize, StoreError> {
    let mut client = pool.get().await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let applied = apply_missing(&mut client).await;
    // Unlock even when a migration failed; the connection goes back to the pool.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    let applied = applied?;
    unlocked?;
    Ok(applied)
}

async fn apply_missing(client: &mut deadpool_postgres::Object) -> Result<usize, StoreError> {
    client
        .batch_execute(
            // No NOTICE about an existing table on every start.
            "SET client_min_messages TO warning;
             CREATE TABLE IF NOT EXISTS user_otp_schema_migration (
                 version    integer     PRIMARY KEY,
                 name       text        NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let done: Vec<i32> = client
        .query("SELECT version FROM user_otp_schema_migration", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        let transaction = client.transaction().await?;
        transaction.batch_execute(sql).await?;
        transaction
            .execute(
                "INSERT INTO user_otp_schema_migration (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
        transaction.commit().await?;
        tracing::info!(version, name, "migration applied");
        applied += 1;
    }
    Ok(applied)
}
