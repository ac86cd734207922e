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

/// One operation as the generator plans it, before its outcome is known.
struct Planned {
    process: u64,
    key: String,
    f: OpFunction,
    invoke: u64,
    /// Its linearization point, inside [invoke, complete].
    effect: u64,
    complete: u64,
    crashed: bool,
    takes_effect: bool,
    /// The value written (write, cas new value).
    argument: u64,
    /// The value a cas expects.
    expected: u64,
}

impl Planned {
    fn input(&self) -> Value {
        match self.f {
            OpFunction::Read => Value::Null,
            OpFunction::Write => json!(self.argument),
            _ => json!([self.expected, self.argument]),
        }
    }
}

/// A linearizable history of `shape`, as the lines of a history file would hold it.
pub fn linearizable(seed: u64, shape: Shape) -> Vec<HistoryEvent> {
    assert!(shape.processes > 0 && shape.keys > 0);
    let planned = plan(&mut ChaCha8Rng::seed_from_u64(seed), shape);
    let outcomes = outcomes(&planned);
    let mut timeline: Vec<(u64, u8, usize, HistoryEvent)> = Vec::new();
    for (index, (op, (value, ok))) in planned.iter().zip(outcomes).enumerate() {
        let mut invocation = HistoryEvent::new(op.process, OpType::Invoke, op.f, op.input());
        invocation.time = Some(op.invoke);
        timeline.push((op.invoke, 0, index, invocation.with_key(op.key.clone())));
        if op.crashed {
            continue; // A crashed client never hears back.
        }
        let (kind, value) = match op.f {
            OpFunction::Read => (OpType::Ok, value),
            _ if ok => (OpType::Ok, op.input()),
            _ => (OpType::Fail, op.input()),
        };
        let mut completion = HistoryEvent::new(op.process, kind, op.f, value);
        completion.time = Some(op.complete);
        timeline.push((op.complete, 1, index, completion.with_key(op.key.clone())));
    }
    timeline.sort_by_key(|(time, order, index, _)| (*time, *order, *index));
    timeline.into_iter().map(|(.., event)| event).collect()
}

fn plan(rng: &mut ChaCha8Rng, shape: Shape) -> Vec<Planned> {
    let mut free_at = vec![0u64; shape.processes as usize];
    let mut process_ids: Vec<u64> = (0..shape.processes as u64).collect();
    let mut next_process = shape.processes as u64;
    let mut planned = Vec::with_capacity(shape.operations as usize);
    for _ in 0..shape.operations {
        let slot = rng.random_range(0..shape.processes) as usize;
        let invoke = free_at[slot] + 1 + rng.random_range(0..50); // Strictly after its last op.
        let effect = invoke + rng.random_range(1..100);
        let complete = effect + rng.random_range(1..100);
        free_at[slot] = complete;
        let key = format!("k{}", rng.random_range(0..shape.keys));
        let f = [OpFunction::Read, OpFunction::Write, OpFunction::Cas]
            [rng.random_range(0..3u32) as usize];
        let crashed = rng.random_range(0..1_000_000u32) < shape.crash_ppm;
        let takes_effect = !crashed || rng.random_bool(0.5);
        let process = process_ids[slot];
        if crashed {
            // A crashed client's process is never reused: a new one takes its place.
            process_ids[slot] = next_process;
            next_process += 1;
        }
        let (argument, expected) = (rng.random_range(0..5u64), rng.random_range(0..5u64));
        planned.push(Planned {
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
        });
    }
    planned
}

/// Applies every operation at its linearization point, in time order: what each read
/// returns and whether each cas succeeds.
fn outcomes(planned: &[Planned]) -> Vec<(Value, bool)> {
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| (planned[i].effect, i));
    let mut state: std::collections::BTreeMap<&str, Value> = Default::default();
    let mut outcomes = vec![(Value::Null, true); planned.len()];
    for i in order {
        let op = &planned[i];
        if !op.takes_effect {
            continue;
        }
        let current = state.get(op.key.as_str()).cloned().unwrap_or(Value::Null);
        outcomes[i] = match op.f {
            OpFunction::Read => (current, true),
            OpFunction::Write => {
                state.insert(&op.key, json!(op.argument));
                (Value::Null, true)
            }
            _ => {
                let ok = current == json!(op.expected);
                if ok {
                    state.insert(&op.key, json!(op.argument));
                }
                (Value::Null, ok)
            }
        };
    }
    outcomes
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
            // A small core: the read and the writes it contradicts.
            assert!(
                failing.len() <= 5,
                "seed {seed}: a small core, not {} ops",
                failing.len()
            );
            // Which is itself not linearizable.
            assert!(
                matches!(
                    check(Model::Register, &failing),
                    Verdict::NotLinearizable { .. }
                ),
                "seed {seed}: the failing part passes on its own: {failing:?}"
            );
        }
    }

    /// The verdict and the failing part do not depend on the order of lines: here the
    /// lines of a timed history are grouped by process instead of by time.
    #[test]
    fn verdicts_do_not_depend_on_line_order() {
        for seed in 0..20 {
            let events = linearizable(seed, SHAPE);
            let bad = with_impossible_read(events.clone(), seed).expect("some read");
            for history in [events, bad] {
                let mut by_process = history.clone();
                by_process.sort_by_key(|e| e.process); // Stable: each process keeps its order.
                let summary = |events: &[HistoryEvent]| match verdict(events) {
                    Verdict::NotLinearizable { failing, .. } => {
                        let mut ops: Vec<String> = failing
                            .iter()
                            .map(|op| {
                                format!("{} {:?} {} {:?}", op.process, op.f, op.input, op.output)
                            })
                            .collect();
                        ops.sort();
                        format!("not linearizable: {ops:?}")
                    }
                    other => format!("{other:?}"),
                };
                assert_eq!(summary(&history), summary(&by_process), "seed {seed}");
            }
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
