//! Seeded generators of concurrent register histories, for tests and benchmarks of the
//! checker: processes run overlapping reads, writes and cas on a few keys; each operation
//! takes effect at a random instant inside its interval (so the history is linearizable by
//! construction), and a crashed client leaves an operation that may or may not have taken
//! effect, never completed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::{HistoryEvent, OpFunction, OpType};

#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub operations: u32,
    pub processes: u32,
    pub keys: u32,
    /// Chance, in parts per million, that an operation's client crashes mid-operation.
    pub crash_ppm: u32,
}

/// A linearizable history of `shape`, as the lines of a history file would hold it.
pub fn linearizable(seed: u64, shape: Shape) -> Vec<HistoryEvent> {
    assert!(shape.processes > 0 && shape.keys > 0);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // (time, order, event): an operation's effect is applied at its linearization point.
    let mut timeline: Vec<(u64, u8, u32, HistoryEvent)> = Vec::new();
    let mut free_at = vec![0u64; shape.processes as usize];
    let mut next_process = shape.processes as u64;
    let mut process_ids: Vec<u64> = (0..shape.processes as u64).collect();
    let mut planned = Vec::new();
    for index in 0..shape.operations {
        let slot = rng.random_range(0..shape.processes) as usize;
        let invoke = free_at[slot] + 1 + rng.random_range(0..50); // Strictly after its last op.
        let effect = invoke + rng.random_range(1..100);
        let complete = effect + rng.random_range(1..100);
        free_at[slot] = complete;
        let key = format!("k{}", rng.random_range(0..shape.keys));
        let f = match rng.random_range(0..3u32) {
            0 => OpFunction::Read,
            1 => OpFunction::Write,
            _ => OpFunction::Cas,
        };
        let crashed = rng.random_range(0..1_000_000u32) < shape.crash_ppm;
        let takes_effect = !crashed || rng.random_bool(0.5);
        let process = process_ids[slot];
        if crashed {
            // A crashed client's process is never reused: a new one takes its place.
            process_ids[slot] = next_process;
            next_process += 1;
        }
        let argument = rng.random_range(0..5u64);
        let expected = rng.random_range(0..5u64);
        planned.push((
            index,
            process,
            key,
            f,
            invoke,
            effect,
            complete,
            crashed,
            takes_effect,
            argument,
            expected,
        ));
    }
    // Apply effects in time order to learn what reads return and whether cas succeeds.
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| (planned[i].5, i));
    let mut state: std::collections::BTreeMap<String, Value> = Default::default();
    let mut outcome: Vec<(Value, bool)> = vec![(Value::Null, true); planned.len()];
    for i in order {
        let (_, _, key, f, .., takes_effect, argument, expected) = &planned[i];
        let current = state.get(key).cloned().unwrap_or(Value::Null);
        if !takes_effect {
            continue;
        }
        outcome[i] = match f {
            OpFunction::Read => (current, true),
            OpFunction::Write => {
                state.insert(key.clone(), json!(argument));
                (Value::Null, true)
            }
            _ => {
                let ok = current == json!(expected);
                if ok {
                    state.insert(key.clone(), json!(argument));
                }
                (Value::Null, ok)
            }
        };
    }
    for (i, (index, process, key, f, invoke, _, complete, crashed, _, argument, expected)) in
        planned.into_iter().enumerate()
    {
        let input = match f {
            OpFunction::Read => Value::Null,
            OpFunction::Write => json!(argument),
            _ => json!([expected, argument]),
        };
        let mut invocation =
            HistoryEvent::new(process, OpType::Invoke, f, input.clone()).with_key(key.clone());
        invocation.time = Some(invoke);
        timeline.push((invoke, 0, index, invocation));
        if crashed {
            continue;
        }
        let (value, ok) = outcome[i].clone();
        let (kind, value) = match f {
            OpFunction::Read => (OpType::Ok, value),
            _ if ok => (OpType::Ok, input),
            _ => (OpType::Fail, input),
        };
        let mut completion = HistoryEvent::new(process, kind, f, value).with_key(key);
        completion.time = Some(complete);
        timeline.push((complete, 1, index, completion));
    }
    timeline.sort_by_key(|(time, order, index, _)| (*time, *order, *index));
    timeline.into_iter().map(|(.., event)| event).collect()
}

/// Renders events as the lines of a history file.
pub fn to_jsonl(events: &[HistoryEvent]) -> String {
    let mut text = String::new();
    for event in events {
        text.push_str(&serde_json::to_string(event).expect("events serialise"));
        text.push('\n');
    }
    text
}

/// The same history with one ok read changed to a value no write ever wrote, which makes
/// it non-linearizable; `None` if it has no ok read.
pub fn with_impossible_read(mut events: Vec<HistoryEvent>, seed: u64) -> Option<Vec<HistoryEvent>> {
    let reads: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].kind == OpType::Ok && events[i].f == OpFunction::Read)
        .collect();
    if reads.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pick = reads[rng.random_range(0..reads.len() as u32) as usize];
    events[pick].value = json!(99);
    Some(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::history;
    use crate::check::linearizable::{check, Model, Verdict};

    const SHAPE: Shape = Shape {
        operations: 400,
        processes: 6,
        keys: 3,
        crash_ppm: 30_000,
    };

    fn verdict(events: &[HistoryEvent]) -> Verdict {
        let ops = history::parse(&to_jsonl(events)).expect("generated histories parse");
        check(Model::Register, &ops)
    }

    #[test]
    fn generated_concurrent_histories_are_linearizable() {
        for seed in 0..30 {
            assert_eq!(
                verdict(&linearizable(seed, SHAPE)),
                Verdict::Linearizable,
                "seed {seed}"
            );
        }
    }

    #[test]
    fn an_impossible_read_makes_them_not_linearizable() {
        for seed in 0..30 {
            let bad = with_impossible_read(linearizable(seed, SHAPE), seed).expect("some read");
            let Verdict::NotLinearizable { failing, .. } = verdict(&bad) else {
                panic!("seed {seed}: the impossible read went unnoticed");
            };
            assert!(
                failing.len() <= 3,
                "seed {seed}: a small core, not {} ops",
                failing.len()
            );
        }
    }

    #[test]
    fn generated_histories_really_overlap() {
        let events = linearizable(1, SHAPE);
        let mut open = 0i32;
        let mut most = 0;
        for event in &events {
            open += if event.kind == OpType::Invoke { 1 } else { -1 };
            most = most.max(open);
        }
        assert!(
            most >= 3,
            "at most {most} operations were ever in flight together"
        );
    }
}
