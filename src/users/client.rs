//! [`UserClient`]: one egov-user search per OTP request, retried in place while egov-user is
//! unreachable or overloaded.
//!
//! Outcomes of [`UserClient::find`]:
//! - `Ok(Some(user))`: egov-user answered 2xx with one or more users; the first is returned.
//! - `Ok(None)`: egov-user answered 2xx with an empty `user` array. Nothing else means "no user".
//! - Transient failures are retried with capped exponential backoff ([`crate::retry`]) for as
//!   long as it takes: connection errors, an attempt exceeding [`RetryPolicy::call_timeout`],
//!   HTTP 5xx and 429. Each retry is logged at `warn`.
//! - `Err(Cancelled)` when the cancellation token fires first (shutdown); the request was not
//!   looked up.
//! - Permanent failures return at once: any other non-2xx status (`Rejected`), a 2xx body that is
//!   not a search answer (`MalformedAnswer`).
//!
//! Redirects are not followed (an in-cluster egov-user does not redirect, and following one
//! would turn the POST into a GET): a 3xx is `Rejected`.
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use tokio_util::sync::CancellationToken;

use super::error::UserLookupError;
use super::search_answer::parse_search_answer;
use super::search_body::search_body;
use crate::config::UserServiceSettings;
use crate::domain::{FoundUser, OtpRequest};
use crate::retry::{retry, Attempt, Backoff, RetryPolicy};
use crate::telemetry::Masked;

/// egov-user reads the search tenant from this header (HTTP header names are case-insensitive;
/// it goes on the wire as `tenantid`).
const TENANT_ID: HeaderName = HeaderName::from_static("tenantid");

/// A cheap-to-clone egov-user client; clones share one connection pool.
#[derive(Debug, Clone)]
pub struct UserClient {
    http: reqwest::Client,
    search_url: Url,
    policy: RetryPolicy,
}

/// A failure worth another attempt, as logged.
#[derive(Debug)]
enum Transient {
    TimedOut(std::time::Duration),
    Connect(String),
    Transport(String),
    Status(u16),
}

impl std::fmt::Display for Transient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TimedOut(limit) => write!(f, "no complete answer within {limit:?}"),
            Self::Connect(cause) => write!(f, "cannot connect ({cause})"),
            Self::Transport(cause) => write!(f, "transport error ({cause})"),
            Self::Status(status) => write!(f, "HTTP {status}"),
        }
    }
}

/// What one attempt ended with.
type AttemptOutcome = Attempt<Result<Vec<FoundUser>, UserLookupError>, Transient>;

