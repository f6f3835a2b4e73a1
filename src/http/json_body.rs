//! Reading a JSON request body with legacy-envelope errors instead of axum's plain-text ones.
//!
//! The content type must be JSON (`application/json`, with or without parameters, or an
//! `application/…+json` type), and the body at most `USER_OTP_HTTP_MAX_BODY_BYTES`; anything
//! else is a 400 in the envelope. Parsing the bytes is left to the handler.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;

use super::envelope::LegacyError;
use super::AppState;

/// The raw bytes of a JSON request body, checked for type and size.
pub(super) struct JsonBody(pub Bytes);

impl FromRequest<Arc<AppState>> for JsonBody {
    type Rejection = LegacyError;

    async fn from_request(
        request: Request,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !is_json(content_type) {
            return Err(LegacyError::malformed(
                "Content-Type must be application/json",
            ));
        }
        let limit = state.max_body_bytes;
        axum::body::to_bytes(request.into_body(), limit)
            .await
            .map(JsonBody)
            .map_err(|_| {
                LegacyError::malformed(format!(
                    "The body could not be read or is larger than {limit} bytes"
                ))
            })
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "application/json; charset=UTF-8",
            "Application/JSON",
            "application/problem+json",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "",
            "text/plain",
            "application/x-www-form-urlencoded",
            "json",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }
}
