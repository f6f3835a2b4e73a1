//! Typed configuration: defaults from `config/default.env`, overridden by environment variables
//! under the project's `USER_OTP_…` names or DIGIT's names (see [`sources`] for precedence and
//! [`keys`] for the list). The whole configuration is validated at start-up; the first invalid
//! value stops the process with a [`ConfigError`] naming its key.

mod abuse;
mod database;
mod database_tls;
mod error;
mod kafka_security;
mod keyring;
pub mod keys;
mod localization;
mod secret;
pub mod sources;

use std::str::FromStr;
use std::time::Duration;

pub use abuse::{AbuseSettings, RetentionSettings};
pub use database::DatabaseSettings;
pub use database_tls::SslMode;
pub use error::ConfigError;
pub use kafka_security::{KafkaSecurity, SaslCredentials, SaslMechanism, SecurityProtocol};
pub use keyring::PreviousKey;
pub use localization::LocalizationSettings;
pub use secret::HmacSecret;
pub use sources::Sources;

use crate::domain::code::{MAX_CODE_LENGTH, MIN_CODE_LENGTH};
use crate::domain::templates::has_placeholder;
use crate::domain::OtpType;
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
    /// A connection that has not sent a request's headers within this time is closed.
    pub header_read_timeout: Duration,
    /// Longest one request may take (body and answer); then 503.
    pub request_timeout: Duration,
    /// Requests handled at once; more are shed with 503 and `Retry-After`.
    pub max_concurrent_requests: usize,
    /// Whether `_send` waits for the request's outcome (`USER_OTP_SEND_MODE`).
    pub send_mode: SendMode,
    /// Prefix of `_send` and its health paths, e.g. `/user-otp` or `/assam/user-otp`; `""` for
    /// the root (`USER_OTP_CONTEXT_PATH`, DIGIT's `SERVER_SERVLET_CONTEXT_PATH`).
    pub context_path: String,
    /// Prefix of the egov-otp API and its health paths, e.g. `/otp` (`USER_OTP_OTP_API_PATH`).
    pub otp_api_path: String,
    /// The port the egov-otp API is served on instead of the public one
    /// (`USER_OTP_OTP_API_PORT`); `None`: the public port.
    pub otp_api_port: Option<u16>,
}

/// How `_send` answers (`USER_OTP_SEND_MODE`, `USER_OTP_SYNC_WAIT_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    /// 201 once the request event is acknowledged, whatever its outcome: the answer does not
    /// reveal whether a user exists (the default).
    Async,
    /// Waits up to `wait` for the request's outcome on the outcome topic and answers the Java
    /// service's outcome errors ([contract §1](../../docs/contract.md#1-the-send-request)), else 201.
    Sync {
        /// Longest wait for the outcome.
        wait: Duration,
    },
}

/// Migrations (README "Deploying on DIGIT", migrations): who applies them and whether every
/// role does at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationSettings {
    /// Apply missing migrations at start-up (`USER_OTP_MIGRATE_ON_START`, DIGIT's
    /// `FLYWAY_ENABLED`); else only check the schema version.
    pub on_start: bool,
    /// The database as `user-otp migrate` connects to it: the datasource with the migration
    /// credentials (`USER_OTP_MIGRATE_USERNAME`/`_PASSWORD`, DIGIT's `FLYWAY_USER`/
    /// `FLYWAY_PASSWORD`); `None`: the datasource user itself.
    pub owner: Option<DatabaseSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    /// Protocol, SASL and TLS of every client ([`KafkaSecurity`]).
    pub security: KafkaSecurity,
    /// Upper bound on waiting for the broker's acknowledgement of a produced event.
    pub send_timeout: Duration,
    pub linger_ms: u32,
    /// Largest record the producer writes, in bytes (librdkafka `message.max.bytes`).
    pub message_max_bytes: usize,
    pub request_topic: String,
    pub sms_topic: String,
    pub email_topic: String,
    pub dead_letter_topic: String,
    /// One event per request and per validation: what became of it
    /// (`schemas/outcome-event.schema.json`).
    pub outcome_topic: String,
    /// The worker's consumer group.
    pub consumer_group: String,
    /// Static group membership (`group.instance.id`): a restarted worker with the same id takes
    /// its partitions back at once instead of waiting out its predecessor's session.
    pub group_instance_id: Option<String>,
    /// Most request events handled as one batch.
    pub worker_batch_size: usize,
    /// Most request events a worker holds (queued and in progress).
    pub worker_max_in_flight_events: usize,
    /// Most bytes (key, value, headers) of request events a worker holds.
    pub worker_max_in_flight_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserServiceSettings {
    /// Base URL of egov-user, e.g. `http://egov-user:8080`.
    pub host: String,
    /// Path of the search endpoint, e.g. `/user/_search`.
    pub search_path: String,
    /// Bound on one call (failed calls are retried).
    pub call_timeout: Duration,
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
    /// Wrong codes after which a code is dead.
    pub max_failed_attempts: u32,
    /// SMS text overrides per type (`None`: DIGIT's en_IN default).
    pub sms_texts: PerType<Option<String>>,
    /// DLT template ids per type, for the SMS event's `templateId`.
    pub dlt_template_ids: PerType<Option<String>>,
    /// DLT template ids of localized texts, per type and locale (`hi_IN` → id).
    pub dlt_template_ids_by_locale: PerType<std::collections::BTreeMap<String, String>>,
    /// Whether login and passwordreset codes also go by email (DIGIT does).
    pub email_enabled: bool,
}

