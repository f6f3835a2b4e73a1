//! What a text field may hold before it is passed on: no control characters (they forge log
//! lines and PostgreSQL refuses U+0000) and no more characters than the services downstream
//! store. Caps, with the DIGIT schema they come from (egovernments/DIGIT-OSS,
//! `core-services/egov-user/src/main/resources/db/migration/ddl/`):
//!
//! | field | cap | source |
//! |---|---|---|
//! | tenant id | 256 | `eg_user.tenantid character varying(256)` (`V20170223150524__create_eg_user_table.sql`); egov-otp's `eg_token.tenantid` is the same |
//! | user name (a passwordreset "mobile") | 180 | `eg_user.username varchar(180)` (`V20190313165702__alter_eg_user_address_extend.sql`) |
//! | identity (`_validate`) | 180 | a stored mobile (`eg_user.mobilenumber varchar(150)`, same migration) or a user name (180) |
//! | user type | 50 | `eg_user.type character varying(50)` (`V20170223150524`) |
//! | locale | 255 | egov-localization `message.locale varchar(255)` (egovernments/egov-services, `V20170614112802__localization_create_message.sql`) |
//! | country code | 8 | ours: `+` and at most 3 digits (ITU-T E.164), with room for formatting |
//! | code (`_validate`) | 64 | ours: codes have at most 10 digits |
//!
//! Lengths count characters (PostgreSQL's `varchar(n)` counts characters, not bytes).

/// Longest tenant id, in characters.
pub const TENANT_ID: usize = 256;
/// Longest user name (the `mobileNumber` of a passwordreset), in characters.
pub const USER_NAME: usize = 180;
/// Longest `_validate` identity, in characters.
pub const IDENTITY: usize = 180;
/// Longest user type, in characters.
pub const USER_TYPE: usize = 50;
/// Longest locale, in characters.
pub const LOCALE: usize = 255;
/// Longest country code, in characters.
pub const COUNTRY_CODE: usize = 8;
/// Longest code a `_validate` may carry, in characters.
pub const CODE: usize = 64;

/// True when `value` has at most `max_chars` characters and no control character (Unicode
/// category Cc: U+0000–U+001F, U+007F–U+009F).
pub fn acceptable(value: &str, max_chars: usize) -> bool {
    !value.chars().any(char::is_control) && value.chars().nth(max_chars).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_characters_and_control_characters_are_refused() {
        assert!(acceptable("pb.amritsar", TENANT_ID));
        assert!(acceptable(&"t".repeat(256), TENANT_ID));
        assert!(!acceptable(&"t".repeat(257), TENANT_ID));
        assert!(
            acceptable(&"ऋ".repeat(180), USER_NAME),
            "characters, not bytes"
        );
        for bad in ["pb\u{0}", "a\nb", "a\rb", "\u{1b}[31m", "x\u{7f}", "\u{85}"] {
            assert!(!acceptable(bad, TENANT_ID), "{bad:?}");
        }
        assert!(acceptable("", TENANT_ID));
    }
}
