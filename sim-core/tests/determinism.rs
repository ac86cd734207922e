//! Determinism is a feature: the same scenario and seed give the same trace hash every
//! time, different seeds give different runs, keeping the trace changes nothing, and a
//! snapshot runs on exactly as its original.

use sim_core::engine::{run_to_end, RunReport};
use sim_core::scenario::{builtin, is_large, parse, RunOptions, BUILTINS, LARGE};
use sim_core::trace::TraceEvent;

fn hash(name: &str, seed: u64, retain_trace: bool) -> String {
    let scenario = parse(name, builtin(name).unwrap()).unwrap();
    let options = RunOptions {
        seed: Some(seed),
        retain_trace,
        ..Default::default()
    };
    let mut run = scenario.build(&options);
    run_to_end(run.as_mut()).trace_hash
}

#[test]
fn the_same_seed_gives_the_same_hash_twice_in_one_process() {
    for (name, _) in BUILTINS.iter().filter(|(name, _)| !is_large(name)) {
        assert_eq!(hash(name, 42, false), hash(name, 42, false), "{name}");
    }
}

#[test]
fn different_seeds_give_different_hashes() {
    for (name, _) in BUILTINS.iter().filter(|(name, _)| !is_large(name)) {
        let hashes: std::collections::BTreeSet<String> =
            (0..5).map(|seed| hash(name, seed, false)).collect();
        assert_eq!(hashes.len(), 5, "{name}: seeds 0..5 should all differ");
    }
}

#[test]
fn retaining_the_trace_does_not_change_the_hash() {
    for (name, _) in BUILTINS.iter().filter(|(name, _)| !is_large(name)) {
        assert_eq!(hash(name, 3, false), hash(name, 3, true), "{name}");
    }
}

/// Runs a scenario in slices of the given sizes, cycling through them, as the browser
/// does; returns the report and every retained event.
fn sliced(name: &str, seed: u64, slices: &[u64]) -> (RunReport, Vec<TraceEvent>) {
    let scenario = parse(name, builtin(name).unwrap()).unwrap();
    let options = RunOptions {
        seed: Some(seed),
        retain_trace: true,
        ..Default::default()
    };
    let mut run = scenario.build(&options);
    let mut sizes = slices.iter().cycle();
    while run.run_for(*sizes.next().expect("cycled")) {}
    (run.report(), run.trace().retained().to_vec())
}

#[test]
fn any_slicing_of_a_run_gives_the_same_run_as_running_it_to_the_end() {
    for name in ["broadcast", "registry-tour", "broker-crash-durable"] {
        let scenario = parse(name, builtin(name).unwrap()).unwrap();
        let options = RunOptions {
            seed: Some(9),
            retain_trace: true,
            ..Default::default()
        };
        let mut whole = scenario.build(&options);
        let report = run_to_end(whole.as_mut());
        let events = whole.trace().retained().to_vec();
        assert!(
            report.events > 1_000,
            "{name}: a real run: {} events",
            report.events
        );
        for slices in [&[1][..], &[997], &[2, 3, 5, 7, 11, 5_000]] {
            let (sliced_report, sliced_events) = sliced(name, 9, slices);
            assert_eq!(sliced_report, report, "{name} in slices {slices:?}");
            assert!(
                sliced_events == events,
                "{name}: events differ in slices {slices:?}"
            );
        }
    }
}

/// A nemesis's faults, replayed as a schedule, make the same run: what lets a shrinker
/// start from a nemesis run. (Only a fault landing on the very nanosecond of another
/// event could order differently; these seeds have none, and the test would say so.)
#[test]
fn a_nemesis_replaced_by_the_faults_it_injected_gives_the_same_run() {
    let mut replayed = 0;
    for (name, text) in BUILTINS.iter().filter(|(name, _)| !is_large(name)) {
        let scenario = parse(name, text).unwrap();
        if scenario.nemesis.is_none() {
            continue;
        }
        for seed in 0..2 {
            let options = RunOptions {
                seed: Some(seed),
                ..Default::default()
            };
            let mut run = scenario.build(&options);
            let report = run_to_end(run.as_mut());
            assert!(!run.injected().is_empty(), "{name} seed {seed}");
            assert_eq!(report.nemesis_faults.len(), run.injected().len());
            let mut scheduled = scenario.clone();
            scheduled.nemesis = None;
            scheduled.faults.extend(run.injected().iter().cloned());
            let mut again = scheduled.build(&options);
            let report_again = run_to_end(again.as_mut());
            assert_eq!(
                report.trace_hash, report_again.trace_hash,
                "{name} seed {seed}"
            );
            assert!(again.injected().is_empty());
            replayed += 1;
        }
    }
    assert!(replayed >= 20, "{replayed} nemesis runs");
}

