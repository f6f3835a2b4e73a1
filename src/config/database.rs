//! PostgreSQL connection settings from DIGIT's JDBC-style URL.
//!
//! DIGIT charts set `SPRING_DATASOURCE_URL=jdbc:postgresql://host:5432/dbname` with the user and
//! password in separate variables; a plain `postgresql://…` URL is accepted too. JDBC query
//! parameters other than the libpq ones (`sslmode`, …) are rejected with the key named rather
//! than silently dropped.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

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
            .finish()
    }
}

impl DatabaseSettings {
    /// Parses `url` (JDBC or libpq URL form); `url_key` names the variable for errors.
    pub fn parse(
        url_key: &str,
        url: &str,
        username: String,
        password: String,
    ) -> Result<Self, ConfigError> {
        let bad = |problem: String| ConfigError::new(url_key, problem);
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
            .application_name("user-otp");
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<DatabaseSettings, ConfigError> {
        DatabaseSettings::parse("SPRING_DATASOURCE_URL", url, "u".into(), "p".into())
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
