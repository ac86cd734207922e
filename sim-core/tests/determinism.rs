//! Determinism is a feature: the same scenario and seed give the same trace hash every
//! time, different seeds give different runs, and keeping the trace changes nothing.

use sim_core::engine::run_to_end;
use sim_core::scenario::{builtin, parse, RunOptions, BUILTINS};

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
    for (name, _) in BUILTINS {
        assert_eq!(hash(name, 42, false), hash(name, 42, false), "{name}");
    }
}

#[test]
fn different_seeds_give_different_hashes() {
    for (name, _) in BUILTINS {
        let hashes: std::collections::BTreeSet<String> =
            (0..5).map(|seed| hash(name, seed, false)).collect();
        assert_eq!(hashes.len(), 5, "{name}: seeds 0..5 should all differ");
    }
}

#[test]
fn retaining_the_trace_does_not_change_the_hash() {
    for (name, _) in BUILTINS {
        assert_eq!(hash(name, 3, false), hash(name, 3, true), "{name}");
    }
}

#[test]
fn stepping_one_event_at_a_time_gives_the_same_run_as_running_to_the_end() {
    let scenario = parse("broadcast", builtin("broadcast").unwrap()).unwrap();
    let options = RunOptions {
        seed: Some(9),
        ..Default::default()
    };
    let mut stepped = scenario.build(&options);
    let mut steps = 0u64;
    while stepped.step() {
        steps += 1;
    }
    let mut whole = scenario.build(&options);
    let report = run_to_end(whole.as_mut());
    assert_eq!(stepped.report(), report);
    assert!(steps > 1_000, "a real run, stepped: {steps} steps");
}
