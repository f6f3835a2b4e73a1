//! The worker's side of the store: which requests are already served, recording a batch of
//! outcomes with their codes, marking SMS events acknowledged, and closing pending requests.
//!
//! A request is keyed by (request id, fingerprint) ([`crate::domain::request_id`]). Times that
//! decide something (a code's expiry, how long ago a pending request was recorded, whether its
//! code is still valid) are computed by PostgreSQL with `now()`, one clock for every worker,
//! never compared across machines.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashSet;
use std::time::SystemTime;

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::{OtpStore, StoreError};
use crate::domain::abuse::send_limits::{limit_identity, SendLimits, SendRefusal};

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
    /// Pending until its code's validity passed; closed without sending (never resent).
    Expired,
    /// Pending, and recovery would now send to another identity than the stored code's (or
    /// the request is now refused); closed without sending.
    Abandoned,
    /// A send limit or the pumping guard refused the code: nothing sent, the live code (if
    /// any) untouched. The outcome's detail names the limit.
    RateLimited,
}

impl Outcome {
    const ALL: [Self; 9] = [
        Self::SmsPending,
        Self::Sent,
        Self::UserExists,
        Self::UnknownUser,
        Self::NoMobileNumber,
        Self::Stale,
        Self::Expired,
        Self::Abandoned,
        Self::RateLimited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SmsPending => "sms_pending",
            Self::Sent => "sent",
            Self::UserExists => "user_exists",
            Self::UnknownUser => "unknown_user",
            Self::NoMobileNumber => "no_mobile_number",
            Self::Stale => "stale",
            Self::Expired => "expired",
            Self::Abandoned => "abandoned",
            Self::RateLimited => "rate_limited",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
    }
}

/// The key of a request's outcome: its request id and its fingerprint.
pub type RequestKey = (String, Vec<u8>);

/// An outcome recorded earlier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingOutcome {
    /// The stored fingerprint: the request's own, or empty for a row recorded before
    /// fingerprints existed.
    pub fingerprint: Vec<u8>,
    pub outcome: Outcome,
    pub code_id: Option<Uuid>,
    /// How long ago it was recorded (PostgreSQL's clock).
    pub age: Duration,
    /// When it was recorded (or last claimed by a recovery), exactly as stored: what
    /// [`OtpStore::replace_code`] compares.
    pub recorded_at: SystemTime,
    /// The worker process that recorded it.
    pub worker_id: Option<String>,
    /// Where the SMS of its code goes (the code's identity), when it has a code.
    pub code_identity: Option<String>,
    /// True when its code's validity has passed (PostgreSQL's clock).
    pub code_expired: bool,
}

/// What the store holds about one request key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Its outcome: recorded under this key, or under its id before fingerprints existed
    /// (then [`ExistingOutcome::fingerprint`] is empty).
    pub outcome: Option<ExistingOutcome>,
    /// Another request (another fingerprint) used the same request id.
    pub reused: bool,
}

/// Where an event came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePosition {
    /// Shared: every event of a partition names the same topic.
    pub topic: Arc<str>,
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
    /// How long the code stays valid from its recording (`expires_at = now() + valid_for`).
    pub valid_for: Duration,
}

/// An outcome to record.
#[derive(Debug, Clone)]
pub struct NewOutcome {
    pub request_id: String,
    /// The request as sent ([`crate::domain::request_id::fingerprint`]).
    pub fingerprint: Vec<u8>,
    /// State-level tenant.
    pub tenant_id: String,
    pub otp_type: &'static str,
    pub outcome: Outcome,
    pub source: SourcePosition,
    pub code: Option<NewCode>,
    /// Why, for outcomes that need saying (`rate_limited`: which limit).
    pub detail: Option<&'static str>,
    /// The code is a configured test number's fixed code.
    pub test_number: bool,
}

/// What recording a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchRecorded {
    /// Every key this call recorded (not recorded before by anyone), rate-limited ones included.
    pub won: Vec<RequestKey>,
    /// The recorded keys a send limit refused (recorded `rate_limited`, no code), and why.
    pub rate_limited: Vec<(RequestKey, SendRefusal)>,
}

