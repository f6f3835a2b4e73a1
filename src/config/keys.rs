//! Every configuration key: the project's name, the DIGIT name it also answers to, and what it
//! means. The README's configuration table is checked against this list by a test.

/// One configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The project's own environment variable name.
    pub name: &'static str,
    /// The DIGIT (Spring, upper-cased) name accepted as well.
    pub digit: Option<&'static str>,
}

const fn own(name: &'static str) -> Key {
    Key { name, digit: None }
}

const fn digit(name: &'static str, digit: &'static str) -> Key {
    Key {
        name,
        digit: Some(digit),
    }
}

pub const PROFILE: Key = own("USER_OTP_PROFILE");
pub const HTTP_PORT: Key = digit("USER_OTP_HTTP_PORT", "SERVER_PORT");
pub const HTTP_MAX_BODY_BYTES: Key = own("USER_OTP_HTTP_MAX_BODY_BYTES");
pub const HTTP_HEADER_READ_TIMEOUT_MS: Key = own("USER_OTP_HTTP_HEADER_READ_TIMEOUT_MS");
pub const HTTP_REQUEST_TIMEOUT_MS: Key = own("USER_OTP_HTTP_REQUEST_TIMEOUT_MS");
pub const HTTP_MAX_CONCURRENT_REQUESTS: Key = own("USER_OTP_HTTP_MAX_CONCURRENT_REQUESTS");
pub const KAFKA_BOOTSTRAP_SERVERS: Key = digit(
    "USER_OTP_KAFKA_BOOTSTRAP_SERVERS",
    "SPRING_KAFKA_BOOTSTRAP_SERVERS",
);
pub const KAFKA_SEND_TIMEOUT_MS: Key = own("USER_OTP_KAFKA_SEND_TIMEOUT_MS");
pub const KAFKA_LINGER_MS: Key = own("USER_OTP_KAFKA_LINGER_MS");
pub const KAFKA_MESSAGE_MAX_BYTES: Key = own("USER_OTP_KAFKA_MESSAGE_MAX_BYTES");
pub const REQUEST_TOPIC: Key = own("USER_OTP_REQUEST_TOPIC");
pub const SMS_TOPIC: Key = digit("USER_OTP_SMS_TOPIC", "SMS_TOPIC");
pub const EMAIL_TOPIC: Key = digit("USER_OTP_EMAIL_TOPIC", "EMAIL_TOPIC");
pub const DEAD_LETTER_TOPIC: Key = own("USER_OTP_DEAD_LETTER_TOPIC");
pub const USER_HOST: Key = digit("USER_OTP_USER_HOST", "USER_HOST");
pub const SEARCH_USER_URL: Key = digit("USER_OTP_SEARCH_USER_URL", "SEARCH_USER_URL");
pub const SMS_EXPIRY_MS: Key = digit("USER_OTP_SMS_EXPIRY_MS", "EXPIRY_TIME_FOR_OTP");
pub const CODE_LENGTH: Key = digit("USER_OTP_CODE_LENGTH", "EGOV_OTP_LENGTH");
pub const CODE_TTL_SECONDS: Key = digit("USER_OTP_CODE_TTL_SECONDS", "EGOV_OTP_TTL");
pub const DATABASE_URL: Key = digit("USER_OTP_DATABASE_URL", "SPRING_DATASOURCE_URL");
pub const DATABASE_USERNAME: Key =
    digit("USER_OTP_DATABASE_USERNAME", "SPRING_DATASOURCE_USERNAME");
pub const DATABASE_PASSWORD: Key =
    digit("USER_OTP_DATABASE_PASSWORD", "SPRING_DATASOURCE_PASSWORD");

