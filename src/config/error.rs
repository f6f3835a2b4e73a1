//! The one error type of configuration loading: it always names the key that was wrong.

/// A configuration value that could not be used. `key` is the name the operator actually set
/// (the DIGIT name when the value came from it), so the message points at the right line of a
/// Helm chart or `.env` file. Secret values are never echoed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}
