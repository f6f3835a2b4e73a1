//! One-time codes and the keyed hashes under which they are stored.
//!
//! A code is a string of decimal digits (6 by default, DIGIT `egov.otp.length`), each digit drawn
//! independently and uniformly from the operating system's CSPRNG ([`OsRng`]); leading zeros are
//! kept, so `012345` is as likely as `912345`. (The Java service used `java.util.Random`, which
//! is predictable from a few outputs: [contract §9](../../docs/contract.md#9-java-service-bugs-not-copied).)
//!
//! At rest only `HMAC-SHA-256(secret, "user-otp/code/v1\0" ‖ code id ‖ code)` is kept, where the
//! code id is the code's own UUID (16 bytes) and the secret is not in the database. The id salts
//! the hash, so two rows with the same code have different hashes, and without the secret a
//! database dump does not let anyone try the 10^6 candidates offline. The prefix separates this
//! use of the secret from any other (bump `v1` if the message layout ever changes). Each hasher
//! carries a key id, stored next to the hash, so the secret can rotate: rows name the key that
//! hashed them. Checking a candidate compares the tags in constant time.
//!
//! Neither an [`OtpCode`] nor a [`CodeHasher`] can be printed: `OtpCode` has no `Display`, and
//! both `Debug` implementations redact the secret part.

use std::fmt;

use hmac::digest::Key;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Fewest digits a code may have (the configuration enforces this range).
pub const MIN_CODE_LENGTH: u8 = 4;
/// Most digits a code may have.
pub const MAX_CODE_LENGTH: u8 = 10;

/// Domain-separation prefix of the hashed message (version 1 of its layout).
const HASH_CONTEXT: &[u8] = b"user-otp/code/v1\0";

/// Length of a stored hash in bytes (the SHA-256 output size).
pub const HASH_LENGTH: usize = 32;

/// A one-time code: one or more ASCII digits. Deliberately has no `Display`, so `%code` cannot
/// slip into a log line; [`OtpCode::as_str`] is the one explicit way to the digits.
#[derive(Clone)]
pub struct OtpCode(String);

/// A string that is not a code (empty, or not only ASCII digits). The value is not repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an OTP code must be one or more ASCII digits")]
pub struct InvalidCode;

impl OtpCode {
    /// Wraps digits that already exist (a code read back for a message, a test vector).
    pub fn from_digits(digits: impl Into<String>) -> Result<Self, InvalidCode> {
        let digits = digits.into();
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(digits))
        } else {
            Err(InvalidCode)
        }
    }

    /// The digits, for the message text and the hash; never for a log line.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(<redacted>)")
    }
}

/// A fresh code of `length` digits from the OS CSPRNG, leading zeros kept.
///
/// The caller guarantees `length` is within [`MIN_CODE_LENGTH`]`..=`[`MAX_CODE_LENGTH`] (the
/// configuration is validated at start-up); this function does not second-guess it.
pub fn generate(length: u8) -> OtpCode {
    // One read from the OS per code (a read per digit cost a system call each), then rejection
    // sampling: bytes 250..=255 are dropped so every digit is exactly uniform.
    let mut digits = String::with_capacity(usize::from(length));
    let mut pool = [0u8; 32];
    while digits.len() < usize::from(length) {
        OsRng.fill_bytes(&mut pool);
        for byte in pool.iter().filter(|b| **b < 250) {
            if digits.len() == usize::from(length) {
                break;
            }
            digits.push(char::from(b'0' + byte % 10));
        }
    }
    OtpCode(digits)
}

/// Hashes and checks codes under one secret, named by a key id.
#[derive(Clone)]
pub struct CodeHasher {
    key_id: String,
    /// HMAC state already keyed with the secret; cloned for every hash.
    keyed: HmacSha256,
}

impl fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeHasher")
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl CodeHasher {
    /// A hasher for `secret` (any length; the configuration insists on at least 32 bytes),
    /// stored rows will name `key_id`.
    pub fn new(key_id: impl Into<String>, secret: &[u8]) -> Self {
        Self {
            key_id: key_id.into(),
            keyed: HmacSha256::new(&hmac_key_block(secret)),
        }
    }

    /// The id stored next to every hash this hasher makes.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The [`HASH_LENGTH`]-byte keyed hash of `code`, salted by the code's id.
    pub fn hash(&self, code_id: &Uuid, code: &str) -> Vec<u8> {
        self.mac_of(code_id, code).finalize().into_bytes().to_vec()
    }

    /// True when `candidate` is the code whose hash is `stored`; constant-time in the tag.
    /// A stored value of the wrong length (truncated, another algorithm) never matches.
    pub fn verify(&self, code_id: &Uuid, candidate: &str, stored: &[u8]) -> bool {
        self.mac_of(code_id, candidate).verify_slice(stored).is_ok()
    }

    /// A keyed digest of `parts` under another use of the same secret: `HMAC-SHA-256(secret,
    /// context ‖ for each part: its length (8 bytes, big-endian) ‖ its bytes)`. `context` must
    /// differ from the code hashes' (`user-otp/code/v1\0`) and name its own use and version.
    pub fn keyed_digest(&self, context: &[u8], parts: &[&str]) -> [u8; HASH_LENGTH] {
        let mut mac = self.keyed.clone();
        mac.update(context);
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    fn mac_of(&self, code_id: &Uuid, code: &str) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(HASH_CONTEXT);
        mac.update(code_id.as_bytes());
        mac.update(code.as_bytes());
        mac
    }
}

