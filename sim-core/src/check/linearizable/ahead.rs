//! Pruning for kv keys of reads, writes and appends, by the reads still to come: an
//! append only extends the value and a write resets it, so a state leads nowhere when an
//! ok read not yet linearized returned a value that extends neither the state nor the
//! value of a write not yet linearized. Owns, per state, the set of reads its value is a
//! prefix of; it never decides a verdict, it only cuts branches the search would explore
//! and abandon (a 50-client history's appends tried in every order).

use serde_json::Value;

use super::store::{States, Table};
use super::{is_set, Operation};
use crate::check::OpFunction;

/// Reads a key may have for the per-state prefix sets to be kept (at most 128 bytes for
/// each state the search reaches, and states are bounded by the budget); beyond it the
/// prefixes are compared whenever asked.
const SETS_READS_MAX: usize = 1_024;
/// Reads times writes a key may have for the pruning (finding which writes each read
/// extends compares every pair once).
const PAIRS_MAX: usize = 16_000_000;

pub(super) struct Ahead {
    /// The ok reads of a string value, as operation indices; a read's ordinal is its
    /// place here.
    reads: Vec<u32>,
    /// Per operation: for a write, the ordinals of the reads that extend its value.
    readers: Vec<Vec<u32>>,
    /// Per read ordinal: its writes (those it extends) not yet linearized.
    sources: Vec<u32>,
    /// Words of a per-state read set, or 0 when the sets are not kept.
    words: usize,
    /// State id -> slot in `sets` (a map, not a vector by id: the shrinker's many
    /// searches share one `States`). A slot holds the reads the state's value is a
    /// prefix of, `words` long.
    slots: Table,
    sets: Vec<u64>,
    /// Per read ordinal: whether the read cut a branch. A search that fails was stopped
    /// by these reads too, though they may be invoked after where it stopped.
    blamed: Vec<bool>,
}

impl Ahead {
    /// The pruning for a key of reads, writes and appends (at least one), or `None`.
    pub(super) fn new(ops: &[Operation]) -> Option<Ahead> {
        let kv = ops.iter().all(|op| match op.f {
            OpFunction::Append | OpFunction::Read => true,
            OpFunction::Write => op.input.is_string(),
            _ => false,
        });
        if !kv || !ops.iter().any(|op| op.f == OpFunction::Append) {
            return None;
        }
        let reads: Vec<u32> = (0..ops.len() as u32)
            .filter(|&i| {
                let op = &ops[i as usize];
                op.f == OpFunction::Read && op.completed && returned(op).is_some()
            })
            .collect();
        let writes = ops.iter().filter(|op| op.f == OpFunction::Write).count();
        if reads.len().saturating_mul(writes) > PAIRS_MAX {
            return None;
        }
        let mut readers = vec![Vec::new(); ops.len()];
        let mut sources = vec![0u32; reads.len()];
        for (index, op) in ops.iter().enumerate() {
            let Some(written) = op.input.as_str().filter(|_| op.f == OpFunction::Write) else {
                continue;
            };
            for (ordinal, &read) in reads.iter().enumerate() {
                if returned(&ops[read as usize]).is_some_and(|value| value.starts_with(written)) {
                    readers[index].push(ordinal as u32);
                    sources[ordinal] += 1;
                }
            }
        }
        let words = if reads.len() <= SETS_READS_MAX {
            reads.len().div_ceil(64).max(1)
        } else {
            0
        };
        Some(Ahead {
            readers,
            sources,
            words,
            slots: Table::new(),
            sets: Vec::new(),
            blamed: vec![false; reads.len()],
            reads,
        })
    }

