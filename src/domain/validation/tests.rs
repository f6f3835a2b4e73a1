//! Every [§1](../../../docs/contract.md#1-the-send-request) rule in table order, alone and combined.

use super::ValidationRule::*;
use super::*;

fn rules(
    otp_present: bool,
    tenant: Option<&str>,
    mobile: Option<&str>,
    otp_type: Option<&str>,
) -> Vec<ValidationRule> {
    failing_rules(RuleInput {
        otp_present,
        tenant_id: tenant,
        mobile_number: mobile,
        otp_type,
        ..RuleInput::default()
    })
}

#[test]
fn valid_requests_pass() {
    for t in [
        None,
        Some(""),
        Some("register"),
        Some("LOGIN"),
        Some("passwordreset"),
    ] {
        assert_eq!(
            rules(true, Some("pb"), Some("9876543210"), t),
            vec![],
            "{t:?}"
        );
    }
    assert_eq!(
        rules(true, Some("pb.amritsar"), Some("9876543210123"), None),
        vec![]
    );
    // passwordreset takes any non-empty "mobile" (a username)
    assert_eq!(
        rules(true, Some("pb"), Some("EMP-001"), Some("passwordreset")),
        vec![]
    );
}

#[test]
fn rule_1_tenant_missing_or_empty() {
    for tenant in [None, Some(""), Some("  ")] {
        assert_eq!(
            rules(true, tenant, Some("9876543210"), None),
            vec![TenantIdMandatory]
        );
    }
}

#[test]
fn rule_2_mobile_missing_or_empty_for_passwordreset() {
    for mobile in [None, Some(""), Some(" ")] {
        assert_eq!(
            rules(true, Some("pb"), mobile, Some("passwordreset")),
            vec![MobileNumberMandatory]
        );
    }
}

#[test]
fn rule_2_with_format_rules_for_other_types() {
    assert_eq!(
        rules(true, Some("pb"), None, Some("login")),
        vec![
            MobileNumberMandatory,
            MobileNumberInvalid,
            MobileNumberInvalidLength
        ]
    );
}

#[test]
fn rule_3_unknown_type() {
    assert_eq!(
        rules(true, Some("pb"), Some("9876543210"), Some("signup")),
        vec![RequestTypeMandatory]
    );
}

#[test]
fn rule_3_no_otp_object_fails_everything() {
    assert_eq!(
        rules(false, None, None, None),
        ValidationRule::LEGACY.to_vec()
    );
}

#[test]
fn rule_4_not_numeric() {
    for mobile in ["98765x3210", "+919876543210", "९८७६५४३२१०"] {
        assert_eq!(
            rules(true, Some("pb"), Some(mobile), None),
            vec![MobileNumberInvalid, MobileNumberInvalidLength],
            "{mobile}"
        );
    }
}

#[test]
fn rule_5_wrong_length() {
    for mobile in ["987654321", "98765432101234"] {
        assert_eq!(
            rules(true, Some("pb"), Some(mobile), Some("register")),
            vec![MobileNumberInvalidLength],
            "{mobile}"
        );
    }
}

#[test]
fn format_rules_apply_to_unknown_types_but_not_to_passwordreset() {
    assert_eq!(
        rules(true, Some("pb"), Some("abc"), Some("nonsense")),
        vec![
            RequestTypeMandatory,
            MobileNumberInvalid,
            MobileNumberInvalidLength
        ]
    );
    assert_eq!(
        rules(true, Some("pb"), Some("abc"), Some("PASSWORDRESET")),
        vec![]
    );
}

#[test]
fn combined_faults_list_the_first_rule_first() {
    let failed = rules(true, None, Some("12"), Some("bogus"));
    assert_eq!(
        failed,
        vec![
            TenantIdMandatory,
            RequestTypeMandatory,
            MobileNumberInvalidLength
        ]
    );
    assert_eq!(failed[0], TenantIdMandatory);
}

#[test]
fn codes_messages_and_fields_are_the_legacy_ones() {
    let table: Vec<_> = ValidationRule::LEGACY
        .iter()
        .map(|r| (r.code(), r.message(), r.field()))
        .collect();
    assert_eq!(
        table,
        vec![
            (
                "OTP.TENANT_ID_MANDATORY",
                "Tenant field is mandatory",
                "otp.tenantId"
            ),
            (
                "OTP.MOBILE_NUMBER_MANDATORY",
                "Mobile number field is mandatory",
                "otp.mobileNumber"
            ),
            (
                "OTP.REQUEST_TYPE_MANDATORY",
                "Request type (register, passwordreset,login) is mandatory",
                "otp.type"
            ),
            (
                "OTP.MOBILE_NUMBER_INVALID",
                "Mobile number field should be numeric.",
                "otp.mobileNumber"
            ),
            (
                "OTP.MOBILE_NUMBER_INVALIDLENGTH",
                "Mobile number length should be min 10 and max 13 digits",
                "otp.mobileNumber"
            ),
        ]
    );
}

#[test]
fn our_rules_follow_the_legacy_ones_and_refuse_control_characters_and_overlong_values() {
    let long_tenant = "t".repeat(4_000);
    assert_eq!(
        rules(true, Some(&long_tenant), Some("9876543210"), None),
        vec![TenantIdInvalid]
    );
    assert_eq!(
        rules(true, Some("pb\u{0}"), Some("98765"), None),
        vec![MobileNumberInvalidLength, TenantIdInvalid],
        "legacy rules first"
    );
    let long_name = "u".repeat(181);
    assert_eq!(
        rules(true, Some("pb"), Some(&long_name), Some("passwordreset")),
        vec![UserNameInvalid]
    );
    assert_eq!(
        rules(true, Some("pb"), Some("asha\nk"), Some("passwordreset")),
        vec![UserNameInvalid]
    );
    let check = |user_type: Option<&str>, locale: Option<&str>, country_code: Option<&str>| {
        failing_rules(RuleInput {
            otp_present: true,
            tenant_id: Some("pb"),
            mobile_number: Some("9876543210"),
            otp_type: None,
            user_type,
            locale,
            country_code,
        })
    };
    assert_eq!(check(Some("CITIZEN"), Some("en_IN"), Some("+91")), vec![]);
    assert_eq!(
        check(Some(&"E".repeat(51)), None, None),
        vec![UserTypeInvalid]
    );
    assert_eq!(check(None, Some("en\u{1b}"), None), vec![LocaleInvalid]);
    assert_eq!(
        check(None, None, Some("+91919191919")),
        vec![CountryCodeInvalid]
    );
    for rule in [
        TenantIdInvalid,
        UserNameInvalid,
        UserTypeInvalid,
        LocaleInvalid,
        CountryCodeInvalid,
    ] {
        assert!(rule.code().starts_with("OTP.") && rule.code().ends_with("_INVALID"));
    }
}
