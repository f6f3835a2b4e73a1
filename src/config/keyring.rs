//! The HMAC keys that still validate codes made with them (key rotation, issue 9): besides the
//! current key (`USER_OTP_HMAC_SECRET` / `_FILE`, named `USER_OTP_HMAC_KEY_ID`), previous keys
//! from `USER_OTP_HMAC_PREVIOUS_KEYS="id:secret,…"` (secrets without `:` or `,`, e.g. hex or
//! base64) or `USER_OTP_HMAC_PREVIOUS_KEYS_FILE` (one `id=secret` per line; blank lines and `#`
//! comments ignored). New codes always use the current key. Every secret has at least
//! [`MIN_SECRET_BYTES`]; ids are unique and differ from the current one.

use std::fmt;

use super::error::ConfigError;
use super::keys;
use super::secret::MIN_SECRET_BYTES;
use super::sources::Sources;

/// A previous key: its id and secret. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PreviousKey {
    pub key_id: String,
    pub secret: Vec<u8>,
}

impl fmt::Debug for PreviousKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PreviousKey({}, <redacted>)", self.key_id)
    }
}

/// Loads the previous keys; the warnings (a world-readable file) are for the start-up log.
///
/// # Errors
/// A [`ConfigError`] naming the key: both sources set, an unreadable file, a malformed entry, a
/// short secret, a repeated id or the current id.
pub(super) fn load_previous(
    sources: &Sources,
    current_id: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<PreviousKey>, ConfigError> {
    let inline = sources.get(keys::HMAC_PREVIOUS_KEYS.name, None);
    let file = sources.get(keys::HMAC_PREVIOUS_KEYS_FILE.name, None);
    let (key, entries): (&str, Vec<(String, String)>) = match (inline, file) {
        (Some(_), Some(_)) => return Err(ConfigError::new(
            keys::HMAC_PREVIOUS_KEYS.name,
            "set either USER_OTP_HMAC_PREVIOUS_KEYS or USER_OTP_HMAC_PREVIOUS_KEYS_FILE, not both",
        )),
        (None, None) => return Ok(Vec::new()),
        (Some(found), None) => {
            let key = keys::HMAC_PREVIOUS_KEYS.name;
            let entries = found
                .value
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .enumerate()
                .map(|(n, entry)| split_entry(entry, ':', key, n + 1))
                .collect::<Result<_, _>>()?;
            (key, entries)
        }
        (None, Some(found)) => {
            let key = keys::HMAC_PREVIOUS_KEYS_FILE.name;
            let text = std::fs::read_to_string(&found.value)
                .map_err(|e| ConfigError::new(key, format!("cannot read {}: {e}", found.value)))?;
            if let Some(warning) = super::secret::readable_by_others(&found.value) {
                warnings.push(format!("{key}: {warning}"));
            }
            let entries = text
                .lines()
                .map(str::trim)
                .enumerate()
                .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
                .map(|(n, line)| split_entry(line, '=', key, n + 1))
                .collect::<Result<_, _>>()?;
            (key, entries)
        }
    };
    let mut previous: Vec<PreviousKey> = Vec::with_capacity(entries.len());
    // Errors name entries by position, never by value: an entry written the wrong way round
    // would otherwise print its secret in the log.
    for (n, (key_id, secret)) in entries.into_iter().enumerate() {
        let n = n + 1;
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
        if key_id.is_empty() || key_id.len() > 32 || !key_id.chars().all(legal) {
            return Err(ConfigError::new(
                key,
                format!(
                    "the key id of entry {n} is not 1-32 of letters, digits, '_', '-' (id first, then the secret)"
                ),
            ));
        }
        if key_id == current_id || previous.iter().any(|p| p.key_id == key_id) {
            return Err(ConfigError::new(
                key,
                format!(
                    "the key id of entry {n} appears twice (or is the current USER_OTP_HMAC_KEY_ID)"
                ),
            ));
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::new(
                key,
                format!("the secret of entry {n} must be at least {MIN_SECRET_BYTES} bytes long"),
            ));
        }
        previous.push(PreviousKey {
            key_id,
            secret: secret.into_bytes(),
        });
    }
    Ok(previous)
}

/// `id<separator>secret`, or an error naming the entry (never its secret).
fn split_entry(
    entry: &str,
    separator: char,
    key: &str,
    n: usize,
) -> Result<(String, String), ConfigError> {
    entry
        .split_once(separator)
        .map(|(id, secret)| (id.trim().to_owned(), secret.trim().to_owned()))
        .filter(|(_, secret)| !secret.contains([':', ',']))
        .ok_or_else(|| {
            ConfigError::new(
                key,
                format!(
                    "entry {n} is not id{separator}secret (secrets may not contain ':' or ',')"
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::super::sources::sources;
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn inline_previous_keys_parse() {
        let value = format!("k0:{A}, k-1:{B}");
        let keys = load_previous(
            &sources(&[("USER_OTP_HMAC_PREVIOUS_KEYS", &value)]),
            "k2",
            &mut Vec::new(),
        )
        .expect("valid");
        assert_eq!(keys.len(), 2);
        assert_eq!(
            (keys[1].key_id.as_str(), keys[1].secret.as_slice()),
            ("k-1", B.as_bytes())
        );
        assert!(!format!("{keys:?}").contains(A));
    }

    #[test]
    fn a_file_of_previous_keys_parses_and_warns_when_others_can_read_it() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("user-otp-keys-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, format!("# rotated 2026-12\nk1={A}\n\n")).expect("write");
        let name = path.to_string_lossy().to_string();
        let vars = [("USER_OTP_HMAC_PREVIOUS_KEYS_FILE", name.as_str())];
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let mut warnings = Vec::new();
        let keys = load_previous(&sources(&vars), "k2", &mut warnings).expect("valid");
        assert_eq!(keys[0].key_id, "k1");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o440)).expect("chmod");
        let mut warnings = Vec::new();
        load_previous(&sources(&vars), "k2", &mut warnings).expect("valid");
        assert!(warnings.is_empty(), "{warnings:?}");
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn bad_previous_keys_are_refused_naming_the_key() {
        for (value, current) in [
            (format!("k1:{A}"), "k1"),
            (format!("k0:{A},k0:{B}"), "k1"),
            ("k0:short".to_owned(), "k1"),
            (format!("k0{A}"), "k1"),
            (format!("k0:{A}:x"), "k1"),
        ] {
            let error = load_previous(
                &sources(&[("USER_OTP_HMAC_PREVIOUS_KEYS", &value)]),
                current,
                &mut Vec::new(),
            )
            .expect_err(&value);
            assert_eq!(error.key, "USER_OTP_HMAC_PREVIOUS_KEYS");
            assert!(!error.problem.contains(A), "{error}");
        }
        // Written the wrong way round: the secret is not echoed.
        let reversed = format!("{A}:k0");
        let error = load_previous(
            &sources(&[("USER_OTP_HMAC_PREVIOUS_KEYS", &reversed)]),
            "k1",
            &mut Vec::new(),
        )
        .expect_err("reversed");
        assert!(!error.to_string().contains(A), "{error}");
    }
}
