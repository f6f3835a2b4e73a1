//! The egov-otp API's side of the store: the newest code of an identity, using it once,
//! counting wrong attempts, and finding a code by id for `_search`.

use uuid::Uuid;

use super::{OtpStore, StoreError};

/// The newest code of an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewestCode {
    pub id: Uuid,
    pub key_id: String,
    pub hash: Vec<u8>,
    /// Not validated, not expired, and under the failed-attempt limit.
    pub live: bool,
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
    pub async fn newest_code(
        &self,
        tenant_id: &str,
        identity: &str,
        max_failed_attempts: i32,
    ) -> Result<Option<NewestCode>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(include_str!("sql/newest_code.sql"))
            .await?;
        let row = client
            .query_opt(&statement, &[&tenant_id, &identity, &max_failed_attempts])
            .await?;
        Ok(row.map(|row| NewestCode {
            id: row.get(0),
            key_id: row.get(1),
            hash: row.get(2),
            live: row.get(3),
        }))
    }

    /// Marks a live code used by `identity`; false when it was no longer live (used by a
    /// concurrent validation, expired, or dead).
    pub async fn consume_code(
        &self,
        id: Uuid,
        identity: &str,
        max_failed_attempts: i32,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(include_str!("sql/consume_code.sql"))
            .await?;
        let row = client
            .query_opt(&statement, &[&id, &identity, &max_failed_attempts])
            .await?;
        Ok(row.is_some())
    }

    pub async fn record_failed_attempt(&self, id: Uuid) -> Result<(), StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(include_str!("sql/record_failed_attempt.sql"))
            .await?;
        client.execute(&statement, &[&id]).await?;
        Ok(())
    }

    pub async fn find_code(
        &self,
        id: Uuid,
        tenant_id: &str,
    ) -> Result<Option<CodeStatus>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(include_str!("sql/find_code.sql"))
            .await?;
        let row = client.query_opt(&statement, &[&id, &tenant_id]).await?;
        Ok(row.map(|row| CodeStatus {
            id: row.get(0),
            tenant_id: row.get(1),
            identity: row.get(2),
            validated: row.get(3),
        }))
    }
}
