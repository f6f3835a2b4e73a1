//! The plan step's rules, one branch per test.

use std::cell::Cell;

use super::*;
use crate::domain::{FoundUser, OtpRequest, OtpType};
use crate::store::SourcePosition;
use crate::worker::batch::classify::Pending;
use crate::worker::consumer::AssignmentId;

/// A planner with fixed answers: every code is `123456`, ids count up from 1.
#[derive(Default)]
struct Fixed {
    email_enabled: bool,
    blocked_number: Option<&'static str>,
    pumping_refuses: bool,
    next_id: Cell<u128>,
}

impl Planner for Fixed {
    fn email_enabled(&self) -> bool {
        self.email_enabled
    }

    fn allows_number(&self, number: &str) -> bool {
        self.blocked_number != Some(number)
    }

    fn pumping(&self, _: &str) -> PumpingVerdict {
        if self.pumping_refuses {
            PumpingVerdict::Refuse
        } else {
            PumpingVerdict::Send
        }
    }

    fn code_for(&self, _: &str) -> (OtpCode, bool) {
        (OtpCode::from_digits("123456").expect("digits"), false)
    }

    fn new_code(&self, plan: &SendPlan, _: &OtpCode) -> NewCode {
        self.next_id.set(self.next_id.get() + 1);
        NewCode {
            id: Uuid::from_u128(self.next_id.get()),
            identity: plan.sms_to.clone(),
            identities: plan.identities.clone(),
            key_id: "k1".into(),
            hash: vec![0; 32],
            valid_for: Duration::from_secs(300),
        }
    }
}

fn event(offset: i64) -> Incoming {
    Incoming {
        source: SourcePosition {
            topic: "requests".into(),
            partition: 0,
            offset,
        },
        key: None,
        payload: None,
        headers: Vec::new(),
        unreadable_headers: 0,
        timestamp_ms: None,
        request_id: format!("caller:r{offset}"),
        caller_id: Some(format!("r{offset}")),
        assignment: AssignmentId::first(),
        ticket: u64::try_from(offset).expect("offset") + 100,
        // A key of its own per event, unless a test says otherwise.
        lock: u64::try_from(offset).expect("offset") + 1_000,
    }
}

fn request<'a>(event: &'a Incoming, otp_type: OtpType, mobile: &str) -> Request<'a> {
    Request {
        event,
        request: OtpRequest {
            request_info: None,
            mobile_number: mobile.into(),
            tenant_id: "pb.amritsar".into(),
            otp_type,
            user_type: None,
            locale: None,
            country_code: None,
        },
        fingerprint: vec![u8::try_from(event.source.offset).expect("small")],
    }
}

fn user(mobile: &str, email: Option<&str>) -> Option<FoundUser> {
    Some(FoundUser {
        id: Some(1),
        uuid: None,
        mobile_number: Some(mobile.into()),
        email_id: email.map(str::to_owned),
        tenant_id: Some("pb".into()),
    })
}

fn outcomes(plan: &Plan<'_>) -> Vec<(Outcome, Option<&'static str>)> {
    plan.outcomes
        .iter()
        .map(|o| (o.outcome, o.detail))
        .collect()
}

#[test]
fn a_new_register_request_gets_a_pending_outcome_with_its_code_and_one_delivery() {
    let e = event(1);
    let plan = plan(
        vec![Looked::Serve(
            request(&e, OtpType::Register, "9876543210"),
            None,
        )],
        &Fixed::default(),
    );
    assert_eq!(outcomes(&plan), [(Outcome::SmsPending, None)]);
    let code = plan.outcomes[0].code.as_ref().expect("a code is stored");
    assert_eq!(code.identity, "9876543210");
    assert_eq!(plan.deliveries.len(), 1);
    assert_eq!(
        plan.deliveries[0].code_id, code.id,
        "the SMS carries the stored code"
    );
    assert_eq!(plan.deliveries[0].code.as_str(), "123456");
    let key = plan.outcomes[0].key();
    assert_eq!(
        plan.events[&key].source.offset, 1,
        "the outcome knows its event"
    );
}

#[test]
fn refusals_record_their_outcome_and_send_nothing() {
    let (a, b, c) = (event(1), event(2), event(3));
    let plan = plan(
        vec![
            Looked::Serve(
                request(&a, OtpType::Register, "9876543210"),
                user("9876543210", None),
            ),
            Looked::Serve(request(&b, OtpType::Login, "9876543211"), None),
            Looked::Serve(
                request(&c, OtpType::PasswordReset, "asha"),
                Some(FoundUser {
                    mobile_number: None,
                    ..user("x", None).expect("user")
                }),
            ),
        ],
        &Fixed::default(),
    );
    assert_eq!(
        outcomes(&plan),
        [
            (Outcome::UserExists, None),
            (Outcome::UnknownUser, None),
            (Outcome::NoMobileNumber, None)
        ],
        "in event order"
    );
    assert!(plan.deliveries.is_empty());
    assert_eq!(plan.tally.refused, 3);
    assert!(plan.outcomes.iter().all(|o| o.code.is_none()));
}

