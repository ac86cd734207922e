//! The linearizability checker against histories generated from a real register (so
//! linearizable by construction: each operation takes effect at a moment inside its
//! interval), and the same histories mutated: a read changed to a value never written.
//! Bounded so it runs in CI on every change.

use proptest::prelude::*;
use sim_core::check::generate::{linearizable, to_jsonl, with_impossible_read, Shape};
use sim_core::check::history::{self, Operation};
use sim_core::check::linearizable::{check, Model, Verdict};
use sim_core::check::HistoryEvent;

fn operations(events: &[HistoryEvent]) -> Vec<Operation> {
    history::parse(&to_jsonl(events)).expect("generated histories parse")
}

fn shapes() -> impl Strategy<Value = (u64, Shape)> {
    (any::<u64>(), 1u32..120, 1u32..8, 1u32..4, 0u32..100_000).prop_map(
        |(seed, operations, processes, keys, crash_ppm)| {
            let shape = Shape {
                operations,
                processes,
                keys,
                crash_ppm,
            };
            (seed, shape)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// What a real register did is linearizable, whatever the lines' order (here grouped
    /// by process, each process keeping its own order).
    #[test]
    fn a_real_registers_history_is_linearizable((seed, shape) in shapes()) {
        let events = linearizable(seed, shape);
        prop_assert_eq!(check(Model::Register, &operations(&events)), Verdict::Linearizable);
        let mut by_process = events.clone();
        by_process.sort_by_key(|e| e.process);
        prop_assert_eq!(check(Model::Register, &operations(&by_process)), Verdict::Linearizable);
    }

    /// A read of a value nobody wrote is caught, and the part reported fails on its own.
    #[test]
    fn an_impossible_read_is_caught_with_a_failing_part((seed, shape) in shapes()) {
        let events = linearizable(seed, shape);
        let Some(bad) = with_impossible_read(events, seed) else {
            return Ok(()); // No ok read to change.
        };
        let ops = operations(&bad);
        let Verdict::NotLinearizable { failing, .. } = check(Model::Register, &ops) else {
            return Err(TestCaseError::fail("the impossible read went unnoticed"));
        };
        prop_assert!(!failing.is_empty());
        prop_assert!(failing.iter().all(|op| ops.iter().any(|o| o.line == op.line)));
        let again = check(Model::Register, &failing);
        prop_assert!(
            matches!(again, Verdict::NotLinearizable { .. }),
            "the failing part passes on its own: {:?}",
            failing
        );
    }
}
