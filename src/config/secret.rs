//! The HMAC secret that keys the hashes of OTP codes at rest.
//!
//! It comes from `USER_OTP_HMAC_SECRET` or from the file named by `USER_OTP_HMAC_SECRET_FILE`
//! (a Kubernetes secret mount), never from the database: a dump of the database alone must not
//! be enough to test candidate codes. Without one the service refuses to start, unless the
//! development profile is chosen, which uses a publicly known secret and says so.

use std::fmt;

use super::error::ConfigError;
use super::sources::Sources;

pub(super) const SECRET_KEY: &str = "USER_OTP_HMAC_SECRET";
pub(super) const SECRET_FILE_KEY: &str = "USER_OTP_HMAC_SECRET_FILE";

/// Shortest accepted secret, in bytes (the HMAC-SHA-256 block is 64; 32 gives 256 bits).
pub(super) const MIN_SECRET_BYTES: usize = 32;

/// Publicly known; only for the development profile, refused in production.
const DEVELOPMENT_SECRET: &[u8] = b"user-otp development secret: never use in production";

/// Secret bytes; `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacSecret {
    bytes: Vec<u8>,
    is_development: bool,
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacSecret")
            .field("bytes", &"<redacted>")
            .field("is_development", &self.is_development)
            .finish()
    }
}

impl HmacSecret {
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// True when this is the publicly known development secret.
    pub fn is_development(&self) -> bool {
        self.is_development
    }

    /// Loads the secret; `allow_development` is true only under the development profile.
    pub fn load(sources: &Sources, allow_development: bool) -> Result<Self, ConfigError> {
        let inline = sources.get(SECRET_KEY, None);
        let file = sources.get(SECRET_FILE_KEY, None);
        let bytes = match (inline, file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    SECRET_KEY,
                    format!("set either {SECRET_KEY} or {SECRET_FILE_KEY}, not both"),
                ))
            }
            (Some(found), None) => found.value.into_bytes(),
            (None, Some(found)) => read_secret_file(&found.value)?,
            (None, None) if allow_development => {
                return Ok(Self {
                    bytes: DEVELOPMENT_SECRET.to_vec(),
                    is_development: true,
                })
            }
            (None, None) => {
                return Err(ConfigError::new(
                    SECRET_KEY,
                    format!(
                        "required (or {SECRET_FILE_KEY}); only USER_OTP_PROFILE=development may run without one"
                    ),
                ))
            }
        };
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::new(
                SECRET_KEY,
                format!("must be at least {MIN_SECRET_BYTES} bytes long"),
            ));
        }
        if bytes == DEVELOPMENT_SECRET && !allow_development {
            return Err(ConfigError::new(
                SECRET_KEY,
                "is the publicly known development secret",
            ));
        }
        Ok(Self {
            is_development: bytes == DEVELOPMENT_SECRET,
            bytes,
        })
    }
}

/// A warning when the secret file named by `USER_OTP_HMAC_SECRET_FILE` may be read by others.
pub(super) fn file_warning(sources: &Sources) -> Option<String> {
    let found = sources.get(SECRET_FILE_KEY, None)?;
    readable_by_others(&found.value).map(|warning| format!("{SECRET_FILE_KEY}: {warning}"))
}

/// A warning when users other than the owner and group may read `path` (Kubernetes mounts
/// secrets 0644 unless the pod sets `defaultMode`; 0440 or 0400 is right).
pub(super) fn readable_by_others(path: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o004 != 0).then(|| {
        format!(
            "{path} is readable by every user (mode {:o}); mount it with defaultMode 0440 or 0400",
            mode & 0o777
        )
    })
}

/// Reads a secret file; one trailing newline (as editors and `echo` add) is not part of it.
fn read_secret_file(path: &str) -> Result<Vec<u8>, ConfigError> {
    let mut bytes = std::fs::read(path)
        .map_err(|e| ConfigError::new(SECRET_FILE_KEY, format!("cannot read {path}: {e}")))?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::super::sources::sources;
    use super::*;

    const GOOD: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn production_refuses_to_run_without_a_secret() {
        let err = HmacSecret::load(&sources(&[]), false).expect_err("no secret");
        assert_eq!(err.key, SECRET_KEY);
        assert!(HmacSecret::load(&sources(&[]), true)
            .expect("dev")
            .is_development());
    }

    #[test]
    fn short_and_development_secrets_are_refused_in_production() {
        let err = HmacSecret::load(&sources(&[(SECRET_KEY, "short")]), false).expect_err("short");
        assert!(err.problem.contains("32 bytes"), "{err}");
        let dev = std::str::from_utf8(DEVELOPMENT_SECRET).expect("ascii");
        assert!(HmacSecret::load(&sources(&[(SECRET_KEY, dev)]), false).is_err());
    }

    #[test]
    fn secret_from_a_file_drops_one_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("user-otp-secret-{}", uuid::Uuid::new_v4()));
        std::fs::write(&dir, format!("{GOOD}\n")).expect("write");
        let path = dir.to_string_lossy().to_string();
        let secret =
            HmacSecret::load(&sources(&[(SECRET_FILE_KEY, &path)]), false).expect("file secret");
        assert_eq!(secret.bytes(), GOOD.as_bytes());
        std::fs::remove_file(&dir).ok();
        let both = sources(&[(SECRET_FILE_KEY, &path), (SECRET_KEY, GOOD)]);
        assert!(HmacSecret::load(&both, false).is_err());
    }

    #[test]
    fn a_secret_file_every_user_may_read_gets_a_warning() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("user-otp-secret-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, GOOD).expect("write");
        let name = path.to_string_lossy().to_string();
        let vars = [(SECRET_FILE_KEY, name.as_str())];
        for (mode, warned) in [(0o644, true), (0o440, false), (0o400, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let warning = file_warning(&sources(&vars));
            assert_eq!(warning.is_some(), warned, "{mode:o}: {warning:?}");
        }
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = HmacSecret::load(&sources(&[(SECRET_KEY, GOOD)]), false).expect("ok");
        assert!(!format!("{secret:?}").contains(GOOD));
    }
}