    /// Whether `op`, taking `state` to `next`, leaves every read not yet linearized (other
    /// than `op`) a way to return its value.
    pub(super) fn allows(
        &mut self,
        states: &States,
        ops: &[Operation],
        linearized: &[u64],
        state: u32,
        op: u32,
        next: u32,
    ) -> bool {
        let operation = &ops[op as usize];
        if operation.f == OpFunction::Read {
            return true; // The state stays; the reads still to come are those it allowed.
        }
        let written = operation.f == OpFunction::Write;
        if self.words > 0 {
            self.learn(states, ops, state, op, next);
        }
        let value = states.values[next as usize].as_str().unwrap_or_default();
        let blocking = (0..self.reads.len()).find(|&ordinal| {
            let read = self.reads[ordinal];
            if read == op || is_set(linearized, read) {
                return false;
            }
            let extends = if self.words > 0 {
                is_set(self.set(next).expect("learned above"), ordinal as u32)
            } else {
                returned(&ops[read as usize]).is_some_and(|r| r.starts_with(value))
            };
            // A write this step takes is no longer to come.
            let own = written && self.readers[op as usize].contains(&(ordinal as u32));
            !extends && self.sources[ordinal] <= own as u32
        });
        if let Some(ordinal) = blocking {
            self.blamed[ordinal] = true;
        }
        blocking.is_none()
    }

    /// The reads (operation indices) that cut a branch.
    pub(super) fn blamed(&self) -> impl Iterator<Item = u32> + '_ {
        (self.reads.iter().zip(&self.blamed)).filter_map(|(&read, &blamed)| blamed.then_some(read))
    }

    /// `op` was linearized: a write is no longer to come.
    pub(super) fn take(&mut self, op: u32) {
        for &ordinal in &self.readers[op as usize] {
            self.sources[ordinal as usize] -= 1;
        }
    }

    /// `op` was undone: a write is to come again.
    pub(super) fn untake(&mut self, op: u32) {
        for &ordinal in &self.readers[op as usize] {
            self.sources[ordinal as usize] += 1;
        }
    }

    /// Makes `next`'s prefix set known: from `state`'s by comparing only the appended
    /// text when `op` appends (a read extends `state` + text iff it extends `state` and
    /// goes on with the text), from scratch otherwise.
    fn learn(&mut self, states: &States, ops: &[Operation], state: u32, op: u32, next: u32) {
        if self.set(next).is_some() {
            return;
        }
        let operation = &ops[op as usize];
        let from = self
            .set(state)
            .filter(|_| operation.f == OpFunction::Append);
        let set = if let Some(from) = from {
            let current = states.values[state as usize].as_str().unwrap_or_default();
            let appended = operation.input.as_str().unwrap_or_default().as_bytes();
            let range = current.len()..current.len() + appended.len();
            let mut set = vec![0u64; self.words];
            for ordinal in ones(from) {
                let read = returned(&ops[self.reads[ordinal as usize] as usize]);
                if read.is_some_and(|r| r.as_bytes().get(range.clone()) == Some(appended)) {
                    set[ordinal as usize / 64] |= 1 << (ordinal % 64);
                }
            }
            set
        } else {
            self.prefix_set(ops, states.values[next as usize].as_str())
        };
        debug_assert_eq!(
            set,
            self.prefix_set(ops, states.values[next as usize].as_str())
        );
        let slot = self.sets.len() / self.words;
        self.slots.insert(next as u64, slot as u32);
        self.sets.extend_from_slice(&set);
    }

    /// `state`'s prefix set, if learned.
    fn set(&self, state: u32) -> Option<&[u64]> {
        let start = self.slots.get(state as u64)? as usize * self.words;
        Some(&self.sets[start..start + self.words])
    }

    /// The reads `value` is a prefix of, compared whole.
    fn prefix_set(&self, ops: &[Operation], value: Option<&str>) -> Vec<u64> {
        let value = value.unwrap_or_default();
        let mut set = vec![0u64; self.words];
        for (ordinal, &read) in self.reads.iter().enumerate() {
            if returned(&ops[read as usize]).is_some_and(|r| r.starts_with(value)) {
                set[ordinal / 64] |= 1 << (ordinal % 64);
            }
        }
        set
    }
}

/// The string an ok read returned.
fn returned(op: &Operation) -> Option<&str> {
    op.output.as_ref().and_then(Value::as_str)
}

/// The positions of the set bits.
fn ones(words: &[u64]) -> impl Iterator<Item = u32> + '_ {
    words.iter().enumerate().flat_map(|(index, &word)| {
        let mut rest = word;
        std::iter::from_fn(move || {
            (rest != 0).then(|| {
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                index as u32 * 64 + bit
            })
        })
    })
}
