//! The checker's memory: the model states of one key interned with every transition
//! computed so far (`States`), an open-addressing table for the hot lookups (`Table`),
//! and the visited (linearized set, state) pairs (`Cache`). Plain data structures: they
//! never decide anything about a history.

use serde_json::Value;

use super::{Model, Operation, NONE};
use crate::hash::Hash64;

/// The model's states, interned, and every transition computed so far: the search asks
/// the same (state, operation) question many times, and a JSON value is slow to build.
pub(super) struct States {
    model: Model,
    pub(super) values: Vec<Value>,
    /// A value's hash -> the newest state with that hash; `same_hash` chains the older.
    ids: Table,
    same_hash: Vec<u32>,
    /// (state << 32 | line << 1 | completed) -> the next state, or `IMPOSSIBLE`. Keyed
    /// by the operation's line, not its index, so the shrinker's candidates share it; an
    /// operation the shrinker made unknown has another key.
    transitions: Table,
}

/// Not `EMPTY`: the transition table stores it as a value.
const IMPOSSIBLE: u32 = u32::MAX - 1;

impl States {
    pub(super) fn new(model: Model) -> States {
        let mut states = States {
            model,
            values: Vec::new(),
            ids: Table::new(),
            same_hash: Vec::new(),
            transitions: Table::new(),
        };
        states.intern(model.initial());
        states
    }

    /// The id of `value`, new or not. Values are found by a hash of their content and
    /// compared only on a hash match: kv states are long strings, and building or
    /// comparing them was most of the search's time.
    fn intern(&mut self, value: Value) -> u32 {
        let mut hash = Hash64::new();
        match &value {
            Value::String(text) => hash.bytes(text.as_bytes()),
            other => hash.bytes(other.to_string().as_bytes()),
        }
        let hash = hash.finish();
        let newest = self.ids.get(hash);
        let mut at = newest.unwrap_or(NONE);
        while at != NONE {
            if self.values[at as usize] == value {
                return at;
            }
            at = self.same_hash[at as usize];
        }
        let id = self.values.len() as u32;
        assert!(id < IMPOSSIBLE, "states fit in u32");
        self.values.push(value);
        self.same_hash.push(newest.unwrap_or(NONE));
        match newest {
            Some(_) => self.ids.replace(hash, id),
            None => self.ids.insert(hash, id),
        }
        id
    }

    pub(super) fn step(&mut self, state: u32, op: u32, ops: &[Operation]) -> Option<u32> {
        let operation = &ops[op as usize];
        debug_assert!(operation.line < 1 << 31, "lines fit in 31 bits");
        let key = (state as u64) << 32 | (operation.line as u64) << 1 | operation.completed as u64;
        let next = match self.transitions.get(key) {
            Some(next) => next,
            None => {
                let value = self.model.step(&self.values[state as usize], operation);
                let next = value.map_or(IMPOSSIBLE, |value| self.intern(value));
                self.transitions.insert(key, next);
                next
            }
        };
        (next != IMPOSSIBLE).then_some(next)
    }
}

/// An open-addressing map from u64 keys to u32 values (linear probing, load at most
/// one half): the search's hot lookups, where a tree's pointer chasing costs most of the
/// time. Lookups only; nothing iterates it, so no order can leak anywhere.
pub(super) struct Table {
    keys: Vec<u64>,
    values: Vec<u32>,
    len: usize,
}

/// A value no entry holds: marks an empty slot.
const EMPTY: u32 = u32::MAX;
const _: () = assert!(IMPOSSIBLE != EMPTY);

impl Table {
    pub(super) fn new() -> Table {
        Table {
            keys: vec![0; 64],
            values: vec![EMPTY; 64],
            len: 0,
        }
    }

    fn slot(&self, key: u64) -> usize {
        // Fibonacci hashing spreads consecutive keys over the table.
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & (self.keys.len() - 1)
    }

    pub(super) fn get(&self, key: u64) -> Option<u32> {
        let mut slot = self.slot(key);
        loop {
            if self.values[slot] == EMPTY {
                return None;
            }
            if self.keys[slot] == key {
                return Some(self.values[slot]);
            }
            slot = (slot + 1) & (self.keys.len() - 1);
        }
    }

    /// Inserts a key that is not there; `value` must not be `EMPTY`.
    pub(super) fn insert(&mut self, key: u64, value: u32) {
        debug_assert!(value != EMPTY);
        if (self.len + 1) * 2 > self.keys.len() {
            self.grow();
        }
        let mut slot = self.slot(key);
        while self.values[slot] != EMPTY {
            debug_assert!(self.keys[slot] != key, "inserted twice");
            slot = (slot + 1) & (self.keys.len() - 1);
        }
        self.keys[slot] = key;
        self.values[slot] = value;
        self.len += 1;
    }

    /// Sets the value of a key that is there.
    fn replace(&mut self, key: u64, value: u32) {
        let mut slot = self.slot(key);
        while self.keys[slot] != key || self.values[slot] == EMPTY {
            assert!(self.values[slot] != EMPTY, "replace a key that is there");
            slot = (slot + 1) & (self.keys.len() - 1);
        }
        self.values[slot] = value;
    }

    fn grow(&mut self) {
        let old = std::mem::replace(
            self,
            Table {
                keys: vec![0; self.keys.len() * 2],
                values: vec![EMPTY; self.keys.len() * 2],
                len: 0,
            },
        );
        for (key, value) in old.keys.into_iter().zip(old.values) {
            if value != EMPTY {
                self.insert(key, value);
            }
        }
    }
}

/// Visited (linearized set, state) pairs: the sets live in one arena, found through a
/// table from a set's hash to the first of its entries, chained by `next`.
pub(super) struct Cache {
    words: usize,
    arena: Vec<u64>,
    /// Per entry: its state and the next entry with the same hash.
    entries: Vec<(u32, u32)>,
    heads: Table,
}

impl Cache {
    pub(super) fn new(words: usize) -> Cache {
        Cache {
            words,
            arena: Vec::new(),
            entries: Vec::new(),
            heads: Table::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds (bits, state); false if it was already there.
    pub(super) fn insert(&mut self, bits: &[u64], state: u32) -> bool {
        debug_assert_eq!(bits.len(), self.words);
        let mut hash = Hash64::new();
        bits.iter().for_each(|word| hash.word(*word));
        hash.word(state as u64);
        let hash = hash.finish();
        let first = self.heads.get(hash);
        let mut at = first.unwrap_or(NONE);
        while at != NONE {
            let (entry_state, next) = self.entries[at as usize];
            let start = at as usize * self.words;
            if entry_state == state && self.arena[start..start + self.words] == *bits {
                return false;
            }
            at = next;
        }
        let index = self.entries.len() as u32;
        assert!(index < NONE, "cache entries fit in u32");
        self.arena.extend_from_slice(bits);
        self.entries.push((state, first.unwrap_or(NONE)));
        match first {
            Some(_) => self.heads.replace(hash, index),
            None => self.heads.insert(hash, index),
        }
        true
    }
}
