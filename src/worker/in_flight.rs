//! What a worker holds in memory: request events fetched and not yet finished (queued on a lane
//! or in a batch in progress), by count and by bytes (key, value, headers), with the bounds
//! `USER_OTP_WORKER_MAX_IN_FLIGHT_EVENTS` / `_BYTES` split evenly among the lanes.
//!
//! The consumer loop adds an event when it routes it and pauses the event's partition
//! (`Consumer::pause`) as soon as its lane holds more than its share; the lane subtracts a batch's
//! events when the batch is finished (or dropped), and the loop resumes the lane's paused
//! partitions once the lane is back under half its share. librdkafka drops what it had prefetched
//! for a paused partition and fetches again from the next unreturned offset on resume, so a
//! pause loses nothing and one slow lane never blocks the others.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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

    /// How many times a partition was paused because its lane was over its share.
    pub fn pauses(&self) -> u64 {
        self.pauses.load(Ordering::Relaxed)
    }

    pub(super) fn paused(&self) {
        self.pauses.fetch_add(1, Ordering::Relaxed);
    }
}

/// The share of the bounds one lane may hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct Share {
    pub events: usize,
    pub bytes: usize,
}

impl Share {
    /// `max_events` and `max_bytes` split evenly among `lanes` (at least one event and 1 byte).
    pub(super) fn of(max_events: usize, max_bytes: usize, lanes: usize) -> Self {
        let lanes = lanes.max(1);
        Self {
            events: (max_events / lanes).max(1),
            bytes: (max_bytes / lanes).max(1),
        }
    }
}

/// What one lane holds, counted into the worker's [`InFlight`] totals as well.
#[derive(Debug, Default)]
pub(super) struct LaneLoad {
    events: AtomicUsize,
    bytes: AtomicUsize,
}

impl LaneLoad {
    pub(super) fn add(&self, totals: &InFlight, bytes: usize) {
        self.events.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        totals.events.fetch_add(1, Ordering::Relaxed);
        let now = totals.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        totals.peak_bytes.fetch_max(now, Ordering::Relaxed);
    }

    pub(super) fn remove(&self, totals: &InFlight, events: usize, bytes: usize) {
        self.events.fetch_sub(events, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        totals.events.fetch_sub(events, Ordering::Relaxed);
        totals.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// More than the share: the lane's partitions are to be paused.
    pub(super) fn over(&self, share: Share) -> bool {
        self.events.load(Ordering::Relaxed) > share.events
            || self.bytes.load(Ordering::Relaxed) > share.bytes
    }

    /// Back under half the share: the lane's paused partitions may resume.
    pub(super) fn drained(&self, share: Share) -> bool {
        self.events.load(Ordering::Relaxed) <= share.events / 2
            && self.bytes.load(Ordering::Relaxed) <= share.bytes / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_is_over_its_share_by_count_or_bytes_and_drained_below_half() {
        let totals = InFlight::default();
        let share = Share::of(60, 6_000, 6);
        assert_eq!((share.events, share.bytes), (10, 1_000));
        let lane = LaneLoad::default();
        lane.add(&totals, 900);
        assert!(!lane.over(share));
        lane.add(&totals, 200);
        assert!(lane.over(share), "1,100 bytes > 1,000");
        assert!(!lane.drained(share));
        lane.remove(&totals, 2, 1_100);
        assert!(lane.drained(share));
        assert_eq!(
            (totals.events(), totals.bytes(), totals.peak_bytes()),
            (0, 0, 1_100)
        );
        for _ in 0..11 {
            lane.add(&totals, 1);
        }
        assert!(lane.over(share), "11 events > 10");
    }
}
