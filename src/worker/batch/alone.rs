//! Panic isolation: a batch that panicked (a bug) is served again one event at a time, so the
//! event that panics alone is dead-lettered (reason `internal_error`) and the others are served;
//! the process stays up. Should writing that dead letter panic as well, the event is skipped
//! with its partition and offset logged, rather than stalling its partition.

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use super::BatchSummary;
use crate::retry::Cancelled;
use crate::worker::dead_letter::{Reason, Verdict};
use crate::worker::incoming::Incoming;
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
        let mut total = BatchSummary::default();
        for event in batch {
            let alone =
                std::panic::AssertUnwindSafe(self.process(std::slice::from_ref(event), cancel))
                    .catch_unwind()
                    .await;
            match alone {
                Ok(summary) => total.add(summary?),
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
