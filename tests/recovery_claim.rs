//! Recovery claims a pending request before it sends a fresh code
//! (`OtpStore::replace_code`, `src/store/sql/replace_code.sql`): a compare-and-set on the
//! pending outcome's recording time as the run read it, safe to retry. Real PostgreSQL.

mod common;

use std::time::{Duration, SystemTime};

use common::stack::Stack;
use user_otp::store::{OtpStore, RequestKey};

const TTL: Duration = Duration::from_secs(600);

/// A pending request left by a run that did not finish, with the store, its key and code id.
async fn pending(stack: &Stack, id: &str) -> (OtpStore, RequestKey, uuid::Uuid) {
    let code_id = stack.leave_pending(id, "9999912345").await;
    let store = OtpStore::new(&stack.settings.database).expect("store");
    let row = stack
        .db
        .query_one(
            "SELECT request_id, fingerprint FROM otp_request_outcome WHERE code_id = $1",
            &[&code_id],
        )
        .await
        .expect("row");
    (store, (row.get(0), row.get(1)), code_id)
}

/// The pending outcome's recording time, as a recovering run reads it.
async fn read(store: &OtpStore, key: &RequestKey) -> SystemTime {
    let existing = store
        .existing_outcomes(std::slice::from_ref(key), TTL)
        .await
        .expect("read");
    existing[key].outcome.as_ref().expect("pending").recorded_at
}

/// Two runs (copies under two message keys) read the same pending row; one claims it. The other
/// claims later than the row's age when read (a slow SMS-topic scan in between, a predecessor's
/// row recovered without the grace): it loses, so only one fresh code goes out.
#[tokio::test]
async fn of_two_runs_that_read_one_pending_request_only_the_first_to_claim_it_sends() {
    let stack = Stack::start(&[]).await;
    let (store, key, code_id) = pending(&stack, "claim-late-loser").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let read_a = read(&store, &key).await;
    let read_b = read(&store, &key).await;
    let a = store
        .replace_code(&key, code_id, "k1", &[1; 32], TTL, read_a)
        .await
        .expect("claim A");
    assert!(a, "the first claim wins");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let b = store
        .replace_code(&key, code_id, "k1", &[2; 32], TTL, read_b)
        .await
        .expect("claim B");
    assert!(
        !b,
        "A claimed after B read it, yet B claimed too: two codes sent"
    );
    let hash: Vec<u8> = stack
        .db
        .query_one("SELECT code_hash FROM otp_code WHERE id = $1", &[&code_id])
        .await
        .expect("code")
        .get(0);
    assert_eq!(hash, vec![1; 32], "the winner's code is the stored one");
}

/// A claim whose first attempt committed but whose answer was lost is retried with the same
/// fresh hash: the retry knows the claim as its own, so the request is still sent.
#[tokio::test]
async fn a_retried_claim_of_the_same_run_still_holds_the_claim() {
    let stack = Stack::start(&[]).await;
    let (store, key, code_id) = pending(&stack, "claim-retry").await;
    let read_at = read(&store, &key).await;
    let hash = [3; 32];
    let first = store
        .replace_code(&key, code_id, "k1", &hash, TTL, read_at)
        .await
        .expect("first attempt");
    assert!(first);
    let retry = store
        .replace_code(&key, code_id, "k1", &hash, TTL, read_at)
        .await
        .expect("retry");
    assert!(
        retry,
        "the retry took its own claim for another run's: request lost"
    );
}

/// A claim restarts the pending outcome's age, so a run reading it afterwards sees a young
/// pending request (and waits out the grace) instead of recovering it again.
#[tokio::test]
async fn a_claim_restarts_the_pending_age() {
    let stack = Stack::start(&[]).await;
    let (store, key, code_id) = pending(&stack, "claim-age").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let read_at = read(&store, &key).await;
    assert!(store
        .replace_code(&key, code_id, "k1", &[4; 32], TTL, read_at)
        .await
        .expect("claim"));
    let existing = store
        .existing_outcomes(std::slice::from_ref(&key), TTL)
        .await
        .expect("read");
    let age = existing[&key].outcome.as_ref().expect("pending").age;
    assert!(
        age < Duration::from_millis(1000),
        "age after the claim: {age:?}"
    );
}
