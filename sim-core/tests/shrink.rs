//! Shrinking keeps the failure: for every planted bug, the first seed a swarm finds is
//! shrunk, and the shrunk scenario, written as a file and read back, still fails with
//! the invariant the bug names, at no more faults or nodes than the original run. A
//! clean run has nothing to shrink, and the same input gives the same result.

use sim_core::bugs::BugSet;
use sim_core::catalogue;
use sim_core::engine::run_to_end;
use sim_core::scenario::{builtin, parse, to_toml, RunOptions, Scenario};
use sim_core::shrink::{shrink, Shrunk, Size};

/// Seeds searched for a failure; the bug zoo holds every bug within this bound.
const SEEDS_MAX: u64 = 300;
/// Runs each shrink may spend here (the CLI's default is larger).
const BUDGET: u32 = 60;

fn scenario(name: &str) -> Scenario {
    parse(name, builtin(name).unwrap()).unwrap()
}

fn first_failing_seed(scenario: &Scenario, bug: &str, invariant: &str) -> u64 {
    let mut bugs = BugSet::default();
    catalogue::enable_bug(&mut bugs, bug).unwrap();
    (0..SEEDS_MAX)
        .find(|seed| {
            let options = RunOptions {
                seed: Some(*seed),
                bugs: bugs.clone(),
                ..Default::default()
            };
            let mut run = scenario.build(&options);
            let report = run_to_end(run.as_mut());
            report.findings.iter().any(|f| f.invariant == invariant)
        })
        .unwrap_or_else(|| panic!("{bug} not caught in {SEEDS_MAX} seeds"))
}

fn shrunk(name: &str, seed: u64, bug: &str) -> Shrunk {
    let mut go_on = |_: u32, _: &Size| true;
    shrink(
        &scenario(name),
        seed,
        &[bug.to_string()],
        None,
        BUDGET,
        &mut go_on,
    )
    .unwrap_or_else(|_| panic!("{name} seed {seed} with {bug} fails"))
}

#[test]
fn every_planted_bug_shrinks_to_a_file_that_still_fails_its_invariant() {
    let mut smaller_events = 0;
    for bug in catalogue::bugs() {
        let seed = first_failing_seed(&scenario(bug.scenario), bug.name, bug.caught_by);
        let result = shrunk(bug.scenario, seed, bug.name);
        assert_eq!(result.invariant, bug.caught_by, "{}", bug.name);
        assert!(result.runs <= BUDGET, "{}", bug.name);
        assert!(
            result.after.faults <= result.before.faults
                && result.after.nodes <= result.before.nodes,
            "{}: {:?} -> {:?}",
            bug.name,
            result.before,
            result.after
        );
        smaller_events += (result.after.events < result.before.events) as u32;
        // The file alone reproduces it: its seed and its bugs are in it.
        let text = to_toml(&result.scenario);
        let again = parse("shrunk.toml", &text).unwrap();
        assert_eq!(again.seed, seed);
        assert!(again.bugs.iter().any(|name| name == bug.name), "{text}");
        let mut run = again.build(&RunOptions::default());
        let report = run_to_end(run.as_mut());
        assert!(
            report.findings.iter().any(|f| f.invariant == bug.caught_by),
            "{} shrunk no longer fails:\n{text}",
            bug.name
        );
        assert_eq!(report.events, result.after.events, "{}", bug.name);
        eprintln!(
            "{}: {:?} -> {:?} in {} runs",
            bug.name, result.before, result.after, result.runs
        );
    }
    assert!(
        smaller_events * 10 >= catalogue::bugs().len() as u32 * 9,
        "most shrunk runs are shorter: {smaller_events}"
    );
}

#[test]
fn a_nemesis_run_becomes_a_schedule_of_fewer_faults() {
    let bug = catalogue::find_bug("zab.commit-without-quorum").unwrap();
    let seed = first_failing_seed(&scenario(bug.scenario), bug.name, bug.caught_by);
    let result = shrunk(bug.scenario, seed, bug.name);
    assert!(scenario(bug.scenario).nemesis.is_some());
    assert!(result.scenario.nemesis.is_none(), "replaced by its faults");
    assert!(result.after.faults < result.before.faults);
}

#[test]
fn shrinking_is_deterministic_and_a_clean_run_has_nothing_to_shrink() {
    let first = shrunk("broker-topics", 0, "broker.route-duplicates");
    let second = shrunk("broker-topics", 0, "broker.route-duplicates");
    assert_eq!(to_toml(&first.scenario), to_toml(&second.scenario));
    assert_eq!(first.runs, second.runs);
    let mut go_on = |_: u32, _: &Size| true;
    let clean = shrink(&scenario("broker-topics"), 0, &[], None, BUDGET, &mut go_on);
    assert!(clean.is_err(), "no finding, nothing to shrink");
    let named = shrink(
        &scenario("broker-topics"),
        0,
        &["broker.route-duplicates".to_string()],
        Some("broker.queue-order"),
        BUDGET,
        &mut go_on,
    );
    assert!(
        named.is_err(),
        "the run does not fail the invariant asked for"
    );
}

#[test]
fn the_caller_can_stop_a_shrink_and_keep_the_best_so_far() {
    let mut calls = 0;
    let mut stop_soon = |_: u32, _: &Size| {
        calls += 1;
        calls < 3
    };
    let result = shrink(
        &scenario("broker-topics"),
        0,
        &["broker.route-duplicates".to_string()],
        None,
        BUDGET,
        &mut stop_soon,
    )
    .unwrap();
    assert!(result.cut_short);
    assert!(result.runs <= 3, "{}", result.runs);
}

/// A stall found at the end of the run keeps its nodes: without them (a consumer, a
/// quorum) the run would stall for a reason of the shrinker's making. A harsh swarm of
/// the broker shrank to a broker with no consumer before this rule.
#[test]
fn a_stall_keeps_every_node() {
    let bug = catalogue::find_bug("broker.silent-refusal").unwrap();
    let seed = first_failing_seed(&scenario(bug.scenario), bug.name, bug.caught_by);
    let result = shrunk(bug.scenario, seed, bug.name);
    assert_eq!(result.invariant, "broker.progress");
    assert_eq!(
        result.after.nodes, result.before.nodes,
        "{:?}",
        result.after
    );
    assert!(result.after.events < result.before.events);
}
