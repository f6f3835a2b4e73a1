//! The `user-otp` binary: parses the role, loads the configuration, runs the role.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use user_otp::config::Settings;
use user_otp::{roles, shutdown, telemetry};

/// DIGIT User OTP service: OTP requests over Kafka, codes in PostgreSQL, SMS events out.
///
/// Configuration comes from environment variables (project USER_OTP_* names or DIGIT names);
/// see the README's configuration table.
#[derive(Parser)]
#[command(name = "user-otp", version)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// HTTP: the _send shim, health checks and the egov-otp API.
    Serve,
    /// Consume OTP requests, store codes and emit SMS events.
    Worker,
    /// Both HTTP and worker in one process (the local default).
    All,
    /// Only the egov-otp API (/otp/v1/_validate, _search), e.g. as the egov-otp Service.
    OtpApi,
    /// Apply database migrations and exit.
    Migrate,
    /// Delete codes, outcomes and limit history older than USER_OTP_RETENTION_HOURS once, and exit.
    Purge,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("user-otp: {error}");
            return ExitCode::from(2);
        }
    };
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    if settings.hmac_secret.is_development() {
        tracing::warn!("development profile: using the publicly known development HMAC secret");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("user-otp: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = shutdown::on_signal();
        match cli.role {
            Role::Serve => roles::serve(&settings, shutdown).await,
            Role::Worker => roles::worker(&settings, shutdown).await,
            Role::All => roles::all(&settings, shutdown).await,
            Role::OtpApi => roles::otp_api(&settings, shutdown).await,
            Role::Migrate => roles::migrate(&settings).await,
            Role::Purge => roles::purge(&settings).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("user-otp: {error:#}");
            ExitCode::FAILURE
        }
    }
}
