//! The egov-user client: "who is this OTP request about?" ([contract §3](../../docs/contract.md#3-egov-user-search), DESIGN step 3).
//!
//! [`UserClient::find`] answers with the user (`Ok(Some)`), with "no such user" (`Ok(None)`) only
//! when egov-user itself said so (2xx with an empty `user` array), or with a
//! [`UserLookupError`]. A service that is down, slow or overloaded never reads as "user absent":
//! connection errors, timeouts, 5xx and 429 are retried in place with capped exponential backoff
//! until egov-user answers or shutdown cancels the lookup. Answers that cannot be understood are
//! errors, never "no user".
//!
//! - [`search_body`](mod@search_body): the search for a request (employee by mobile in the
//!   tenant as sent, everyone else by user name in the root tenant), a pure function.
//! - [`search_answer`]: reading the answer; structural errors only, never the body.
//! - [`crate::retry`]: the reusable backoff and retry loop (shared with the worker).
//! - [`client`]: HTTP, timeouts, status classification and logging.
//!
//! Privacy: mobile numbers and user names are logged only through
//! [`Masked`](crate::telemetry::Masked); error messages carry no personal data.

pub mod client;
pub mod error;

pub mod search_answer;
pub mod search_body;

pub use crate::retry::{Backoff, RetryPolicy};
pub use client::UserClient;
pub use error::UserLookupError;
pub use search_answer::parse_search_answer;
pub use search_body::{search_body, SearchBody};
