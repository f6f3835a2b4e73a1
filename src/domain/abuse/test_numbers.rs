//! Test numbers (`USER_OTP_TEST_NUMBERS="mobile:code,…"`): app-store reviewers and smoke tests
//! need a number whose code is known in advance. Such a number gets its fixed code instead of a
//! random one; the code is still stored only as a keyed hash, still single use, still expiring,
//! still rate limited, and its outcome is flagged `test_number`. The production profile refuses
//! to start with test numbers unless `USER_OTP_ALLOW_TEST_NUMBERS=true`.

use std::collections::HashMap;
use std::fmt;

/// Mobile number → fixed code. `Debug` hides the codes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TestNumbers {
    codes: HashMap<String, String>,
}

impl fmt::Debug for TestNumbers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TestNumbers({} numbers, codes <redacted>)",
            self.codes.len()
        )
    }
}

impl TestNumbers {
    /// Parses `mobile:code,…` (spaces around entries ignored; empty = none). A mobile is 10–13
    /// digits ([§1](../../../docs/contract.md#1-the-send-request)), a code 4–10 digits.
    ///
    /// # Errors
    /// A description of the first bad entry, without its code.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut codes = HashMap::new();
        for (n, entry) in text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let Some((mobile, code)) = entry.split_once(':') else {
                return Err(format!("entry {} is not mobile:code", n + 1));
            };
            let (mobile, code) = (mobile.trim(), code.trim());
            let digits = |s: &str, range: std::ops::RangeInclusive<usize>| {
                range.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
            };
            if !digits(mobile, 10..=13) {
                return Err(format!("entry {}: the mobile must be 10-13 digits", n + 1));
            }
            if !digits(code, 4..=10) {
                return Err(format!("entry {}: the code must be 4-10 digits", n + 1));
            }
            codes.insert(mobile.to_owned(), code.to_owned());
        }
        Ok(Self { codes })
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// The length of the shortest fixed code (`None` when there are no test numbers).
    pub fn shortest_code(&self) -> Option<usize> {
        self.codes.values().map(String::len).min()
    }

    /// The fixed code of `mobile`, if it is a test number.
    pub fn code_for(&self, mobile: &str) -> Option<&str> {
        self.codes.get(mobile).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse() {
        let numbers = TestNumbers::parse(" 9999999999:123456 ,8888888888:0000").expect("valid");
        assert_eq!(numbers.code_for("9999999999"), Some("123456"));
        assert_eq!(numbers.code_for("8888888888"), Some("0000"));
        assert_eq!(numbers.code_for("7777777777"), None);
        assert!(TestNumbers::parse("").expect("empty").is_empty());
    }

    #[test]
    fn bad_entries_are_refused_without_repeating_the_code() {
        for bad in [
            "9999999999",
            "999:123456",
            "9999999999:12",
            "9999999999:12ab56",
        ] {
            let error = TestNumbers::parse(bad).expect_err(bad);
            assert!(!error.contains("123456"), "{error}");
        }
    }

    #[test]
    fn debug_hides_the_codes() {
        let numbers = TestNumbers::parse("9999999999:123456").expect("valid");
        assert!(!format!("{numbers:?}").contains("123456"));
    }
}
