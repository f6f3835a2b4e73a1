//! Numbered SQL migrations from `migrations/`, compiled into the binary and applied in order by
//! `user-otp migrate` and at start-up.
//!
//! Safe when several instances start at once: the whole run holds a PostgreSQL advisory lock, so
//! one instance applies what is missing while the others wait and then find nothing to do. Each
//! migration runs in its own transaction together with its row in `user_otp_schema_migration`.
//! A run on a schema that is already current changes nothing and needs no DDL rights (only
//! `SELECT` on `user_otp_schema_migration`), so an application user without them may start with
//! migration at start-up on.
//!
//! Migrations are additive (new tables, columns with defaults, indexes): an older build runs on a
//! newer schema, so old and new pods can serve side by side during a rolling upgrade. A build
//! needs every migration it knows ([`SchemaCheck`]).
//!
//! DIGIT runs migrations in an init container as the schema owner (`FLYWAY_USER`), and the
//! service as another, unprivileged user: [`grant`] gives that user exactly what the service
//! needs on its own tables ([`SERVICE_TABLES`]) and their sequences, nothing in the rest of a
//! shared database.

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

/// The service's tables: those its migrations create, and the migration history.
pub const SERVICE_TABLES: &[&str] = &[
    "otp_code",
    "otp_code_identity",
    "otp_request_outcome",
    "otp_send_history",
    "otp_guess_budget",
];

/// The migration history table (the service only reads it).
const HISTORY_TABLE: &str = "user_otp_schema_migration";

/// Where the schema stands against this build's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaCheck {
    /// The versions this build knows and the schema lacks, in order (empty: current).
    pub missing: Vec<i32>,
    /// The newest version this build knows.
    pub needed: i32,
}

impl SchemaCheck {
    /// Whether every migration this build knows is applied.
    pub fn is_current(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Compares the applied migrations with this build's, changing nothing.
///
/// # Errors
/// The database cannot be reached or the history cannot be read (e.g. no `SELECT` on it).
pub async fn check(pool: &Pool) -> Result<SchemaCheck, StoreError> {
    let client = pool.get().await?;
    let done = applied_versions(&client).await?;
    Ok(SchemaCheck {
        missing: MIGRATIONS
            .iter()
            .map(|(version, _, _)| *version)
            .filter(|version| !done.contains(version))
            .collect(),
        needed: MIGRATIONS.last().map_or(0, |(version, _, _)| *version),
    })
}

/// The applied versions; none when the history table does not exist yet.
async fn applied_versions(client: &tokio_postgres::Client) -> Result<Vec<i32>, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&HISTORY_TABLE])
        .await?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    Ok(client
        .query("SELECT version FROM user_otp_schema_migration", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
}

/// Grants `role` what the service needs: `SELECT, INSERT, UPDATE, DELETE` on
/// [`SERVICE_TABLES`], `SELECT` on the migration history, `USAGE, SELECT` on the tables'
/// sequences and `USAGE` on the schema. Run by `user-otp migrate` as the schema owner; repeating
/// it is harmless.
///
/// # Errors
/// The connected user may not grant (not the owner), or `role` does not exist.
pub async fn grant(pool: &Pool, role: &str) -> Result<(), StoreError> {
    let client = pool.get().await?;
    let tables: Vec<String> = SERVICE_TABLES.iter().map(|t| (*t).to_owned()).collect();
    // format() quotes every identifier on the server.
    let statements: Vec<String> = client
        .query(
            "SELECT format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), $1::text)
             UNION ALL
             SELECT format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %I TO %I', t, $1::text)
               FROM unnest($2::text[]) AS t
             UNION ALL
             SELECT format('GRANT SELECT ON TABLE %I TO %I', $3::text, $1::text)
             UNION ALL
             SELECT DISTINCT format('GRANT USAGE, SELECT ON SEQUENCE %s TO %I',
                                    pg_get_serial_sequence(format('%I', c.table_name), c.column_name),
                                    $1::text)
               FROM information_schema.columns c
              WHERE c.table_schema = current_schema() AND c.table_name = ANY($2::text[])
                AND pg_get_serial_sequence(format('%I', c.table_name), c.column_name) IS NOT NULL",
            &[&role, &tables, &HISTORY_TABLE],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for statement in &statements {
        client.batch_execute(statement).await?;
    }
    tracing::info!(role, grants = statements.len(), "privileges granted");
    Ok(())
}

/// Applies every migration not yet recorded; returns how many were applied. Nothing is done
/// (no lock, no DDL) when the schema is current.
pub async fn run(pool: &Pool) -> Result<usize, StoreError> {
    if check(pool).await?.is_current() {
        return Ok(0);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_tables_are_the_tables_the_migrations_create() {
        let mut created: Vec<&str> = MIGRATIONS
            .iter()
            .flat_map(|(_, _, sql)| sql.split("CREATE TABLE ").skip(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .collect();
        created.sort_unstable();
        let mut listed = SERVICE_TABLES.to_vec();
        listed.sort_unstable();
        assert_eq!(created, listed, "a new table needs its grant");
    }
}
