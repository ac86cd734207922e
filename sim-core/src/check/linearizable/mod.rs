//! Linearizability checking: Wing and Gong's search with Lowe's just-in-time linearization
//! and a cache of visited (linearized set, state) pairs, as Porcupine does it, applied to
//! each key on its own (P-compositionality: keys are independent objects).
//!
//! An operation whose outcome is unknown (`info`, or never completed) may take effect at
//! any point after its invocation or not at all: it returns at the end of time and its
//! model step always succeeds (a cas that finds another value simply did not apply). The
//! search is bounded by a step budget; past it the verdict is `Unknown`, never a hang.
//! A key read and written with distinct values is decided by Gibbons and Korach's zones
//! in O(n log n) (`zones.rs`); the search decides the rest.
//! A kv key of appends is also cut by the reads still to come (`ahead.rs`), and unknown
//! operations nothing observed are dropped first (`unobserved.rs`).
//! On failure, `shrink` starts from where the search got stuck (or, for a key decided
//! without a search, from its shortest failing prefix) and shrinks it to a small core that
//! still fails, with the writes its reads contradict.

mod ahead;
mod shrink;
mod store;
mod unobserved;
mod zones;

use std::collections::BTreeMap;

use serde_json::Value;

use super::history::Operation;
use super::OpFunction;
use ahead::Ahead;
use store::{Cache, States};

/// Search steps allowed per key before the verdict is `Unknown`.
pub const STEPS_MAX: u64 = 50_000_000;
/// Cached (linearized set, state) pairs per key before the verdict is `Unknown`.
pub const CACHE_ENTRIES_MAX: usize = 4_000_000;
/// Distinct model states per key (kv appends make a new string each) before `Unknown`.
pub const STATES_MAX: usize = 1_000_000;
/// How far the search may go on one key; `--budget N` gives N times the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub steps: u64,
    pub cache_entries: usize,
    pub states: usize,
}

/// The largest multiple of the default budget `--budget` takes (memory grows with it).
pub const BUDGET_TIMES_MAX: u32 = 1_000;

impl Default for Budget {
    fn default() -> Self {
        Budget {
            steps: STEPS_MAX,
            cache_entries: CACHE_ENTRIES_MAX,
            states: STATES_MAX,
        }
    }
}

impl Budget {
    /// `times` the default budget (1..=`BUDGET_TIMES_MAX`).
    pub fn times(times: u32) -> Budget {
        assert!((1..=BUDGET_TIMES_MAX).contains(&times));
        let base = Budget::default();
        Budget {
            steps: base.steps * times as u64,
            cache_entries: base.cache_entries * times as usize,
            states: base.states * times as usize,
        }
    }
}

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
                Some(output) if op.completed => (output == state).then(|| state.clone()),
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
            // Refused by `check_supported` before any search.
            OpFunction::Transfer => None,
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
            (_, OpFunction::Transfer) => {
                Err("a transfer belongs to a bank history; use --model bank".into())
            }
            // The kv model holds strings: anything else would be given a made-up meaning.
            (Model::Kv, OpFunction::Write) if !op.input.is_string() => Err(format!(
                "a kv write takes a string `value`, not {}",
                op.input
            )),
            (Model::Kv, OpFunction::Read) if op.output.as_ref().is_some_and(|v| !v.is_string()) => {
                Err(format!(
                    "a kv read returns a string (a key never written reads as \"\"), not {}",
                    op.output.as_ref().expect("checked")
                ))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Linearizable,
    /// The key that failed; the smallest subhistory found that is itself not
    /// linearizable, with the writes its reads contradict; and how far the key's history
    /// is linearizable.
    NotLinearizable {
        key: Option<String>,
        failing: Vec<Operation>,
        prefix: Option<Prefix>,
    },
    Unknown {
        key: Option<String>,
        reason: String,
    },
}

