//! A fresh set of topics and a fresh, migrated database for one measurement, and the
//! environment the service processes get to use them.

use std::collections::HashMap;

use anyhow::Context;
use user_otp::config::{Settings, Sources};
use user_otp::store::OtpStore;

use crate::env::{unique, Local};
use crate::kafka_io;

pub(crate) struct Stack {
    pub local: Local,
    pub request_topic: String,
    pub sms_topic: String,
    pub email_topic: String,
    pub dead_letter_topic: String,
    pub outcome_topic: String,
    pub group: String,
    pub database: String,
    pub user_host: String,
    pub db: tokio_postgres::Client,
}

impl Stack {
    pub(crate) async fn create(
        local: &Local,
        user_host: &str,
        partitions: i32,
    ) -> anyhow::Result<Self> {
        let run = unique("bench");
        let topic = |kind: &str| format!("{run}.{kind}");
        let (request_topic, sms_topic, email_topic, dead_letter_topic, outcome_topic) = (
            topic("request"),
            topic("sms"),
            topic("email"),
            topic("dlq"),
            topic("outcome"),
        );
        kafka_io::create_topics(
            &local.kafka,
            &[
                &request_topic,
                &sms_topic,
                &email_topic,
                &dead_letter_topic,
                &outcome_topic,
            ],
            partitions,
        )
        .await?;
        let database = run.clone();
        connect(local, &local.pg_db)
            .await?
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .context("creating the benchmark database")?;
        let stack = Self {
            local: local.clone(),
            request_topic,
            sms_topic,
            email_topic,
            dead_letter_topic,
            outcome_topic,
            group: format!("{run}-workers"),
            db: connect(local, &database).await?,
            database,
            user_host: user_host.to_owned(),
        };
        OtpStore::new(&stack.settings(0)?.database)?
            .migrate()
            .await
            .context("migrating the benchmark database")?;
        Ok(stack)
    }

    /// Environment of a `user-otp` process on this stack (HTTP on `http_port`; 0 for a
    /// worker, which serves no HTTP).
    pub(crate) fn service_env(&self, http_port: u16) -> HashMap<String, String> {
        let l = &self.local;
        [
            ("USER_OTP_PROFILE", "development".to_owned()),
            ("USER_OTP_HTTP_PORT", http_port.max(1).to_string()),
            ("USER_OTP_KAFKA_BOOTSTRAP_SERVERS", l.kafka.clone()),
            ("USER_OTP_REQUEST_TOPIC", self.request_topic.clone()),
            ("USER_OTP_SMS_TOPIC", self.sms_topic.clone()),
            ("USER_OTP_EMAIL_TOPIC", self.email_topic.clone()),
            ("USER_OTP_DEAD_LETTER_TOPIC", self.dead_letter_topic.clone()),
            ("USER_OTP_OUTCOME_TOPIC", self.outcome_topic.clone()),
            ("USER_OTP_CONSUMER_GROUP", self.group.clone()),
            ("USER_OTP_USER_HOST", self.user_host.clone()),
            (
                "USER_OTP_DATABASE_URL",
                format!(
                    "jdbc:postgresql://{}:{}/{}",
                    l.pg_host, l.pg_port, self.database
                ),
            ),
            ("USER_OTP_DATABASE_USERNAME", l.pg_user.clone()),
            ("USER_OTP_DATABASE_PASSWORD", l.pg_password.clone()),
            // The local cluster offers TLS (scripts/lib/postgres.sh); figures stay comparable
            // with binaries from before TLS support, which always connected in plain TCP.
            ("USER_OTP_DATABASE_SSL_MODE", "disable".to_owned()),
            // The abuse controls off: the load reuses numbers far faster than any limit allows.
            ("USER_OTP_SEND_COOLDOWN_SECONDS", "0".to_owned()),
            ("USER_OTP_SEND_LIMIT_PER_HOUR", "0".to_owned()),
            ("USER_OTP_SEND_LIMIT_PER_DAY", "0".to_owned()),
            ("USER_OTP_VALIDATE_FAILURES_PER_HOUR", "0".to_owned()),
            ("USER_OTP_PUMPING_MODE", "off".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The same, as typed settings (for using the library directly).
    pub(crate) fn settings(&self, http_port: u16) -> anyhow::Result<Settings> {
        let sources = Sources::from_env(self.service_env(http_port))?;
        Ok(Settings::from_sources(&sources)?)
    }

    /// Drops this stack's database (after its last measurement). `WITH (FORCE)` ends our own
    /// sessions, but not an autovacuum worker's (a superuser's: "must be a member of the role
    /// whose process is being terminated"), which the runs' inserts start at the end; so a
    /// refused drop is tried again, every 200 ms for up to 30 s.
    pub(crate) async fn drop_database(&self) -> anyhow::Result<()> {
        let client = connect(&self.local, &self.local.pg_db).await?;
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database);
        let mut attempts = 0;
        loop {
            match client.batch_execute(&statement).await {
                Ok(()) => return Ok(()),
                Err(error) if attempts < 150 && error.as_db_error().is_some() => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(error) => return Err(error).context("dropping the benchmark database"),
            }
        }
    }

    /// Deletes this stack's topics and database (after its last measurement): a broker that
    /// accumulates thousands of partitions is slower for every run after (issue 10's figures).
    ///
    /// # Errors
    /// When the broker refuses the deletion or PostgreSQL cannot drop the database.
    pub(crate) async fn remove(&self) -> anyhow::Result<()> {
        kafka_io::delete_topics(
            &self.local.kafka,
            &[
                &self.request_topic,
                &self.sms_topic,
                &self.email_topic,
                &self.dead_letter_topic,
                &self.outcome_topic,
            ],
        )
        .await?;
        self.drop_database().await
    }

    /// Requests from this stack's request topic with a final outcome (anything but
    /// `sms_pending`; prefilled rows do not count).
    pub(crate) async fn final_outcomes(&self) -> anyhow::Result<i64> {
        Ok(self
            .db
            .query_one(
                "SELECT count(*) FROM otp_request_outcome
                 WHERE outcome <> 'sms_pending' AND source_topic = $1",
                &[&self.request_topic],
            )
            .await?
            .get(0))
    }
}

pub(crate) async fn connect(local: &Local, dbname: &str) -> anyhow::Result<tokio_postgres::Client> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&local.pg_host)
        .port(local.pg_port)
        .user(&local.pg_user)
        .password(&local.pg_password)
        .dbname(dbname);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .with_context(|| {
            format!(
                "connecting to PostgreSQL {}:{}",
                local.pg_host, local.pg_port
            )
        })?;
    tokio::spawn(connection);
    Ok(client)
}
