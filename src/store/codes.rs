//! The egov-otp API's side of the store: what a validation needs to decide (the newest code of
//! an identity and the identity's guess budget, `sql/validation_lookup.sql`), applying the
//! decision as one compare-and-set statement (`sql/settle_validation.sql`), and finding a code
//! by id for `_search`.
//!
//! Both validation statements run for every `_validate`, whether or not the identity has a
//! code, so neither their number nor their plans tell a registered number from an unknown one.

use std::time::{Duration, SystemTime};

use uuid::Uuid;

use super::{OtpStore, StoreError};
use crate::domain::abuse::guess_budget::Attempt;

/// The newest code of an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewestCode {
    pub id: Uuid,
    pub key_id: String,
    pub hash: Vec<u8>,
    /// Not validated, not expired, and under the failed-attempt limit.
    pub live: bool,
    /// The request that made it (`caller:…` or `offset:…`).
    pub request_id: String,
    /// Why it is not live, for the outcome event: `used`, `expired`, `attempts_exhausted`, or
    /// `live`.
    pub state: String,
}

/// What a validation reads before it decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationView {
    pub code: Option<NewestCode>,
    /// The identity whose guess budget applies: the mobile the code was sent to, else the
    /// identity as sent.
    pub budget_identity: String,
    /// Its wrong codes still on record (the store keeps about an hour of them).
    pub failures: Vec<SystemTime>,
    /// The budget row's version (`None`: no row yet), for the compare-and-set.
    pub version: Option<i64>,
    /// PostgreSQL's clock.
    pub now: SystemTime,
}

fn verdict_text(verdict: Attempt) -> &'static str {
    match verdict {
        Attempt::Right => "right",
        Attempt::Wrong => "wrong",
        Attempt::Refused => "refused",
    }
}

/// The decision to apply (see `sql/settle_validation.sql`).
#[derive(Debug, Clone)]
pub struct Settlement<'a> {
    /// The code's id (the nil UUID when there is none).
    pub code_id: Uuid,
    pub verdict: Attempt,
    /// The identity as sent, recorded with a used code.
    pub identity: &'a str,
    pub tenant_id: &'a str,
    pub budget_identity: &'a str,
    /// The failures to store.
    pub failures: Vec<SystemTime>,
    /// The version read ([`ValidationView::version`]).
    pub expected_version: Option<i64>,
}

/// What applying a decision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// False when another validation changed the budget since it was read: nothing applied.
    pub applied: bool,
    /// The code was used by this call.
    pub consumed: bool,
}

/// What `_search` may tell about a code (never the code or its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeStatus {
    pub id: Uuid,
    pub tenant_id: String,
    pub identity: String,
    pub validated: bool,
}

impl OtpStore {
    /// Reads what a validation of `identity` in root tenant `tenant_id` needs.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn validation_view(
        &self,
        tenant_id: &str,
        identity: &str,
        max_failed_attempts: i32,
    ) -> Result<ValidationView, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(include_str!("sql/validation_lookup.sql"))
            .await?;
        let row = client
            .query_one(&statement, &[&tenant_id, &identity, &max_failed_attempts])
            .await?;
        let code = row.get::<_, Option<Uuid>>(0).map(|id| NewestCode {
            id,
            key_id: row.get(1),
            hash: row.get(2),
            live: row.get(3),
            request_id: row.get(8),
            state: row.get::<_, Option<String>>(9).unwrap_or_default(),
        });
        Ok(ValidationView {
            code,
            budget_identity: row.get(4),
            failures: row.get::<_, Option<Vec<SystemTime>>>(5).unwrap_or_default(),
            version: row.get(6),
            now: row.get(7),
        })
    }

    /// Applies a validation's decision (see [`Settlement`]).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn settle_validation(
        &self,
        settlement: &Settlement<'_>,
        max_failed_attempts: i32,
    ) -> Result<Settled, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(include_str!("sql/settle_validation.sql"))
            .await?;
        let s = settlement;
        let row = client
            .query_one(
                &statement,
                &[
                    &s.code_id,
                    &verdict_text(s.verdict),
                    &s.identity,
                    &max_failed_attempts,
                    &s.tenant_id,
                    &s.budget_identity,
                    &s.failures,
                    &s.expected_version,
                ],
            )
            .await?;
        Ok(Settled {
            applied: row.get(0),
            consumed: row.get(1),
        })
    }

    /// The code `id` of root tenant `tenant_id`; validated only within `validated_for` of its
    /// validation.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn find_code(
        &self,
        id: Uuid,
        tenant_id: &str,
        validated_for: Duration,
    ) -> Result<Option<CodeStatus>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(include_str!("sql/find_code.sql"))
            .await?;
        let row = client
            .query_opt(&statement, &[&id, &tenant_id, &validated_for.as_secs_f64()])
            .await?;
        Ok(row.map(|row| CodeStatus {
            id: row.get(0),
            tenant_id: row.get(1),
            identity: row.get(2),
            validated: row.get(3),
        }))
    }
}