/// How far a failing key's history linearizes, as Porcupine's partial linearizations
/// show it: its first `events` invocations and completions (in time order) can be
/// linearized, and no linearization of the key's whole history gets past the next event,
/// the invocation (or, when `completion`, the completion) of the operation invoked on
/// line `breaks_at`. (Reads still to come count: an append that every later read
/// contradicts breaks it at its own completion.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub events: usize,
    pub breaks_at: u32,
    pub completion: bool,
}

/// Checks a whole history: each key on its own.
///
/// Keys are searched in rounds with a growing step budget (the first round's budget, then
/// four times more each round; each round resumes the searches where they stopped), and a
/// key that fails ends the check. One hard but linearizable key therefore cannot hide an
/// easy failure in another: the answer costs about what the easiest failing key costs, as
/// when Porcupine checks partitions in parallel and stops at the first failure.
pub fn check(model: Model, operations: &[Operation]) -> Verdict {
    check_with(model, operations, &|jobs: &mut [KeySearch], budget: u64| {
        jobs.iter_mut().for_each(|job| job.run(budget))
    })
}

/// `check` by the plain search alone, without the zones for distinct-value registers or
/// the prefix cut for append-only keys: what tests compare those shortcuts with.
pub fn check_by_search(model: Model, operations: &[Operation]) -> Verdict {
    let round =
        |jobs: &mut [KeySearch], budget: u64| jobs.iter_mut().for_each(|job| job.run(budget));
    check_keys(model, operations, &round, false, Budget::default())
}

/// `check_with` under another budget (`faultline check --budget N`).
pub fn check_with_budget(
    model: Model,
    operations: &[Operation],
    round: &dyn Fn(&mut [KeySearch], u64),
    budget: Budget,
) -> Verdict {
    check_keys(model, operations, round, true, budget)
}

/// `check`, with each round's searches run by `round` (which must call `run(budget)` on
/// every job, in any order or in parallel: the CLI spreads them over its cores). Results
/// are read in key order after the round, so the verdict is the same either way.
pub fn check_with(
    model: Model,
    operations: &[Operation],
    round: &dyn Fn(&mut [KeySearch], u64),
) -> Verdict {
    check_keys(model, operations, round, true, Budget::default())
}

fn check_keys(
    model: Model,
    operations: &[Operation],
    round: &dyn Fn(&mut [KeySearch], u64),
    zones: bool,
    limits: Budget,
) -> Verdict {
    // Operations by key, as indices: a key's own copy is made only while it is searched.
    let mut by_key: BTreeMap<Option<&str>, Vec<u32>> = BTreeMap::new();
    for (index, op) in operations.iter().enumerate() {
        by_key
            .entry(op.key.as_deref())
            .or_default()
            .push(index as u32);
    }
    let job = |key: Option<&str>, indices: &[u32]| {
        let mut ops: Vec<Operation> = indices
            .iter()
            .map(|i| operations[*i as usize].clone())
            .collect();
        // A canonical order, so the search (its ties, its budget) does not depend on how
        // the file ordered lines of equal times.
        ops.sort_by_key(|op| (op.invoke_time, op.return_time, op.process, op.line));
        if zones {
            ops = unobserved::without_unobserved(model, &ops);
        }
        // Distinct written values: the zones decide without a search.
        let shortcut = if zones {
            unwritten_read(model, &ops)
                .map(|_| false)
                .or_else(|| zones::linearizable(model, &ops))
        } else {
            None
        };
        KeySearch {
            shortcut,
            search: Searcher::new(&ops, limits, zones),
            states: States::new(model),
            key: key.map(str::to_string),
            ops,
            outcome: None,
        }
    };
    let mut undecided: Option<(Option<String>, String)> = None;
    // The first round goes a batch of keys at a time, so memory holds one batch of
    // searches (a million one-operation keys need no million searchers at once); only
    // the keys it leaves undecided stay for the later rounds.
    let mut pending: Vec<KeySearch> = Vec::new();
    let keys: Vec<(Option<&str>, Vec<u32>)> = by_key.into_iter().collect();
    for batch in keys.chunks(KEYS_PER_BATCH) {
        let mut jobs: Vec<KeySearch> = batch.iter().map(|(k, i)| job(*k, i)).collect();
        round(&mut jobs, ROUND_STEPS_FIRST);
        let first = ROUND_STEPS_FIRST.min(limits.steps);
        if let Some(verdict) = settle(model, jobs, first, limits, &mut pending, &mut undecided) {
            return verdict;
        }
    }
    drop(keys);
    let mut budget = ROUND_STEPS_FIRST.saturating_mul(4).min(limits.steps);
    while !pending.is_empty() {
        round(&mut pending, budget);
        let jobs = std::mem::take(&mut pending);
        if let Some(verdict) = settle(model, jobs, budget, limits, &mut pending, &mut undecided) {
            return verdict;
        }
        budget = budget.saturating_mul(4).min(limits.steps);
    }
    match undecided {
        Some((key, reason)) => Verdict::Unknown { key, reason },
        None => Verdict::Linearizable,
    }
}

