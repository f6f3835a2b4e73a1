//! Logging set-up, and the one way personal data may appear in a log line.
//!
//! No OTP, no full mobile number and no secret is ever logged, at any level: mobile numbers and
//! user names go through [`Masked`] (defined with the domain, which logs nothing itself), which
//! keeps only the last four characters.

use tracing_subscriber::EnvFilter;

/// Log targets that would print personal data at debug level, and the level they are capped
/// at whatever `RUST_LOG` says: `tokio_postgres::query` logs every statement's parameters
/// (mobile numbers, code hashes).
const PRIVACY_CAPS: &[&str] = &["tokio_postgres::query=info"];

/// `RUST_LOG` (or `default` when unset or invalid) with the privacy caps applied last, so
/// they win over a broader or equal directive.
pub fn filter(default: &str) -> EnvFilter {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    PRIVACY_CAPS
        .iter()
        .filter_map(|cap| cap.parse().ok())
        .fold(filter, EnvFilter::add_directive)
}

/// Installs the global subscriber: [`filter`] with default `info`, output on stderr.
pub fn init() {
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter("info"))
        .with_writer(std::io::stderr)
        .try_init();
}

pub use crate::domain::masked::Masked;
