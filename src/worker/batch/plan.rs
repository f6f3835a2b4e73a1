//! The plan step: what each looked-up event leads to, decided without I/O.
//!
//! For a new request, [`decide`] gives a refusal or a send plan (DIGIT's rules); a send plan is
//! then checked against the country allow-list (a stored mobile can name a country too), and
//! the pumping guard; what passes gets a code (a test number's fixed one, else a fresh one) and
//! an `sms_pending` outcome carrying the code's keyed hash. A pending request is recovered only
//! when the plan still sends to the identity stored with its code; otherwise it is closed as
//! abandoned, unsent. Everything else (already served, stale, expired, deferred, dead letters)
//! passes through, except that every event behind a deferred one of its lock key is deferred
//! with it (a batch may hold several events of one key, in order: module `key_order`), so none
//! overtakes it.
//!
//! The outcomes are in event order, so the record step writes them in that order (the newest
//! code of an identity is the one from its latest request). The step's only inputs besides the
//! events are the [`Planner`]'s answers, so the unit tests below pin every branch.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use uuid::Uuid;

use super::announce::Facts;
use super::classify::{Request, Work};
use super::look_up::Looked;
use crate::domain::abuse::country::NOT_ALLOWED_CODE;
use crate::domain::abuse::pumping::PumpingVerdict;
use crate::domain::code::{self, OtpCode};
use crate::domain::decide::{decide, Decision, Refusal, SendPlan};
use crate::store::{NewCode, NewOutcome, Outcome, RequestKey};
use crate::worker::dead_letter::{Reason, Verdict};
use crate::worker::incoming::Incoming;
use crate::worker::key_order::{LockKey, Ticket};
use crate::worker::pipeline::Pipeline;

/// The detail of an outcome the pumping guard refused (enforce mode).
pub(super) const PUMPING_DETAIL: &str = "pumping";

/// The configuration and the stateful guards the plan consults.
pub(super) trait Planner {
    /// Whether login and passwordreset codes also go by email (`USER_OTP_EMAIL_OTP_ENABLED`).
    fn email_enabled(&self) -> bool;
    /// Whether an SMS may go to `number` (the country allow-list).
    fn allows_number(&self, number: &str) -> bool;
    /// The pumping guard's verdict on one more SMS to `number` (counted if allowed).
    fn pumping(&self, number: &str) -> PumpingVerdict;
    /// The code for an SMS to `number`, and whether it is a test number's fixed code.
    fn code_for(&self, number: &str) -> (OtpCode, bool);
    /// The stored form of `code` for `plan`: a new id and the code's keyed hash.
    fn new_code(&self, plan: &SendPlan, code: &OtpCode) -> NewCode;
}

/// A code to send for one request.
pub(super) struct Delivery<'a> {
    pub request: Request<'a>,
    pub plan: SendPlan,
    pub code_id: Uuid,
    pub code: OtpCode,
    /// For a recovered request, the end of its SMS send window (counted from its claim, set by
    /// the recover step); `None`: the batch's window (counted from the record step).
    pub send_by: Option<Instant>,
}

/// A pending request to send again, if its SMS never reached the broker.
pub(super) struct Recovery<'a> {
    /// With a fresh code for the pending code's id.
    pub delivery: Delivery<'a>,
    /// How long ago the pending outcome was recorded (how far back to scan the SMS topic).
    pub age: Duration,
    /// When the pending outcome was recorded, as stored (the recover step's claim compares it).
    pub recorded_at: SystemTime,
}

/// How many events of the batch ended where, without a send.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tally {
    pub already_served: usize,
    pub refused: usize,
    pub stale: usize,
    /// Refused by the pumping guard.
    pub rate_limited: usize,
}