/// An `ok` read of a value no operation of the key could have left there (not the
/// initial value, not written, not a cas's new value), if any: the key is then not
/// linearizable, whatever the order, and the search need not look for one (a read of a
/// value nobody wrote among 100 concurrent operations once ran out of states). Keys with
/// appends are left to the search: their values are not a finite list.
pub(super) fn unwritten_read(model: Model, ops: &[Operation]) -> Option<usize> {
    if ops.iter().any(|op| op.f == OpFunction::Append) {
        return None;
    }
    // Keyed by their text, as the zones key values: a set, so a key of many reads and
    // many writes costs n log n, not reads times writes.
    let mut possible = std::collections::BTreeSet::from([model.initial().to_string()]);
    for op in ops {
        match op.f {
            OpFunction::Write => possible.insert(op.input.to_string()),
            OpFunction::Cas => {
                let pair = op.input.as_array().expect("validated: [expected, new]");
                possible.insert(pair[1].to_string())
            }
            _ => false,
        };
    }
    ops.iter().position(|op| {
        op.f == OpFunction::Read
            && op.completed
            && op
                .output
                .as_ref()
                .is_some_and(|value| !possible.contains(&value.to_string()))
    })
}

/// Keys whose searches the first round creates and runs at once.
const KEYS_PER_BATCH: usize = 4_096;

/// Reads a round's results in key order: a failing key ends the check (its verdict), an
/// unfinished one goes on to the next round, an undecidable one is remembered.
fn settle(
    model: Model,
    jobs: Vec<KeySearch>,
    budget: u64,
    limits: Budget,
    next_round: &mut Vec<KeySearch>,
    undecided: &mut Option<(Option<String>, String)>,
) -> Option<Verdict> {
    for job in jobs {
        match job.outcome.clone().expect("every job ran this round") {
            Search::Linearizable => {}
            Search::NotLinearizable => {
                let stuck = job.shortcut.is_none().then(|| shrink::Stuck {
                    at: job.search.furthest as usize,
                    blamed: job.search.ahead.iter().flat_map(Ahead::blamed).collect(),
                });
                let (failing, prefix) = shrink::shrink(model, job.ops, stuck);
                return Some(Verdict::NotLinearizable {
                    key: job.key,
                    failing,
                    prefix,
                });
            }
            Search::OutOfSteps if budget < limits.steps => next_round.push(job),
            Search::OutOfSteps => {
                let reason = format!(
                    "the search took more than {} steps (--budget raises it)",
                    limits.steps
                );
                undecided.get_or_insert((job.key, reason));
            }
            Search::Unknown(reason) => {
                undecided.get_or_insert((job.key, reason));
            }
        }
    }
    None
}

/// One key's search across the rounds of `check_with`.
pub struct KeySearch {
    /// The zones' verdict, when they apply: nothing to search.
    shortcut: Option<bool>,
    key: Option<String>,
    ops: Vec<Operation>,
    states: States,
    search: Searcher,
    outcome: Option<Search>,
}

