//! TLS to PostgreSQL: the mode and the CA file, from the JDBC URL's parameters or from libpq's
//! environment (`PGSSLMODE`, `PGSSLROOTCERT`); the URL wins, as in libpq.
//!
//! Modes are libpq's ([PostgreSQL docs, "SSL Support"](https://www.postgresql.org/docs/15/libpq-ssl.html)):
//! - `disable`: plain TCP.
//! - `prefer` (the default, as in libpq and pgjdbc): TLS when the server offers it, else plain;
//!   the certificate is not checked.
//! - `require`: TLS or no connection; the certificate is not checked, unless a CA file is given
//!   (then as `verify-ca`, as libpq does).
//! - `verify-ca`: TLS, the server's certificate must chain to the CA file (or the system's CAs).
//! - `verify-full`: `verify-ca`, and the certificate must name the host connected to (what a
//!   managed database such as RDS with its CA bundle should use).
//!
//! pgjdbc's `ssl=true` means `verify-full` (its documented default when SSL is on);
//! `sslfactory=org.postgresql.ssl.NonValidatingFactory` means `require`.

use std::path::PathBuf;

/// How the connection to PostgreSQL is secured: libpq's `sslmode` (README "Configuration",
/// `USER_OTP_DATABASE_SSL_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, else plain; the certificate is not checked.
    Prefer,
    /// TLS or no connection; the certificate is checked only when a CA file is given.
    Require,
    /// TLS; the certificate must chain to the CA file (or the system's CAs).
    VerifyCa,
    /// `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// Parses a libpq `sslmode` (`allow` is taken as `prefer`: both try TLS only one way).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "disable" => Some(Self::Disable),
            "allow" | "prefer" => Some(Self::Prefer),
            "require" => Some(Self::Require),
            "verify-ca" => Some(Self::VerifyCa),
            "verify-full" => Some(Self::VerifyFull),
            _ => None,
        }
    }

    /// How much a mode checks, for comparing two: `Disable` 0 … `VerifyFull` 4.
    pub fn strength(self) -> u8 {
        match self {
            Self::Disable => 0,
            Self::Prefer => 1,
            Self::Require => 2,
            Self::VerifyCa => 3,
            Self::VerifyFull => 4,
        }
    }

    /// Whether the server's certificate is checked, given whether a CA file is set.
    pub fn verifies(self, has_root_cert: bool) -> bool {
        match self {
            Self::Disable | Self::Prefer => false,
            Self::Require => has_root_cert,
            Self::VerifyCa | Self::VerifyFull => true,
        }
    }
}

/// The TLS settings a JDBC URL carries, and the URL without them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UrlTls {
    /// The URL with `sslmode`, `sslrootcert`, `ssl` and `sslfactory` taken out.
    pub rest: String,
    pub mode: Option<SslMode>,
    pub root_cert: Option<PathBuf>,
}

const NON_VALIDATING_FACTORY: &str = "org.postgresql.ssl.NonValidatingFactory";

/// Takes the TLS parameters out of `url`'s query.
///
/// # Errors
/// A TLS parameter with a value it cannot have (the message names it).
pub(super) fn split_url(url: &str) -> Result<UrlTls, String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(UrlTls {
            rest: url.to_owned(),
            mode: None,
            root_cert: None,
        });
    };
    let mut kept = Vec::new();
    let mut mode = None;
    let mut jdbc_ssl = None;
    let mut non_validating = false;
    let mut root_cert = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "sslmode" => {
                mode = Some(SslMode::parse(value).ok_or_else(|| {
                    format!("sslmode={value} is not one of disable, allow, prefer, require, verify-ca, verify-full")
                })?);
            }
            "sslrootcert" if !value.is_empty() => root_cert = Some(PathBuf::from(value)),
            "ssl" => match value {
                "true" => jdbc_ssl = Some(true),
                "false" => jdbc_ssl = Some(false),
                _ => return Err(format!("ssl={value} is not true or false")),
            },
            "sslfactory" if value == NON_VALIDATING_FACTORY => non_validating = true,
            "sslfactory" => {
                return Err(format!(
                    "sslfactory={value} is not supported (only {NON_VALIDATING_FACTORY}); give sslmode and sslrootcert instead"
                ))
            }
            _ => kept.push(pair),
        }
    }
    let mode = mode.or(match (jdbc_ssl, non_validating) {
        (Some(false), _) => Some(SslMode::Disable),
        (_, true) => Some(SslMode::Require),
        (Some(true), false) => Some(SslMode::VerifyFull),
        (None, false) => None,
    });
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(UrlTls {
        rest,
        mode,
        root_cert,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jdbc_and_libpq_tls_parameters_are_taken_out() {
        let tls = split_url(
            "jdbc:postgresql://db:5432/egov?sslmode=verify-full&sslrootcert=/etc/rds/ca.pem&connect_timeout=5",
        )
        .expect("valid");
        assert_eq!(tls.mode, Some(SslMode::VerifyFull));
        assert_eq!(tls.root_cert, Some(PathBuf::from("/etc/rds/ca.pem")));
        assert_eq!(tls.rest, "jdbc:postgresql://db:5432/egov?connect_timeout=5");
        let plain = split_url("jdbc:postgresql://db/egov").expect("valid");
        assert_eq!(
            (plain.mode, plain.rest.as_str()),
            (None, "jdbc:postgresql://db/egov")
        );
    }

    #[test]
    fn pgjdbc_ssl_flags_mean_what_pgjdbc_says() {
        let mode = |url: &str| split_url(url).expect("valid").mode;
        assert_eq!(
            mode("jdbc:postgresql://h/d?ssl=true"),
            Some(SslMode::VerifyFull)
        );
        assert_eq!(
            mode(
                "jdbc:postgresql://h/d?ssl=true&sslfactory=org.postgresql.ssl.NonValidatingFactory"
            ),
            Some(SslMode::Require)
        );
        assert_eq!(
            mode("jdbc:postgresql://h/d?ssl=false"),
            Some(SslMode::Disable)
        );
        assert_eq!(
            mode("jdbc:postgresql://h/d?ssl=true&sslmode=require"),
            Some(SslMode::Require),
            "sslmode wins"
        );
        assert!(split_url("jdbc:postgresql://h/d?sslmode=on").is_err());
        assert!(split_url("jdbc:postgresql://h/d?sslfactory=com.example.Factory").is_err());
    }

    #[test]
    fn require_verifies_only_with_a_ca_file_as_libpq_does() {
        assert!(!SslMode::Prefer.verifies(true));
        assert!(!SslMode::Require.verifies(false));
        assert!(SslMode::Require.verifies(true));
        assert!(SslMode::VerifyCa.verifies(false));
    }
}
