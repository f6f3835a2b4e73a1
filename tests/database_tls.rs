//! TLS to PostgreSQL (README "Configuration", `USER_OTP_DATABASE_SSL_MODE`): libpq's modes
//! against the test cluster, which `scripts/services` serves with TLS from a CA of its own
//! (`.local/postgres/tls/ca.crt`, or `USER_OTP_TEST_PG_CA` for another cluster), a server
//! certificate naming `localhost` only, and a role `user_otp_tls` that pg_hba.conf refuses
//! over plain TCP.
//!
//! Each test runs the service's own store (`OtpStore`, the pool every role uses) through
//! migrations and a schema check on a fresh database.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use user_otp::store::OtpStore;

/// The role that may connect only over TLS (scripts/lib/postgres.sh).
const TLS_USER: &str = "user_otp_tls";

fn cluster_ca() -> PathBuf {
    std::env::var_os("USER_OTP_TEST_PG_CA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".local/postgres/tls/ca.crt"))
}

/// A CA the cluster's certificate does not chain to.
fn another_ca() -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name("user-otp-other-ca"));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let (key, cert) = (dir.join("ca.key"), dir.join("ca.crt"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-days", "1",
        ])
        .args(["-subj", "/CN=another CA", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    cert
}

/// The test cluster's address with `host` in place of its host name.
fn url_with_host(database: &str, host: &str) -> String {
    let (_, port) = pg_host_port()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .expect("host:port");
    format!("jdbc:postgresql://{host}:{port}/{database}")
}

/// Migrates and checks the schema of `database` as `user` through the service's store.
async fn serve(
    database: &str,
    host: &str,
    user: &str,
    mode: &str,
    ca: Option<&Path>,
) -> Result<(), String> {
    let url = url_with_host(database, host);
    let ca = ca
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let settings = settings(&[
        ("USER_OTP_DATABASE_URL", &url),
        ("USER_OTP_DATABASE_USERNAME", user),
        ("USER_OTP_DATABASE_PASSWORD", user),
        ("USER_OTP_DATABASE_SSL_MODE", mode),
        ("USER_OTP_DATABASE_SSL_ROOT_CERT", &ca),
    ]);
    let store = OtpStore::new(&settings.database).map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    let check = store.schema_check().await.map_err(|e| e.to_string())?;
    assert!(check.is_current(), "{check:?}");
    Ok(())
}

#[tokio::test]
async fn require_reaches_a_user_that_plain_tcp_cannot() {
    let database = fresh_database().await;
    let plain = serve(&database, "127.0.0.1", TLS_USER, "disable", None)
        .await
        .expect_err("pg_hba.conf refuses user_otp_tls without TLS");
    assert!(plain.contains("no encryption"), "{plain}");
    serve(&database, "127.0.0.1", TLS_USER, "require", None)
        .await
        .expect("require: TLS, certificate unchecked");
    serve(&database, "127.0.0.1", TLS_USER, "prefer", None)
        .await
        .expect("prefer: TLS, since the server offers it");
}

#[tokio::test]
async fn verify_full_checks_the_name_and_verify_ca_only_the_chain() {
    let database = fresh_database().await;
    let ca = cluster_ca();
    assert!(
        ca.exists(),
        "{} is made by scripts/services up",
        ca.display()
    );
    serve(&database, "localhost", TLS_USER, "verify-full", Some(&ca))
        .await
        .expect("the certificate names localhost and chains to the CA");
    let wrong_name = serve(&database, "127.0.0.1", TLS_USER, "verify-full", Some(&ca))
        .await
        .expect_err("the certificate does not name 127.0.0.1");
    assert!(
        wrong_name.contains("certificate verify failed"),
        "{wrong_name}"
    );
    serve(&database, "127.0.0.1", TLS_USER, "verify-ca", Some(&ca))
        .await
        .expect("verify-ca does not check the name");
}

#[tokio::test]
async fn a_certificate_of_another_ca_is_refused_whenever_a_ca_file_is_given() {
    let database = fresh_database().await;
    let other = another_ca();
    for mode in ["verify-full", "verify-ca", "require"] {
        let refused = serve(&database, "localhost", TLS_USER, mode, Some(&other))
            .await
            .expect_err("the server's certificate does not chain to the given CA");
        assert!(
            refused.contains("certificate verify failed"),
            "{mode}: {refused}"
        );
    }
    let unreadable = OtpStore::new(&{
        let mut settings = settings(&[]);
        settings.database.ssl_mode = user_otp::config::SslMode::VerifyFull;
        settings.database.ssl_root_cert = Some(other.with_file_name("ca.key"));
        settings.database
    });
    assert!(
        unreadable.is_err(),
        "a CA file that holds no certificate stops the store at set-up"
    );
}

/// `user-otp migrate` on `database` as the TLS-only user, in a process whose OpenSSL trusts the
/// cluster's CA as a system CA (`SSL_CERT_FILE`), with `mode` and the CA file `ca`.
fn migrate_trusting_the_cluster(
    database: &str,
    mode: &str,
    ca: Option<&Path>,
) -> std::process::Output {
    let mut command = Command::new(common::processes::BINARY);
    command
        .arg("migrate")
        .env_clear()
        .env("USER_OTP_PROFILE", "development")
        .env(
            "USER_OTP_DATABASE_URL",
            url_with_host(database, "localhost"),
        )
        .env("USER_OTP_DATABASE_USERNAME", TLS_USER)
        .env("USER_OTP_DATABASE_PASSWORD", TLS_USER)
        .env("USER_OTP_DATABASE_SSL_MODE", mode)
        .env("SSL_CERT_FILE", cluster_ca());
    if let Some(ca) = ca {
        command.env("USER_OTP_DATABASE_SSL_ROOT_CERT", ca);
    }
    command.output().expect("run user-otp migrate")
}

/// The CA file is the whole trust store, as libpq's `sslrootcert` is: a server whose
/// certificate chains to a CA the system trusts (here through OpenSSL's `SSL_CERT_FILE`, in a
/// separate process) but not to the given file is refused.
#[tokio::test]
async fn the_ca_file_replaces_the_systems_trust_store() {
    let database = fresh_database().await;
    let other = another_ca();
    for mode in ["verify-full", "verify-ca", "require"] {
        let output = migrate_trusting_the_cluster(&database, mode, Some(&other));
        assert!(
            !output.status.success(),
            "{mode}: trusted through the system's store, not the CA file: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let control = migrate_trusting_the_cluster(&database, "verify-full", None);
    assert!(
        control.status.success(),
        "without a CA file the system's store is used: {}",
        String::from_utf8_lossy(&control.stderr)
    );
}
