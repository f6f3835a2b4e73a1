//! The worker's side of the store: which requests are already served, recording a batch of
//! outcomes with their codes, and marking SMS events acknowledged.

use std::collections::HashMap;
use std::time::SystemTime;

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::{OtpStore, StoreError};

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Code stored, SMS event not yet known to be acknowledged.
    SmsPending,
    Sent,
    UserExists,
    UnknownUser,
    NoMobileNumber,
    /// The event was older than a code's validity when the worker saw it; nothing was sent.
    Stale,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SmsPending => "sms_pending",
            Self::Sent => "sent",
            Self::UserExists => "user_exists",
            Self::UnknownUser => "unknown_user",
            Self::NoMobileNumber => "no_mobile_number",
            Self::Stale => "stale",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::SmsPending,
            Self::Sent,
            Self::UserExists,
            Self::UnknownUser,
            Self::NoMobileNumber,
            Self::Stale,
        ]
        .into_iter()
        .find(|outcome| outcome.as_str() == text)
    }
}

/// An outcome recorded earlier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingOutcome {
    pub outcome: Outcome,
    pub code_id: Option<Uuid>,
    pub created_at: SystemTime,
    /// The worker process that recorded it.
    pub worker_id: Option<String>,
}

/// Where an event came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// A fresh code to store with its outcome (only its hash).
#[derive(Debug, Clone)]
pub struct NewCode {
    pub id: Uuid,
    /// Where the SMS goes.
    pub identity: String,
    /// Every identity the code answers to (includes `identity`).
    pub identities: Vec<String>,
    pub key_id: String,
    pub hash: Vec<u8>,
    pub expires_at: SystemTime,
}

/// An outcome to record.
#[derive(Debug, Clone)]
pub struct NewOutcome {
    pub request_id: String,
    /// State-level tenant.
    pub tenant_id: String,
    pub otp_type: &'static str,
    pub outcome: Outcome,
    pub source: SourcePosition,
    pub code: Option<NewCode>,
}

impl OtpStore {
    /// Outcomes already recorded for any of `request_ids`.
    pub async fn existing_outcomes(
        &self,
        request_ids: &[String],
    ) -> Result<HashMap<String, ExistingOutcome>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(include_str!("sql/existing_outcomes.sql"))
            .await?;
        let rows = client.query(&statement, &[&request_ids]).await?;
        rows.iter()
            .map(|row| {
                let text: &str = row.get(1);
                let outcome = Outcome::parse(text)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown outcome {text:?}")))?;
                Ok((
                    row.get::<_, String>(0),
                    ExistingOutcome {
                        outcome,
                        code_id: row.get(2),
                        created_at: row.get(3),
                        worker_id: row.get(4),
                    },
                ))
            })
            .collect()
    }

    /// Records `outcomes` (with their codes) in one statement, as worker `worker_id`; returns
    /// the request ids that were recorded by this call. Ids recorded before, by anyone, are left
    /// alone and not returned.
    ///
    /// # Errors
    /// [`StoreError`]; a [`crate::failure::FailureKind::Poison`] one means PostgreSQL refused
    /// some value of the batch (the worker then splits the batch to find the event).
    pub async fn record_batch(
        &self,
        outcomes: &[NewOutcome],
        worker_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        record(&client, outcomes, worker_id).await
    }

    /// Records a benign outcome with a code in a transaction that is rolled back: `Ok` when the
    /// batch statement works for ordinary values. Tells an event PostgreSQL refuses (poison)
    /// from a statement that fails for every event (a systemic error, e.g. a missing
    /// privilege).
    ///
    /// # Errors
    /// The [`StoreError`] the canary row met.
    pub async fn record_canary(&self, worker_id: &str) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let id = Uuid::now_v7();
        let canary = NewOutcome {
            request_id: format!("canary/{id}"),
            tenant_id: "canary".to_owned(),
            otp_type: "register",
            outcome: Outcome::SmsPending,
            source: SourcePosition {
                topic: "canary".to_owned(),
                partition: 0,
                offset: 0,
            },
            code: Some(NewCode {
                id,
                identity: "0000000000".to_owned(),
                identities: vec!["0000000000".to_owned(), "canary".to_owned()],
                key_id: "canary".to_owned(),
                hash: vec![0; 32],
                expires_at: SystemTime::now(),
            }),
        };
        let recorded = record(&transaction, std::slice::from_ref(&canary), worker_id).await;
        transaction.rollback().await?;
        recorded.map(|_| ())
    }

    /// The SMS events of `request_ids` are acknowledged: their outcomes become `sent`.
    pub async fn mark_sent(&self, request_ids: &[String]) -> Result<(), StoreError> {
        if request_ids.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        let statement = client
            .prepare_cached(include_str!("sql/mark_sent.sql"))
            .await?;
        client.execute(&statement, &[&request_ids]).await?;
        Ok(())
    }

    /// Gives a pending request's code a fresh hash in place (its SMS never reached the broker).
    pub async fn replace_code(
        &self,
        code_id: Uuid,
        key_id: &str,
        hash: &[u8],
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(include_str!("sql/replace_code.sql"))
            .await?;
        client
            .execute(&statement, &[&code_id, &hash, &key_id, &expires_at])
            .await?;
        Ok(())
    }
}

