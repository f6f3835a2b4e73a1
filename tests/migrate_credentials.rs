//! Migrations as DIGIT runs them (README "Deploying on DIGIT"): `user-otp migrate` as the schema
//! owner (`FLYWAY_USER`/`FLYWAY_PASSWORD`) grants the application user (the datasource user)
//! what the service needs, and the service then runs as that user, which has no DDL rights,
//! with migration at start-up off (`FLYWAY_ENABLED=false`) or on (a current schema needs none).
//! Off, a schema that lacks a migration stops the service with an error naming `migrate`.
//!
//! `user_otp` owns the test databases; `user_otp_app` (made by `scripts/services`) may only log
//! in.

mod common;

use std::process::{Command, Output};

use common::processes::{ServiceProcess, BINARY};
use common::stack::{code_in, Stack};
use common::*;
use serde_json::{json, Value};

const APP_USER: &str = "user_otp_app";

/// The application user's database settings, on top of a stack's environment.
const AS_APP: &[(&str, &str)] = &[
    ("USER_OTP_DATABASE_USERNAME", APP_USER),
    ("USER_OTP_DATABASE_PASSWORD", APP_USER),
];

/// Runs `user-otp <role>` to its end with the stack's environment and `extra`.
fn run(stack: &Stack, role: &str, extra: &[(&str, &str)]) -> Output {
    Command::new(BINARY)
        .arg(role)
        .env_clear()
        .envs(stack.process_env())
        .envs(extra.iter().copied())
        .output()
        .expect("run the service binary")
}

/// Runs `user-otp <role>` against database `database` as the application user (for a role that
/// stops at start-up).
fn run_on(database: &str, role: &str, extra: &[(&str, &str)]) -> Output {
    Command::new(BINARY)
        .arg(role)
        .env_clear()
        .env("USER_OTP_PROFILE", "development")
        .env("USER_OTP_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap())
        .env("USER_OTP_DATABASE_URL", database_url(database))
        .envs(AS_APP.iter().copied())
        .envs(extra.iter().copied())
        .output()
        .expect("run the service binary")
}

/// Connects to `database` as the application user.
async fn connect_as_app(database: &str) -> tokio_postgres::Client {
    let (host, port) = pg_host_port()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.parse::<u16>().expect("port")))
        .expect("host:port");
    let (client, connection) = tokio_postgres::Config::new()
        .host(&host)
        .port(port)
        .user(APP_USER)
        .password(APP_USER)
        .dbname(database)
        .connect(tokio_postgres::NoTls)
        .await
        .expect("the application user logs in (scripts/services makes it)");
    tokio::spawn(connection);
    client
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn the_application_user_without_ddl_rights_serves_after_migrate_ran_as_the_owner() {
    // The stack's database is migrated by its owner, user_otp; the application user has no
    // privileges on it yet, and may not create anything.
    let stack = Stack::start(&[]).await;
    let app_db = connect_as_app(&stack.database).await;
    let refused = app_db
        .batch_execute("CREATE TABLE ddl_probe (a int)")
        .await
        .expect_err("the application user has no DDL rights");
    assert_eq!(refused.code().map(|c| c.code()), Some("42501"), "{refused}");

    let migrated = run(
        &stack,
        "migrate",
        &[
            AS_APP[0],
            AS_APP[1],
            ("FLYWAY_USER", "user_otp"),
            ("FLYWAY_PASSWORD", "user_otp"),
        ],
    );
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert!(
        app_db
            .batch_execute("CREATE TABLE ddl_probe (a int)")
            .await
            .is_err(),
        "migrate grants no DDL"
    );

    // The service as the application user, migration at start-up off (DIGIT's name).
    let mut env = AS_APP.to_vec();
    env.push(("FLYWAY_ENABLED", "false"));
    let service = ServiceProcess::spawn(&stack, "all", &env);
    service.wait_ready("/user-otp/health/ready").await;
    let client = reqwest::Client::new();
    let sent = client
        .post(service.url("/user-otp/v1/_send"))
        .header("X-Request-Id", "app-user-register")
        .json(&json!({"RequestInfo": {}, "otp": {"mobileNumber": "9000000011", "tenantId": "pb.amritsar", "type": "register"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(sent.status().as_u16(), 201);
    let sms = payload_json(&stack.sms_for("app-user-register").await);
    let code = code_in(sms["message"].as_str().expect("message"));
    let validated = client
        .post(service.url("/otp/v1/_validate"))
        .json(&json!({"RequestInfo": {}, "otp": {"otp": code, "identity": "9000000011", "tenantId": "pb"}}))
        .send()
        .await
        .expect("validate");
    assert_eq!(validated.status().as_u16(), 200);
    let body: Value = validated.json().await.expect("json");
    assert_eq!(body["otp"]["isValidationSuccessful"], true, "{body}");

    // With migration at start-up on (the default), a current schema needs no DDL either.
    let second = ServiceProcess::spawn(&stack, "serve", AS_APP);
    second.wait_ready("/user-otp/health/ready").await;
    let purged = run(&stack, "purge", AS_APP);
    assert!(
        purged.status.success(),
        "purge deletes as the application user: {}",
        stderr(&purged)
    );
}

#[tokio::test]
async fn a_schema_that_lacks_a_migration_stops_the_service_naming_migrate() {
    let database = fresh_database().await;
    let checked = run_on(&database, "worker", &[("FLYWAY_ENABLED", "false")]);
    assert!(!checked.status.success());
    let text = stderr(&checked);
    assert!(text.contains("run `user-otp migrate` first"), "{text}");

    // Migration at start-up on, as a user who may not create tables: the error says what to do.
    let refused = run_on(&database, "worker", &[]);
    assert!(!refused.status.success());
    let text = stderr(&refused);
    assert!(text.contains("SQLSTATE 42501"), "{text}");
    assert!(text.contains("USER_OTP_MIGRATE_USERNAME"), "{text}");
}
