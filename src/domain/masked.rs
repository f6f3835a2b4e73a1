//! How personal data may appear in a log line: masked ([`Masked`]). Used wherever a mobile
//! number or user name is logged (egov-user client, shim, OTP API, pumping guard).

use std::fmt;

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
