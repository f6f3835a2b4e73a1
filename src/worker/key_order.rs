//! Key-ordered scheduling: which fetched events may be served now without overtaking an earlier
//! event of the same key.
//!
//! Every admitted event holds one lock key (module `dispatch` gives each request event its
//! Kafka message key, `<root tenant>:<mobile>`, else its request id). Each lock key has a queue
//! of the events holding it, in admission order; an event is *ready* when it is at the front of
//! its queue. Taking a ready event for serving also takes the events queued right behind it
//! (in order, up to the batch size), so they go in the same batch, after it: a key flooded with
//! events drains a batch at a time, not one event per batch. Finishing an event removes it from
//! its queue, which may make the next event of that key ready. Consequences:
//! - two events sharing a lock key are never in two batches at once, and within one batch they
//!   are in admission order (per-user order: one message key per user); the batch serves them
//!   in that order and defers every event behind a deferred one of its key (module `batch`);
//! - events of different keys are independent, whatever partition they came from: one slow key
//!   delays only the events queued behind it;
//! - no deadlock: the oldest unfinished event of each key is at the front of its queue, so it is
//!   always ready or in progress.
//!
//! An event taken for serving keeps its lock until [`KeyOrder::finish`]; one whose serving was
//! deferred (another worker's request still in its grace, or egov-user not answering for it)
//! keeps it while it waits and is handed back with [`KeyOrder::ready_again`]: ready again if it
//! is its key's front, else taken with the front when that is. This is the key-ordering mode of Confluent's
//! parallel consumer; the offsets side (contiguous completed prefix) is module `offsets`.

use std::collections::{HashMap, VecDeque};

/// A lock key: events sharing one are served one at a time, in admission order. It is a 64-bit
/// hash of what orders the events (module `dispatch`: a message key, else a request id), keyed
/// at random per process: two different keys that collide are only served one after the other,
/// never out of order, and nobody outside the process can aim for a collision.
pub(super) type LockKey = u64;

/// The admission number of an event, unique within one [`KeyOrder`].
pub(super) type Ticket = u64;

struct Entry<T> {
    lock: LockKey,
    /// `None` while the event is out (being served or deferred).
    item: Option<T>,
}

/// The events admitted and not yet finished, with the lock queues that order them.
pub(super) struct KeyOrder<T> {
    next: Ticket,
    entries: HashMap<Ticket, Entry<T>>,
    queues: HashMap<LockKey, VecDeque<Ticket>>,
    /// Ready events in admission order of becoming ready.
    ready: VecDeque<Ticket>,
}

impl<T> Default for KeyOrder<T> {
    fn default() -> Self {
        Self {
            next: 0,
            entries: HashMap::new(),
            queues: HashMap::new(),
            ready: VecDeque::new(),
        }
    }
}

impl<T> KeyOrder<T> {
    /// Admits `item` holding `lock`; returns its ticket.
    pub(super) fn admit(&mut self, lock: LockKey, item: T) -> Ticket {
        self.next += 1;
        let ticket = self.next;
        let queue = self.queues.entry(lock).or_default();
        queue.push_back(ticket);
        if queue.len() == 1 {
            self.ready.push_back(ticket);
        }
        self.entries.insert(
            ticket,
            Entry {
                lock,
                item: Some(item),
            },
        );
        ticket
    }

    /// Up to `max` events taken out for serving (their locks stay held): ready events oldest
    /// first, each followed by the events queued right behind it on its key that are not out
    /// (in admission order).
    pub(super) fn take_ready(&mut self, max: usize) -> Vec<(Ticket, T)> {
        let mut taken = Vec::with_capacity(max.min(self.ready.len()));
        while taken.len() < max {
            let Some(ticket) = self.ready.pop_front() else {
                break;
            };
            let Some(entry) = self.entries.get_mut(&ticket) else {
                continue;
            };
            let Some(item) = entry.item.take() else {
                continue;
            };
            let lock = entry.lock;
            taken.push((ticket, item));
            let Some(queue) = self.queues.get(&lock) else {
                continue;
            };
            for follower in queue.iter().skip(1) {
                if taken.len() >= max {
                    break;
                }
                match self.entries.get_mut(follower).and_then(|e| e.item.take()) {
                    Some(item) => taken.push((*follower, item)),
                    None => break, // out already: what is behind it waits for it
                }
            }
        }
        taken
    }