/// HMAC's key preparation (RFC 2104 [§2](../../docs/contract.md#2-what-each-type-does)): a key longer than the hash block is replaced by its
/// hash, then zero-padded to one block. Done here so that keying cannot fail (`new_from_slice`
/// returns a `Result` that, for HMAC, is always `Ok`); the result is exactly standard HMAC, as
/// the known-answer tests show for short and long keys.
fn hmac_key_block(secret: &[u8]) -> Key<HmacSha256> {
    let mut block = Key::<HmacSha256>::default();
    if secret.len() > block.len() {
        let digest = Sha256::digest(secret);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..secret.len()].copy_from_slice(secret);
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const CODE_ID: Uuid = Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn codes_have_the_requested_number_of_digits() {
        for length in [4u8, 6, 10] {
            for _ in 0..100 {
                let code = generate(length);
                assert_eq!(code.as_str().len(), usize::from(length));
                assert!(code.as_str().bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }

    #[test]
    fn leading_zeros_are_kept() {
        // P(no leading zero in 20,000 codes) = 0.9^20000: never.
        let with_zero = (0..20_000)
            .filter(|_| generate(6).as_str().starts_with('0'))
            .count();
        // Expect about 2,000.
        assert!((1_500..=2_500).contains(&with_zero), "{with_zero}");
    }

    #[test]
    fn digits_are_uniform() {
        let mut counts = [0u32; 10];
        for _ in 0..10_000 {
            for b in generate(10).as_str().bytes() {
                counts[usize::from(b - b'0')] += 1;
            }
        }
        assert_eq!(counts.iter().sum::<u32>(), 100_000);
        // Each count is about 10,000 with a standard deviation of about 95: ±500 is 5 sigma.
        for (digit, count) in counts.iter().enumerate() {
            assert!((9_500..=10_500).contains(count), "{digit}: {count}");
        }
    }

    #[test]
    fn from_digits_accepts_only_digits() {
        assert_eq!(
            OtpCode::from_digits("012345").expect("digits").as_str(),
            "012345"
        );
        for bad in ["", "12a4", " 1234", "１２３４", "-123"] {
            assert_eq!(
                OtpCode::from_digits(bad).err(),
                Some(InvalidCode),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_code_or_the_secret() {
        let code = OtpCode::from_digits("987654").expect("digits");
        assert_eq!(format!("{code:?}"), "OtpCode(<redacted>)");
        let hasher = CodeHasher::new("k1", SECRET);
        let shown = format!("{hasher:?}");
        assert_eq!(
            shown,
            r#"CodeHasher { key_id: "k1", secret: "<redacted>" }"#
        );
    }

    #[test]
    fn hash_matches_a_known_answer() {
        // python3 -c 'import hmac,hashlib,uuid; print(hmac.new(b"0123456789abcdef0123456789abcdef",
        //   b"user-otp/code/v1\0"+uuid.UUID("00112233-4455-6677-8899-aabbccddeeff").bytes+b"123456",
        //   hashlib.sha256).hexdigest())'
        let hasher = CodeHasher::new("k1", SECRET);
        let hash = hasher.hash(&CODE_ID, "123456");
        assert_eq!(hash.len(), HASH_LENGTH);
        assert_eq!(hex(&hash), KNOWN_SHORT_KEY);
    }

    #[test]
    fn hash_matches_a_known_answer_for_a_key_longer_than_a_block() {
        // Same, with the key b"k" * 100 (hashed first, as HMAC does for keys over 64 bytes).
        let hasher = CodeHasher::new("k2", &[b'k'; 100]);
        assert_eq!(hex(&hasher.hash(&CODE_ID, "123456")), KNOWN_LONG_KEY);
    }

    #[test]
    fn hash_equals_the_hmac_crate_on_the_raw_secret() {
        for secret in [&b"short"[..], SECRET, &[7u8; 64], &[9u8; 65]] {
            let mut reference = HmacSha256::new_from_slice(secret).expect("any key length");
            reference.update(b"user-otp/code/v1\0");
            reference.update(CODE_ID.as_bytes());
            reference.update(b"000042");
            let expected = reference.finalize().into_bytes().to_vec();
            assert_eq!(
                CodeHasher::new("k", secret).hash(&CODE_ID, "000042"),
                expected
            );
        }
    }

    #[test]
    fn equal_codes_under_different_ids_hash_differently() {
        let hasher = CodeHasher::new("k1", SECRET);
        assert_ne!(
            hasher.hash(&Uuid::new_v4(), "123456"),
            hasher.hash(&Uuid::new_v4(), "123456")
        );
    }

    #[test]
    fn verify_accepts_only_the_right_code_id_secret_and_length() {
        let hasher = CodeHasher::new("k1", SECRET);
        let id = Uuid::new_v4();
        let stored = hasher.hash(&id, "123456");
        assert!(hasher.verify(&id, "123456", &stored));
        assert!(!hasher.verify(&id, "123457", &stored));
        assert!(!hasher.verify(&id, "", &stored));
        assert!(!hasher.verify(&Uuid::new_v4(), "123456", &stored));
        let other = CodeHasher::new("k1", b"another secret of thirty-two byte");
        assert!(!other.verify(&id, "123456", &stored));
        assert!(!hasher.verify(&id, "123456", &stored[..HASH_LENGTH - 1]));
        assert!(!hasher.verify(&id, "123456", &stored[..16]));
        assert!(!hasher.verify(&id, "123456", &[]));
    }

    #[test]
    fn key_id_is_kept() {
        assert_eq!(
            CodeHasher::new(String::from("2025-01"), SECRET).key_id(),
            "2025-01"
        );
    }

    const KNOWN_SHORT_KEY: &str =
        "b0d00d4884a036770765bfbdbf067b595894b4b5d74e1cf044690fb46eecb5ee";
    const KNOWN_LONG_KEY: &str = "9166b73f7a4b47b671b33f5434a3149677a03aeb8a72cb6f6257091d3614a5d3";
}