impl UserClient {
    /// A client for `settings.search_url()`, which must be a plain `http://` URL (egov-user is
    /// reached in-cluster; this build has no TLS). Attempts are bounded by `policy.call_timeout`
    /// (not `settings.call_timeout`: build the policy with [`RetryPolicy::from_settings`] to use
    /// the configured one); it must be above zero, or every attempt times out.
    pub fn new(
        settings: &UserServiceSettings,
        policy: RetryPolicy,
    ) -> Result<Self, UserLookupError> {
        let invalid = |text: &str, problem: &dyn std::fmt::Display| {
            UserLookupError::InvalidUrl(format!("{text:?}: {problem}"))
        };
        // The host on its own first: joined to the path, "http://" would read as host "user".
        Url::parse(&settings.host).map_err(|e| invalid(&settings.host, &e))?;
        let text = settings.search_url();
        let search_url = Url::parse(&text).map_err(|e| invalid(&text, &e))?;
        if search_url.scheme() != "http" {
            return Err(UserLookupError::InvalidUrl(format!(
                "{text:?}: only http:// is supported (this build has no TLS)"
            )));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(policy.call_timeout)
            .user_agent(concat!("user-otp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| UserLookupError::HttpClient(e.to_string()))?;
        Ok(Self {
            http,
            search_url,
            policy,
        })
    }

    /// Finds the user the request is about (see the module documentation for every outcome).
    /// `Ok(None)` only when egov-user answered 2xx with an empty `user` array.
    pub async fn find(
        &self,
        request: &OtpRequest,
        cancel: &CancellationToken,
    ) -> Result<Option<FoundUser>, UserLookupError> {
        let search = search_body(request);
        let tenant = HeaderValue::from_str(search.tenant_id).map_err(|_| {
            UserLookupError::InvalidRequest(
                "the tenant id is not a valid HTTP header value (visible ASCII only)".to_owned(),
            )
        })?;
        let body = serde_json::to_vec(&search)
            .map_err(|e| UserLookupError::InvalidRequest(e.to_string()))?;
        let outcome = retry(
            Backoff::new(&self.policy),
            cancel,
            |_| self.attempt(&tenant, &body),
            |notice| {
                tracing::warn!(
                    attempt = notice.attempt,
                    failure = %notice.failure,
                    retry_in = ?notice.delay,
                    tenant = search.tenant_id,
                    mobile = %Masked(&request.mobile_number),
                    "egov-user search failed; retrying"
                );
            },
        )
        .await;
        let users = match outcome {
            Ok(result) => result?,
            Err(cancelled) => {
                tracing::info!(
                    attempts = cancelled.attempts,
                    tenant = search.tenant_id,
                    mobile = %Masked(&request.mobile_number),
                    "egov-user search cancelled"
                );
                return Err(UserLookupError::Cancelled);
            }
        };
        tracing::debug!(
            found = users.len(),
            tenant = search.tenant_id,
            mobile = %Masked(&request.mobile_number),
            "egov-user search answered"
        );
        Ok(users.into_iter().next())
    }

    /// One POST, bounded by the call timeout from connecting to the last byte of the answer.
    async fn attempt(&self, tenant: &HeaderValue, body: &[u8]) -> AttemptOutcome {
        let call = async {
            let response = self
                .http
                .post(self.search_url.clone())
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .header(TENANT_ID, tenant.clone())
                .body(body.to_vec())
                .send()
                .await?;
            let status = response.status();
            if !status.is_success() {
                return Ok(if is_transient(status) {
                    Attempt::Retry(Transient::Status(status.as_u16()))
                } else {
                    Attempt::Done(Err(UserLookupError::Rejected {
                        status: status.as_u16(),
                    }))
                });
            }
            let answer = response.bytes().await?;
            Ok(Attempt::Done(parse_search_answer(&answer)))
        };
        match tokio::time::timeout(self.policy.call_timeout, call).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => classify(&error),
            Err(_) => Attempt::Retry(Transient::TimedOut(self.policy.call_timeout)),
        }
    }
}

/// Statuses retried rather than taken as a verdict on the request: overload and server-side
/// failures ("not now"), a request timeout, and statuses that say the service is reached wrongly
/// for every request (authentication, authorization, a wrong search URL or method: a
/// configuration outage, which must never dead-letter all traffic). Only the remaining 4xx
/// (400, 409, 422, …) refuse this one request.
fn is_transient(status: StatusCode) -> bool {
    // A redirect too: the search URL or a proxy in front of egov-user is wrong for everyone.
    status.is_server_error()
        || status.is_redirection()
        || matches!(
            status.as_u16(),
            401 | 403 | 404 | 405 | 406 | 407 | 408 | 415 | 421 | 426 | 429
        )
}

/// A reqwest error is transient unless the request itself could not be built.
fn classify(error: &reqwest::Error) -> AttemptOutcome {
    if error.is_builder() {
        return Attempt::Done(Err(UserLookupError::InvalidRequest(root_cause(error))));
    }
    // A timeout reported by reqwest itself can only be its connect timeout (set to the call
    // timeout); the overall bound is ours.
    if error.is_connect() || error.is_timeout() {
        return Attempt::Retry(Transient::Connect(root_cause(error)));
    }
    Attempt::Retry(Transient::Transport(root_cause(error)))
}

/// The innermost cause (e.g. "Connection refused (os error 111)"); never request data.
fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(host: &str) -> UserServiceSettings {
        UserServiceSettings {
            host: host.to_owned(),
            search_path: "/user/_search".to_owned(),
            call_timeout: std::time::Duration::from_secs(2),
        }
    }

    #[test]
    fn plain_http_urls_are_accepted() {
        let client = UserClient::new(&settings("http://egov-user:8080/"), RetryPolicy::default())
            .expect("valid");
        assert_eq!(
            client.search_url.as_str(),
            "http://egov-user:8080/user/_search"
        );
    }

    #[test]
    fn unusable_urls_are_refused() {
        for host in ["https://egov-user:8080", "egov-user:8080", "http://", ""] {
            let result = UserClient::new(&settings(host), RetryPolicy::default());
            assert!(
                matches!(result, Err(UserLookupError::InvalidUrl(_))),
                "{host}: {result:?}"
            );
        }
    }

    #[test]
    fn overload_server_and_configuration_errors_are_retried_request_errors_are_not() {
        // Overload, server errors, and configuration statuses that every request would get.
        for status in [
            301, 302, 401, 403, 404, 405, 408, 429, 500, 502, 503, 504, 599,
        ] {
            let status = StatusCode::from_u16(status).expect("status");
            assert!(is_transient(status), "{status}");
        }
        for status in [400, 409, 410, 413, 422] {
            let status = StatusCode::from_u16(status).expect("status");
            assert!(!is_transient(status), "{status}");
        }
    }

    #[test]
    fn transient_failures_read_well_in_logs() {
        assert_eq!(Transient::Status(503).to_string(), "HTTP 503");
        assert_eq!(
            Transient::TimedOut(std::time::Duration::from_millis(300)).to_string(),
            "no complete answer within 300ms"
        );
    }
}