impl KeySearch {
    /// Searches on until `budget` steps in all, or a verdict.
    pub fn run(&mut self, budget: u64) {
        if let Some(linearizable) = self.shortcut {
            self.outcome = Some(if linearizable {
                Search::Linearizable
            } else {
                Search::NotLinearizable
            });
            return;
        }
        self.outcome = Some(self.search.run(&mut self.states, &self.ops, budget));
    }
}

/// The first round's step budget per key (see `check`).
const ROUND_STEPS_FIRST: u64 = 20_000;
const _: () = assert!(ROUND_STEPS_FIRST <= STEPS_MAX);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Search {
    Linearizable,
    NotLinearizable,
    /// Out of steps: a larger budget may decide it.
    OutOfSteps,
    /// Out of memory (cache or states): no budget decides it.
    Unknown(String),
}

const NONE: u32 = u32::MAX;

/// Search steps the shrinker may spend in all, beyond the first search: a failure is
/// reported quickly even when its history is large (the shrink stops where it is).
const SHRINK_STEPS_MAX: u64 = 1_000_000;

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

/// The search with a step budget; also returns the steps it took. `states` may come from
/// an earlier search of the same key (the shrinker's), whose transitions it reuses.
fn search_bounded(states: &mut States, ops: &[Operation], steps_max: u64) -> (Search, u64) {
    let mut search = Searcher::new(ops, Budget::default(), true);
    let verdict = search.run(states, ops, steps_max);
    (verdict, search.steps)
}

/// One key's search, resumable: `run` goes on from where the last call stopped, so the
/// rounds of `check` cost no more than one long search.
struct Searcher {
    limits: Budget,
    /// For a key of reads, writes and appends: what the reads still to come allow.
    ahead: Option<Ahead>,
    entries: Vec<Entry>,
    head: u32,
    linearized: Vec<u64>,
    cache: Cache,
    calls: Vec<(u32, u32)>,
    state: u32,
    entry: u32,
    steps: u64,
    /// The furthest return the search was stopped at (an index into `entries`): some
    /// order linearizes every event before it and none gets past it, so the shrinker
    /// takes its failing part and the reported prefix from there.
    furthest: u32,
}

impl Searcher {
    /// `shortcuts`: cut append-only keys' states that no read still to come extends.
    fn new(ops: &[Operation], limits: Budget, shortcuts: bool) -> Searcher {
        assert!(
            ops.len() < NONE as usize - 1,
            "too many operations for one key"
        );
        let entries = make_entries(ops);
        let head = entries.len() as u32 - 1; // The sentinel is last.
        let words = ops.len().div_ceil(64);
        let ahead = if shortcuts { Ahead::new(ops) } else { None };
        Searcher {
            limits,
            ahead,
            entry: entries[head as usize].next,
            entries,
            head,
            linearized: vec![0u64; words],
            cache: Cache::new(words),
            calls: Vec::new(),
            state: 0,
            steps: 0,
            furthest: 0,
        }
    }

