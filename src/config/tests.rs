//! Configuration from the environment: DIGIT names, the JDBC URL, and errors that name the key.

use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let mut env: Vec<(String, String)> = vec![("USER_OTP_HMAC_SECRET".into(), SECRET.into())];
    env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::from_sources(&Sources::from_env(env)?)
}

#[test]
fn defaults_load_and_match_digit_defaults() {
    let settings = load(&[]).expect("defaults are valid");
    assert_eq!(settings.profile, Profile::Production);
    assert_eq!(settings.kafka.sms_topic, "egov.core.notification.sms");
    assert_eq!(settings.otp.code_length, 6);
    assert_eq!(settings.otp.code_ttl, Duration::from_secs(900));
    assert_eq!(settings.otp.sms_expiry, Duration::from_millis(3000));
    assert_eq!(settings.user_service.search_path, "/user/_search");
}

#[test]
fn digit_names_are_accepted() {
    let settings = load(&[
        ("SMS_TOPIC", "egov.core.notification.sms.mgramseva"),
        ("USER_HOST", "http://egov-user:8080/"),
        ("SEARCH_USER_URL", "/user/v1/_search"),
        ("EXPIRY_TIME_FOR_OTP", "5000"),
        ("EGOV_OTP_LENGTH", "8"),
        ("EGOV_OTP_TTL", "300"),
        (
            "SPRING_KAFKA_BOOTSTRAP_SERVERS",
            "kafka-v2.kafka-cluster:9092",
        ),
        ("SERVER_PORT", "8089"),
        (
            "SPRING_DATASOURCE_URL",
            "jdbc:postgresql://postgres.backbone:5432/devdb",
        ),
        ("SPRING_DATASOURCE_USERNAME", "egov"),
        ("SPRING_DATASOURCE_PASSWORD", "pw"),
    ])
    .expect("valid DIGIT env");
    assert_eq!(
        settings.kafka.sms_topic,
        "egov.core.notification.sms.mgramseva"
    );
    assert_eq!(
        settings.user_service.search_url(),
        "http://egov-user:8080/user/v1/_search"
    );
    assert_eq!(settings.otp.sms_expiry, Duration::from_millis(5000));
    assert_eq!(settings.otp.code_length, 8);
    assert_eq!(settings.otp.code_ttl, Duration::from_secs(300));
    assert_eq!(
        settings.kafka.bootstrap_servers,
        "kafka-v2.kafka-cluster:9092"
    );
    assert_eq!(settings.http.port, 8089);
    let db = &settings.database;
    assert_eq!(
        (db.host.as_str(), db.port, db.dbname.as_str()),
        ("postgres.backbone", 5432, "devdb")
    );
    assert_eq!((db.username.as_str(), db.password.as_str()), ("egov", "pw"));
}

#[test]
fn sms_texts_and_dlt_ids_are_per_type() {
    let settings = load(&[
        (
            "USER_OTP_SMS_TEXT_PASSWORDRESET",
            "OTP to reset password on NalJal is {otp}",
        ),
        ("USER_OTP_DLT_TEMPLATE_ID_LOGIN", "1007161234567890123"),
    ])
    .expect("valid");
    assert_eq!(
        settings
            .otp
            .sms_texts
            .get(OtpType::PasswordReset)
            .as_deref(),
        Some("OTP to reset password on NalJal is {otp}")
    );
    assert_eq!(settings.otp.sms_texts.get(OtpType::Login), &None);
    assert_eq!(
        settings.otp.dlt_template_ids.get(OtpType::Login).as_deref(),
        Some("1007161234567890123")
    );
}

#[test]
fn project_names_override_digit_names() {
    let settings = load(&[("SMS_TOPIC", "a"), ("USER_OTP_SMS_TOPIC", "b")]).expect("valid");
    assert_eq!(settings.kafka.sms_topic, "b");
}

#[test]
fn each_invalid_value_names_the_key_that_was_set() {
    let cases: &[(&str, &str)] = &[
        ("EGOV_OTP_LENGTH", "six"),
        ("EGOV_OTP_LENGTH", "3"),
        ("USER_OTP_CODE_LENGTH", "11"),
        ("EGOV_OTP_TTL", "-1"),
        ("EXPIRY_TIME_FOR_OTP", "1.5"),
        ("SERVER_PORT", "70000"),
        ("USER_OTP_HTTP_PORT", "0"),
        ("SMS_TOPIC", "bad topic"),
        ("USER_OTP_REQUEST_TOPIC", "a/b"),
        ("USER_HOST", "egov-user:8080"),
        ("SEARCH_USER_URL", "user/_search"),
        ("SPRING_DATASOURCE_URL", "jdbc:mysql://db/x"),
        ("USER_OTP_PROFILE", "prod"),
        ("USER_OTP_KAFKA_SEND_TIMEOUT_MS", "0"),
        ("USER_OTP_HMAC_SECRET", "too-short"),
        ("USER_HOST", "https://egov-user"),
        ("USER_OTP_SMS_TEXT_LOGIN", "Your code is"),
        ("USER_OTP_HMAC_KEY_ID", "key id"),
        ("USER_OTP_WORKER_BATCH_SIZE", "0"),
    ];
    for (key, value) in cases {
        let err = load(&[(key, value)]).expect_err(&format!("{key}={value} must be refused"));
        assert_eq!(err.key, *key, "{key}={value}: {err}");
        assert!(
            err.to_string().starts_with("invalid configuration: "),
            "{err}"
        );
    }
}

#[test]
fn the_error_message_never_echoes_the_secret() {
    let err = load(&[("USER_OTP_HMAC_SECRET", "short-secret-value")]).expect_err("short");
    assert!(!err.to_string().contains("short-secret-value"), "{err}");
}

#[test]
fn development_profile_runs_without_a_secret() {
    let env = [("USER_OTP_PROFILE".to_string(), "development".to_string())];
    let settings =
        Settings::from_sources(&Sources::from_env(env).expect("sources")).expect("dev runs");
    assert!(settings.hmac_secret.is_development());
}

#[test]
fn readme_documents_every_key() {
    let readme = include_str!("../../README.md");
    for key in keys::ALL {
        assert!(readme.contains(key.name), "README lacks {}", key.name);
        if let Some(digit) = key.digit {
            assert!(readme.contains(digit), "README lacks {digit}");
        }
    }
}
