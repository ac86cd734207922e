//! Shrinking a failing key's history to what explains the failure: the longest
//! linearizable prefix (a binary search over the history's events), then the smallest
//! subhistory found that still fails, to a fixpoint, never dropping a write a kept read
//! returned. It only calls the search; it never decides a verdict of its own.

use super::{search_bounded, Model, Prefix, Search, States, SHRINK_OPS_MAX, SHRINK_STEPS_MAX};
use crate::check::history::Operation;
use crate::check::OpFunction;

/// Where a search that found a key not linearizable stopped.
pub(super) struct Stuck {
    /// The completion (an index into the key's events in time order) no order got past.
    pub(super) at: usize,
    /// The reads (operation indices) that cut branches, wherever they were invoked.
    pub(super) blamed: Vec<u32>,
}

/// What the search got stuck on (the operations invoked before that completion, with the
/// reads that cut its branches) or, for a key decided without a search, the shortest
/// failing prefix (operations pending at the cut become unknown); then, when small
/// enough, shrunk to a fixpoint by dropping every operation the failure does not
/// need, but never a write a kept read returns (a lone read of a value the history does
/// write would point at the wrong culprit). Returns the failing part and how far the
/// history is linearizable. `stuck`: where the search that decided the key stopped, if
/// one did.
pub(super) fn shrink(
    model: Model,
    ops: Vec<Operation>,
    stuck: Option<Stuck>,
) -> (Vec<Operation>, Option<Prefix>) {
    let budget = std::cell::Cell::new(SHRINK_STEPS_MAX);
    let states = std::cell::RefCell::new(States::new(model));
    // A candidate whose search the remaining budget cannot finish counts as passing, so
    // the shrink keeps what it has and ends quickly.
    let fails = |candidate: &[Operation]| {
        // A read of a value nothing in the candidate could have written: fails, exactly.
        if super::unwritten_read(model, candidate).is_some() {
            return true;
        }
        // Distinct written values: the zones' exact answer, no search.
        if let Some(linearizable) = super::zones::linearizable(model, candidate) {
            return !linearizable;
        }
        let candidate = super::unobserved::without_unobserved(model, candidate);
        let (verdict, steps) =
            search_bounded(&mut states.borrow_mut(), &candidate, budget.get().max(1));
        budget.set(budget.get().saturating_sub(steps));
        verdict == Search::NotLinearizable
    };
    // The history up to its `count`-th event: operations invoked by then, those still
    // running then of unknown outcome.
    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        events.push((op.invoke_time, false, index));
        if op.return_time != u64::MAX {
            events.push((op.return_time, true, index));
        }
    }
    events.sort_unstable();
    let prefix = |count: usize| -> Vec<Operation> {
        let cut = events[count - 1].0;
        ops.iter()
            .filter(|op| op.invoke_time <= cut)
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
    // Events at one time enter together: a prefix ends before the first of them.
    let breaking = |at: usize| {
        let (time, completion, index) = events[at];
        Prefix {
            events: events.partition_point(|e| e.0 < time),
            breaks_at: ops[index].line,
            completion,
        }
    };
    let (mut failing, breaks) = match stuck.filter(|stuck| stuck.at < events.len()) {
        // The search linearized every event before `at` in some order and no order past
        // it (a completion): the operations invoked before it, as they completed, with
        // the reads that cut its branches, fail on their own (the others cannot come
        // before it, nor did they cut anything). Porcupine's "longest linearizable
        // prefix" is this one, and it costs no search.
        Some(Stuck { at, blamed }) => {
            let mut keep = vec![false; ops.len()];
            for &(_, completion, index) in &events[..at] {
                keep[index] |= !completion;
            }
            for read in blamed {
                keep[read as usize] = true;
            }
            let mut flags = keep.into_iter();
            let mut part = ops.clone();
            part.retain(|_| flags.next().expect("one flag per operation"));
            (part, Some(breaking(at)))
        }
        // Decided without a search (the zones, a read nobody wrote): the shortest
        // failing prefix, by a binary search over the events.
        None => {
            let (mut low, mut high) = (1, events.len());
            while low < high {
                let middle = (low + high) / 2;
                if fails(&prefix(middle)) {
                    high = middle;
                } else {
                    low = middle + 1;
                }
            }
            if fails(&prefix(high)) {
                (prefix(high), Some(breaking(high - 1)))
            } else {
                (ops.clone(), None)
            }
        }
    };
    // A read no operation could explain is a failing part on its own, and the clearest.
    if let Some(read) = super::unwritten_read(model, &failing) {
        failing = vec![failing[read].clone()];
    }
    if failing.len() <= SHRINK_OPS_MAX {
        // Drop runs of operations, halving the run length each pass down to one (as delta
        // debugging does): most operations are irrelevant, and a run goes in one search.
        // Then single operations again until a pass drops nothing: a fixpoint.
        let mut run = failing.len().div_ceil(2).max(1);
        loop {
            let mut dropped = false;
            let mut end = failing.len();
            while end > 0 {
                let start = end.saturating_sub(run);
                let mut candidate = failing.clone();
                candidate.drain(start..end);
                if !candidate.is_empty() && explained(model, &candidate, &ops) && fails(&candidate)
                {
                    failing = candidate;
                    dropped = true;
                }
                end = start;
            }
            if run == 1 && !dropped {
                break;
            }
            run = run.div_ceil(2);
        }
    }
    // Report what each operation really did, not its prefix-cut stand-in.
    let failing = failing
        .into_iter()
        .map(|op| {
            ops.iter()
                .find(|o| o.line == op.line)
                .cloned()
                .unwrap_or(op)
        })
        .collect();
    (failing, breaks)
}

/// Whether every read in `candidate` that returned a value some operation of `all`
/// writes (invoked before the read returned) keeps such a writer: otherwise the
/// candidate fails only because the write it read was dropped.
pub(super) fn explained(model: Model, candidate: &[Operation], all: &[Operation]) -> bool {
    let initial = model.initial();
    candidate.iter().all(|read| {
        let Some(value) = read.output.as_ref().filter(|_| read.completed) else {
            return true;
        };
        if read.f != OpFunction::Read || *value == initial {
            return true;
        }
        let writes = |op: &&Operation| {
            op.key == read.key
                && match op.f {
                    OpFunction::Write => op.input == *value,
                    OpFunction::Cas => op.input.get(1) == Some(value),
                    OpFunction::Append => {
                        let (Some(whole), Some(part)) = (value.as_str(), op.input.as_str()) else {
                            return false;
                        };
                        whole.ends_with(part)
                    }
                    _ => false,
                }
        };
        // Only a writer invoked before the read returned can explain it: a later one
        // kept in the part would show a read contradicted by a write it never saw.
        let could_explain = |op: &&Operation| writes(op) && op.invoke_time <= read.return_time;
        !all.iter().any(|op| could_explain(&op)) || candidate.iter().any(|op| could_explain(&op))
    })
}
