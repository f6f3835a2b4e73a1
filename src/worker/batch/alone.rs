//! Panic isolation: a batch that panicked (a bug) is served again one event at a time, so the
//! event that panics alone is dead-lettered (reason `internal_error`) and the others are served;
//! the process stays up. Should writing that dead letter panic as well, the event is skipped
//! with its partition and offset logged, rather than stalling its partition.
//!
//! The panicked batch may have handed SMS to the producer already: the producer is flushed
//! first (bounded by the send timeout), so the one-by-one pass's recovery finds what was
//! delivered instead of sending it again. An event behind a deferred one of its key is
//! deferred with it, as within a batch (module `plan`).

use std::collections::HashMap;
use std::time::Duration;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use super::BatchSummary;
use crate::retry::Cancelled;
use crate::worker::dead_letter::{Reason, Verdict};
use crate::worker::incoming::Incoming;
use crate::worker::key_order::LockKey;
use crate::worker::pipeline::Pipeline;

impl Pipeline {
    /// Serves each event of `batch` as a batch of its own, after `batch` as a whole panicked
    /// (a bug): an event that panics alone is dead-lettered with reason `internal_error` and the
    /// others are served; the process stays up.
    ///
    /// # Errors
    /// [`Cancelled`] when `cancel` fires first.
    pub(crate) async fn process_each_alone(
        &self,
        batch: &[Incoming],
        cancel: &CancellationToken,
    ) -> Result<BatchSummary, Cancelled> {
        if let Err(error) = self.producer.flush(self.send_timeout).await {
            tracing::warn!(%error, "flushing the producer after a batch panicked");
        }
        let mut total = BatchSummary::default();
        let mut deferred_keys: HashMap<LockKey, Duration> = HashMap::new();
        for event in batch {
            if let Some(wait) = deferred_keys.get(&event.lock) {
                total.deferred.push((event.ticket, *wait));
                continue;
            }
            let alone =
                std::panic::AssertUnwindSafe(self.process(std::slice::from_ref(event), cancel))
                    .catch_unwind()
                    .await;
            match alone {
                Ok(summary) => {
                    let summary = summary?;
                    if let Some((_, wait)) = summary.deferred.first() {
                        deferred_keys.insert(event.lock, *wait);
                    }
                    total.add(summary);
                }
                Err(_) => {
                    tracing::error!(
                        request_id = ?event.request_id,
                        partition = event.source.partition,
                        offset = event.source.offset,
                        "handling this request event panicked; dead-lettering it"
                    );
                    let verdict =
                        Verdict::new(Reason::InternalError, "handling this event panicked");
                    let dead_letter =
                        std::panic::AssertUnwindSafe(self.dead_letter(event, &verdict, cancel))
                            .catch_unwind()
                            .await;
                    match dead_letter {
                        Ok(written) => {
                            written?;
                            total.dead_lettered += 1;
                        }
                        // Nothing else can be done with it; its coordinates are in the log, so
                        // an operator can replay it once the bug is fixed.
                        Err(_) => tracing::error!(
                            partition = event.source.partition,
                            offset = event.source.offset,
                            "dead-lettering this request event panicked too; skipped"
                        ),
                    }
                }
            }
        }
        Ok(total)
    }
}