    /// Searches until a verdict or until `steps_max` steps in all (this call's and the
    /// earlier ones'); `OutOfSteps` can be resumed with a larger budget.
    fn run(&mut self, states: &mut States, ops: &[Operation], steps_max: u64) -> Search {
        let head = self.head as usize;
        let entries = &mut self.entries;
        while entries[head].next != NONE {
            if self.steps >= steps_max {
                return Search::OutOfSteps;
            }
            self.steps += 1;
            let current = entries[self.entry as usize];
            if current.is_call {
                if states.values.len() > self.limits.states {
                    return Search::Unknown(format!(
                        "more than {} model states cached (--budget raises it)",
                        self.limits.states
                    ));
                }
                let (state, linearized) = (self.state, &self.linearized);
                let next = states.step(state, current.op, ops).filter(|&next| {
                    self.ahead.as_mut().is_none_or(|ahead| {
                        ahead.allows(states, ops, linearized, state, current.op, next)
                    })
                });
                if let Some(next_state) = next {
                    set_bit(&mut self.linearized, current.op);
                    if self.cache.insert(&self.linearized, next_state) {
                        if self.cache.len() > self.limits.cache_entries {
                            let reason = format!(
                                "more than {} states cached (--budget raises it)",
                                self.limits.cache_entries
                            );
                            return Search::Unknown(reason);
                        }
                        if let Some(ahead) = &mut self.ahead {
                            ahead.take(current.op);
                        }
                        self.calls.push((self.entry, self.state));
                        self.state = next_state;
                        lift(entries, self.entry);
                        self.entry = entries[head].next;
                        continue;
                    }
                    clear_bit(&mut self.linearized, current.op);
                }
                self.entry = current.next;
            } else {
                // A return whose call is still pending: undo the last choice.
                self.furthest = self.furthest.max(self.entry);
                let Some((call, previous)) = self.calls.pop() else {
                    return Search::NotLinearizable;
                };
                self.state = previous;
                let undone = entries[call as usize].op;
                clear_bit(&mut self.linearized, undone);
                if let Some(ahead) = &mut self.ahead {
                    ahead.untake(undone);
                }
                unlift(entries, call);
                self.entry = entries[call as usize].next;
            }
        }
        Search::Linearizable
    }
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

fn is_set(bits: &[u64], op: u32) -> bool {
    bits[(op / 64) as usize] >> (op % 64) & 1 == 1
}

fn set_bit(bits: &mut [u64], op: u32) {
    bits[(op / 64) as usize] |= 1 << (op % 64);
}

fn clear_bit(bits: &mut [u64], op: u32) {
    bits[(op / 64) as usize] &= !(1 << (op % 64));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::history;

    /// The failing part keeps the writes a read contradicts (write 1, write 2, read 1 is
    /// not shown as a lone read of 1, which the history does write), and the longest
    /// linearizable prefix ends where the read completes.
    #[test]
    fn the_failing_part_keeps_the_writes_its_read_contradicts() {
        let text = r#"{"process":0,"type":"invoke","f":"write","value":1}
{"process":0,"type":"ok","f":"write","value":1}
{"process":0,"type":"invoke","f":"write","value":2}
{"process":0,"type":"ok","f":"write","value":2}
{"process":1,"type":"invoke","f":"read","value":null}
{"process":1,"type":"ok","f":"read","value":1}"#;
        let Verdict::NotLinearizable {
            failing, prefix, ..
        } = verdict(Model::Register, text)
        else {
            panic!()
        };
        let lines: Vec<u32> = failing.iter().map(|op| op.line).collect();
        assert_eq!(lines, [1, 3, 5]);
        assert_eq!(
            prefix,
            Some(Prefix {
                events: 5,
                breaks_at: 5,
                completion: true
            })
        );
        // Every failing part found is itself not linearizable and explains its reads.
        let ops = history::parse(text).unwrap();
        let mut states = States::new(Model::Register);
        let (search, _) = search_bounded(&mut states, &failing, 1_000_000);
        assert_eq!(search, Search::NotLinearizable);
        assert!(shrink::explained(Model::Register, &failing, &ops));
    }

    /// A read of a value nobody wrote decides the key; a value an unknown (`info`) write
    /// or cas may have left is no such read, and a failed write's value is (it never ran).
    #[test]
    fn a_read_of_a_value_nobody_could_have_written_is_found_without_a_search() {
        let read = |value: &str| {
            format!(
                "{{\"process\":9,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}}\n\
                 {{\"process\":9,\"type\":\"ok\",\"f\":\"read\",\"value\":{value}}}"
            )
        };
        let unknown = r#"{"process":0,"type":"invoke","f":"cas","value":[null,7]}
{"process":0,"type":"info","f":"cas","value":[null,7]}"#;
        let failed = r#"{"process":1,"type":"invoke","f":"write","value":8}
{"process":1,"type":"fail","f":"write","value":8}"#;
        let found = |text: String| unwritten_read(Model::Register, &history::parse(&text).unwrap());
        assert_eq!(found(format!("{unknown}\n{}", read("7"))), None);
        assert_eq!(found(format!("{unknown}\n{}", read("null"))), None);
        assert_eq!(found(format!("{failed}\n{}", read("8"))), Some(0));
        // Values compare as numbers: `1.00` written is `1` read.
        let written = r#"{"process":2,"type":"invoke","f":"write","value":1.00}
{"process":2,"type":"ok","f":"write","value":1.00}"#;
        assert_eq!(found(format!("{written}\n{}", read("1"))), None);
        let text = format!("{failed}\n{}", read("8"));
        assert!(matches!(
            verdict(Model::Register, &text),
            Verdict::NotLinearizable { .. }
        ));
    }

    /// The kv model holds strings: a write of a number or a read of null would be given a
    /// made-up meaning, so each is an error naming the operation.
    #[test]
    fn the_kv_model_refuses_what_is_not_a_string() {
        let supported = |text: &str| -> Result<(), String> {
            let ops = history::parse(text).expect("a valid history");
            ops.iter().try_for_each(|op| Model::Kv.check_supported(op))
        };
        let write = r#"{"process":0,"type":"invoke","f":"write","key":"x","value":5}"#;
        assert!(supported(write)
            .unwrap_err()
            .contains("a kv write takes a string"));
        let read = [
            r#"{"process":0,"type":"invoke","f":"read","key":"x","value":null}"#,
            r#"{"process":0,"type":"ok","f":"read","key":"x","value":null}"#,
        ]
        .join("\n");
        assert!(supported(&read).unwrap_err().contains("not null"));
        let fine = [
            r#"{"process":0,"type":"invoke","f":"read","key":"x","value":null}"#,
            r#"{"process":0,"type":"ok","f":"read","key":"x","value":""}"#,
        ]
        .join("\n");
        assert_eq!(supported(&fine), Ok(()));
        // The register model takes any JSON value.
        let ops = history::parse(write).unwrap();
        assert_eq!(Model::Register.check_supported(&ops[0]), Ok(()));
    }

    fn verdict(model: Model, text: &str) -> Verdict {
        let ops = history::parse(text).expect("a valid history");
        check(model, &ops)
    }

    #[test]
    fn a_hard_key_does_not_hide_a_failing_one() {
        // Key "a": ten concurrent appends and a write, then a read no order of them
        // explains (it ends with a letter nobody appends); its search would need
        // millions of states: until the write is taken, the read extends it whatever
        // the appends did, so no order of them is cut. Key "b": a plain stale read.
        let mut lines = Vec::new();
        lines.push(r#"{"process":12,"type":"invoke","f":"write","key":"a","value":"w"}"#.into());
        let letters = "abcdefghij";
        for (process, letter) in letters.chars().enumerate() {
            lines.push(format!(
                r#"{{"process":{process},"type":"invoke","f":"append","key":"a","value":"{letter}"}}"#
            ));
        }
        for (process, letter) in letters.chars().enumerate() {
            lines.push(format!(
                r#"{{"process":{process},"type":"ok","f":"append","key":"a","value":"{letter}"}}"#
            ));
        }
        lines.push(r#"{"process":12,"type":"ok","f":"write","key":"a","value":"w"}"#.into());
        lines.push(r#"{"process":10,"type":"invoke","f":"read","key":"a","value":null}"#.into());
        lines.push(
            r#"{"process":10,"type":"ok","f":"read","key":"a","value":"wabcdefghijk"}"#.into(),
        );
        lines.push(r#"{"process":11,"type":"invoke","f":"write","key":"b","value":"1"}"#.into());
        lines.push(r#"{"process":11,"type":"ok","f":"write","key":"b","value":"1"}"#.into());
        lines.push(r#"{"process":11,"type":"invoke","f":"read","key":"b","value":null}"#.into());
        lines.push(r#"{"process":11,"type":"ok","f":"read","key":"b","value":"2"}"#.into());
        let Verdict::NotLinearizable { key, .. } = verdict(Model::Kv, &lines.join("\n")) else {
            panic!("the failing key decides")
        };
        assert_eq!(key.as_deref(), Some("b"));
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
        let Verdict::NotLinearizable { failing, key, .. } = verdict(Model::Register, &text) else {
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