pub const DATABASE_POOL_SIZE: Key = own("USER_OTP_DATABASE_POOL_SIZE");
pub const DATABASE_WAIT_TIMEOUT_MS: Key = own("USER_OTP_DATABASE_WAIT_TIMEOUT_MS");
pub const DATABASE_CONNECT_TIMEOUT_MS: Key = own("USER_OTP_DATABASE_CONNECT_TIMEOUT_MS");
pub const HMAC_KEY_ID: Key = own("USER_OTP_HMAC_KEY_ID");
pub const CONSUMER_GROUP: Key = own("USER_OTP_CONSUMER_GROUP");
pub const GROUP_INSTANCE_ID: Key = own("USER_OTP_KAFKA_GROUP_INSTANCE_ID");
pub const WORKER_BATCH_SIZE: Key = own("USER_OTP_WORKER_BATCH_SIZE");
pub const WORKER_MAX_IN_FLIGHT_EVENTS: Key = own("USER_OTP_WORKER_MAX_IN_FLIGHT_EVENTS");
pub const WORKER_MAX_IN_FLIGHT_BYTES: Key = own("USER_OTP_WORKER_MAX_IN_FLIGHT_BYTES");
pub const USER_TIMEOUT_MS: Key = own("USER_OTP_USER_TIMEOUT_MS");
pub const MAX_FAILED_ATTEMPTS: Key = own("USER_OTP_MAX_FAILED_ATTEMPTS");
pub const SMS_TEXT_REGISTER: Key = own("USER_OTP_SMS_TEXT_REGISTER");
pub const SMS_TEXT_LOGIN: Key = own("USER_OTP_SMS_TEXT_LOGIN");
pub const SMS_TEXT_PASSWORDRESET: Key = own("USER_OTP_SMS_TEXT_PASSWORDRESET");
pub const DLT_TEMPLATE_ID_REGISTER: Key = own("USER_OTP_DLT_TEMPLATE_ID_REGISTER");
pub const DLT_TEMPLATE_ID_LOGIN: Key = own("USER_OTP_DLT_TEMPLATE_ID_LOGIN");
pub const DLT_TEMPLATE_ID_PASSWORDRESET: Key = own("USER_OTP_DLT_TEMPLATE_ID_PASSWORDRESET");

/// Keys read by name elsewhere (the secret and the override file).
pub const HMAC_SECRET: Key = own(super::secret::SECRET_KEY);
pub const HMAC_SECRET_FILE: Key = own(super::secret::SECRET_FILE_KEY);
pub const CONFIG_FILE: Key = own(super::sources::CONFIG_FILE_KEY);

/// All keys, in the README's order.
pub const ALL: &[Key] = &[
    PROFILE,
    HTTP_PORT,
    HTTP_MAX_BODY_BYTES,
    HTTP_HEADER_READ_TIMEOUT_MS,
    HTTP_REQUEST_TIMEOUT_MS,
    HTTP_MAX_CONCURRENT_REQUESTS,
    KAFKA_BOOTSTRAP_SERVERS,
    KAFKA_SEND_TIMEOUT_MS,
    KAFKA_LINGER_MS,
    KAFKA_MESSAGE_MAX_BYTES,
    REQUEST_TOPIC,
    SMS_TOPIC,
    EMAIL_TOPIC,
    DEAD_LETTER_TOPIC,
    USER_HOST,
    SEARCH_USER_URL,
    SMS_EXPIRY_MS,
    CODE_LENGTH,
    CODE_TTL_SECONDS,
    DATABASE_URL,
    DATABASE_USERNAME,
    DATABASE_PASSWORD,
    DATABASE_POOL_SIZE,
    DATABASE_WAIT_TIMEOUT_MS,
    DATABASE_CONNECT_TIMEOUT_MS,
    CONSUMER_GROUP,
    GROUP_INSTANCE_ID,
    WORKER_BATCH_SIZE,
    WORKER_MAX_IN_FLIGHT_EVENTS,
    WORKER_MAX_IN_FLIGHT_BYTES,
    USER_TIMEOUT_MS,
    MAX_FAILED_ATTEMPTS,
    SMS_TEXT_REGISTER,
    SMS_TEXT_LOGIN,
    SMS_TEXT_PASSWORDRESET,
    DLT_TEMPLATE_ID_REGISTER,
    DLT_TEMPLATE_ID_LOGIN,
    DLT_TEMPLATE_ID_PASSWORDRESET,
    HMAC_KEY_ID,
    HMAC_SECRET,
    HMAC_SECRET_FILE,
    CONFIG_FILE,
];
