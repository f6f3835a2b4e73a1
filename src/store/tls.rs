//! The TLS connector for PostgreSQL connections, from [`SslMode`] and the CA file.
//!
//! The driver decides whether TLS is negotiated (`disable` never, `prefer` when the server offers
//! it, the others always: [`DatabaseSettings::pg_config`]); this connector decides what is
//! checked once it is: nothing in `prefer` and in `require` without a CA file (libpq's
//! semantics), the chain to the CA file (or the system's CAs) in `verify-ca` and in `require`
//! with a CA file, the chain and the host name in `verify-full`
//! ([PostgreSQL docs, "SSL Support", table 34.1](https://www.postgresql.org/docs/15/libpq-ssl.html)).

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
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
        builder
            .set_ca_file(path)
            .map_err(|e| failed(&format!("CA file {}", path.display()), e))?;
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