    /// Hands back an event that was taken and deferred (it never gave up its lock): ready again
    /// at once when it is its key's front, else taken along with the front when that is.
    pub(super) fn ready_again(&mut self, ticket: Ticket, item: T) {
        let Some(entry) = self.entries.get_mut(&ticket) else {
            return;
        };
        entry.item = Some(item);
        let front = self.queues.get(&entry.lock).and_then(VecDeque::front);
        if front == Some(&ticket) {
            self.ready.push_back(ticket);
        }
    }

    /// Finishes an event (served, or dropped after being taken): releases its lock; the next
    /// event of its key may become ready. Unknown tickets are ignored.
    pub(super) fn finish(&mut self, ticket: Ticket) {
        let Some(entry) = self.entries.remove(&ticket) else {
            return;
        };
        if entry.item.is_some() {
            // Finished without being taken (rare): it may still be listed as ready.
            self.ready.retain(|t| *t != ticket);
        }
        let Some(queue) = self.queues.get_mut(&entry.lock) else {
            return;
        };
        if queue.front() == Some(&ticket) {
            queue.pop_front();
            // The new front was behind the finished event, so it is not listed as ready yet.
            match queue.front() {
                Some(front) => {
                    let front = *front;
                    if self.entries.get(&front).is_some_and(|e| e.item.is_some()) {
                        self.ready.push_back(front);
                    }
                }
                None => {
                    self.queues.remove(&entry.lock);
                }
            }
        } else {
            queue.retain(|t| *t != ticket);
        }
    }

    /// Events ready to serve now.
    pub(super) fn ready_count(&self) -> usize {
        self.ready.len()
    }

