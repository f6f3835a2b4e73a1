//! The look-up step: egov-user searched for every request to serve or recover, many in flight;
//! each answer is attached to its own request ([`Looked`]), never matched up by position.
//!
//! Transient failures (timeouts, 5xx, 429, and statuses every request would get: 401, 403, 404,
//! …) are retried inside the client. What comes back as an error is a verdict on the request, with
//! one check: an answer egov-user sent that is not a search answer may be the request's own doing
//! (a user record the parser refuses) or egov-user's for everyone (a wrong URL answering HTML).
//! The same search for a number nobody has, in the same tenant, tells them apart: answered well,
//! the malformed answer is the request's and it is dead-lettered; malformed too, it is an outage
//! of configuration, logged at error level and retried with backoff, never dead-lettered.
//!
//! A search that has no verdict within its budget ([`lookup_budget`]: three attempts' time, at
//! least 5 s) is not waited for any longer in this batch: its event is *deferred* (as another
//! worker's pending request is, module `classify`) and served again after the longest backoff
//! delay, still holding its key and its unfinished offset. So one number egov-user cannot
//! answer for (a hanging shard, a user record that times out every time) delays only its own
//! key, never the rest of its batch or, through the batches in flight, the whole worker; while
//! egov-user is down for everyone, every event takes that round and nothing is lost or skipped.

use std::future::Future;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use tokio_util::sync::CancellationToken;

use super::classify::{Pending, Request, Work};
use crate::domain::{FoundUser, OtpRequest, OtpType};
use crate::retry::{Backoff, Cancelled, RetryPolicy};
use crate::users::UserLookupError;
use crate::worker::dead_letter::{Reason, Verdict};
use crate::worker::pipeline::Pipeline;

/// egov-user searches in flight at once within a batch.
const LOOKUP_CONCURRENCY: usize = 32;

/// A user search for a number nobody has.
const CANARY_NUMBER: &str = "0000000000";

/// The shortest look-up budget.
const MIN_LOOKUP_BUDGET: Duration = Duration::from_secs(5);

/// How long one request's egov-user search may retry within a batch before its event is
/// deferred: three attempts' time (`USER_OTP_USER_TIMEOUT_MS` each), at least 5 s (6 s with the
/// default 2 s timeout).
pub(crate) fn lookup_budget(policy: &RetryPolicy) -> Duration {
    (policy.call_timeout * 3).max(MIN_LOOKUP_BUDGET)
}

/// One event after the look-up step.
pub(super) enum Looked<'a> {
    /// Needs no user (already served, dead letter, stale, expired, deferred), or its user could
    /// not be looked up (then a [`Work::DeadLetter`] with the verdict).
    Settled(Work<'a>),
    /// A new request and its user (`None`: egov-user has nobody).
    Serve(Request<'a>, Option<FoundUser>),
    /// A pending request and its user.
    Recover(Request<'a>, Pending, Option<FoundUser>),
}

type LookupResult = Result<Option<FoundUser>, UserLookupError>;
type LookedFuture<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<Looked<'a>, Cancelled>> + Send + 'a>>;

impl Pipeline {
    /// Every event of `work` with its user attached where it needs one, in event order.
    ///
    /// # Errors
    /// [`Cancelled`] when `cancel` fires before every search is answered.
    pub(super) async fn look_up<'a>(
        &'a self,
        work: Vec<Work<'a>>,
        cancel: &'a CancellationToken,
    ) -> Result<Vec<Looked<'a>>, Cancelled> {
        // Boxed so the batch future stays `Send` (a closure over borrowed requests inside
        // `buffered` trips the compiler's higher-ranked lifetime inference).
        let futures: Vec<LookedFuture<'a>> = work
            .into_iter()
            .map(|item| Box::pin(self.attach_user(item, cancel)) as LookedFuture<'a>)
            .collect();
        stream::iter(futures)
            .buffered(LOOKUP_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// `item` with its user, when it needs one.
    async fn attach_user<'a>(
        &'a self,
        item: Work<'a>,
        cancel: &'a CancellationToken,
    ) -> Result<Looked<'a>, Cancelled> {
        let (request, pending) = match item {
            Work::Serve(request) => (request, None),
            Work::Recover(request, pending) => (request, Some(pending)),
            other => return Ok(Looked::Settled(other)),
        };
        let budget = self.lookup_budget;
        let looked = tokio::time::timeout(budget, self.look_up_one(&request.request, cancel)).await;
        let user = match looked {
            Ok(Ok(user)) => user,
            Err(_) => {
                let wait = self.retry_policy.max_backoff;
                tracing::warn!(
                    request_id = ?request.event.request_id,
                    partition = request.event.source.partition,
                    offset = request.event.source.offset,
                    budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "egov-user gave no answer for this request within its budget; deferred, only its key waits"
                );
                return Ok(Looked::Settled(Work::Defer(request.event, wait)));
            }
            Ok(Err(UserLookupError::Cancelled)) => return Err(Cancelled { attempts: 0 }),
            Ok(Err(error)) => {
                return Ok(Looked::Settled(Work::DeadLetter(
                    request.event,
                    verdict(&error),
                )))
            }
        };
        Ok(match pending {
            None => Looked::Serve(request, user),
            Some(pending) => Looked::Recover(request, pending, user),
        })
    }

    async fn look_up_one(&self, request: &OtpRequest, cancel: &CancellationToken) -> LookupResult {
        let mut backoff = Backoff::new(&self.retry_policy);
        loop {
            let result = self.users.find(request, cancel).await;
            if !matches!(result, Err(UserLookupError::MalformedAnswer(_))) {
                return result;
            }
            let canary = OtpRequest {
                request_info: None,
                mobile_number: CANARY_NUMBER.to_owned(),
                tenant_id: request.tenant_id.clone(),
                otp_type: OtpType::Login,
                user_type: request.user_type.clone(),
                locale: None,
                country_code: None,
            };
            match self.users.find(&canary, cancel).await {
                Ok(_) => return result,
                Err(UserLookupError::Cancelled) => return Err(UserLookupError::Cancelled),
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::error!(
                        %error,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "egov-user answers every search malformed (configuration?); retrying, nothing is dead-lettered"
                    );
                    tokio::select! {
                        _ = cancel.cancelled() => return Err(UserLookupError::Cancelled),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}

/// Why an event whose user could not be looked up goes to the dead-letter topic.
fn verdict(error: &UserLookupError) -> Verdict {
    match error {
        UserLookupError::MalformedAnswer(_) => {
            Verdict::new(Reason::UserServiceMalformedAnswer, error.to_string())
        }
        _ => Verdict::new(Reason::UserServiceRejected, error.to_string()),
    }
}
