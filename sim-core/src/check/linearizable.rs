//! Linearizability checking: Wing and Gong's search with Lowe's just-in-time linearization
//! and a cache of visited (linearized set, state) pairs, as Porcupine does it, applied to
//! each key on its own (P-compositionality: keys are independent objects).
//!
//! An operation whose outcome is unknown (`info`, or never completed) may take effect at
//! any point after its invocation or not at all: it returns at the end of time and its
//! model step always succeeds (a cas that finds another value simply did not apply). The
//! search is bounded by a step budget; past it the verdict is `Unknown`, never a hang.
//! On failure, the failing key's history is cut to its shortest failing prefix and then
//! shrunk one operation at a time, so the report shows a small non-linearizable core.

use std::collections::BTreeMap;

use serde_json::Value;

use super::history::Operation;
use super::OpFunction;
use crate::hash::Hash64;

/// Search steps allowed per key before the verdict is `Unknown`.
pub const STEPS_MAX: u64 = 50_000_000;
/// Cached (linearized set, state) pairs per key before the verdict is `Unknown`.
pub const CACHE_ENTRIES_MAX: usize = 5_000_000;
/// Failing parts larger than this are reported as their shortest failing prefix only.
const SHRINK_OPS_MAX: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Read, write and cas over JSON values; initial value null.
    Register,
    /// Read, write and append over strings; a key never written reads as "".
    Kv,
}

impl Model {
    pub fn parse(name: &str) -> Option<Model> {
        match name {
            "register" => Some(Model::Register),
            "kv" => Some(Model::Kv),
            _ => None,
        }
    }

    fn initial(self) -> Value {
        match self {
            Model::Register => Value::Null,
            Model::Kv => Value::String(String::new()),
        }
    }

    /// The state after `op`, or `None` if `op` cannot take effect on `state`.
    fn step(self, state: &Value, op: &Operation) -> Option<Value> {
        match op.f {
            OpFunction::Read => match &op.output {
                Some(output) if op.completed => {
                    (self.read_value(output) == *state).then(|| state.clone())
                }
                _ => Some(state.clone()),
            },
            OpFunction::Write => Some(op.input.clone()),
            OpFunction::Cas => {
                let pair = op.input.as_array().expect("validated: [expected, new]");
                if *state == pair[0] {
                    Some(pair[1].clone())
                } else if op.completed {
                    None
                } else {
                    Some(state.clone()) // An unknown cas may simply have failed.
                }
            }
            OpFunction::Append => {
                let suffix = op.input.as_str().unwrap_or_default();
                let current = state.as_str().unwrap_or_default();
                Some(Value::String(format!("{current}{suffix}")))
            }
        }
    }

    /// A kv read of null is the never-written key, "".
    fn read_value(self, output: &Value) -> Value {
        match (self, output) {
            (Model::Kv, Value::Null) => Value::String(String::new()),
            _ => output.clone(),
        }
    }

