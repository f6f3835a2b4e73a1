//! PostgreSQL connection settings from DIGIT's JDBC-style URL.
//!
//! DIGIT charts set `SPRING_DATASOURCE_URL=jdbc:postgresql://host:5432/dbname` with the user and
//! password in separate variables; a plain `postgresql://…` URL is accepted too. The TLS
//! parameters (`sslmode`, `sslrootcert`, pgjdbc's `ssl` and `sslfactory`) are read
//! ([`super::database_tls`]). libpq's other parameters (`connect_timeout`, `application_name`, …)
//! parse but are not used: the pool's are the `USER_OTP_DATABASE_*` keys; a parameter libpq does
//! not know is rejected with the key named rather than silently dropped.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::database_tls::{split_url, SslMode};
use super::error::ConfigError;

/// Where and as whom to connect. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseSettings {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub username: String,
    pub password: String,
    /// Connections in the pool of each process.
    pub pool_size: usize,
    /// Longest wait for a free pooled connection.
    pub wait_timeout: Duration,
    /// Longest to open a connection (TCP and start-up) or to check a pooled one.
    pub connect_timeout: Duration,
    /// TLS to the server ([`SslMode`] has the modes and their meaning).
    pub ssl_mode: SslMode,
    /// CA certificates (PEM) the server's certificate must chain to; `None`: the system's.
    pub ssl_root_cert: Option<PathBuf>,
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("pool_size", &self.pool_size)
            .field("wait_timeout", &self.wait_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .finish()
    }
}

impl DatabaseSettings {
    /// Parses `url` (JDBC or libpq URL form); `url_key` names the variable for errors. TLS
    /// comes from the URL's parameters, else `ssl_mode` and `ssl_root_cert` (the environment's).
    ///
    /// # Errors
    /// The URL is not a PostgreSQL URL with one TCP host and a database name, or has a
    /// parameter libpq does not know or a TLS parameter with an impossible value.
    pub fn parse(
        url_key: &str,
        url: &str,
        username: String,
        password: String,
        (ssl_mode, ssl_root_cert): (SslMode, Option<PathBuf>),
    ) -> Result<Self, ConfigError> {
        let bad = |problem: String| ConfigError::new(url_key, problem);
        let tls = split_url(url).map_err(bad)?;
        if let Some(path) = &tls.root_cert {
            std::fs::File::open(path)
                .map_err(|e| bad(format!("sslrootcert: cannot read {}: {e}", path.display())))?;
        }
        let url = tls.rest.as_str();
        let libpq_url = url.strip_prefix("jdbc:").unwrap_or(url);
        if !(libpq_url.starts_with("postgresql://") || libpq_url.starts_with("postgres://")) {
            return Err(bad(
                "expected jdbc:postgresql://host:port/dbname (or postgresql://host:port/dbname)"
                    .into(),
            ));
        }
        let parsed = tokio_postgres::Config::from_str(libpq_url).map_err(|e| bad(e.to_string()))?;
        let host = match parsed.get_hosts() {
            [tokio_postgres::config::Host::Tcp(host)] => host.clone(),
            [] => return Err(bad("no host given".into())),
            _ => return Err(bad("exactly one TCP host is supported".into())),
        };
        let port = parsed.get_ports().first().copied().unwrap_or(5432);
        let dbname = parsed
            .get_dbname()
            .filter(|name| !name.is_empty())
            .ok_or_else(|| bad("no database name given".into()))?
            .to_owned();
        Ok(Self {
            host,
            port,
            dbname,
            username,
            password,
            pool_size: 8,
            wait_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            ssl_mode: tls.mode.unwrap_or(ssl_mode),
            ssl_root_cert: tls.root_cert.or(ssl_root_cert),
        })
    }

    /// The driver configuration for this database (used by the pool and by `migrate`).
    pub fn pg_config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .dbname(&self.dbname)
            .user(&self.username)
            .password(&self.password)
            .connect_timeout(self.connect_timeout)
            .application_name("user-otp")
            // The verifying modes need TLS too; what is checked is the connector's business
            // (`store::tls`).
            .ssl_mode(match self.ssl_mode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                    tokio_postgres::config::SslMode::Require
                }
            });
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<DatabaseSettings, ConfigError> {
        DatabaseSettings::parse(
            "SPRING_DATASOURCE_URL",
            url,
            "u".into(),
            "p".into(),
            (SslMode::Prefer, None),
        )
    }

    #[test]
    fn jdbc_url_gives_host_port_and_database() {
        let db = parse("jdbc:postgresql://db.egov:5432/egov_otp").expect("valid");
        assert_eq!(
            (db.host.as_str(), db.port, db.dbname.as_str()),
            ("db.egov", 5432, "egov_otp")
        );
    }

    #[test]
    fn port_defaults_to_5432_and_libpq_urls_work() {
        let db = parse("postgresql://localhost/otp").expect("valid");
        assert_eq!((db.port, db.dbname.as_str()), (5432, "otp"));
    }

    #[test]
    fn bad_urls_name_the_key() {
        for url in [
            "mysql://x/y",
            "jdbc:postgresql://host:notaport/db",
            "jdbc:postgresql://host:5432",
        ] {
            let err = parse(url).expect_err(url);
            assert_eq!(err.key, "SPRING_DATASOURCE_URL", "{url}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let db = parse("jdbc:postgresql://h/d").expect("valid");
        let shown = format!("{db:?}");
        assert!(
            shown.contains("<redacted>") && !shown.contains("\"p\""),
            "{shown}"
        );
    }
}
