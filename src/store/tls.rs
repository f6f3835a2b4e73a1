//! The TLS connector for PostgreSQL connections, from [`SslMode`] and the CA file.
//!
//! The driver decides whether TLS is negotiated (`disable` never, `prefer` when the server offers
//! it, the others always: [`DatabaseSettings::pg_config`]); this connector decides what is
//! checked once it is: nothing in `prefer` and in `require` without a CA file (libpq's
//! semantics), the chain to the CA file in `verify-ca` and in `require` with a CA file (only
//! the file's CAs are trusted then; without a file, the system's), the chain and the host name
//! in `verify-full`
//! ([PostgreSQL docs, "SSL Support", table 34.1](https://www.postgresql.org/docs/15/libpq-ssl.html)).

use std::path::Path;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::X509;
use postgres_openssl::MakeTlsConnector;

use crate::config::{DatabaseSettings, SslMode};

/// Why no connector could be built: the CA file is unreadable or not PEM, or OpenSSL failed.
#[derive(Debug, thiserror::Error)]
#[error("database TLS set-up: {0}")]
pub struct TlsSetupError(String);

/// The connector for `settings`.
///
/// # Errors
/// [`TlsSetupError`]: the CA file (`USER_OTP_DATABASE_SSL_ROOT_CERT`) cannot be loaded.
pub(crate) fn connector(settings: &DatabaseSettings) -> Result<MakeTlsConnector, TlsSetupError> {
    let failed =
        |what: &str, error: openssl::error::ErrorStack| TlsSetupError(format!("{what}: {error}"));
    let mut builder =
        SslConnector::builder(SslMethod::tls_client()).map_err(|e| failed("OpenSSL", e))?;
    if let Some(path) = &settings.ssl_root_cert {
        // The CA file replaces the system's trust store (libpq's `sslrootcert`): adding to it
        // (`set_ca_file`) would let any publicly trusted certificate pass `verify-ca`.
        builder.set_cert_store(ca_store(path)?);
    }
    let verifies = settings.ssl_mode.verifies(settings.ssl_root_cert.is_some());
    builder.set_verify(if verifies {
        SslVerifyMode::PEER
    } else {
        SslVerifyMode::NONE
    });
    let check_host = settings.ssl_mode == SslMode::VerifyFull;
    let mut connector = MakeTlsConnector::new(builder.build());
    connector.set_callback(move |config, _domain| {
        config.set_verify_hostname(check_host);
        Ok(())
    });
    Ok(connector)
}

/// A trust store holding exactly the certificates of the PEM file at `path`.
fn ca_store(path: &Path) -> Result<X509Store, TlsSetupError> {
    let unusable = |why: String| TlsSetupError(format!("CA file {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| unusable(e.to_string()))?;
    let certificates = X509::stack_from_pem(&pem).map_err(|e| unusable(e.to_string()))?;
    if certificates.is_empty() {
        return Err(unusable("no certificate in it".into()));
    }
    let mut store = X509StoreBuilder::new().map_err(|e| unusable(e.to_string()))?;
    for certificate in certificates {
        store
            .add_cert(certificate)
            .map_err(|e| unusable(e.to_string()))?;
    }
    Ok(store.build())
}
