//! The served window: how every throughput figure of a preloaded run is timed (the worker's, the
//! passthrough ceiling's, the per-pod runs').
//!
//! The requests are all on the topic before the process under test starts. The window runs
//! from the timestamp of the first output event to that of the last one (the SMS events of the
//! worker, the copied events of the passthrough): producer-side `CreateTime`s in ms, stamped by
//! librdkafka as the process hands each event to its producer, read back from the output topic.
//! Process start, group join and the first fetch fall before the window and are no part of the
//! rate; the throughput is (events − 1) / window, as the window spans events − 1 intervals.

/// First and last output event timestamps, in ms since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub first_ms: i64,
    pub last_ms: i64,
}

/// A window shorter than this (1 ms, one timestamp tick) counts as this long, in s.
const SHORTEST_SECONDS: f64 = 0.001;

impl Window {
    /// The window of a set of timestamps (ms); `None` when empty.
    pub(crate) fn of(timestamps_ms: impl IntoIterator<Item = i64>) -> Option<Self> {
        timestamps_ms.into_iter().fold(None, |window, t| {
            Some(match window {
                None => Self {
                    first_ms: t,
                    last_ms: t,
                },
                Some(Self { first_ms, last_ms }) => Self {
                    first_ms: first_ms.min(t),
                    last_ms: last_ms.max(t),
                },
            })
        })
    }

    /// Length of the window, in s (at least 1 ms).
    pub(crate) fn seconds(self) -> f64 {
        ((self.last_ms - self.first_ms) as f64 / 1000.0).max(SHORTEST_SECONDS)
    }

    /// Events per second over the window for `events` output events: (events − 1) / seconds.
    pub(crate) fn rate(self, events: usize) -> f64 {
        events.saturating_sub(1) as f64 / self.seconds()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_spans_first_to_last() {
        let w = Window::of([1_500, 1_000, 3_000]).expect("three timestamps");
        assert_eq!((w.first_ms, w.last_ms), (1_000, 3_000));
        assert_eq!(w.seconds(), 2.0);
        // 1,001 events, 1,000 intervals over 2 s.
        assert_eq!(w.rate(1_001), 500.0);
        assert_eq!(Window::of(std::iter::empty()), None);
    }

    #[test]
    fn a_single_tick_window_is_one_ms() {
        let w = Window::of([7, 7]).expect("two timestamps");
        assert_eq!(w.seconds(), 0.001);
        assert_eq!(w.rate(2), 1000.0);
        assert_eq!(w.rate(0), 0.0);
    }
}
