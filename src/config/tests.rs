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
    assert_eq!(settings.otp.code_ttl, Duration::from_secs(600));
    assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);
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
        ("SERVER_SERVLET_CONTEXT_PATH", "assam/user-otp"),
        ("SERVER_SERVLET_CONTEXT_PATH", "/assam//user-otp"),
        ("USER_OTP_CONTEXT_PATH", "/user otp"),
        ("USER_OTP_OTP_API_PATH", "/user-otp"),
        ("USER_OTP_OTP_API_PORT", "8080"),
        ("USER_OTP_OTP_API_PORT", "none"),
        ("USER_OTP_SEND_MODE", "wait"),
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

#[test]
fn abuse_controls_default_to_the_documented_limits() {
    let settings = load(&[]).expect("defaults are valid");
    let abuse = &settings.abuse;
    assert_eq!(abuse.send_limits.cooldown, Duration::from_secs(30));
    assert_eq!(
        (abuse.send_limits.per_hour, abuse.send_limits.per_day),
        (5, 10)
    );
    assert_eq!(abuse.guess_budget.failures_per_hour, 10);
    assert_eq!(abuse.client_limit_per_minute, 0);
    assert!(abuse.allowed_country_codes.allows(Some("+91")));
    assert!(!abuse.allowed_country_codes.allows(Some("+44")));
    assert_eq!(
        abuse.pumping.mode,
        crate::domain::abuse::pumping::PumpingMode::Shadow
    );
    assert_eq!(settings.retention.retention, Duration::from_secs(24 * 3600));
    assert!(settings.otp.email_enabled);
}

#[test]
fn a_validity_above_ten_minutes_is_accepted_with_a_warning_citing_nist() {
    let settings = load(&[("EGOV_OTP_TTL", "900")]).expect("valid");
    assert_eq!(settings.otp.code_ttl, Duration::from_secs(900));
    assert_eq!(settings.warnings.len(), 1);
    assert!(settings.warnings[0].starts_with("EGOV_OTP_TTL"));
    assert!(settings.warnings[0].contains("NIST"));
}

#[test]
fn production_refuses_short_codes_and_unallowed_test_numbers() {
    let short = load(&[("EGOV_OTP_LENGTH", "4")]).expect_err("short code");
    assert_eq!(short.key, "EGOV_OTP_LENGTH");
    let numbers =
        load(&[("USER_OTP_TEST_NUMBERS", "9999999999:123456")]).expect_err("test numbers");
    assert_eq!(numbers.key, "USER_OTP_TEST_NUMBERS");
    assert!(numbers.problem.contains("USER_OTP_ALLOW_TEST_NUMBERS"));
    let allowed = load(&[
        ("USER_OTP_TEST_NUMBERS", "9999999999:123456"),
        ("USER_OTP_ALLOW_TEST_NUMBERS", "true"),
    ])
    .expect("allowed explicitly");
    assert_eq!(
        allowed.abuse.test_numbers.code_for("9999999999"),
        Some("123456")
    );
    let short = load(&[
        ("USER_OTP_TEST_NUMBERS", "9999999999:1234"),
        ("USER_OTP_ALLOW_TEST_NUMBERS", "true"),
    ])
    .expect_err("a 4-digit fixed code");
    assert_eq!(short.key, "USER_OTP_TEST_NUMBERS");
    let development = load(&[
        ("USER_OTP_PROFILE", "development"),
        ("EGOV_OTP_LENGTH", "4"),
        ("USER_OTP_TEST_NUMBERS", "9999999999:1234"),
    ]);
    assert!(development.is_ok(), "{development:?}");
}