/// One value per OTP request type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerType<T> {
    pub register: T,
    pub login: T,
    pub password_reset: T,
}

impl<T> PerType<T> {
    pub fn get(&self, otp_type: OtpType) -> &T {
        match otp_type {
            OtpType::Register => &self.register,
            OtpType::Login => &self.login,
            OtpType::PasswordReset => &self.password_reset,
        }
    }
}

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub profile: Profile,
    pub http: HttpSettings,
    pub kafka: KafkaSettings,
    pub user_service: UserServiceSettings,
    /// egov-localization: where SMS and email texts come from first.
    pub localization: LocalizationSettings,
    pub otp: OtpSettings,
    pub database: DatabaseSettings,
    /// How and when migrations run.
    pub migration: MigrationSettings,
    pub hmac_secret: HmacSecret,
    /// Stored beside every hash so the secret can be rotated.
    pub hmac_key_id: String,
    /// Keys that still validate codes made with them (never used for new codes).
    pub hmac_previous_keys: Vec<PreviousKey>,
    pub abuse: AbuseSettings,
    pub retention: RetentionSettings,
    /// Things worth a warning at start-up (a long code validity, a world-readable secret file).
    pub warnings: Vec<String>,
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
        let database_tls = read.database_tls()?;
        let env_ssl_mode = database_tls.0;
        let mut warnings = Vec::new();
        let code_length = read.number(keys::CODE_LENGTH, MIN_CODE_LENGTH..=MAX_CODE_LENGTH)?;
        if profile == Profile::Production && code_length < PRODUCTION_MIN_CODE_LENGTH {
            return Err(read.invalid(
                keys::CODE_LENGTH,
                "codes shorter than 6 digits are refused in the production profile (NIST SP 800-63B: at least 6 digits)",
            ));
        }
        let code_ttl = Duration::from_secs(read.number(keys::CODE_TTL_SECONDS, 30..=86_400)?);
        if code_ttl > NIST_MAX_CODE_TTL {
            warnings.push(format!(
                "{}: codes stay valid {} s; NIST SP 800-63B §5.1.3 caps out-of-band codes at 10 minutes (600 s)",
                read.found(keys::CODE_TTL_SECONDS)?.key,
                code_ttl.as_secs()
            ));
        }
        let hmac_key_id = read.key_id(keys::HMAC_KEY_ID)?;
        let hmac_previous_keys = keyring::load_previous(sources, &hmac_key_id, &mut warnings)?;
        warnings.extend(secret::file_warning(sources));
        let abuse = read.abuse(profile)?;
        let retention = read.retention(&abuse, code_ttl)?;
        let mut settings = Self {
            profile,
            http: HttpSettings {
                port: read.number(keys::HTTP_PORT, 1..=65535)?,
                max_body_bytes: read.number(keys::HTTP_MAX_BODY_BYTES, 256..=16 * 1024 * 1024)?,
                header_read_timeout: Duration::from_millis(
                    read.number(keys::HTTP_HEADER_READ_TIMEOUT_MS, 100..=300_000)?,
                ),
                request_timeout: Duration::from_millis(
                    read.number(keys::HTTP_REQUEST_TIMEOUT_MS, 100..=600_000)?,
                ),
                max_concurrent_requests: read
                    .number(keys::HTTP_MAX_CONCURRENT_REQUESTS, 1..=1_000_000)?,
                send_mode: read.send_mode()?,
                context_path: read.path_prefix(keys::CONTEXT_PATH)?,
                otp_api_path: read.path_prefix(keys::OTP_API_PATH)?,
                otp_api_port: read.otp_api_port()?,
            },
            kafka: KafkaSettings {
                bootstrap_servers: read.text(keys::KAFKA_BOOTSTRAP_SERVERS)?,
                security: read.kafka_security()?,
                send_timeout: Duration::from_millis(
                    read.number(keys::KAFKA_SEND_TIMEOUT_MS, 100..=300_000)?,
                ),
                linger_ms: read.number(keys::KAFKA_LINGER_MS, 0..=1_000)?,
                message_max_bytes: read
                    .number(keys::KAFKA_MESSAGE_MAX_BYTES, 65_536..=100_000_000)?,
                request_topic: read.topic(keys::REQUEST_TOPIC)?,
                sms_topic: read.topic(keys::SMS_TOPIC)?,
                email_topic: read.topic(keys::EMAIL_TOPIC)?,
                dead_letter_topic: read.topic(keys::DEAD_LETTER_TOPIC)?,
                outcome_topic: read.topic(keys::OUTCOME_TOPIC)?,
                consumer_group: read.text(keys::CONSUMER_GROUP)?,
                group_instance_id: read.optional(keys::GROUP_INSTANCE_ID),
                worker_batch_size: read.number(keys::WORKER_BATCH_SIZE, 1..=10_000)?,
                worker_max_in_flight_events: read
                    .number(keys::WORKER_MAX_IN_FLIGHT_EVENTS, 1..=10_000_000)?,
                worker_max_in_flight_bytes: read
                    .number(keys::WORKER_MAX_IN_FLIGHT_BYTES, 1_048_576..=17_179_869_184)?,
            },
            user_service: UserServiceSettings {
                host: read.http_url(keys::USER_HOST)?,
                search_path: read.path(keys::SEARCH_USER_URL)?,
                call_timeout: Duration::from_millis(
                    read.number(keys::USER_TIMEOUT_MS, 50..=60_000)?,
                ),
            },
            localization: read.localization()?,
            otp: OtpSettings {
                sms_expiry: Duration::from_millis(
                    read.number(keys::SMS_EXPIRY_MS, 100..=3_600_000)?,
                ),
                code_length,
                code_ttl,
                max_failed_attempts: read.number(keys::MAX_FAILED_ATTEMPTS, 1..=100)?,
                sms_texts: PerType {
                    register: read.sms_text(keys::SMS_TEXT_REGISTER)?,
                    login: read.sms_text(keys::SMS_TEXT_LOGIN)?,
                    password_reset: read.sms_text(keys::SMS_TEXT_PASSWORDRESET)?,
                },
                dlt_template_ids: PerType {
                    register: read.optional(keys::DLT_TEMPLATE_ID_REGISTER),
                    login: read.optional(keys::DLT_TEMPLATE_ID_LOGIN),
                    password_reset: read.optional(keys::DLT_TEMPLATE_ID_PASSWORDRESET),
                },
                dlt_template_ids_by_locale: PerType {
                    register: read.dlt_ids_by_locale(keys::DLT_TEMPLATE_IDS_BY_LOCALE_REGISTER)?,
                    login: read.dlt_ids_by_locale(keys::DLT_TEMPLATE_IDS_BY_LOCALE_LOGIN)?,
                    password_reset: read
                        .dlt_ids_by_locale(keys::DLT_TEMPLATE_IDS_BY_LOCALE_PASSWORDRESET)?,
                },
                email_enabled: read.flag(keys::EMAIL_OTP_ENABLED)?,
            },
            database: DatabaseSettings {
                pool_size: read.number(keys::DATABASE_POOL_SIZE, 1..=256)?,
                wait_timeout: Duration::from_millis(
                    read.number(keys::DATABASE_WAIT_TIMEOUT_MS, 10..=300_000)?,
                ),
                connect_timeout: Duration::from_millis(
                    read.number(keys::DATABASE_CONNECT_TIMEOUT_MS, 10..=300_000)?,
                ),
                ..DatabaseSettings::parse(
                    &database_url.key,
                    &database_url.value,
                    read.text(keys::DATABASE_USERNAME)?,
                    read.optional(keys::DATABASE_PASSWORD).unwrap_or_default(),
                    database_tls,
                )?
            },
            migration: MigrationSettings {
                on_start: read.flag(keys::MIGRATE_ON_START)?,
                owner: None,
            },
            hmac_secret: HmacSecret::load(sources, profile == Profile::Development)?,
            hmac_key_id,
            hmac_previous_keys,
            abuse,
            retention,
            warnings,
        };
        if settings.database.ssl_mode.strength() < env_ssl_mode.strength() {
            settings.warnings.push(format!(
                "{}: its sslmode ({:?}) wins over {} ({:?}), as in libpq, and checks less",
                database_url.key,
                settings.database.ssl_mode,
                read.found(keys::DATABASE_SSL_MODE)?.key,
                env_ssl_mode
            ));
        }
        settings.migration.owner = match read.optional(keys::MIGRATE_USERNAME) {
            Some(username) => Some(DatabaseSettings {
                username,
                password: read.optional(keys::MIGRATE_PASSWORD).unwrap_or_default(),
                ..settings.database.clone()
            }),
            None => None,
        };
        Ok(settings)
    }
}

