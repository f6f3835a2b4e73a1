//! The egov-user search for one OTP request ([contract §3](../../docs/contract.md#3-egov-user-search)), as a pure function.
//!
//! - Employees (`userType` `EMPLOYEE`, any case) are searched by `mobileNumber` in the tenant
//!   exactly as sent (an employee belongs to a city such as `pb.amritsar`), with `userType`
//!   written as `EMPLOYEE`.
//! - Everyone else is searched by `userName` (a citizen's user name is the mobile number) in the
//!   state-level root tenant (`pb` for `pb.amritsar`), with `userType` as sent. When the request
//!   has no `userType`, `CITIZEN` is sent: egov-user's citizen user type, and what a request
//!   without one (the citizen web UI's) is about.
//!
//! The same tenant goes into the `tenantId` header ([`SearchBody::tenant_id`]). Members are
//! serialised in the contract's order: `tenantId`, `userType`, then the search key.

use serde::Serialize;

use crate::domain::OtpRequest;

/// The user type sent for employees, whatever case the request used.
pub const EMPLOYEE: &str = "EMPLOYEE";
/// The user type sent when the request names none.
pub const DEFAULT_USER_TYPE: &str = "CITIZEN";

/// The JSON body of `POST /user/_search`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchBody<'a> {
    /// Also the value of the `tenantId` header.
    pub tenant_id: &'a str,
    pub user_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<&'a str>,
}

/// The search that finds the user `request` is about.
pub fn search_body(request: &OtpRequest) -> SearchBody<'_> {
    if request.is_employee() {
        SearchBody {
            tenant_id: &request.tenant_id,
            user_type: EMPLOYEE,
            mobile_number: Some(&request.mobile_number),
            user_name: None,
        }
    } else {
        SearchBody {
            tenant_id: request.root_tenant(),
            user_type: request.user_type.as_deref().unwrap_or(DEFAULT_USER_TYPE),
            mobile_number: None,
            user_name: Some(&request.mobile_number),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RawOtpRequest;
    use serde_json::{json, Value};

    fn request(otp: Value) -> OtpRequest {
        RawOtpRequest::from_value(&json!({ "otp": otp }))
            .expect("parses")
            .validate()
            .expect("valid")
    }

    fn body_text(otp: Value) -> String {
        serde_json::to_string(&search_body(&request(otp))).expect("serialises")
    }

    #[test]
    fn citizen_is_searched_by_user_name_in_the_root_tenant() {
        let text = body_text(
            json!({"mobileNumber": "9876543210", "tenantId": "pb.amritsar",
            "type": "login", "userType": "CITIZEN"}),
        );
        assert_eq!(
            text,
            r#"{"tenantId":"pb","userType":"CITIZEN","userName":"9876543210"}"#
        );
    }

    #[test]
    fn missing_user_type_is_sent_as_citizen() {
        let text = body_text(json!({"mobileNumber": "9876543210", "tenantId": "pb"}));
        assert_eq!(
            text,
            r#"{"tenantId":"pb","userType":"CITIZEN","userName":"9876543210"}"#
        );
    }

    #[test]
    fn other_user_types_are_sent_as_sent() {
        let text = body_text(
            json!({"mobileNumber": "9876543210", "tenantId": "pb.patiala",
            "userType": "citizen"}),
        );
        assert_eq!(
            text,
            r#"{"tenantId":"pb","userType":"citizen","userName":"9876543210"}"#
        );
        let text = body_text(json!({"mobileNumber": "9876543210", "tenantId": "pb",
            "userType": "SYSTEM"}));
        assert_eq!(
            text,
            r#"{"tenantId":"pb","userType":"SYSTEM","userName":"9876543210"}"#
        );
    }

    #[test]
    fn employee_is_searched_by_mobile_number_in_the_tenant_as_sent() {
        for user_type in ["EMPLOYEE", "Employee", "employee"] {
            let text = body_text(
                json!({"mobileNumber": "9876543210", "tenantId": "pb.amritsar",
                "type": "passwordreset", "userType": user_type}),
            );
            assert_eq!(
                text,
                r#"{"tenantId":"pb.amritsar","userType":"EMPLOYEE","mobileNumber":"9876543210"}"#,
                "{user_type}"
            );
        }
    }

    #[test]
    fn header_tenant_is_the_body_tenant() {
        let citizen = request(json!({"mobileNumber": "9876543210", "tenantId": "pb.amritsar"}));
        assert_eq!(search_body(&citizen).tenant_id, "pb");
        let employee = request(
            json!({"mobileNumber": "9876543210", "tenantId": "pb.amritsar",
            "userType": "EMPLOYEE"}),
        );
        assert_eq!(search_body(&employee).tenant_id, "pb.amritsar");
    }
}