/// What a batch is to do.
#[derive(Default)]
pub(super) struct Plan<'a> {
    /// Outcomes to record, in event order.
    pub outcomes: Vec<NewOutcome>,
    /// The event of each outcome, by the outcome's key (unique within a batch).
    pub events: HashMap<RequestKey, &'a Incoming>,
    /// New codes to send once their outcome is recorded.
    pub deliveries: Vec<Delivery<'a>>,
    /// Pending requests of an unfinished run.
    pub recoveries: Vec<Recovery<'a>>,
    /// Events for the dead-letter topic, with the reason.
    pub dead_letters: Vec<(&'a Incoming, Verdict)>,
    /// Pending requests past their code's validity: to close as `expired`.
    pub expired: Vec<RequestKey>,
    /// Pending requests that would now go elsewhere (or be refused): to close as `abandoned`.
    pub abandoned: Vec<RequestKey>,
    /// Requests recorded final by an earlier delivery: their outcome is announced again.
    pub redelivered: Vec<(RequestKey, Outcome)>,
    /// What the outcome event of each request says about it, by key (module `announce`).
    pub facts: HashMap<RequestKey, Facts>,
    /// Keys the record step recorded (won), and those a send limit refused with its name.
    pub won: std::collections::HashSet<RequestKey>,
    pub limited: HashMap<RequestKey, &'static str>,
    /// Events to serve again after a wait (another worker's request in its grace, egov-user not
    /// answering for it, or behind such an event of its key).
    pub deferred: Vec<(Ticket, Duration)>,
    pub tally: Tally,
}

impl<'a> Plan<'a> {
    fn record(&mut self, request: &Request<'a>, outcome: NewOutcome) {
        self.events.insert(outcome.key(), request.event);
        self.remember(request);
        self.outcomes.push(outcome);
    }

    /// Keeps what the outcome event of `request` will say about it.
    fn remember(&mut self, request: &Request<'a>) {
        self.facts.insert(request.key(), Facts::of(request));
    }
}

/// The plan for `looked` (see the module documentation).
pub(super) fn plan<'a>(looked: Vec<Looked<'a>>, planner: &impl Planner) -> Plan<'a> {
    let mut plan = Plan::default();
    let mut deferred_keys: HashMap<LockKey, Duration> = HashMap::new();
    for item in looked {
        if let Some(event) = event_of(&item) {
            if let Some(wait) = deferred_keys.get(&event.lock) {
                plan.deferred.push((event.ticket, *wait));
                continue;
            }
        }
        if let Looked::Settled(Work::Defer(event, wait)) = &item {
            deferred_keys.insert(event.lock, *wait);
        }
        match item {
            Looked::Settled(work) => settled(&mut plan, work),
            Looked::Serve(request, user) => match decide(&request.request, user.as_ref()) {
                Decision::Refuse(refusal) => {
                    let refused = outcome(&request, refused(refusal), None);
                    plan.record(&request, refused);
                    plan.tally.refused += 1;
                }
                Decision::Send(send) => serve(&mut plan, request, send, planner),
            },
            Looked::Recover(request, pending, user) => {
                match decide(&request.request, user.as_ref()) {
                    Decision::Send(send)
                        if pending.code_identity.as_deref() == Some(send.sms_to.as_str()) =>
                    {
                        plan.remember(&request);
                        let (code, _) = planner.code_for(&send.sms_to);
                        let delivery = Delivery {
                            request,
                            plan: send,
                            code_id: pending.code_id,
                            code,
                            send_by: None,
                        };
                        plan.recoveries.push(Recovery {
                            delivery,
                            age: pending.age,
                            recorded_at: pending.recorded_at,
                        });
                    }
                    _ => {
                        tracing::warn!(
                            request_id = ?request.event.request_id,
                            "pending request would now go elsewhere or is refused: closed as abandoned, not sent"
                        );
                        plan.remember(&request);
                        plan.abandoned.push(request.key());
                    }
                }
            }
        }
    }
    plan
}

/// The event `item` came in (none for a second copy within the batch: it sends nothing).
fn event_of<'a>(item: &Looked<'a>) -> Option<&'a Incoming> {
    match item {
        Looked::Serve(request, _) | Looked::Recover(request, _, _) => Some(request.event),
        Looked::Settled(work) => match work {
            Work::AlreadyServed => None,
            Work::DeadLetter(event, _) | Work::Defer(event, _) => Some(event),
            Work::Redelivered(request, _)
            | Work::Stale(request)
            | Work::Serve(request)
            | Work::Recover(request, _)
            | Work::Expire(request) => Some(request.event),
        },
    }
}