#[test]
fn retention_shorter_than_the_longest_limit_window_is_refused() {
    let error = load(&[("USER_OTP_RETENTION_HOURS", "12")]).expect_err("day limit on");
    assert_eq!(error.key, "USER_OTP_RETENTION_HOURS");
    let ok = load(&[
        ("USER_OTP_RETENTION_HOURS", "1"),
        ("USER_OTP_SEND_LIMIT_PER_DAY", "0"),
    ]);
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn country_codes_and_pumping_modes_are_checked() {
    let bad = load(&[("USER_OTP_ALLOWED_COUNTRY_CODES", "91,india")]).expect_err("bad code");
    assert_eq!(bad.key, "USER_OTP_ALLOWED_COUNTRY_CODES");
    let bad = load(&[("USER_OTP_PUMPING_MODE", "on")]).expect_err("bad mode");
    assert_eq!(bad.key, "USER_OTP_PUMPING_MODE");
    let header = load(&[("USER_OTP_CLIENT_ADDRESS_HEADER", "X-Forwarded-For")]).expect("valid");
    assert_eq!(
        header.abuse.client_address_header.as_deref(),
        Some("x-forwarded-for")
    );
}

#[test]
fn paths_and_ports_follow_digit_names_with_defaults() {
    let defaults = load(&[]).expect("defaults");
    assert_eq!(defaults.http.context_path, "/user-otp");
    assert_eq!(defaults.http.otp_api_path, "/otp");
    assert_eq!(defaults.http.otp_api_port, None);
    assert_eq!(defaults.http.send_mode, SendMode::Async);
    let naljalseva = load(&[
        ("SERVER_SERVLET_CONTEXT_PATH", "/assam/user-otp/"),
        ("USER_OTP_OTP_API_PORT", "8090"),
        ("USER_OTP_OTP_API_PATH", "/user-otp"),
        ("USER_OTP_SEND_MODE", "sync"),
    ])
    .expect("valid");
    assert_eq!(naljalseva.http.context_path, "/assam/user-otp");
    assert_eq!(
        naljalseva.http.otp_api_path, "/user-otp",
        "another port: any path"
    );
    assert_eq!(naljalseva.http.otp_api_port, Some(8090));
    assert_eq!(
        naljalseva.http.send_mode,
        SendMode::Sync {
            wait: Duration::from_millis(3000)
        }
    );
    let root = load(&[("USER_OTP_CONTEXT_PATH", "/")]).expect("valid");
    assert_eq!(root.http.context_path, "");
    let err = load(&[
        ("USER_OTP_SEND_MODE", "sync"),
        ("USER_OTP_SYNC_WAIT_MS", "10000"),
    ])
    .expect_err("a wait as long as the request timeout");
    assert_eq!(err.key, "USER_OTP_SYNC_WAIT_MS");
}

#[test]
fn migration_credentials_and_start_up_follow_digit_names() {
    let defaults = load(&[]).expect("defaults");
    assert!(defaults.migration.on_start);
    assert_eq!(defaults.migration.owner, None);
    let digit = load(&[
        ("SPRING_DATASOURCE_USERNAME", "egov_app"),
        ("FLYWAY_USER", "egov_owner"),
        ("FLYWAY_PASSWORD", "owner-secret"),
        ("FLYWAY_ENABLED", "false"),
    ])
    .expect("valid");
    assert!(
        !digit.migration.on_start,
        "the environment beats the defaults file"
    );
    let owner = digit.migration.owner.expect("migration credentials");
    assert_eq!(
        (owner.username.as_str(), owner.password.as_str()),
        ("egov_owner", "owner-secret")
    );
    assert_eq!(owner.dbname, digit.database.dbname);
    assert_eq!(digit.database.username, "egov_app");
    assert!(!format!("{owner:?}").contains("owner-secret"));
}

#[test]
fn database_tls_follows_libpq_and_the_jdbc_url_wins() {
    let defaults = load(&[]).expect("defaults");
    assert_eq!(
        defaults.database.ssl_mode,
        SslMode::Prefer,
        "libpq's and pgjdbc's default"
    );
    assert_eq!(defaults.database.ssl_root_cert, None);
    let ca = std::env::temp_dir().join(format!("user-otp-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, "not checked here").expect("write a CA file");
    let ca_text = ca.to_string_lossy().into_owned();
    let env = load(&[("PGSSLMODE", "verify-ca"), ("PGSSLROOTCERT", &ca_text)]).expect("valid");
    assert_eq!(env.database.ssl_mode, SslMode::VerifyCa);
    assert_eq!(env.database.ssl_root_cert.as_deref(), Some(ca.as_path()));
    let url = load(&[
        ("PGSSLMODE", "disable"),
        (
            "SPRING_DATASOURCE_URL",
            &format!("jdbc:postgresql://db:5432/egov?sslmode=verify-full&sslrootcert={ca_text}"),
        ),
        ("FLYWAY_USER", "egov_owner"),
    ])
    .expect("valid");
    assert_eq!(url.database.ssl_mode, SslMode::VerifyFull, "the URL wins");
    assert!(url.warnings.is_empty(), "{:?}", url.warnings);
    let weaker = load(&[
        ("PGSSLMODE", "verify-full"),
        (
            "SPRING_DATASOURCE_URL",
            "jdbc:postgresql://db/egov?sslmode=require",
        ),
    ])
    .expect("valid");
    assert_eq!(weaker.database.ssl_mode, SslMode::Require);
    assert!(
        weaker
            .warnings
            .iter()
            .any(|w| w.contains("SPRING_DATASOURCE_URL") && w.contains("PGSSLMODE")),
        "a URL weaker than PGSSLMODE is warned about: {:?}",
        weaker.warnings
    );
    assert_eq!(url.database.dbname, "egov");
    let owner = url.migration.owner.expect("migration credentials");
    assert_eq!(
        (owner.ssl_mode, owner.ssl_root_cert),
        (SslMode::VerifyFull, Some(ca.clone())),
        "migrate connects as securely as the service"
    );
    let error = load(&[("PGSSLROOTCERT", "/nonexistent/ca.pem")]).expect_err("unreadable");
    assert!(error.to_string().contains("PGSSLROOTCERT"), "{error}");
    let error = load(&[("PGSSLMODE", "on")]).expect_err("not a mode");
    assert!(error.to_string().contains("PGSSLMODE"), "{error}");
    let error = load(&[(
        "SPRING_DATASOURCE_URL",
        "jdbc:postgresql://db/egov?sslrootcert=/nonexistent/ca.pem",
    )])
    .expect_err("unreadable");
    assert!(error.to_string().contains("sslrootcert"), "{error}");
    let _ = std::fs::remove_file(ca);
}

#[test]
fn kafka_security_takes_spring_names_and_refuses_settings_it_would_not_use() {
    let defaults = load(&[]).expect("defaults");
    assert_eq!(defaults.kafka.security, KafkaSecurity::plaintext());
    let spring = load(&[
        ("SPRING_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ("SPRING_KAFKA_PROPERTIES_SASL_MECHANISM", "SCRAM-SHA-512"),
        (
            "SPRING_KAFKA_PROPERTIES_SASL_JAAS_CONFIG",
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="egov" password="kafka-secret";"#,
        ),
    ])
    .expect("valid");
    let security = &spring.kafka.security;
    assert_eq!(security.protocol, SecurityProtocol::SaslSsl);
    let sasl = security.sasl.as_ref().expect("SASL credentials");
    assert_eq!(
        (
            sasl.mechanism,
            sasl.username.as_str(),
            sasl.password.as_str()
        ),
        (SaslMechanism::ScramSha512, "egov", "kafka-secret")
    );
    assert!(!format!("{spring:?}").contains("kafka-secret"));
    let own = load(&[
        ("USER_OTP_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"),
        ("USER_OTP_KAFKA_SASL_MECHANISM", "PLAIN"),
        ("USER_OTP_KAFKA_SASL_USERNAME", "own"),
        ("USER_OTP_KAFKA_SASL_PASSWORD", "own-secret"),
        (
            "USER_OTP_KAFKA_SASL_JAAS_CONFIG",
            r#"x required username="jaas" password="jaas-secret";"#,
        ),
    ])
    .expect("valid");
    assert_eq!(
        own.kafka.security.sasl.map(|s| (s.username, s.password)),
        Some(("own".into(), "own-secret".into())),
        "the plain keys win over the JAAS line"
    );
    let refused = |vars: &[(&str, &str)], key: &str| {
        let error = load(vars).expect_err("refused");
        assert_eq!(error.key, key, "{error}");
        assert!(!error.to_string().contains("secret"), "{error}");
    };
    refused(
        &[("USER_OTP_KAFKA_SASL_PASSWORD", "secret")],
        "USER_OTP_KAFKA_SASL_PASSWORD",
    );
    refused(
        &[(
            "USER_OTP_KAFKA_SSL_CA_LOCATION",
            "/etc/ssl/certs/ca-certificates.crt",
        )],
        "USER_OTP_KAFKA_SSL_CA_LOCATION",
    );
    refused(
        &[("SPRING_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")],
        "USER_OTP_KAFKA_SASL_MECHANISM",
    );
    refused(
        &[
            ("SPRING_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("SPRING_KAFKA_PROPERTIES_SASL_MECHANISM", "GSSAPI"),
        ],
        "SPRING_KAFKA_PROPERTIES_SASL_MECHANISM",
    );
    refused(
        &[
            ("USER_OTP_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("USER_OTP_KAFKA_SASL_MECHANISM", "PLAIN"),
            ("USER_OTP_KAFKA_SASL_USERNAME", "u"),
        ],
        "USER_OTP_KAFKA_SASL_PASSWORD",
    );
    refused(
        &[
            ("USER_OTP_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("USER_OTP_KAFKA_SASL_MECHANISM", "PLAIN"),
            ("USER_OTP_KAFKA_SASL_JAAS_CONFIG", "x required user=secret;"),
        ],
        "USER_OTP_KAFKA_SASL_JAAS_CONFIG",
    );
    refused(
        &[
            ("USER_OTP_KAFKA_SECURITY_PROTOCOL", "ssl"),
            ("USER_OTP_KAFKA_SSL_CA_LOCATION", "/nonexistent/ca.pem"),
        ],
        "USER_OTP_KAFKA_SSL_CA_LOCATION",
    );
    refused(
        &[("USER_OTP_KAFKA_SASL_MECHANISM", "PLAIN")],
        "USER_OTP_KAFKA_SASL_MECHANISM",
    );
    refused(
        &[("USER_OTP_KAFKA_SSL_KEY_PASSWORD", "secret")],
        "USER_OTP_KAFKA_SSL_KEY_PASSWORD",
    );
    refused(
        &[("USER_OTP_KAFKA_SECURITY_PROTOCOL", "tls")],
        "USER_OTP_KAFKA_SECURITY_PROTOCOL",
    );
}

#[test]
fn localization_follows_digit_names_and_dlt_ids_per_locale_are_pairs() {
    let defaults = load(&[]).expect("defaults");
    assert_eq!(
        defaults.localization.search_url(),
        None,
        "off without a host"
    );
    assert_eq!(
        defaults.localization.sms_keys.password_reset,
        ["sms.pwd.reset.otp.msg", "RESET_PASSWORD_OTP"],
        "DIGIT's key, then mGramSeva's"
    );
    let digit = load(&[
        ("EGOV_LOCALISATION_HOST", "http://egov-localization:8080/"),
        (
            "EGOV_LOCALISATION_SEARCH_ENDPOINT",
            "/localization/messages/v1/_search",
        ),
        ("EGOV_LOCALISATION_TENANTID_STRIP_SUFFIX_COUNT", "2"),
        ("USER_OTP_LOCALIZATION_MODULE", "mgramseva-common"),
        (
            "USER_OTP_DLT_TEMPLATE_IDS_BY_LOCALE_LOGIN",
            "hi_IN=1007000000000000002, pa_IN=1007000000000000003",
        ),
    ])
    .expect("valid");
    assert_eq!(
        digit.localization.search_url().as_deref(),
        Some("http://egov-localization:8080/localization/messages/v1/_search")
    );
    assert_eq!(digit.localization.tenant_strip_suffix_count, 2);
    let login = &digit.otp.dlt_template_ids_by_locale.login;
    assert_eq!(
        login.get("pa_IN").map(String::as_str),
        Some("1007000000000000003")
    );
    assert_eq!(login.len(), 2);
    for (key, value) in [
        ("USER_OTP_DLT_TEMPLATE_IDS_BY_LOCALE_LOGIN", "hi_IN"),
        ("USER_OTP_DLT_TEMPLATE_IDS_BY_LOCALE_LOGIN", "=1007"),
        ("USER_OTP_LOCALIZATION_MODULE", "egov-user,"),
        ("EGOV_LOCALISATION_HOST", "https://egov-localization"),
        ("USER_OTP_LOCALIZATION_TIMEOUT_MS", "5000"),
    ] {
        let error = load(&[(key, value)]).expect_err(value);
        assert_eq!(error.key, key, "{error}");
    }
}