#[test]
fn the_pumping_guard_in_enforce_mode_records_rate_limited_with_its_detail() {
    let e = event(1);
    let planner = Fixed {
        pumping_refuses: true,
        ..Fixed::default()
    };
    let plan = plan(
        vec![Looked::Serve(
            request(&e, OtpType::Register, "9876543210"),
            None,
        )],
        &planner,
    );
    assert_eq!(
        outcomes(&plan),
        [(Outcome::RateLimited, Some(PUMPING_DETAIL))]
    );
    assert!(plan.deliveries.is_empty());
    assert_eq!(plan.tally.rate_limited, 1);
}

#[test]
fn a_stored_mobile_outside_the_allowed_countries_is_dead_lettered() {
    let e = event(1);
    let planner = Fixed {
        blocked_number: Some("+449876543210"),
        ..Fixed::default()
    };
    let plan = plan(
        vec![Looked::Serve(
            request(&e, OtpType::PasswordReset, "asha"),
            user("+449876543210", None),
        )],
        &planner,
    );
    assert!(plan.outcomes.is_empty() && plan.deliveries.is_empty());
    assert_eq!(plan.dead_letters.len(), 1);
    assert_eq!(plan.dead_letters[0].1.reason, Reason::CountryCodeNotAllowed);
}

#[test]
fn a_login_code_goes_by_email_only_when_email_is_enabled() {
    let e = event(1);
    let looked = || {
        vec![Looked::Serve(
            request(&e, OtpType::Login, "9876543210"),
            user("9876543210", Some("asha@example.org")),
        )]
    };
    let off = plan(looked(), &Fixed::default());
    assert_eq!(off.deliveries[0].plan.email_to, None);
    let on = plan(
        looked(),
        &Fixed {
            email_enabled: true,
            ..Fixed::default()
        },
    );
    assert_eq!(
        on.deliveries[0].plan.email_to.as_deref(),
        Some("asha@example.org")
    );
}

#[test]
fn a_pending_request_is_recovered_only_to_the_identity_stored_with_its_code() {
    let (a, b) = (event(1), event(2));
    let pending = |identity: &str| Pending {
        code_id: Uuid::from_u128(42),
        age: Duration::from_secs(20),
        recorded_at: std::time::SystemTime::UNIX_EPOCH,
        code_identity: Some(identity.into()),
    };
    let plan = plan(
        vec![
            Looked::Recover(
                request(&a, OtpType::Register, "9876543210"),
                pending("9876543210"),
                None,
            ),
            Looked::Recover(
                request(&b, OtpType::PasswordReset, "asha"),
                pending("9876543210"),
                user("9123456789", None),
            ),
        ],
        &Fixed::default(),
    );
    assert_eq!(plan.recoveries.len(), 1);
    let recovery = &plan.recoveries[0];
    assert_eq!(
        recovery.delivery.code_id,
        Uuid::from_u128(42),
        "the pending code's id"
    );
    assert_eq!(recovery.age, Duration::from_secs(20));
    assert_eq!(
        plan.abandoned.len(),
        1,
        "the stored mobile changed: not sent"
    );
    assert!(plan.outcomes.is_empty(), "recovery records no new outcome");
}

#[test]
fn settled_events_pass_through_to_their_lists() {
    let (stale, expired, deferred, bad) = (event(1), event(2), event(3), event(4));
    let plan = plan(
        vec![
            Looked::Settled(Work::AlreadyServed),
            Looked::Settled(Work::Stale(request(
                &stale,
                OtpType::Register,
                "9876543210",
            ))),
            Looked::Settled(Work::Expire(request(
                &expired,
                OtpType::Login,
                "9876543211",
            ))),
            Looked::Settled(Work::Defer(&deferred, Duration::from_secs(4))),
            Looked::Settled(Work::DeadLetter(
                &bad,
                Verdict::new(Reason::Malformed, "not JSON"),
            )),
        ],
        &Fixed::default(),
    );
    assert_eq!(plan.tally.already_served, 1);
    assert_eq!(outcomes(&plan), [(Outcome::Stale, None)]);
    assert_eq!(plan.expired.len(), 1);
    assert_eq!(plan.deferred, [(103, Duration::from_secs(4))], "by ticket");
    assert_eq!(plan.dead_letters.len(), 1);
    assert!(plan.deliveries.is_empty());
}

#[test]
fn every_event_behind_a_deferred_one_of_its_key_is_deferred_too_so_none_overtakes_it() {
    let wait = Duration::from_secs(3);
    let mut first = event(1);
    let mut second = event(2);
    let mut third = event(3);
    let other = event(4);
    (first.lock, second.lock, third.lock) = (7, 7, 7);
    let plan = plan(
        vec![
            Looked::Serve(request(&other, OtpType::Register, "9876543214"), None),
            Looked::Settled(Work::Defer(&first, wait)),
            Looked::Serve(request(&second, OtpType::Register, "9876543212"), None),
            Looked::Settled(Work::DeadLetter(
                &third,
                Verdict::new(Reason::Malformed, "not JSON"),
            )),
        ],
        &Fixed::default(),
    );
    assert_eq!(
        plan.deferred,
        [
            (first.ticket, wait),
            (second.ticket, wait),
            (third.ticket, wait)
        ]
    );
    assert_eq!(
        outcomes(&plan),
        [(Outcome::SmsPending, None)],
        "only the other key's"
    );
    assert_eq!(plan.deliveries.len(), 1);
    assert!(plan.dead_letters.is_empty());
}
