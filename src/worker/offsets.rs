//! The offset to store for each partition: the end of its contiguous completed prefix.
//!
//! Events of one partition may finish out of order (different keys are served concurrently,
//! module `key_order`), but a Kafka offset says "everything before this is done". So per
//! partition, and per assignment of it ([`AssignmentId`]), the worker remembers the offsets it
//! received and has not finished; after each finish the offset to store is the one just below
//! the oldest unfinished event (or the newest received when none is unfinished), and only when
//! that moved forward. A crash redelivers at most what was unfinished or finished beyond the
//! prefix; the idempotent store makes that safe.
//!
//! Offsets are received in increasing order within one assignment (librdkafka returns a
//! partition's events in order, and after a pause it fetches again from the next unreturned
//! offset), so the newest received offset is the largest.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::consumer::AssignmentId;

/// One partition under one assignment.
pub(super) type PartitionKey = (Arc<str>, i32, AssignmentId);

#[derive(Debug, Default)]
struct Progress {
    unfinished: BTreeSet<i64>,
    oldest_received: Option<i64>,
    newest_received: Option<i64>,
    /// The last offset handed out to store (an event's own offset; librdkafka stores + 1).
    stored: Option<i64>,
}

/// Per partition, what has been received and finished.
#[derive(Debug, Default)]
pub(super) struct Offsets {
    partitions: HashMap<PartitionKey, Progress>,
}

impl Offsets {
    /// Notes that the event at `offset` was received.
    pub(super) fn received(&mut self, partition: &PartitionKey, offset: i64) {
        let progress = self.partitions.entry(partition.clone()).or_default();
        progress.unfinished.insert(offset);
        progress.oldest_received = Some(progress.oldest_received.map_or(offset, |o| o.min(offset)));
        progress.newest_received = Some(progress.newest_received.map_or(offset, |n| n.max(offset)));
    }

    /// Notes that the event at `offset` is finished; returns the offset of the last event of
    /// the contiguous completed prefix when it moved forward (to store), else `None`.
    pub(super) fn finished(&mut self, partition: &PartitionKey, offset: i64) -> Option<i64> {
        let progress = self.partitions.get_mut(partition)?;
        progress.unfinished.remove(&offset);
        let end = match progress.unfinished.first() {
            Some(oldest) => oldest.checked_sub(1)?,
            None => progress.newest_received?,
        };
        // Nothing of this assignment finished below the oldest unfinished one yet.
        let nothing_done = progress.oldest_received.is_none_or(|oldest| end < oldest);
        if nothing_done || progress.stored.is_some_and(|stored| end <= stored) {
            return None;
        }
        progress.stored = Some(end);
        Some(end)
    }

    /// Forgets the partitions `keep` says are no longer owned under the same assignment.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&PartitionKey) -> bool) {
        self.partitions.retain(|key, _| keep(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p0() -> PartitionKey {
        ("t".into(), 0, AssignmentId::first())
    }

    #[test]
    fn the_stored_offset_advances_only_over_the_contiguous_completed_prefix() {
        let mut offsets = Offsets::default();
        for offset in 10..15 {
            offsets.received(&p0(), offset);
        }
        assert_eq!(offsets.finished(&p0(), 12), None, "10 and 11 still run");
        assert_eq!(offsets.finished(&p0(), 11), None, "10 still runs");
        assert_eq!(offsets.finished(&p0(), 10), Some(12), "10, 11, 12 done");
        assert_eq!(offsets.finished(&p0(), 14), None, "13 still runs");
        assert_eq!(offsets.finished(&p0(), 13), Some(14));
    }

    #[test]
    fn a_finish_that_does_not_move_the_prefix_stores_nothing() {
        let mut offsets = Offsets::default();
        offsets.received(&p0(), 5);
        assert_eq!(offsets.finished(&p0(), 5), Some(5));
        assert_eq!(offsets.finished(&p0(), 5), None, "already stored");
        offsets.received(&p0(), 6);
        offsets.received(&p0(), 7);
        assert_eq!(offsets.finished(&p0(), 7), None);
        assert_eq!(offsets.finished(&p0(), 6), Some(7));
    }

    #[test]
    fn assignments_and_partitions_are_tracked_apart() {
        let mut offsets = Offsets::default();
        let again = ("t".into(), 0, AssignmentId::first().next());
        let p1 = ("t".into(), 1, AssignmentId::first());
        offsets.received(&p0(), 1);
        offsets.received(&again, 1);
        offsets.received(&p1, 1);
        assert_eq!(offsets.finished(&p1, 1), Some(1));
        assert_eq!(offsets.finished(&again, 1), Some(1));
        offsets.retain(|key| key != &p0());
        assert_eq!(offsets.finished(&p0(), 1), None, "forgotten");
    }
}
