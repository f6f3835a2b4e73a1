//! The country-code allow-list against SMS pumping (`USER_OTP_ALLOWED_COUNTRY_CODES`, default
//! `91`): a request naming a country outside it is refused (`_send`: 400
//! `OTP.COUNTRY_CODE_NOT_ALLOWED`; the worker dead-letters such an event with the same reason).
//! `+91`, `91` and `0091` all mean 91. A request without `countryCode` is allowed: most DIGIT
//! callers send none, and the SMS provider of an Indian state sends to Indian numbers.

/// The allowed country calling codes, as bare digits; empty allows every country.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountryAllowList {
    codes: Vec<String>,
}

/// The field error code of a country outside the allow-list.
pub const NOT_ALLOWED_CODE: &str = "OTP.COUNTRY_CODE_NOT_ALLOWED";

impl CountryAllowList {
    /// An allow-list of `codes` (each in any accepted form).
    ///
    /// # Errors
    /// The first entry that is not a country calling code (1–3 digits after `+` or `00`).
    pub fn new<'a>(codes: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let codes = codes
            .into_iter()
            .map(|code| normalize(code).ok_or_else(|| code.to_owned()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { codes })
    }

    /// Is a request with `country_code` (as sent, `None` when absent) allowed?
    pub fn allows(&self, country_code: Option<&str>) -> bool {
        let Some(sent) = country_code.map(str::trim).filter(|c| !c.is_empty()) else {
            return true;
        };
        if self.codes.is_empty() {
            return true;
        }
        normalize(sent).is_some_and(|code| self.codes.contains(&code))
    }
}

impl CountryAllowList {
    /// Is a mobile number allowed by its own digits? [§1](../../../docs/contract.md#1-the-send-request) accepts 10-13 digits, so a country can
    /// hide in the number itself (`447700900123`, no `countryCode`): an all-digit number longer
    /// than 10 digits (after dropping `+`, spaces and dashes: egov-user may store `+44…`) must
    /// start with an allowed country code, optionally after zeros (`0…`,
    /// `091…`, `0091…`; a lone trunk `0` is domestic). Ten digits or fewer, or anything that is not
    /// all digits (a user name), is left to the other checks. An empty list allows all.
    pub fn allows_number(&self, mobile: &str) -> bool {
        let Some(digits) = super::compact_number(mobile) else {
            return true;
        };
        if self.codes.is_empty() || digits.len() <= 10 {
            return true;
        }
        let lead = digits[..digits.len() - 10].trim_start_matches('0');
        lead.is_empty() || self.codes.iter().any(|code| code == lead)
    }

    /// [`Self::allows`] for the request's `countryCode` and, when the request's mobile is a
    /// number (register, login; not a password reset's user name), [`Self::allows_number`].
    pub fn allows_request(&self, country_code: Option<&str>, mobile: Option<&str>) -> bool {
        self.allows(country_code) && mobile.is_none_or(|mobile| self.allows_number(mobile))
    }
}

/// The bare digits of a country calling code: `+91`, `91`, `0091` → `91`. ITU-T E.164 codes
/// have 1–3 digits; anything else is `None`.
pub fn normalize(code: &str) -> Option<String> {
    let code = code.trim();
    let digits = code
        .strip_prefix('+')
        .or_else(|| code.strip_prefix("00"))
        .unwrap_or(code);
    let valid = (1..=3).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    valid.then(|| digits.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_91_is_91() {
        let india = CountryAllowList::new(["91"]).expect("valid");
        for sent in ["+91", "91", "0091", " +91 "] {
            assert!(india.allows(Some(sent)), "{sent}");
        }
    }

    #[test]
    fn other_countries_and_nonsense_are_refused() {
        let india = CountryAllowList::new(["+91"]).expect("valid");
        for sent in ["+44", "1", "0044", "+9", "+910", "abc", "+", "00"] {
            assert!(!india.allows(Some(sent)), "{sent}");
        }
    }

    #[test]
    fn an_absent_country_code_is_allowed() {
        let india = CountryAllowList::new(["91"]).expect("valid");
        assert!(india.allows(None));
        assert!(india.allows(Some("")));
    }

    #[test]
    fn a_country_hidden_in_a_long_number_is_refused() {
        let india = CountryAllowList::new(["91"]).expect("valid");
        for allowed in [
            "9876543210",
            "09876543210",
            "919876543210",
            "0919876543210",
            "00919876543210",
        ] {
            assert!(india.allows_number(allowed), "{allowed}");
        }
        for refused in [
            "447700900123",
            "0447700900123",
            "9198765432101",
            "19876543210",
            "+44 7700 900123",
        ] {
            assert!(!india.allows_number(refused), "{refused}");
        }
        assert!(india.allows_number("ramesh.kumar.2024"));
        assert!(!india.allows_request(None, Some("447700900123")));
        assert!(india.allows_request(Some("+91"), None));
        assert!(CountryAllowList::new([])
            .expect("valid")
            .allows_number("447700900123"));
    }

    #[test]
    fn an_empty_list_allows_every_country() {
        let any = CountryAllowList::new([]).expect("valid");
        assert!(any.allows(Some("+44")));
    }

    #[test]
    fn a_list_entry_must_be_a_country_code() {
        assert_eq!(CountryAllowList::new(["91", "x"]), Err("x".to_owned()));
        assert!(CountryAllowList::new(["1", "+977", "0044"]).is_ok());
    }
}
