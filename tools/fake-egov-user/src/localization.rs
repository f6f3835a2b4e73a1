//! FAKE egov-localization (development only), served beside the fake egov-user:
//! `POST /localization/messages/v1/_search?tenantId=<t>&module=<m>[,<m>…]&locale=<l>` answers
//! `{"messages":[…]}` with the messages of the file (`--localization`, a JSON array of
//! `{"code","message","module","locale","tenantId"}`) whose tenant, locale and one of the
//! modules match, as egov-localization does ([contract §6](../../../docs/contract.md#6-message-texts)).
//! A search without the three parameters is answered 400.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// One localized message of the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Message {
    code: String,
    message: String,
    module: String,
    locale: String,
    tenant_id: String,
}

/// The messages of the file.
pub(crate) struct Catalogue(Vec<Message>);

impl Catalogue {
    /// Reads `text`, a JSON array of messages.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(Self(serde_json::from_str(text)?))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// `POST /localization/messages/v1/_search`.
pub(crate) async fn search(
    State(catalogue): State<Arc<Catalogue>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (Some(tenant), Some(modules), Some(locale)) = (
        query.get("tenantId"),
        query.get("module"),
        query.get("locale"),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"Errors": [{"code": "INVALID_SEARCH",
                "message": "tenantId, module and locale are required"}]})),
        )
            .into_response();
    };
    let modules: Vec<&str> = modules.split(',').collect();
    let messages: Vec<Value> = catalogue
        .0
        .iter()
        .filter(|m| &m.tenant_id == tenant && &m.locale == locale)
        .filter(|m| modules.contains(&m.module.as_str()))
        .map(|m| {
            json!({"code": m.code, "message": m.message, "module": m.module, "locale": m.locale})
        })
        .collect();
    Json(json!({ "messages": messages })).into_response()
}
