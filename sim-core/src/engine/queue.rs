//! The event queue: a min-heap of 16-byte keys over a slab of events.
//!
//! Ordering is by (time, sequence number), so events at the same virtual time leave in
//! the order they were scheduled. The heap moves only keys (time, and the sequence number
//! packed with the event's slab index); events stay put in the slab, whose slots are
//! reused last-in first-out so the hot ones stay in cache. This keeps the cost per event
//! nearly flat as clusters grow from ten nodes to ten thousand.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Slab slots are addressed with 24 bits, sequence numbers with the other 40.
const SLOT_BITS: u32 = 24;
pub const QUEUE_SLOTS_MAX: u32 = 1 << SLOT_BITS;
const SEQ_MAX: u64 = (1 << (64 - SLOT_BITS)) - 1;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    time_ns: u64,
    /// `seq << SLOT_BITS | slot`: unique, so it orders exactly as `seq` does.
    seq_slot: u64,
}

#[derive(Clone)]
pub struct EventQueue<T> {
    heap: BinaryHeap<Reverse<Key>>,
    slab: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> EventQueue<T> {
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    #[inline]
    pub fn push(&mut self, time_ns: u64, seq: u64, event: T) {
        assert!(seq <= SEQ_MAX, "sequence numbers fit 40 bits");
        let slot = match self.free.pop() {
            Some(slot) => {
                debug_assert!(self.slab[slot as usize].is_none());
                self.slab[slot as usize] = Some(event);
                slot
            }
            None => {
                assert!(
                    (self.slab.len() as u64) < QUEUE_SLOTS_MAX as u64,
                    "queue outgrew its slab"
                );
                self.slab.push(Some(event));
                self.slab.len() as u32 - 1
            }
        };
        self.heap.push(Reverse(Key {
            time_ns,
            seq_slot: seq << SLOT_BITS | slot as u64,
        }));
    }

    /// When the earliest event is due, if any.
    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(key)| key.time_ns)
    }

    /// The earliest event with its time and sequence number.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, u64, T)> {
        let Reverse(key) = self.heap.pop()?;
        let slot = (key.seq_slot & (QUEUE_SLOTS_MAX as u64 - 1)) as u32;
        let event = self.slab[slot as usize]
            .take()
            .expect("a queued key has its event");
        self.free.push(slot);
        Some((key.time_ns, key.seq_slot >> SLOT_BITS, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_schedule_order() {
        let mut queue = EventQueue::default();
        queue.push(20, 0, "late");
        queue.push(10, 1, "first at 10");
        queue.push(10, 2, "second at 10");
        queue.push(5, 3, "earliest");
        let order: Vec<&str> = std::iter::from_fn(|| queue.pop().map(|(_, _, e)| e)).collect();
        assert_eq!(order, ["earliest", "first at 10", "second at 10", "late"]);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn slots_are_reused() {
        let mut queue = EventQueue::default();
        for seq in 0..1_000u64 {
            queue.push(seq, seq, seq);
            assert_eq!(queue.pop(), Some((seq, seq, seq)));
        }
        assert_eq!(
            queue.slab.len(),
            1,
            "one slot serves a queue that never holds two"
        );
    }
}
