//! The scheduled purge: every `USER_OTP_PURGE_INTERVAL_SECONDS` the worker deletes rows older
//! than the retention ([`crate::store::OtpStore::purge`]: small statements with a pause between
//! them, so the purge never holds locks long or crowds out batches). Several workers may purge
//! at once; they delete disjoint or already-deleted rows, which is harmless. A failed purge is
//! logged and tried again at the next interval: nothing depends on it but table size.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::RetentionSettings;
use crate::store::OtpStore;

/// Pause between two purge statements.
const PAUSE: Duration = Duration::from_millis(50);

/// Purges on schedule until `shutdown`; returns at once when the interval is zero (off).
pub(super) async fn run(store: OtpStore, settings: RetentionSettings, shutdown: CancellationToken) {
    if settings.purge_interval.is_zero() {
        return;
    }
    let mut ticks = tokio::time::interval(settings.purge_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let purge = store.purge(settings.retention, settings.purge_batch_rows, PAUSE);
        let purged = tokio::select! {
            _ = shutdown.cancelled() => return,
            purged = purge => purged,
        };
        match purged {
            Ok(purged) if purged.total() > 0 => {
                tracing::info!(?purged, "purged rows past the retention")
            }
            Ok(_) => tracing::debug!("purge: nothing past the retention"),
            Err(error) => tracing::warn!(%error, "purge failed; trying again at the next interval"),
        }
    }
}