    /// Events admitted and not finished (ready, waiting, out).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> LockKey {
        hash(("message", k))
    }

    fn hash(value: impl std::hash::Hash) -> LockKey {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        BuildHasherDefault::<DefaultHasher>::default().hash_one(value)
    }

    fn names(taken: &[(Ticket, &'static str)]) -> Vec<&'static str> {
        taken.iter().map(|(_, name)| *name).collect()
    }

    #[test]
    fn events_of_different_keys_are_ready_together_and_one_key_goes_in_order() {
        let mut order = KeyOrder::default();
        order.admit(key("a"), "a1");
        order.admit(key("b"), "b1");
        order.admit(key("a"), "a2");
        order.admit(key("c"), "c1");
        assert_eq!(order.ready_count(), 3, "a2 is not ready: a1 is ahead of it");
        let first = order.take_ready(10);
        assert_eq!(
            names(&first),
            ["a1", "a2", "b1", "c1"],
            "a2 right behind a1"
        );
        order.admit(key("a"), "a3");
        assert!(order.take_ready(10).is_empty(), "a3 waits for a1 and a2");
        order.finish(first[0].0);
        order.finish(first[2].0);
        assert!(order.take_ready(10).is_empty(), "a3 still waits for a2");
        order.finish(first[1].0);
        assert_eq!(names(&order.take_ready(10)), ["a3"]);
    }

    #[test]
    fn a_flooded_key_fills_a_batch_in_order_up_to_its_size() {
        let mut order = KeyOrder::default();
        for i in 0..10 {
            order.admit(key("flood"), i);
        }
        order.admit(key("other"), 100);
        let first = order.take_ready(4);
        assert_eq!(
            first.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert_eq!(
            order
                .take_ready(4)
                .iter()
                .map(|(_, i)| *i)
                .collect::<Vec<_>>(),
            [100],
            "the rest of the flood waits for the first batch; other keys do not"
        );
        for (ticket, _) in &first {
            order.finish(*ticket);
        }
        assert_eq!(
            order
                .take_ready(100)
                .iter()
                .map(|(_, i)| *i)
                .collect::<Vec<_>>(),
            [4, 5, 6, 7, 8, 9]
        );
    }

    #[test]
    fn deferred_events_of_one_key_come_back_in_order_whatever_order_they_are_handed_back() {
        let mut order = KeyOrder::default();
        order.admit(key("a"), "a1");
        order.admit(key("a"), "a2");
        let taken = order.take_ready(10);
        assert_eq!(names(&taken), ["a1", "a2"]);
        // Both deferred; a2's wait ends first.
        order.ready_again(taken[1].0, taken[1].1);
        assert!(order.take_ready(10).is_empty(), "a2 waits for a1");
        order.ready_again(taken[0].0, taken[0].1);
        assert_eq!(names(&order.take_ready(10)), ["a1", "a2"]);
    }

    #[test]
    fn an_event_finished_while_waiting_leaves_its_key_in_order() {
        let mut order = KeyOrder::default();
        let a1 = order.admit(key("a"), "a1");
        let a2 = order.admit(key("a"), "a2");
        order.admit(key("a"), "a3");
        assert_eq!(names(&order.take_ready(1)), ["a1"]);
        // a2 leaves unserved before its turn (its partition was revoked).
        order.finish(a2);
        assert!(order.take_ready(10).is_empty(), "a3 still waits for a1");
        order.finish(a1);
        assert_eq!(names(&order.take_ready(10)), ["a3"]);
    }

    #[test]
    fn a_deferred_event_keeps_its_key_and_comes_back_ready() {
        let mut order = KeyOrder::default();
        order.admit(key("a"), "a1");
        order.admit(key("a"), "a2");
        order.admit(key("b"), "b1");
        let taken = order.take_ready(1);
        let (ticket, item) = (taken[0].0, taken[0].1);
        // a1 deferred: b1 still flows, a2 still waits.
        assert_eq!(names(&order.take_ready(10)), ["b1"]);
        order.ready_again(ticket, item);
        let again = order.take_ready(10);
        assert_eq!(names(&again), ["a1", "a2"], "a2 goes right behind it");
        order.finish(ticket);
        assert!(order.take_ready(10).is_empty());
        order.finish(again[1].0);
        assert_eq!(order.len(), 1, "b1 is still out");
    }

    #[test]
    fn take_ready_respects_its_limit_and_admission_order() {
        let mut order = KeyOrder::default();
        for (i, name) in ["x", "y", "z"].into_iter().enumerate() {
            order.admit(key(&i.to_string()), name);
        }
        assert_eq!(order.ready_count(), 3);
        assert_eq!(names(&order.take_ready(2)), ["x", "y"]);
        assert_eq!(names(&order.take_ready(2)), ["z"]);
        assert_eq!(order.len(), 3, "taken events count until finished");
    }

    #[test]
    fn finishing_everything_leaves_nothing_behind() {
        let mut order = KeyOrder::default();
        for i in 0..100 {
            order.admit(key(&(i % 7).to_string()), i);
        }
        let mut served = Vec::new();
        loop {
            let taken = order.take_ready(5);
            if taken.is_empty() {
                break;
            }
            for (ticket, item) in taken {
                served.push(item);
                order.finish(ticket);
            }
        }
        assert_eq!(served.len(), 100);
        for k in 0..7 {
            let of_key: Vec<i32> = served.iter().copied().filter(|i| i % 7 == k).collect();
            assert!(of_key.windows(2).all(|w| w[0] < w[1]), "key {k} in order");
        }
        assert_eq!(order.len(), 0);
        assert!(order.queues.is_empty());
    }
}