impl NewOutcome {
    pub fn key(&self) -> RequestKey {
        (self.request_id.clone(), self.fingerprint.clone())
    }
}

impl OtpStore {
    /// What is recorded for each of `keys` (see `sql/existing_outcomes.sql`): keys with neither
    /// an outcome nor another request under their id are left out. Rows of the previous version
    /// (no fingerprint) count as a key's own when younger than `legacy_window` (a code's
    /// validity).
    ///
    /// # Errors
    /// [`StoreError`], or [`StoreError::Corrupt`] for an outcome this version does not know.
    pub async fn existing_outcomes(
        &self,
        keys: &[RequestKey],
        legacy_window: Duration,
    ) -> Result<HashMap<RequestKey, Recorded>, StoreError> {
        let (ids, fingerprints): (Vec<&str>, Vec<&[u8]>) = keys
            .iter()
            .map(|(id, fingerprint)| (id.as_str(), fingerprint.as_slice()))
            .unzip();
        let client = self.client().await?;
        let statement = client
            .prepare_cached(include_str!("sql/existing_outcomes.sql"))
            .await?;
        let window = legacy_window.as_secs_f64();
        let rows = client
            .query(&statement, &[&ids, &fingerprints, &window])
            .await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in rows {
            let outcome = match row.get::<_, Option<&str>>(3) {
                None => None,
                Some(text) => Some(ExistingOutcome {
                    fingerprint: row.get(2),
                    outcome: Outcome::parse(text)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown outcome {text:?}")))?,
                    code_id: row.get(4),
                    age: Duration::from_millis(
                        u64::try_from(row.get::<_, Option<i64>>(5).unwrap_or(0)).unwrap_or(0),
                    ),
                    recorded_at: row
                        .get::<_, Option<SystemTime>>(10)
                        .unwrap_or(SystemTime::UNIX_EPOCH),
                    worker_id: row.get(6),
                    code_identity: row.get(7),
                    code_expired: row.get::<_, Option<bool>>(8).unwrap_or(false),
                }),
            };
            found.insert(
                (row.get(0), row.get(1)),
                Recorded {
                    outcome,
                    reused: row.get(9),
                },
            );
        }
        Ok(found)
    }

