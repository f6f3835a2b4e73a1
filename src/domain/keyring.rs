//! The HMAC keys of codes at rest: the current key, which hashes every new code, and previous
//! keys, which still verify codes made with them until those expire (key rotation; README
//! "Rotating the HMAC key"). A stored hash names its key by id.

use super::code::CodeHasher;

/// The current hasher and the previous ones, by key id.
#[derive(Debug, Clone)]
pub struct Keyring {
    current: CodeHasher,
    previous: Vec<CodeHasher>,
}

impl Keyring {
    /// A keyring of `current` and `previous` (ids are unique: the configuration checks them).
    pub fn new(current: CodeHasher, previous: Vec<CodeHasher>) -> Self {
        Self { current, previous }
    }

    /// The keyring of the configured keys.
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self::new(
            CodeHasher::new(&settings.hmac_key_id, settings.hmac_secret.bytes()),
            settings
                .hmac_previous_keys
                .iter()
                .map(|key| CodeHasher::new(&key.key_id, &key.secret))
                .collect(),
        )
    }

    /// The key new codes are hashed with.
    pub fn current(&self) -> &CodeHasher {
        &self.current
    }

    /// The hasher of `key_id`, if it is the current or a previous key.
    pub fn for_key(&self, key_id: &str) -> Option<&CodeHasher> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|hasher| hasher.key_id() == key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn a_code_hashed_under_a_previous_key_still_verifies() {
        let k1 = CodeHasher::new("k1", &[1; 32]);
        let id = Uuid::now_v7();
        let hash = k1.hash(&id, "123456");
        let ring = Keyring::new(CodeHasher::new("k2", &[2; 32]), vec![k1]);
        assert_eq!(ring.current().key_id(), "k2");
        let hasher = ring.for_key("k1").expect("previous key");
        assert!(hasher.verify(&id, "123456", &hash));
        assert!(!ring.current().verify(&id, "123456", &hash));
        assert!(ring.for_key("k0").is_none());
    }
}
