//! The bug zoo's promise: every planted bug is caught by a checker within a bounded
//! number of seeds of the scenario that exposes it, and the correct protocol passes the
//! same seeds. A checker that no planted bug can trip is not a checker.

use sim_core::bugs::{catalogue, BugSet};
use sim_core::engine::run_to_end;
use sim_core::scenario::{builtin, parse, RunOptions};

/// Seeds a bug may take to show itself; the broadcast bugs need about 20 on average.
const SEEDS_MAX: u64 = 300;

fn first_failing_seed(scenario: &str, bug: Option<&str>, seeds: u64) -> Option<(u64, String)> {
    let scenario = parse(scenario, builtin(scenario).expect("built-in")).expect("valid");
    let mut bugs = BugSet::default();
    if let Some(bug) = bug {
        bugs.enable(bug).expect("known bug");
    }
    for seed in 0..seeds {
        let options = RunOptions {
            seed: Some(seed),
            bugs: bugs.clone(),
            ..Default::default()
        };
        let mut run = scenario.build(&options);
        let report = run_to_end(run.as_mut());
        if let Some(finding) = report.findings.first() {
            return Some((seed, format!("{}: {}", finding.invariant, finding.message)));
        }
    }
    None
}

#[test]
fn every_planted_bug_is_caught_within_the_seed_bound() {
    for bug in catalogue() {
        let caught = first_failing_seed(bug.scenario, Some(bug.name), SEEDS_MAX);
        let (seed, finding) = caught.unwrap_or_else(|| {
            panic!(
                "{} survived {SEEDS_MAX} seeds of {}",
                bug.name, bug.scenario
            )
        });
        assert!(
            !finding.starts_with("panic"),
            "{}: a checker, not a panic: {finding}",
            bug.name
        );
        eprintln!("{} caught at seed {seed}: {finding}", bug.name);
    }
}

#[test]
fn the_correct_protocols_pass_the_scenarios_that_expose_the_bugs() {
    let mut scenarios: Vec<&str> = catalogue().iter().map(|bug| bug.scenario).collect();
    scenarios.dedup();
    for scenario in scenarios {
        let failure = first_failing_seed(scenario, None, 100);
        assert_eq!(failure, None, "the correct protocol fails {scenario}");
    }
}
