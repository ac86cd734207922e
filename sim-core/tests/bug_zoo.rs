//! The bug zoo's promise: every planted bug is caught, by the invariant it names, within a
//! bounded number of seeds of the scenario that exposes it, and the correct protocol
//! passes the same seeds. A checker that no planted bug can trip is not a checker (the
//! catalogue's own test holds every invariant to that).

use sim_core::bugs::BugSet;
use sim_core::catalogue;
use sim_core::engine::run_to_end;
use sim_core::scenario::{builtin, parse, RunOptions, Scenario};

/// Seeds a bug may take to show itself; the broadcast bugs need about 20 on average.
const SEEDS_MAX: u64 = 300;

fn scenario(name: &str) -> Scenario {
    let text = builtin(name).unwrap_or_else(|| panic!("{name} is not a built-in"));
    parse(name, text).expect("built-ins are valid")
}

/// The first seed whose run reports `invariant` (any finding when `None`), with every
/// finding of that run.
fn first_failing_seed(
    scenario: &Scenario,
    bug: Option<&str>,
    invariant: Option<&str>,
    seeds: u64,
) -> Option<(u64, Vec<String>)> {
    let mut bugs = BugSet::default();
    if let Some(bug) = bug {
        catalogue::enable_bug(&mut bugs, bug).expect("known bug");
    }
    for seed in 0..seeds {
        let options = RunOptions {
            seed: Some(seed),
            bugs: bugs.clone(),
            ..Default::default()
        };
        let mut run = scenario.build(&options);
        let report = run_to_end(run.as_mut());
        let caught = match invariant {
            Some(name) => report.findings.iter().any(|f| f.invariant == name),
            None => !report.findings.is_empty(),
        };
        if caught {
            let findings = report
                .findings
                .iter()
                .map(|f| format!("{}: {}", f.invariant, f.message))
                .collect();
            return Some((seed, findings));
        }
    }
    None
}

#[test]
fn every_planted_bug_is_caught_by_its_invariant_within_the_seed_bound() {
    for bug in catalogue::bugs() {
        let scenario = scenario(bug.scenario);
        assert!(
            scenario.components().contains(&bug.protocol),
            "{}: scenario {} hosts no {}",
            bug.name,
            bug.scenario,
            bug.protocol
        );
        let caught = first_failing_seed(&scenario, Some(bug.name), Some(bug.caught_by), SEEDS_MAX);
        let (seed, findings) = caught.unwrap_or_else(|| {
            panic!(
                "{} survived {SEEDS_MAX} seeds of {} unseen by {}",
                bug.name, bug.scenario, bug.caught_by
            )
        });
        eprintln!("{} caught at seed {seed}: {findings:?}", bug.name);
    }
}

#[test]
fn the_correct_protocols_pass_the_scenarios_that_expose_the_bugs() {
    let mut scenarios: Vec<&str> = catalogue::bugs().iter().map(|bug| bug.scenario).collect();
    scenarios.sort_unstable();
    scenarios.dedup();
    for name in scenarios {
        let failure = first_failing_seed(&scenario(name), None, None, 100);
        assert_eq!(failure, None, "the correct protocol fails {name}");
    }
}
