//! The look-up step: egov-user searched for every request to serve or recover, many in flight,
//! results in request order.
//!
//! Transient failures (timeouts, 5xx, 429, and statuses every request would get: 401, 403, 404,
//! …) are retried inside the client. What comes back as an error is a verdict on the request, with
//! one check: an answer egov-user sent that is not a search answer may be the request's own doing
//! (a user record the parser refuses) or egov-user's for everyone (a wrong URL answering HTML).
//! The same search for a number nobody has, in the same tenant, tells them apart: answered well,
//! the malformed answer is the request's and it is dead-lettered; malformed too, it is an outage
//! of configuration, logged at error level and retried with backoff, never dead-lettered.

use std::future::Future;

use futures::stream::{self, StreamExt};
use tokio_util::sync::CancellationToken;

use super::batch::Pipeline;
use crate::domain::{FoundUser, OtpRequest, OtpType};
use crate::retry::Backoff;
use crate::users::UserLookupError;

/// egov-user searches in flight at once within a batch.
const LOOKUP_CONCURRENCY: usize = 32;

/// A user search for a number nobody has.
const CANARY_NUMBER: &str = "0000000000";

pub(super) type LookupResult = Result<Option<FoundUser>, UserLookupError>;
type LookupFuture<'a> = std::pin::Pin<Box<dyn Future<Output = LookupResult> + Send + 'a>>;

impl Pipeline {
    /// The user of each request, in order.
    pub(super) async fn look_up(
        &self,
        requests: &[&OtpRequest],
        cancel: &CancellationToken,
    ) -> Vec<LookupResult> {
        // Boxed so the batch future stays `Send` (a closure over borrowed requests inside
        // `buffered` trips the compiler's higher-ranked lifetime inference).
        let futures: Vec<LookupFuture<'_>> = requests
            .iter()
            .map(|request| Box::pin(self.look_up_one(request, cancel)) as LookupFuture<'_>)
            .collect();
        stream::iter(futures)
            .buffered(LOOKUP_CONCURRENCY)
            .collect()
            .await
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
