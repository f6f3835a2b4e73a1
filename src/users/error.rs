//! Why a user lookup produced no answer. "No such user" is not among these: it is `Ok(None)`.
//!
//! Messages never contain a mobile number, a user name or any part of egov-user's answer.

/// A lookup that did not produce an answer about the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserLookupError {
    /// Shutdown was requested before egov-user answered. Not a verdict on the request: it was
    /// not looked up and must be processed again later.
    #[error("the user lookup was cancelled before egov-user answered")]
    Cancelled,
    /// egov-user refused the search with a 4xx other than 429 (or another status that is
    /// neither success nor transient); repeating the same search would be refused again.
    #[error("egov-user refused the search with HTTP {status}")]
    Rejected { status: u16 },
    /// egov-user answered 2xx with a body that is not a search answer; says what was wrong.
    #[error("egov-user's search answer is malformed: {0}")]
    MalformedAnswer(String),
    /// The configured search URL cannot be used (start-up).
    #[error("the egov-user search URL is unusable: {0}")]
    InvalidUrl(String),
    /// The HTTP client could not be built (start-up).
    #[error("cannot build the HTTP client for egov-user: {0}")]
    HttpClient(String),
    /// The request cannot be expressed as a search (for instance a tenant id that is not a
    /// valid HTTP header value). The same request will always fail the same way.
    #[error("the OTP request cannot be sent as a user search: {0}")]
    InvalidRequest(String),
}

impl UserLookupError {
    /// True when trying the same request again cannot succeed: the request should get a final
    /// outcome (or go to the dead-letter topic). False only for [`UserLookupError::Cancelled`],
    /// after which the request is to be processed again. Transient failures (timeouts, 5xx, 429,
    /// connection errors) never surface as errors: they are retried inside the lookup.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cancellation_is_not_permanent() {
        assert!(!UserLookupError::Cancelled.is_permanent());
        for error in [
            UserLookupError::Rejected { status: 400 },
            UserLookupError::MalformedAnswer("x".into()),
            UserLookupError::InvalidUrl("x".into()),
            UserLookupError::HttpClient("x".into()),
            UserLookupError::InvalidRequest("x".into()),
        ] {
            assert!(error.is_permanent(), "{error}");
        }
    }
}