    /// Records `outcomes` (with their codes) as worker `worker_id`, enforcing the send
    /// `limits` per number the SMS goes to ([`limit_identity`], across tenants: a tenant is the
    /// caller's text, so per-tenant counts could be multiplied): a code over a limit is
    /// recorded `rate_limited` without its code instead. Keys recorded before, by anyone, are
    /// left alone and not returned.
    ///
    /// With every limit off this is one statement. Otherwise it is a transaction: the identities'
    /// send-history rows are locked and read (`sql/lock_send_history.sql`), the limits are
    /// applied in event order ([`SendLimits::check`], PostgreSQL's clock), and the outcomes,
    /// codes and new send times are recorded by the batch statement before the locks are
    /// released, so any number of workers agree on an identity's count.
    ///
    /// # Errors
    /// [`StoreError`]; a [`crate::failure::FailureKind::Poison`] one means PostgreSQL refused
    /// some value of the batch (the worker then splits the batch to find the event).
    pub async fn record_batch(
        &self,
        outcomes: &[NewOutcome],
        worker_id: &str,
        limits: &SendLimits,
    ) -> Result<BatchRecorded, StoreError> {
        let mut client = self.client().await?;
        if limits.all_off() || outcomes.iter().all(|o| o.code.is_none()) {
            let won = record(&client, outcomes, worker_id, 0.0).await?;
            return Ok(BatchRecorded {
                won,
                rate_limited: Vec::new(),
            });
        }
        let transaction = client.transaction().await?;
        let (mut histories, now) = lock_send_history(&transaction, outcomes).await?;
        let mut decided = outcomes.to_vec();
        let mut refused = Vec::new();
        for outcome in &mut decided {
            let Some(code) = &outcome.code else {
                continue;
            };
            let history = histories.entry(limit_identity(&code.identity)).or_default();
            match limits.check(history, now) {
                Ok(()) => history.push(now),
                Err(refusal) => {
                    refused.push((outcome.key(), refusal));
                    outcome.outcome = Outcome::RateLimited;
                    outcome.code = None;
                    outcome.detail = Some(refusal.as_str());
                }
            }
        }
        let keep = limits.longest_window().as_secs_f64();
        let won = record(&transaction, &decided, worker_id, keep).await?;
        transaction.commit().await?;
        let recorded: HashSet<&RequestKey> = won.iter().collect();
        refused.retain(|(key, _)| recorded.contains(key));
        Ok(BatchRecorded {
            won,
            rate_limited: refused,
        })
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
            fingerprint: vec![0; 16],
            tenant_id: "canary".to_owned(),
            otp_type: "register",
            outcome: Outcome::SmsPending,
            source: SourcePosition {
                topic: "canary".into(),
                partition: 0,
                offset: 0,
            },
            detail: None,
            test_number: false,
            code: Some(NewCode {
                id,
                identity: "0000000000".to_owned(),
                identities: vec!["0000000000".to_owned(), "canary".to_owned()],
                key_id: "canary".to_owned(),
                hash: vec![0; 32],
                valid_for: Duration::from_secs(1),
            }),
        };
        let recorded = record(&transaction, std::slice::from_ref(&canary), worker_id, 0.0).await;
        transaction.rollback().await?;
        recorded.map(|_| ())
    }

    /// Closes pending requests with a final `outcome` (`sent`, `expired`, `abandoned`); requests
    /// no longer pending are left alone.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn close_pending(
        &self,
        keys: &[RequestKey],
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let (ids, fingerprints): (Vec<&str>, Vec<&[u8]>) = keys
            .iter()
            .map(|(id, fingerprint)| (id.as_str(), fingerprint.as_slice()))
            .unzip();
        let client = self.client().await?;
        let statement = client
            .prepare_cached(include_str!("sql/close_pending.sql"))
            .await?;
        client
            .execute(&statement, &[&ids, &fingerprints, &outcome.as_str()])
            .await?;
        Ok(())
    }

    /// The SMS events of `keys` are acknowledged: their outcomes become `sent`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn mark_sent(&self, keys: &[RequestKey]) -> Result<(), StoreError> {
        self.close_pending(keys, Outcome::Sent).await
    }

    /// Claims the pending request `key` for recovery and gives its code `code_id` a fresh hash
    /// in place (its SMS never reached the broker), valid for `valid_for` from now
    /// (PostgreSQL's clock). `read_recorded_at` is the pending outcome's
    /// [`ExistingOutcome::recorded_at`] as this run read it: the claim is a compare-and-set on
    /// it (`sql/replace_code.sql`) and restarts the outcome's age, so one run at a time recovers
    /// a request (a copy of it under another message key, in another batch, then waits out the
    /// pending grace). Safe to retry: an attempt whose answer was lost left this run's `hash`,
    /// by which the retry knows the claim is its own.
    ///
    /// Returns `true` when this run holds the claim, `false` when another run claimed or
    /// recorded it since (or it is no longer pending): then nothing is changed and nothing must
    /// be sent.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn replace_code(
        &self,
        key: &RequestKey,
        code_id: Uuid,
        key_id: &str,
        hash: &[u8],
        valid_for: Duration,
        read_recorded_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(include_str!("sql/replace_code.sql"))
            .await?;
        let row = client
            .query_one(
                &statement,
                &[
                    &code_id,
                    &hash,
                    &key_id,
                    &valid_for.as_secs_f64(),
                    &key.0,
                    &key.1,
                    &read_recorded_at,
                ],
            )
            .await?;
        Ok(row.try_get::<_, i64>(0)? > 0)
    }
}

/// Send times per number ([`limit_identity`]).
type Histories = HashMap<String, Vec<SystemTime>>;

