//! What a worker holds in memory: request events fetched and not yet finished (waiting for
//! their key, ready, or in a batch in progress), by count and by bytes (key, value, headers),
//! bounded by `USER_OTP_WORKER_MAX_IN_FLIGHT_EVENTS` / `_BYTES` split evenly among the
//! partitions the worker owns.
//!
//! The dispatcher adds an event when it admits it and pauses the event's partition
//! (`Consumer::pause`) as soon as that partition holds more than its share; it subtracts the
//! event when the event is finished (or dropped), and resumes a paused partition once it is
//! back under half its share. librdkafka drops what it had prefetched for a paused partition
//! and fetches again from the next unreturned offset on resume, so a pause loses nothing, and a
//! partition whose backlog is stuck behind one slow key never starves the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::offsets::PartitionKey;

/// Totals for the whole worker, readable while it runs (tests, and operators through metrics).
#[derive(Debug, Default)]
pub struct InFlight {
    events: AtomicUsize,
    bytes: AtomicUsize,
    peak_bytes: AtomicUsize,
    pauses: AtomicU64,
}

impl InFlight {
    /// Request events held now.
    pub fn events(&self) -> usize {
        self.events.load(Ordering::Relaxed)
    }

    /// Bytes of request events held now.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The most bytes held at any moment so far.
    pub fn peak_bytes(&self) -> usize {
        self.peak_bytes.load(Ordering::Relaxed)
    }

    /// How many times a partition was paused because it held more than its share.
    pub fn pauses(&self) -> u64 {
        self.pauses.load(Ordering::Relaxed)
    }

    pub(super) fn paused(&self) {
        self.pauses.fetch_add(1, Ordering::Relaxed);
    }
}

/// The worker's in-flight bounds (events, bytes).
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    pub events: usize,
    pub bytes: usize,
}

/// The share of the bounds one partition may hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct Share {
    pub events: usize,
    pub bytes: usize,
}

impl Bounds {
    /// The bounds split evenly among `partitions` (at least one event and 1 byte each).
    pub(super) fn share(self, partitions: usize) -> Share {
        let partitions = partitions.max(1);
        Share {
            events: (self.events / partitions).max(1),
            bytes: (self.bytes / partitions).max(1),
        }
    }
}

/// What one partition holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Load {
    pub events: usize,
    pub bytes: usize,
}

impl Load {
    /// More than the share: the partition is to be paused.
    pub(super) fn over(self, share: Share) -> bool {
        self.events > share.events || self.bytes > share.bytes
    }

    /// Back under half the share: a paused partition may resume.
    pub(super) fn drained(self, share: Share) -> bool {
        self.events <= share.events / 2 && self.bytes <= share.bytes / 2
    }
}

/// What each partition holds, counted into the worker's [`InFlight`] totals as well.
#[derive(Debug, Default)]
pub(super) struct Loads {
    partitions: HashMap<PartitionKey, Load>,
}

impl Loads {
    /// Counts one event of `bytes` in; returns the partition's load after it.
    pub(super) fn add(
        &mut self,
        totals: &InFlight,
        partition: &PartitionKey,
        bytes: usize,
    ) -> Load {
        let load = self.partitions.entry(partition.clone()).or_default();
        load.events += 1;
        load.bytes += bytes;
        totals.events.fetch_add(1, Ordering::Relaxed);
        let now = totals.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        totals.peak_bytes.fetch_max(now, Ordering::Relaxed);
        *load
    }

    /// Counts one event of `bytes` out.
    pub(super) fn remove(&mut self, totals: &InFlight, partition: &PartitionKey, bytes: usize) {
        if let Some(load) = self.partitions.get_mut(partition) {
            load.events = load.events.saturating_sub(1);
            load.bytes = load.bytes.saturating_sub(bytes);
            if load.events == 0 {
                self.partitions.remove(partition);
            }
        }
        totals.events.fetch_sub(1, Ordering::Relaxed);
        totals.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Counts everything out (the dispatcher holding it is gone).
    pub(super) fn clear(&mut self, totals: &InFlight) {
        for (_, load) in self.partitions.drain() {
            totals.events.fetch_sub(load.events, Ordering::Relaxed);
            totals.bytes.fetch_sub(load.bytes, Ordering::Relaxed);
        }
    }

    /// What `partition` holds now.
    pub(super) fn of(&self, partition: &PartitionKey) -> Load {
        self.partitions.get(partition).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::consumer::AssignmentId;

    #[test]
    fn a_partition_is_over_its_share_by_count_or_bytes_and_drained_below_half() {
        let totals = InFlight::default();
        let share = Bounds {
            events: 30,
            bytes: 3_000,
        }
        .share(3);
        assert_eq!((share.events, share.bytes), (10, 1_000));
        let mut loads = Loads::default();
        let p0: PartitionKey = ("t".into(), 0, AssignmentId::first());
        assert!(!loads.add(&totals, &p0, 900).over(share));
        assert!(
            loads.add(&totals, &p0, 200).over(share),
            "1,100 bytes > 1,000"
        );
        assert!(!loads.of(&p0).drained(share));
        loads.remove(&totals, &p0, 900);
        loads.remove(&totals, &p0, 200);
        assert!(loads.of(&p0).drained(share));
        assert_eq!(
            (totals.events(), totals.bytes(), totals.peak_bytes()),
            (0, 0, 1_100)
        );
        for _ in 0..10 {
            loads.add(&totals, &p0, 1);
        }
        assert!(loads.add(&totals, &p0, 1).over(share), "11 events > 10");
    }
}