/// Runs `record_batch.sql` for `outcomes` on `client` (a pooled connection or a transaction).
async fn record<C: GenericClient>(
    client: &C,
    outcomes: &[NewOutcome],
    worker_id: &str,
) -> Result<Vec<String>, StoreError> {
    let c = &BatchColumns::from(outcomes);
    let statement = client
        .prepare_cached(include_str!("sql/record_batch.sql"))
        .await?;
    let rows = client
        .query(
            &statement,
            &[
                &c.request_ids,
                &c.tenant_ids,
                &c.otp_types,
                &c.outcomes,
                &c.code_ids,
                &c.topics,
                &c.partitions,
                &c.offsets,
                &c.code_id,
                &c.code_request_id,
                &c.code_tenant_id,
                &c.code_identity,
                &c.code_key_id,
                &c.code_hash,
                &c.code_expires_at,
                &c.identity_code_id,
                &c.identity_tenant_id,
                &c.identity,
                &worker_id,
            ],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// The columns of a batch, as the arrays `record_batch.sql` unnests.
#[derive(Default)]
struct BatchColumns {
    request_ids: Vec<String>,
    tenant_ids: Vec<String>,
    otp_types: Vec<&'static str>,
    outcomes: Vec<&'static str>,
    code_ids: Vec<Option<Uuid>>,
    topics: Vec<String>,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    code_id: Vec<Uuid>,
    code_request_id: Vec<String>,
    code_tenant_id: Vec<String>,
    code_identity: Vec<String>,
    code_key_id: Vec<String>,
    code_hash: Vec<Vec<u8>>,
    code_expires_at: Vec<SystemTime>,
    identity_code_id: Vec<Uuid>,
    identity_tenant_id: Vec<String>,
    identity: Vec<String>,
}

impl From<&[NewOutcome]> for BatchColumns {
    fn from(outcomes: &[NewOutcome]) -> Self {
        let mut c = Self::default();
        for o in outcomes {
            c.request_ids.push(o.request_id.clone());
            c.tenant_ids.push(o.tenant_id.clone());
            c.otp_types.push(o.otp_type);
            c.outcomes.push(o.outcome.as_str());
            c.code_ids.push(o.code.as_ref().map(|code| code.id));
            c.topics.push(o.source.topic.clone());
            c.partitions.push(o.source.partition);
            c.offsets.push(o.source.offset);
            if let Some(code) = &o.code {
                c.code_id.push(code.id);
                c.code_request_id.push(o.request_id.clone());
                c.code_tenant_id.push(o.tenant_id.clone());
                c.code_identity.push(code.identity.clone());
                c.code_key_id.push(code.key_id.clone());
                c.code_hash.push(code.hash.clone());
                c.code_expires_at.push(code.expires_at);
                // The SMS identity is on the code row itself; only extra ones get rows.
                for identity in code.identities.iter().filter(|i| **i != code.identity) {
                    c.identity_code_id.push(code.id);
                    c.identity_tenant_id.push(o.tenant_id.clone());
                    c.identity.push(identity.clone());
                }
            }
        }
        c
    }
}
