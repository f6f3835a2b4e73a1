//! The user as egov-user returns it ([contract §3](../../docs/contract.md#3-egov-user-search)). Only the fields the OTP rules need are kept;
//! everything else in egov-user's answer is ignored.

use serde::Deserialize;

/// One entry of egov-user's `user` array.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundUser {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub mobile_number: Option<String>,
    #[serde(default)]
    pub email_id: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
}

impl FoundUser {
    /// The stored mobile number, if it is not blank.
    pub fn mobile(&self) -> Option<&str> {
        non_blank(self.mobile_number.as_deref())
    }

    /// The stored email address, if it is not blank.
    pub fn email(&self) -> Option<&str> {
        non_blank(self.email_id.as_deref())
    }
}

fn non_blank(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}