/// A snapshot is a checkpoint: taken anywhere, it runs on to the very run the original
/// gives, on every built-in (each protocol's nodes, invariants, disks, clocks, network
/// streams and nemesis are copied), and the two never share state.
#[test]
fn a_snapshot_runs_on_exactly_as_the_run_it_was_taken_from() {
    for (name, _) in BUILTINS.iter().filter(|(name, _)| !is_large(name)) {
        let scenario = parse(name, builtin(name).unwrap()).unwrap();
        let options = RunOptions {
            seed: Some(5),
            retain_trace: true,
            ..Default::default()
        };
        let whole = run_to_end(scenario.build(&options).as_mut());
        let mut run = scenario.build(&options);
        let mut snapshots = Vec::new();
        for cut in [whole.events / 3, 2 * whole.events / 3] {
            while run.trace().events() < cut && run.step() {}
            snapshots.push((run.trace().events(), run.snapshot()));
        }
        // The original runs to the end first: a copy that shared its state would diverge.
        assert_eq!(run_to_end(run.as_mut()), whole, "{name}: the original");
        for (at, mut snapshot) in snapshots {
            assert_eq!(snapshot.trace().events(), at);
            assert!(
                snapshot.trace().retained().is_empty(),
                "{name}: retains nothing"
            );
            let mut twice = snapshot.snapshot();
            assert_eq!(
                run_to_end(snapshot.as_mut()),
                whole,
                "{name}: snapshot at {at}"
            );
            assert_eq!(run_to_end(twice.as_mut()), whole, "{name}: its snapshot");
        }
    }
}

/// The million-event built-ins, once each: twice the same hash, and a snapshot in the
/// middle that runs on to it.
#[test]
fn a_large_run_is_deterministic_and_snapshots_in_the_middle() {
    for name in LARGE {
        let scenario = parse(name, builtin(name).unwrap()).unwrap();
        let whole = run_to_end(scenario.build(&RunOptions::default()).as_mut());
        assert!(whole.events > 1_000_000, "{name}: {} events", whole.events);
        assert!(whole.findings.is_empty(), "{name}: {:?}", whole.findings);
        let mut run = scenario.build(&RunOptions::default());
        while run.trace().events() < whole.events / 2 && run.step() {}
        let mut snapshot = run.snapshot();
        assert_eq!(run_to_end(run.as_mut()), whole, "{name}");
        assert_eq!(run_to_end(snapshot.as_mut()), whole, "{name}: the snapshot");
    }
}

/// What the page draws every frame is `nodes()` with only the inspected node's state:
/// the same ids, kinds, statuses and roles, and that one state in full.
#[test]
fn nodes_inspecting_one_is_nodes_with_the_other_states_left_out() {
    let scenario = parse("registry-tour", builtin("registry-tour").unwrap()).unwrap();
    let options = RunOptions {
        seed: Some(3),
        ..Default::default()
    };
    let mut run = scenario.build(&options);
    run.run_for(5_000);
    let all = run.nodes();
    for inspect in [None, Some(0), Some(all.len() as u32 - 1)] {
        let views = run.nodes_inspecting(inspect);
        assert_eq!(views.len(), all.len());
        for (view, full) in views.iter().zip(&all) {
            assert_eq!(
                (view.id, &view.kind, view.status, &view.role),
                (full.id, &full.kind, full.status, &full.role)
            );
            if Some(view.id) == inspect {
                assert_eq!(view.state, full.state);
                assert!(!view.state.is_empty(), "the inspected node shows its state");
            } else {
                assert!(view.state.is_empty());
            }
        }
    }
}