/// Locks and reads the send history of every identity `outcomes` would send a code to
/// (`sql/lock_send_history.sql`), inside `transaction`.
async fn lock_send_history<C: GenericClient>(
    transaction: &C,
    outcomes: &[NewOutcome],
) -> Result<(Histories, SystemTime), StoreError> {
    let mut identities: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.code.as_ref().map(|c| limit_identity(&c.identity)))
        .collect();
    identities.sort_unstable();
    identities.dedup();
    let statement = transaction
        .prepare_cached(include_str!("sql/lock_send_history.sql"))
        .await?;
    let rows = transaction.query(&statement, &[&identities]).await?;
    let mut now = SystemTime::now();
    let mut histories = HashMap::with_capacity(rows.len());
    for row in rows {
        now = row.get(2);
        histories.insert(row.get(0), row.get(1));
    }
    Ok((histories, now))
}

/// Runs `record_batch.sql` for `outcomes` on `client` (a pooled connection or a transaction);
/// `keep_history_secs` above zero adds the recorded codes to their identities' send history
/// (rows the caller locked) and drops entries older than that.
async fn record<C: GenericClient>(
    client: &C,
    outcomes: &[NewOutcome],
    worker_id: &str,
    keep_history_secs: f64,
) -> Result<Vec<RequestKey>, StoreError> {
    let c = &BatchColumns::from(outcomes);
    let statement = client
        .prepare_cached(include_str!("sql/record_batch.sql"))
        .await?;
    let rows = client
        .query(
            &statement,
            &[
                &c.request_ids,
                &c.fingerprints,
                &c.tenant_ids,
                &c.otp_types,
                &c.outcomes,
                &c.code_ids,
                &c.topics,
                &c.partitions,
                &c.offsets,
                &c.code_id,
                &c.code_tenant_id,
                &c.code_identity,
                &c.code_key_id,
                &c.code_hash,
                &c.code_valid_for,
                &c.identity_code_id,
                &c.identity_tenant_id,
                &c.identity,
                &worker_id,
                &keep_history_secs,
                &c.details,
                &c.test_numbers,
                &c.code_limit_identity,
            ],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// The columns of a batch, as the arrays `record_batch.sql` unnests.
#[derive(Default)]
struct BatchColumns {
    request_ids: Vec<String>,
    fingerprints: Vec<Vec<u8>>,
    tenant_ids: Vec<String>,
    otp_types: Vec<&'static str>,
    outcomes: Vec<&'static str>,
    code_ids: Vec<Option<Uuid>>,
    topics: Vec<String>,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    code_id: Vec<Uuid>,
    code_tenant_id: Vec<String>,
    code_identity: Vec<String>,
    code_key_id: Vec<String>,
    code_hash: Vec<Vec<u8>>,
    /// The identity the send limits count the code under ([`limit_identity`]).
    code_limit_identity: Vec<String>,
    /// Seconds.
    code_valid_for: Vec<f64>,
    identity_code_id: Vec<Uuid>,
    identity_tenant_id: Vec<String>,
    identity: Vec<String>,
    details: Vec<Option<&'static str>>,
    test_numbers: Vec<bool>,
}

impl From<&[NewOutcome]> for BatchColumns {
    fn from(outcomes: &[NewOutcome]) -> Self {
        let mut c = Self::default();
        for o in outcomes {
            c.request_ids.push(o.request_id.clone());
            c.fingerprints.push(o.fingerprint.clone());
            c.tenant_ids.push(o.tenant_id.clone());
            c.otp_types.push(o.otp_type);
            c.outcomes.push(o.outcome.as_str());
            c.code_ids.push(o.code.as_ref().map(|code| code.id));
            c.topics.push(o.source.topic.to_string());
            c.partitions.push(o.source.partition);
            c.offsets.push(o.source.offset);
            c.details.push(o.detail);
            c.test_numbers.push(o.test_number);
            if let Some(code) = &o.code {
                c.code_id.push(code.id);
                c.code_tenant_id.push(o.tenant_id.clone());
                c.code_identity.push(code.identity.clone());
                c.code_key_id.push(code.key_id.clone());
                c.code_hash.push(code.hash.clone());
                c.code_limit_identity.push(limit_identity(&code.identity));
                c.code_valid_for.push(code.valid_for.as_secs_f64());
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
