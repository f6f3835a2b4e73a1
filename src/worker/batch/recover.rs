//! The recover step: pending requests of a run that did not finish (a crash, a revoked
//! partition) are sent again only if their SMS never reached the broker.
//!
//! The SMS topic is scanned for their code ids ([`SentScan`]), from the oldest pending
//! outcome's time (minus a slack for clock skew). Found: the SMS went; the request is only
//! marked sent. Not found: the code is replaced in place (a fresh code under the same id, so
//! the one that may sit in an undelivered SMS stops working) and the request joins the batch's
//! deliveries. Replacing is a claim (a compare-and-set on the pending outcome's recording time,
//! which it restarts): of two runs recovering one request at once (copies under different message keys),
//! one sends and the other counts its copy as served. Pending requests past their code's validity are closed as `expired`, those that
//! would now go elsewhere as `abandoned`; neither sends anything.

use std::time::{Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::plan::Plan;
use crate::domain::unix_time::unix_ms;
use crate::retry::Cancelled;
use crate::store::{Outcome, RequestKey};
use crate::worker::pipeline::Pipeline;
use crate::worker::retrying::until_done;
use crate::worker::sent_scan::{SentScan, SENT_SCAN_TIMEOUT};

impl Pipeline {
    /// Moves the recoveries of `plan` whose SMS never left into its deliveries, and closes its
    /// expired and abandoned requests; returns the keys whose SMS was acknowledged earlier (to
    /// mark sent) and how many requests were recovered.
    ///
    /// # Errors
    /// [`Cancelled`] when `cancel` fires first.
    pub(super) async fn recover(
        &self,
        plan: &mut Plan<'_>,
        cancel: &CancellationToken,
    ) -> Result<(Vec<RequestKey>, usize), Cancelled> {
        let recoveries = std::mem::take(&mut plan.recoveries);
        let recovered = recoveries.len();
        let mut acknowledged_earlier = Vec::new();
        if !recoveries.is_empty() {
            let oldest = recoveries.iter().map(|r| r.age).max().unwrap_or_default();
            let since = unix_ms(SystemTime::now())
                .saturating_sub(i64::try_from(oldest.as_millis()).unwrap_or(i64::MAX));
            let code_ids = recoveries.iter().map(|r| r.delivery.code_id).collect();
            // Behind a lock only so each attempt can resume the same scan.
            let scan = tokio::sync::Mutex::new(SentScan::new(
                &self.scan_client,
                &self.topics.sms,
                since,
                code_ids,
            ));
            let already_sent =
                until_done(&self.retry_policy, "scan the SMS topic", cancel, || async {
                    scan.lock().await.run(SENT_SCAN_TIMEOUT).await
                })
                .await?;
            for recovery in recoveries {
                let mut delivery = recovery.delivery;
                // Taken before its claim, which restarts its pending age: its SMS window
                // counts from no later than that.
                delivery.send_by = Some(Instant::now() + self.sms_send_window);
                if already_sent.contains(&delivery.code_id) {
                    acknowledged_earlier.push(delivery.request.key());
                    continue;
                }
                let hash = self.hasher.hash(&delivery.code_id, delivery.code.as_str());
                let key = delivery.request.key();
                let claimed =
                    until_done(&self.retry_policy, "replace a pending code", cancel, || {
                        self.store.replace_code(
                            &key,
                            delivery.code_id,
                            self.hasher.key_id(),
                            &hash,
                            self.code_ttl,
                            recovery.recorded_at,
                        )
                    })
                    .await?;
                if claimed {
                    plan.deliveries.push(delivery);
                } else {
                    // Another run (a copy under another message key) recovers it right now:
                    // that run's event carries it through; this copy is served.
                    tracing::info!(
                        request_id = ?delivery.request.event.request_id,
                        "pending request claimed by another run first; not sent again"
                    );
                    plan.tally.already_served += 1;
                }
            }
        }
        for (keys, closed) in [
            (&plan.expired, Outcome::Expired),
            (&plan.abandoned, Outcome::Abandoned),
        ] {
            if !keys.is_empty() {
                until_done(&self.retry_policy, "close pending requests", cancel, || {
                    self.store.close_pending(keys, closed)
                })
                .await?;
            }
        }
        Ok((acknowledged_earlier, recovered))
    }
}