    /// Operations the model cannot express, as an error message.
    pub fn check_supported(self, op: &Operation) -> Result<(), String> {
        match (self, op.f) {
            (Model::Register, OpFunction::Append) => {
                Err("the register model has no append; use --model kv".into())
            }
            (Model::Kv, OpFunction::Cas) => {
                Err("the kv model has no cas; use --model register".into())
            }
            _ => Ok(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Linearizable,
    /// The key that failed and a small set of its operations that is not linearizable.
    NotLinearizable {
        key: Option<String>,
        failing: Vec<Operation>,
    },
    Unknown {
        key: Option<String>,
        reason: String,
    },
}

/// Checks a whole history: each key on its own.
pub fn check(model: Model, operations: &[Operation]) -> Verdict {
    let mut by_key: BTreeMap<Option<String>, Vec<Operation>> = BTreeMap::new();
    for op in operations {
        by_key.entry(op.key.clone()).or_default().push(op.clone());
    }
    for (key, ops) in by_key {
        match search(model, &ops) {
            Search::Linearizable => {}
            Search::NotLinearizable => {
                let failing = shrink(model, ops);
                return Verdict::NotLinearizable { key, failing };
            }
            Search::Unknown(reason) => return Verdict::Unknown { key, reason },
        }
    }
    Verdict::Linearizable
}

#[derive(Debug, PartialEq, Eq)]
enum Search {
    Linearizable,
    NotLinearizable,
    Unknown(String),
}

const NONE: u32 = u32::MAX;

/// Visited (linearized set, state) pairs, bucketed by their faultline-hash64.
type Cache = BTreeMap<u64, Vec<(Box<[u64]>, u32)>>;

/// One call or return in time order, linked so linearized calls can be lifted out.
#[derive(Clone, Copy)]
struct Entry {
    op: u32,
    is_call: bool,
    /// For a call, its return entry.
    partner: u32,
    prev: u32,
    next: u32,
}

fn search(model: Model, ops: &[Operation]) -> Search {
    assert!(
        ops.len() < NONE as usize - 1,
        "too many operations for one key"
    );
    let mut entries = make_entries(ops);
    let head = entries.len() as u32 - 1; // The sentinel is last.
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut states: Vec<Value> = vec![model.initial()];
    let mut state_ids: BTreeMap<String, u32> = BTreeMap::new();
    state_ids.insert(model.initial().to_string(), 0);
    let mut cache: Cache = BTreeMap::new();
    let mut cache_entries = 0usize;
    let mut calls: Vec<(u32, u32)> = Vec::new();
    let mut state = 0u32;
    let mut entry = entries[head as usize].next;
    let mut steps = 0u64;
    while entries[head as usize].next != NONE {
        steps += 1;
        if steps > STEPS_MAX {
            return Search::Unknown(format!("the search took more than {STEPS_MAX} steps"));
        }
        let current = entries[entry as usize];
        if current.is_call {
            let op = &ops[current.op as usize];
            if let Some(next_state) = model.step(&states[state as usize], op) {
                let id = intern(&mut states, &mut state_ids, next_state);
                set_bit(&mut linearized, current.op);
                if remember(&mut cache, &linearized, id) {
                    cache_entries += 1;
                    if cache_entries > CACHE_ENTRIES_MAX {
                        return Search::Unknown(format!(
                            "more than {CACHE_ENTRIES_MAX} states cached"
                        ));
                    }
                    calls.push((entry, state));
                    state = id;
                    lift(&mut entries, entry);
                    entry = entries[head as usize].next;
                    continue;
                }
                clear_bit(&mut linearized, current.op);
            }
            entry = current.next;
        } else {
            // A return whose call is still pending: undo the last choice.
            let Some((call, previous)) = calls.pop() else {
                return Search::NotLinearizable;
            };
            state = previous;
            clear_bit(&mut linearized, entries[call as usize].op);
            unlift(&mut entries, call);
            entry = entries[call as usize].next;
        }
    }
    Search::Linearizable
}

/// Calls and returns sorted by time (a call before a return at the same time, so the two
/// count as concurrent), then a sentinel head linked to the first.
fn make_entries(ops: &[Operation]) -> Vec<Entry> {
    let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(ops.len() * 2);
    for (index, op) in ops.iter().enumerate() {
        events.push((op.invoke_time, true, index as u32));
        events.push((op.return_time, false, index as u32));
    }
    events.sort_by_key(|(time, is_call, op)| (*time, !*is_call, *op));
    let mut entries: Vec<Entry> = events
        .iter()
        .map(|(_, is_call, op)| Entry {
            op: *op,
            is_call: *is_call,
            partner: NONE,
            prev: NONE,
            next: NONE,
        })
        .collect();
    let mut call_of = vec![NONE; ops.len()];
    for (index, entry) in entries.iter().enumerate() {
        if entry.is_call {
            call_of[entry.op as usize] = index as u32;
        }
    }
    for index in 0..entries.len() {
        if !entries[index].is_call {
            let call = call_of[entries[index].op as usize];
            entries[call as usize].partner = index as u32;
        }
    }
    let count = entries.len() as u32;
    for index in 0..count {
        entries[index as usize].prev = if index == 0 { count } else { index - 1 };
        entries[index as usize].next = if index + 1 == count { NONE } else { index + 1 };
    }
    entries.push(Entry {
        op: NONE,
        is_call: false,
        partner: NONE,
        prev: NONE,
        next: if count > 0 { 0 } else { NONE },
    });
    entries
}

fn unlink(entries: &mut [Entry], index: u32) {
    let Entry { prev, next, .. } = entries[index as usize];
    entries[prev as usize].next = next;
    if next != NONE {
        entries[next as usize].prev = prev;
    }
}

fn relink(entries: &mut [Entry], index: u32) {
    let Entry { prev, next, .. } = entries[index as usize];
    entries[prev as usize].next = index;
    if next != NONE {
        entries[next as usize].prev = index;
    }
}

fn lift(entries: &mut [Entry], call: u32) {
    let partner = entries[call as usize].partner;
    unlink(entries, call);
    unlink(entries, partner);
}

fn unlift(entries: &mut [Entry], call: u32) {
    let partner = entries[call as usize].partner;
    relink(entries, partner);
    relink(entries, call);
}

fn set_bit(bits: &mut [u64], op: u32) {
    bits[(op / 64) as usize] |= 1 << (op % 64);
}

fn clear_bit(bits: &mut [u64], op: u32) {
    bits[(op / 64) as usize] &= !(1 << (op % 64));
}

fn intern(states: &mut Vec<Value>, ids: &mut BTreeMap<String, u32>, state: Value) -> u32 {
    let text = state.to_string();
    if let Some(id) = ids.get(&text) {
        return *id;
    }
    states.push(state);
    let id = states.len() as u32 - 1;
    ids.insert(text, id);
    id
}

/// Adds (bits, state) to the cache; false if it was already there.
fn remember(cache: &mut Cache, bits: &[u64], state: u32) -> bool {
    let mut hash = Hash64::new();
    bits.iter().for_each(|word| hash.word(*word));
    hash.word(state as u64);
    let bucket = cache.entry(hash.finish()).or_default();
    if bucket.iter().any(|(b, s)| *s == state && **b == *bits) {
        return false;
    }
    bucket.push((bits.into(), state));
    true
}

/// The shortest failing prefix (operations pending at the cut become unknown), then, when
/// small enough, shrunk by dropping every operation the failure does not need.
fn shrink(model: Model, ops: Vec<Operation>) -> Vec<Operation> {
    let fails = |candidate: &[Operation]| search(model, candidate) == Search::NotLinearizable;
    let prefix = |count: usize| -> Vec<Operation> {
        let cut = ops[count - 1].invoke_time;
        ops[..count]
            .iter()
            .map(|op| {
                let mut op = op.clone();
                if op.return_time > cut {
                    op.return_time = u64::MAX;
                    op.completed = false;
                    op.output = None;
                }
                op
            })
            .collect()
    };
    let (mut low, mut high) = (1, ops.len());
    while low < high {
        let middle = (low + high) / 2;
        if fails(&prefix(middle)) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    let mut failing = if fails(&prefix(high)) {
        prefix(high)
    } else {
        ops.clone()
    };
    if failing.len() <= SHRINK_OPS_MAX {
        let mut index = failing.len();
        while index > 0 {
            index -= 1;
            let mut candidate = failing.clone();
            candidate.remove(index);
            if fails(&candidate) {
                failing = candidate;
            }
        }
    }
    // Report what each operation really did, not its prefix-cut stand-in.
    failing
        .into_iter()
        .map(|op| {
            ops.iter()
                .find(|o| o.line == op.line)
                .cloned()
                .unwrap_or(op)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::history;

    fn verdict(model: Model, text: &str) -> Verdict {
        let ops = history::parse(text).expect("a valid history");
        check(model, &ops)
    }

    #[test]
    fn sequential_register_operations_are_linearizable() {
        let text = r#"{"process":0,"type":"invoke","f":"write","value":1}
{"process":0,"type":"ok","f":"write","value":1}
{"process":0,"type":"invoke","f":"read","value":null}
{"process":0,"type":"ok","f":"read","value":1}
{"process":0,"type":"invoke","f":"cas","value":[1,2]}
{"process":0,"type":"ok","f":"cas","value":[1,2]}
{"process":0,"type":"invoke","f":"read","value":null}
{"process":0,"type":"ok","f":"read","value":2}"#;
        assert_eq!(verdict(Model::Register, text), Verdict::Linearizable);
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_not_linearizable() {
        let text = r#"{"process":0,"type":"invoke","f":"write","value":1}
{"process":0,"type":"ok","f":"write","value":1}
{"process":1,"type":"invoke","f":"read","value":null}
{"process":1,"type":"ok","f":"read","value":null}"#;
        let Verdict::NotLinearizable { failing, .. } = verdict(Model::Register, text) else {
            panic!()
        };
        assert_eq!(
            failing.len(),
            2,
            "the write and the stale read: {failing:?}"
        );
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        let text = r#"{"process":0,"type":"invoke","f":"write","value":1}
{"process":1,"type":"invoke","f":"read","value":null}
{"process":1,"type":"ok","f":"read","value":1}
{"process":0,"type":"ok","f":"write","value":1}
{"process":2,"type":"invoke","f":"read","value":null}
{"process":2,"type":"ok","f":"read","value":1}"#;
        assert_eq!(verdict(Model::Register, text), Verdict::Linearizable);
    }

    #[test]
    fn an_unknown_write_may_take_effect_late_or_never() {
        let late = r#"{"process":0,"type":"invoke","f":"write","value":1}
{"process":0,"type":"info","f":"write","value":1}
{"process":1,"type":"invoke","f":"read","value":null}
{"process":1,"type":"ok","f":"read","value":null}
{"process":1,"type":"invoke","f":"read","value":null}
{"process":1,"type":"ok","f":"read","value":1}"#;
        assert_eq!(verdict(Model::Register, late), Verdict::Linearizable);
        let never = r#"{"process":0,"type":"invoke","f":"write","value":1}
{"process":1,"type":"invoke","f":"read","value":null}
{"process":1,"type":"ok","f":"read","value":null}"#;
        assert_eq!(verdict(Model::Register, never), Verdict::Linearizable);
    }

    #[test]
    fn a_failed_operation_did_not_happen() {
        let text = r#"{"process":0,"type":"invoke","f":"write","value":1}
{"process":0,"type":"fail","f":"write","value":1}
{"process":1,"type":"invoke","f":"read","value":null}
{"process":1,"type":"ok","f":"read","value":1}"#;
        assert!(matches!(
            verdict(Model::Register, text),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn keys_are_independent_and_kv_reads_start_empty() {
        let text = r#"{"process":0,"type":"invoke","f":"append","key":"x","value":"a"}
{"process":0,"type":"ok","f":"append","key":"x","value":"a"}
{"process":1,"type":"invoke","f":"read","key":"y","value":null}
{"process":1,"type":"ok","f":"read","key":"y","value":""}
{"process":1,"type":"invoke","f":"read","key":"x","value":null}
{"process":1,"type":"ok","f":"read","key":"x","value":"a"}"#;
        assert_eq!(verdict(Model::Kv, text), Verdict::Linearizable);
        let lost = text.replace(
            r#""key":"x","value":"a"}
{"process":1,"type":"invoke","f":"read","key":"y""#,
            "X",
        );
        assert_ne!(lost, text);
        let bad = text.replace(
            r#"{"process":1,"type":"ok","f":"read","key":"x","value":"a"}"#,
            r#"{"process":1,"type":"ok","f":"read","key":"x","value":"b"}"#,
        );
        let Verdict::NotLinearizable { key, .. } = verdict(Model::Kv, &bad) else {
            panic!()
        };
        assert_eq!(key.as_deref(), Some("x"));
    }

    #[test]
    fn a_cas_must_see_its_expected_value() {
        let text = r#"{"process":0,"type":"invoke","f":"cas","value":[1,2]}
{"process":0,"type":"ok","f":"cas","value":[1,2]}"#;
        assert!(matches!(
            verdict(Model::Register, text),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn the_failing_part_is_shrunk_to_what_matters() {
        let mut text = String::new();
        for i in 0..30 {
            text.push_str(&format!("{{\"process\":{i},\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k{i}\",\"value\":{i}}}\n"));
            text.push_str(&format!("{{\"process\":{i},\"type\":\"ok\",\"f\":\"write\",\"key\":\"k{i}\",\"value\":{i}}}\n"));
        }
        text.push_str("{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n");
        for p in 1..20 {
            text.push_str(&format!("{{\"process\":{p},\"type\":\"invoke\",\"f\":\"read\",\"value\":null}}\n{{\"process\":{p},\"type\":\"ok\",\"f\":\"read\",\"value\":1}}\n"));
        }
        text.push_str("{\"process\":50,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n{\"process\":50,\"type\":\"ok\",\"f\":\"read\",\"value\":7}\n");
        let Verdict::NotLinearizable { failing, key } = verdict(Model::Register, &text) else {
            panic!()
        };
        assert_eq!(key, None);
        assert_eq!(
            failing.len(),
            1,
            "a read of a never-written 7 fails alone: {failing:?}"
        );
    }
}

#[cfg(test)]
mod failed_operations {
    use super::*;
    use crate::check::history;

    #[test]
    fn failed_operations_are_dropped_whatever_order_they_complete_in() {
        // The cas on line 1 completes (fails) after the one on line 2: dropping by index in
        // completion order once removed the read instead.
        let text = r#"{"process":0,"type":"invoke","f":"cas","value":[5,6]}
{"process":1,"type":"invoke","f":"cas","value":[7,8]}
{"process":2,"type":"invoke","f":"read","value":null}
{"process":1,"type":"fail","f":"cas","value":[7,8]}
{"process":0,"type":"fail","f":"cas","value":[5,6]}
{"process":2,"type":"ok","f":"read","value":3}"#;
        let ops = history::parse(text).unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].f, OpFunction::Read);
        assert!(matches!(
            check(Model::Register, &ops),
            Verdict::NotLinearizable { .. }
        ));
    }
}
