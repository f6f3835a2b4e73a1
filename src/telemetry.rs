//! Logging set-up, and the one way personal data may appear in a log line.
//!
//! No OTP, no full mobile number and no secret is ever logged, at any level: mobile numbers and
//! user names go through [`Masked`], which keeps only the last four characters.

use std::fmt;

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

/// Displays a mobile number or user name with all but its last four characters hidden:
/// `9876543210` → `******3210`; values of four characters or fewer are hidden entirely. The
/// characters shown are escaped (`\n`, `\u{1b}`), so a caller's value can never forge a log
/// line.
pub struct Masked<'a>(pub &'a str);

impl fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars: Vec<char> = self.0.chars().collect();
        let shown = if chars.len() > 4 { 4 } else { 0 };
        let hidden = chars.len() - shown;
        for _ in 0..hidden {
            f.write_str("*")?;
        }
        chars[hidden..].iter().try_for_each(|c| {
            if c.is_control() {
                write!(f, "{}", c.escape_default())
            } else {
                write!(f, "{c}")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Masked;

    #[test]
    fn masking_keeps_only_the_last_four() {
        assert_eq!(Masked("9876543210").to_string(), "******3210");
        assert_eq!(Masked("1234").to_string(), "****");
        assert_eq!(Masked("").to_string(), "");
        assert_eq!(Masked("ऋषि-कुमार").to_string(), "*****ुमार");
        assert_eq!(Masked("asha\nINFO forged").to_string(), "************rged");
        assert_eq!(Masked("xyab\r\n").to_string(), "**ab\\r\\n");
        assert_eq!(Masked("x\n\u{1b}[1m").to_string(), "**\\u{1b}[1m");
    }
}
