//! Typed configuration: defaults from `config/default.env`, overridden by environment variables
//! under the project's `USER_OTP_…` names or DIGIT's names (see [`sources`] for precedence and
//! [`keys`] for the list). The whole configuration is validated at start-up; the first invalid
//! value stops the process with a [`ConfigError`] naming its key.

mod database;
mod error;
pub mod keys;
mod secret;
pub mod sources;

use std::str::FromStr;
use std::time::Duration;

pub use database::DatabaseSettings;
pub use error::ConfigError;
pub use secret::HmacSecret;
pub use sources::Sources;

use keys::Key;

/// Which safety checks apply: production refuses to run without a real HMAC secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Production,
    Development,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    pub port: u16,
    /// Request bodies above this size are refused with 400.
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    /// Upper bound on waiting for the broker's acknowledgement of a produced event.
    pub send_timeout: Duration,
    pub linger_ms: u32,
    pub request_topic: String,
    pub sms_topic: String,
    pub email_topic: String,
    pub dead_letter_topic: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserServiceSettings {
    /// Base URL of egov-user, e.g. `http://egov-user:8080`.
    pub host: String,
    /// Path of the search endpoint, e.g. `/user/_search`.
    pub search_path: String,
}

impl UserServiceSettings {
    pub fn search_url(&self) -> String {
        format!("{}{}", self.host.trim_end_matches('/'), self.search_path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpSettings {
    /// How long after handling an SMS is still worth delivering (DIGIT `expiry.time.for.otp`).
    pub sms_expiry: Duration,
    /// Number of digits in a code (DIGIT `egov.otp.length`).
    pub code_length: u8,
    /// How long a code stays valid (DIGIT `egov.otp.ttl`).
    pub code_ttl: Duration,
}

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub profile: Profile,
    pub http: HttpSettings,
    pub kafka: KafkaSettings,
    pub user_service: UserServiceSettings,
    pub otp: OtpSettings,
    pub database: DatabaseSettings,
    pub hmac_secret: HmacSecret,
}

impl Settings {
    /// Loads from the process environment and the defaults.
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_sources(&Sources::from_process()?)
    }

    /// Loads from explicit sources (tests build their own environment).
    pub fn from_sources(sources: &Sources) -> Result<Self, ConfigError> {
        let read = Reader(sources);
        let profile = match read.text(keys::PROFILE)?.as_str() {
            "production" => Profile::Production,
            "development" => Profile::Development,
            _ => return Err(read.invalid(keys::PROFILE, "expected production or development")),
        };
        let database_url = read.found(keys::DATABASE_URL)?;
        Ok(Self {
            profile,
            http: HttpSettings {
                port: read.number(keys::HTTP_PORT, 1..=65535)?,
                max_body_bytes: read.number(keys::HTTP_MAX_BODY_BYTES, 256..=16 * 1024 * 1024)?,
            },
            kafka: KafkaSettings {
                bootstrap_servers: read.text(keys::KAFKA_BOOTSTRAP_SERVERS)?,
                send_timeout: Duration::from_millis(
                    read.number(keys::KAFKA_SEND_TIMEOUT_MS, 100..=300_000)?,
                ),
                linger_ms: read.number(keys::KAFKA_LINGER_MS, 0..=1_000)?,
                request_topic: read.topic(keys::REQUEST_TOPIC)?,
                sms_topic: read.topic(keys::SMS_TOPIC)?,
                email_topic: read.topic(keys::EMAIL_TOPIC)?,
                dead_letter_topic: read.topic(keys::DEAD_LETTER_TOPIC)?,
            },
            user_service: UserServiceSettings {
                host: read.http_url(keys::USER_HOST)?,
                search_path: read.path(keys::SEARCH_USER_URL)?,
            },
            otp: OtpSettings {
                sms_expiry: Duration::from_millis(
                    read.number(keys::SMS_EXPIRY_MS, 100..=3_600_000)?,
                ),
                code_length: read.number(keys::CODE_LENGTH, 4..=10)?,
                code_ttl: Duration::from_secs(read.number(keys::CODE_TTL_SECONDS, 30..=86_400)?),
            },
            database: DatabaseSettings::parse(
                &database_url.key,
                &database_url.value,
                read.text(keys::DATABASE_USERNAME)?,
                read.optional(keys::DATABASE_PASSWORD).unwrap_or_default(),
            )?,
            hmac_secret: HmacSecret::load(sources, profile == Profile::Development)?,
        })
    }
}

/// Typed reads of single keys, each failing with the key's name.
struct Reader<'a>(&'a Sources);

impl Reader<'_> {
    fn optional(&self, key: Key) -> Option<String> {
        self.0.get(key.name, key.digit).map(|found| found.value)
    }

    fn found(&self, key: Key) -> Result<sources::Found, ConfigError> {
        self.0
            .get(key.name, key.digit)
            .ok_or_else(|| ConfigError::new(key.name, "required but not set"))
    }

    fn text(&self, key: Key) -> Result<String, ConfigError> {
        self.found(key).map(|found| found.value)
    }

    fn invalid(&self, key: Key, problem: &str) -> ConfigError {
        let name = self
            .0
            .get(key.name, key.digit)
            .map_or(key.name.to_owned(), |found| found.key);
        ConfigError::new(name, problem)
    }

    fn number<T>(&self, key: Key, range: std::ops::RangeInclusive<T>) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display,
    {
        let found = self.found(key)?;
        let out_of_range = || {
            ConfigError::new(
                &found.key,
                format!(
                    "{:?} is not a whole number from {} to {}",
                    found.value,
                    range.start(),
                    range.end()
                ),
            )
        };
        let value: T = found.value.parse().map_err(|_| out_of_range())?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(out_of_range())
        }
    }

    /// A Kafka topic name: 1–249 of `[A-Za-z0-9._-]`, as the broker requires.
    fn topic(&self, key: Key) -> Result<String, ConfigError> {
        let found = self.found(key)?;
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if found.value.len() > 249 || !found.value.chars().all(legal) {
            return Err(ConfigError::new(
                found.key,
                format!(
                    "{:?} is not a Kafka topic name (1-249 of letters, digits, '.', '_', '-')",
                    found.value
                ),
            ));
        }
        Ok(found.value)
    }

    fn http_url(&self, key: Key) -> Result<String, ConfigError> {
        let found = self.found(key)?;
        let rest = found
            .value
            .strip_prefix("http://")
            .or_else(|| found.value.strip_prefix("https://"));
        match rest {
            Some(authority)
                if !authority.is_empty() && !authority.contains(char::is_whitespace) =>
            {
                Ok(found.value)
            }
            _ => Err(ConfigError::new(
                found.key,
                format!("{:?} is not an http(s) URL", found.value),
            )),
        }
    }

    fn path(&self, key: Key) -> Result<String, ConfigError> {
        let found = self.found(key)?;
        if found.value.starts_with('/') && !found.value.contains(char::is_whitespace) {
            Ok(found.value)
        } else {
            Err(ConfigError::new(
                found.key,
                format!("{:?} is not a path starting with '/'", found.value),
            ))
        }
    }
}

#[cfg(test)]
mod tests;
