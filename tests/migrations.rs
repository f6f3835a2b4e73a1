//! Upgrading a store written by the previous version (migration 0002): request ids move into
//! their namespaces and keep an empty fingerprint, which the worker treats as the request's own.

mod common;

use common::*;
use user_otp::store::OtpStore;

#[tokio::test]
async fn rows_of_the_previous_version_are_renamed_into_the_request_id_namespaces() {
    let database = fresh_database().await;
    let db = pg_connect(&database).await;
    // The store as version 1 left it, with one header-less and one caller-id request.
    db.batch_execute(include_str!("../migrations/0001_otp_store.sql"))
        .await
        .expect("version 1");
    db.batch_execute(
        "CREATE TABLE user_otp_schema_migration (version integer PRIMARY KEY, name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO user_otp_schema_migration (version, name) VALUES (1, 'otp_store');
         INSERT INTO otp_code (id, request_id, tenant_id, identity, key_id, code_hash, expires_at)
             VALUES ('00000000-0000-0000-0000-000000000001', 'req/2/7', 'pb', '9876543210', 'k1',
                     '\\x00', now());
         INSERT INTO otp_request_outcome (request_id, tenant_id, otp_type, outcome, code_id,
                                          source_topic, source_partition, source_offset)
             VALUES ('req/2/7', 'pb', 'register', 'sent', '00000000-0000-0000-0000-000000000001',
                     'req', 2, 7),
                    ('abc-123', 'pb', 'login', 'unknown_user', NULL, 'req', 0, 3);",
    )
    .await
    .expect("version 1 rows");
    let settings = settings(&[("USER_OTP_DATABASE_URL", &database_url(&database))]);
    let applied = OtpStore::new(&settings.database)
        .expect("store")
        .migrate()
        .await
        .expect("migrate");
    assert_eq!(applied, 2, "0002 and 0003");
    let rows = db
        .query(
            "SELECT request_id, fingerprint FROM otp_request_outcome ORDER BY request_id",
            &[],
        )
        .await
        .expect("outcomes");
    let renamed: Vec<(String, Vec<u8>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        renamed,
        [
            ("caller:abc-123".to_owned(), vec![]),
            ("offset:req/2/7".to_owned(), vec![])
        ]
    );
    let code: String = db
        .query_one("SELECT request_id FROM otp_code", &[])
        .await
        .expect("code")
        .get(0);
    assert_eq!(code, "offset:req/2/7");
}