/// Shortest code the production profile accepts ([NIST SP 800-63B §5.1.3](https://pages.nist.gov/800-63-3/sp800-63b.html): at least 6 digits).
pub const PRODUCTION_MIN_CODE_LENGTH: u8 = 6;

/// Longest code validity without a start-up warning ([NIST SP 800-63B §5.1.3](https://pages.nist.gov/800-63-3/sp800-63b.html): 10 minutes).
pub const NIST_MAX_CODE_TTL: Duration = Duration::from_secs(600);

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

    /// `PGSSLMODE` and `PGSSLROOTCERT` (the JDBC URL's parameters win over them); the CA file
    /// must be readable.
    fn database_tls(&self) -> Result<(SslMode, Option<std::path::PathBuf>), ConfigError> {
        let text = self.text(keys::DATABASE_SSL_MODE)?;
        let mode = SslMode::parse(&text).ok_or_else(|| {
            self.invalid(
                keys::DATABASE_SSL_MODE,
                "expected disable, allow, prefer, require, verify-ca or verify-full",
            )
        })?;
        Ok((mode, self.readable_file(keys::DATABASE_SSL_ROOT_CERT)?))
    }

    /// An optional path to a file that must be readable now (a certificate, a key).
    fn readable_file(&self, key: Key) -> Result<Option<std::path::PathBuf>, ConfigError> {
        let Some(path) = self.optional(key) else {
            return Ok(None);
        };
        match std::fs::File::open(&path) {
            Ok(_) => Ok(Some(path.into())),
            Err(error) => Err(self.invalid(key, &format!("cannot read {path}: {error}"))),
        }
    }

    /// The Kafka clients' security ([`kafka_security`]): SASL settings only with a SASL
    /// protocol and TLS files only with a TLS one, so that credentials set beside a forgotten
    /// protocol stop the service instead of going unused over plain TCP.
    fn kafka_security(&self) -> Result<KafkaSecurity, ConfigError> {
        let protocol = SecurityProtocol::parse(&self.text(keys::KAFKA_SECURITY_PROTOCOL)?)
            .ok_or_else(|| {
                self.invalid(
                    keys::KAFKA_SECURITY_PROTOCOL,
                    "expected plaintext, ssl, sasl_plaintext or sasl_ssl",
                )
            })?;
        let jaas = self
            .optional(keys::KAFKA_SASL_JAAS_CONFIG)
            .map(|line| {
                kafka_security::jaas_credentials(&line).ok_or_else(|| {
                    self.invalid(
                        keys::KAFKA_SASL_JAAS_CONFIG,
                        "no username=\"…\" and password=\"…\" in it",
                    )
                })
            })
            .transpose()?;
        let username = self.optional(keys::KAFKA_SASL_USERNAME);
        let password = self.optional(keys::KAFKA_SASL_PASSWORD);
        let mechanism = self.optional(keys::KAFKA_SASL_MECHANISM);
        let sasl = if protocol.uses_sasl() {
            let mechanism = mechanism
                .ok_or_else(|| self.invalid(keys::KAFKA_SASL_MECHANISM, "required with SASL"))
                .and_then(|m| {
                    SaslMechanism::parse(&m)
                        .map_err(|problem| self.invalid(keys::KAFKA_SASL_MECHANISM, &problem))
                })?;
            let (jaas_user, jaas_password) = jaas.unzip();
            let required = |key: Key| {
                self.invalid(
                    key,
                    "required with SASL (or USER_OTP_KAFKA_SASL_JAAS_CONFIG)",
                )
            };
            Some(SaslCredentials {
                mechanism,
                username: username
                    .or(jaas_user)
                    .ok_or_else(|| required(keys::KAFKA_SASL_USERNAME))?,
                password: password
                    .or(jaas_password)
                    .ok_or_else(|| required(keys::KAFKA_SASL_PASSWORD))?,
            })
        } else {
            let set = [
                (keys::KAFKA_SASL_MECHANISM, mechanism.is_some()),
                (keys::KAFKA_SASL_USERNAME, username.is_some()),
                (keys::KAFKA_SASL_PASSWORD, password.is_some()),
                (keys::KAFKA_SASL_JAAS_CONFIG, jaas.is_some()),
            ];
            if let Some((key, _)) = set.into_iter().find(|(_, set)| *set) {
                return Err(self.invalid(
                    key,
                    &format!(
                        "set, but the security protocol is {} (sasl_ssl or sasl_plaintext uses it)",
                        protocol.as_str()
                    ),
                ));
            }
            None
        };
        let tls_files = [
            keys::KAFKA_SSL_CA_LOCATION,
            keys::KAFKA_SSL_CERTIFICATE_LOCATION,
            keys::KAFKA_SSL_KEY_LOCATION,
            keys::KAFKA_SSL_KEY_PASSWORD,
        ];
        if !protocol.uses_tls() {
            if let Some(key) = tls_files.into_iter().find(|k| self.optional(*k).is_some()) {
                return Err(self.invalid(
                    key,
                    &format!(
                        "set, but the security protocol is {} (ssl or sasl_ssl uses it)",
                        protocol.as_str()
                    ),
                ));
            }
        }
        let ssl_certificate_location = self.readable_file(keys::KAFKA_SSL_CERTIFICATE_LOCATION)?;
        let ssl_key_location = self.readable_file(keys::KAFKA_SSL_KEY_LOCATION)?;
        if ssl_certificate_location.is_some() != ssl_key_location.is_some() {
            return Err(self.invalid(
                keys::KAFKA_SSL_KEY_LOCATION,
                "a client certificate and its key go together (USER_OTP_KAFKA_SSL_CERTIFICATE_LOCATION and USER_OTP_KAFKA_SSL_KEY_LOCATION)",
            ));
        }
        let ssl_endpoint_identification =
            match self.text(keys::KAFKA_SSL_ENDPOINT_IDENTIFICATION)?.as_str() {
                "https" => true,
                "none" => false,
                _ => {
                    return Err(self.invalid(
                        keys::KAFKA_SSL_ENDPOINT_IDENTIFICATION,
                        "expected https (check the broker's name) or none",
                    ))
                }
            };
        Ok(KafkaSecurity {
            protocol,
            sasl,
            ssl_ca_location: self.readable_file(keys::KAFKA_SSL_CA_LOCATION)?,
            ssl_certificate_location,
            ssl_key_location,
            ssl_key_password: self.optional(keys::KAFKA_SSL_KEY_PASSWORD),
            ssl_endpoint_identification,
        })
    }

    /// `USER_OTP_SEND_MODE` and, in sync mode, `USER_OTP_SYNC_WAIT_MS` (shorter than the
    /// request timeout, so the wait ends before the server gives up on the request).
    fn send_mode(&self) -> Result<SendMode, ConfigError> {
        match self.text(keys::SEND_MODE)?.as_str() {
            "async" => Ok(SendMode::Async),
            "sync" => {
                let wait_ms: u64 = self.number(keys::SYNC_WAIT_MS, 100..=60_000)?;
                let request_timeout_ms: u64 =
                    self.number(keys::HTTP_REQUEST_TIMEOUT_MS, 100..=600_000)?;
                if wait_ms >= request_timeout_ms {
                    return Err(self.invalid(
                        keys::SYNC_WAIT_MS,
                        "must be less than USER_OTP_HTTP_REQUEST_TIMEOUT_MS",
                    ));
                }
                Ok(SendMode::Sync {
                    wait: Duration::from_millis(wait_ms),
                })
            }
            _ => Err(self.invalid(keys::SEND_MODE, "expected async or sync")),
        }
    }

    /// A path prefix: `/` and segments of URL-safe characters (`A-Z a-z 0-9 . _ ~ -`), a
    /// trailing `/` dropped; `/` alone is the root (`""`).
    fn path_prefix(&self, key: Key) -> Result<String, ConfigError> {
        let value = self.text(key)?;
        let prefix = value.trim_end_matches('/');
        let segment_ok = |segment: &str| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c))
        };
        let valid =
            value.starts_with('/') && (prefix.is_empty() || prefix[1..].split('/').all(segment_ok));
        if valid && prefix.len() <= 200 {
            Ok(prefix.to_owned())
        } else {
            Err(self.invalid(
                key,
                &format!("{value:?} is not a path prefix such as /user-otp or /assam/user-otp"),
            ))
        }
    }

    /// `USER_OTP_OTP_API_PORT`, which must differ from the public port; and, when both share
    /// the public port, the egov-otp API path must differ from the context path.
    fn otp_api_port(&self) -> Result<Option<u16>, ConfigError> {
        let port = match self.optional(keys::OTP_API_PORT) {
            None => None,
            Some(_) => Some(self.number::<u16>(keys::OTP_API_PORT, 1..=65535)?),
        };
        let http_port: u16 = self.number(keys::HTTP_PORT, 1..=65535)?;
        if port == Some(http_port) {
            return Err(self.invalid(
                keys::OTP_API_PORT,
                "must differ from USER_OTP_HTTP_PORT (leave it empty to share that port)",
            ));
        }
        if port.is_none()
            && self.path_prefix(keys::CONTEXT_PATH)? == self.path_prefix(keys::OTP_API_PATH)?
        {
            return Err(self.invalid(
                keys::OTP_API_PATH,
                "must differ from the context path while both are served on one port",
            ));
        }
        Ok(port)
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

    /// An SMS text override: it must mark where the code goes (`%s` or `{otp}`).
    fn sms_text(&self, key: Key) -> Result<Option<String>, ConfigError> {
        match self.0.get(key.name, key.digit) {
            None => Ok(None),
            Some(found) if has_placeholder(&found.value) => Ok(Some(found.value)),
            Some(found) => Err(ConfigError::new(
                found.key,
                "must contain %s or {otp} where the code goes",
            )),
        }
    }

    /// A short identifier: 1–32 of `[A-Za-z0-9_-]`.
    fn key_id(&self, key: Key) -> Result<String, ConfigError> {
        let found = self.found(key)?;
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
        if found.value.len() <= 32 && found.value.chars().all(legal) {
            Ok(found.value)
        } else {
            Err(ConfigError::new(
                found.key,
                format!("{:?} is not 1-32 of letters, digits, '_', '-'", found.value),
            ))
        }
    }

    fn http_url(&self, key: Key) -> Result<String, ConfigError> {
        let found = self.found(key)?;
        // Plain HTTP only: egov-user is reached inside the cluster and no TLS stack is built in.
        match found.value.strip_prefix("http://") {
            Some(authority)
                if !authority.is_empty() && !authority.contains(char::is_whitespace) =>
            {
                Ok(found.value)
            }
            _ => Err(ConfigError::new(
                found.key,
                format!(
                    "{:?} is not an http:// URL (https is not supported)",
                    found.value
                ),
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
