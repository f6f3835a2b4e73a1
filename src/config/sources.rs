//! Where configuration values come from, in order of precedence:
//!
//! 1. the environment variable with the project's name (`USER_OTP_…`);
//! 2. the environment variable with the DIGIT name (`SMS_TOPIC`, `EGOV_OTP_TTL`, …), so an
//!    existing Helm chart keeps working;
//! 3. the file named by `USER_OTP_CONFIG_FILE`, if set (same `KEY=value` format, project names);
//! 4. `config/default.env`, compiled into the binary so it always has complete defaults.
//!
//! Empty environment values count as unset, as Spring treats them.

use std::collections::HashMap;

use super::error::ConfigError;

/// The defaults file, embedded at build time.
pub const DEFAULTS_FILE: &str = include_str!("../../config/default.env");

/// Environment variable naming an optional override file.
pub const CONFIG_FILE_KEY: &str = "USER_OTP_CONFIG_FILE";

/// A value together with the name it was found under (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub key: String,
    pub value: String,
}

/// The layered sources of configuration values.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    env: HashMap<String, String>,
    files: Vec<HashMap<String, String>>,
}

impl Sources {
    /// Sources from the process environment, the optional override file and the defaults.
    pub fn from_process() -> Result<Self, ConfigError> {
        Self::from_env(std::env::vars())
    }

    /// Sources from the given environment (tests pass their own), the optional override file it
    /// names and the defaults.
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = vars
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .collect();
        let mut files = Vec::new();
        if let Some(path) = env.get(CONFIG_FILE_KEY) {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(CONFIG_FILE_KEY, format!("cannot read {path}: {e}"))
            })?;
            files.push(parse_env_file(&text).map_err(|p| ConfigError::new(CONFIG_FILE_KEY, p))?);
        }
        let defaults =
            parse_env_file(DEFAULTS_FILE).map_err(|p| ConfigError::new("config/default.env", p))?;
        files.push(defaults);
        Ok(Self { env, files })
    }

    /// The value of `key` (or of its DIGIT alias), if any source has one.
    pub fn get(&self, key: &str, digit_alias: Option<&str>) -> Option<Found> {
        let from_env = |name: &str| {
            self.env.get(name).map(|value| Found {
                key: name.to_owned(),
                value: value.clone(),
            })
        };
        from_env(key)
            .or_else(|| digit_alias.and_then(from_env))
            .or_else(|| {
                self.files.iter().find_map(|file| {
                    file.get(key).filter(|v| !v.is_empty()).map(|value| Found {
                        key: key.to_owned(),
                        value: value.clone(),
                    })
                })
            })
    }
}

/// Parses `KEY=value` lines; `#` starts a comment line; surrounding whitespace is trimmed.
fn parse_env_file(text: &str) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: expected KEY=value", number + 1));
        };
        map.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    Ok(map)
}

/// Sources from literal variables, for unit tests.
#[cfg(test)]
pub(crate) fn sources(vars: &[(&str, &str)]) -> Sources {
    Sources::from_env(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("sources")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_name_wins_over_digit_name_which_wins_over_defaults() {
        let s = sources(&[("SMS_TOPIC", "digit"), ("USER_OTP_SMS_TOPIC", "own")]);
        assert_eq!(
            s.get("USER_OTP_SMS_TOPIC", Some("SMS_TOPIC"))
                .map(|f| f.value),
            Some("own".into())
        );
        let s = sources(&[("SMS_TOPIC", "digit")]);
        let found = s
            .get("USER_OTP_SMS_TOPIC", Some("SMS_TOPIC"))
            .expect("found");
        assert_eq!(
            (found.key.as_str(), found.value.as_str()),
            ("SMS_TOPIC", "digit")
        );
        let s = sources(&[]);
        assert_eq!(
            s.get("USER_OTP_SMS_TOPIC", Some("SMS_TOPIC"))
                .map(|f| f.value),
            Some("egov.core.notification.sms".into())
        );
    }

    #[test]
    fn empty_environment_values_count_as_unset() {
        let s = sources(&[("SMS_TOPIC", "")]);
        assert_eq!(
            s.get("USER_OTP_SMS_TOPIC", Some("SMS_TOPIC"))
                .map(|f| f.key),
            Some("USER_OTP_SMS_TOPIC".into())
        );
    }

    #[test]
    fn a_missing_override_file_names_its_key() {
        let err = Sources::from_env([(CONFIG_FILE_KEY.to_string(), "/nonexistent/x.env".into())])
            .expect_err("must fail");
        assert_eq!(err.key, CONFIG_FILE_KEY);
    }

    #[test]
    fn env_file_lines_must_have_an_equals_sign() {
        assert!(parse_env_file("# c\n\nA=1\n").is_ok());
        assert_eq!(
            parse_env_file("A=1\nB\n"),
            Err("line 2: expected KEY=value".into())
        );
    }
}