/// An event that needs no user.
fn settled<'a>(plan: &mut Plan<'a>, work: Work<'a>) {
    match work {
        Work::AlreadyServed => plan.tally.already_served += 1,
        Work::Redelivered(request, outcome) => {
            plan.tally.already_served += 1;
            plan.remember(&request);
            plan.redelivered.push((request.key(), outcome));
        }
        Work::DeadLetter(event, verdict) => plan.dead_letters.push((event, verdict)),
        Work::Expire(request) => {
            tracing::warn!(
                request_id = ?request.event.request_id,
                "pending request past its code validity: closed as expired, not resent"
            );
            plan.remember(&request);
            plan.expired.push(request.key());
        }
        Work::Stale(request) => {
            let stale = outcome(&request, Outcome::Stale, None);
            plan.record(&request, stale);
            plan.tally.stale += 1;
        }
        Work::Defer(event, wait) => plan.deferred.push((event.ticket, wait)),
        // Only reached if the look-up step passed one through (it attaches users to these).
        Work::Serve(request) | Work::Recover(request, _) => {
            plan.dead_letters.push((
                request.event,
                Verdict::new(Reason::InternalError, "no user lookup for this request"),
            ));
        }
    }
}

/// A new request egov-user's answer says to send to.
fn serve<'a>(
    plan: &mut Plan<'a>,
    request: Request<'a>,
    mut send: SendPlan,
    planner: &impl Planner,
) {
    if !planner.email_enabled() {
        send.email_to = None;
    }
    // A stored mobile (password reset) can name a country too.
    if !planner.allows_number(&send.sms_to) {
        plan.dead_letters.push((
            request.event,
            Verdict::new(Reason::CountryCodeNotAllowed, NOT_ALLOWED_CODE),
        ));
        return;
    }
    if planner.pumping(&send.sms_to) == PumpingVerdict::Refuse {
        let mut refused = outcome(&request, Outcome::RateLimited, None);
        refused.detail = Some(PUMPING_DETAIL);
        plan.record(&request, refused);
        plan.tally.rate_limited += 1;
        return;
    }
    let (code, test_number) = planner.code_for(&send.sms_to);
    let new_code = planner.new_code(&send, &code);
    let code_id = new_code.id;
    let mut pending = outcome(&request, Outcome::SmsPending, Some(new_code));
    pending.test_number = test_number;
    plan.record(&request, pending);
    plan.deliveries.push(Delivery {
        request,
        plan: send,
        code_id,
        code,
        send_by: None,
    });
}

fn outcome(request: &Request<'_>, outcome: Outcome, code: Option<NewCode>) -> NewOutcome {
    NewOutcome {
        request_id: request.event.request_id.clone(),
        fingerprint: request.fingerprint.clone(),
        tenant_id: request.request.root_tenant().to_owned(),
        otp_type: request.request.otp_type.as_str(),
        outcome,
        source: request.event.source.clone(),
        code,
        detail: None,
        test_number: false,
    }
}

fn refused(refusal: Refusal) -> Outcome {
    match refusal {
        Refusal::UserExists => Outcome::UserExists,
        Refusal::UnknownUser => Outcome::UnknownUser,
        Refusal::NoMobileNumber => Outcome::NoMobileNumber,
    }
}

impl Planner for Pipeline {
    fn email_enabled(&self) -> bool {
        self.email_enabled
    }

    fn allows_number(&self, number: &str) -> bool {
        self.allowed_country_codes.allows_number(number)
    }

    fn pumping(&self, number: &str) -> PumpingVerdict {
        self.pumping.judge(number)
    }

    /// A test number's fixed code, else a fresh one from the CSPRNG.
    fn code_for(&self, number: &str) -> (OtpCode, bool) {
        match self
            .test_numbers
            .code_for(number)
            .and_then(|digits| OtpCode::from_digits(digits).ok())
        {
            Some(fixed) => (fixed, true),
            None => (code::generate(self.code_length), false),
        }
    }

    fn new_code(&self, plan: &SendPlan, code: &OtpCode) -> NewCode {
        // Time-ordered (v7): new codes land at the right edge of the primary-key index instead
        // of on a random page, which keeps inserts cheap as the table grows.
        let id = Uuid::now_v7();
        NewCode {
            id,
            identity: plan.sms_to.clone(),
            identities: plan.identities.clone(),
            key_id: self.hasher.key_id().to_owned(),
            hash: self.hasher.hash(&id, code.as_str()),
            valid_for: self.code_ttl,
        }
    }
}

#[cfg(test)]
mod tests;
