//! Shrinking a failing run: from a scenario and a seed whose run violates an invariant,
//! search for a smaller scenario whose run, at the same seed, still violates that same
//! invariant. The nemesis is replaced by the faults it injected (a recorded nemesis
//! replays the same run), then faults are removed, nodes dropped, workloads cut, the
//! fault phase shortened and fault windows narrowed, pass after pass until a whole round
//! finds nothing smaller or the budget of runs is spent.
//!
//! Shrinking is deterministic: the same input and budget give the same result, and every
//! candidate is written as a scenario file and read back before it runs, so what is kept
//! is always a valid file (`scenario::to_toml`). The passes live in `passes.rs`. This
//! module never performs I/O and never reads a clock: the caller's `Control` says when
//! to stop early (a time budget, Ctrl-C) and hears about progress.

mod passes;

use serde::Serialize;

use crate::catalogue;
use crate::engine::{run_to_end, RunReport};
use crate::scenario::{parse, to_toml, RunOptions, Scenario};

/// Runs a shrink may spend at most, whatever `--budget` says.
pub const BUDGET_MAX: u32 = 100_000;

/// How big a failing run is: what shrinking makes smaller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Size {
    /// Scheduled faults plus the faults the nemesis injected.
    pub faults: usize,
    pub nodes: u32,
    pub events: u64,
    pub duration_ns: u64,
}

impl Size {
    fn of(scenario: &Scenario, report: &RunReport) -> Size {
        Size {
            faults: scenario.faults.len() + report.nemesis_faults.len(),
            nodes: scenario.node_count(),
            events: report.events,
            duration_ns: scenario.duration_ns,
        }
    }
}

/// What shrinking found.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest failing scenario found; its `seed` is the run's seed and its `bugs`
    /// hold the planted bugs, so the file alone reproduces the failure.
    pub scenario: Scenario,
    pub invariant: String,
    /// The failing run of `scenario`.
    pub report: RunReport,
    pub before: Size,
    pub after: Size,
    /// Runs spent, the first (the original failure) included.
    pub runs: u32,
    /// The budget ran out (or the caller stopped it) before a round found nothing more.
    pub cut_short: bool,
}

/// What the caller sees and decides while shrinking runs.
pub trait Control {
    /// Called after every run; returning false stops the search (keeping the best so far).
    fn keep_going(&mut self, runs: u32, best: &Size) -> bool;
}

impl<F: FnMut(u32, &Size) -> bool> Control for F {
    fn keep_going(&mut self, runs: u32, best: &Size) -> bool {
        self(runs, best)
    }
}

/// Shrinks the run of `scenario` at `seed` with `bugs` switched on (besides the
/// scenario's own), spending at most `budget` runs, keeping the failure of `invariant`:
/// by default the invariant a planted bug names when the run reports it, else the run's
/// first finding. `Err` carries the original run's report when it does not fail (with
/// that invariant, when one is named).
pub fn shrink(
    scenario: &Scenario,
    seed: u64,
    bugs: &[String],
    invariant: Option<&str>,
    budget: u32,
    control: &mut dyn Control,
) -> Result<Shrunk, Box<RunReport>> {
    assert!(budget >= 1);
    let budget = budget.min(BUDGET_MAX);
    let mut start = scenario.clone();
    start.seed = seed;
    for bug in bugs {
        let name = catalogue::find_bug(bug)
            .expect("bug names are validated")
            .name;
        if !start.bugs.iter().any(|known| known == name) {
            start.bugs.push(name.to_string());
        }
    }
    let mut run = start.build(&RunOptions::default());
    let report = run_to_end(run.as_mut());
    let reported = |name: &str| report.findings.iter().any(|f| f.invariant == name);
    let named_by_bug = bugs
        .iter()
        .filter_map(|bug| catalogue::find_bug(bug))
        .map(|bug| bug.caught_by)
        .find(|name| reported(name));
    let chosen = match invariant {
        Some(name) => reported(name).then(|| name.to_string()),
        None => named_by_bug
            .map(str::to_string)
            .or_else(|| report.findings.first().map(|f| f.invariant.clone())),
    };
    let Some(invariant) = chosen else {
        return Err(Box::new(report));
    };
    let injected = run.injected().to_vec();
    drop(run);
    // A finding at the very end of the run is a liveness check's ("no progress").
    let end_ns = start.duration_ns + start.quiet_ns;
    let liveness = report
        .findings
        .iter()
        .filter(|finding| finding.invariant == invariant)
        .all(|finding| finding.time_ns >= end_ns);
    let before = Size::of(&start, &report);
    let mut search = Search {
        liveness,
        invariant,
        budget,
        runs: 1,
        stopped: false,
        best_size: before,
        best: start,
        best_report: report,
        control,
    };
    search.keep_going();
    passes::run_all(&mut search, injected);
    Ok(Shrunk {
        after: search.best_size,
        scenario: search.best,
        invariant: search.invariant,
        report: search.best_report,
        before,
        runs: search.runs,
        cut_short: search.stopped,
    })
}

/// The search's state: the best failing scenario so far and what is left of the budget.
pub(crate) struct Search<'c> {
    invariant: String,
    /// The failure is a stall found at the end of the run: dropping nodes is off, since
    /// a run without its consumers or its quorum stalls for a reason of the shrinker's
    /// making (a swarm of a harsh broker scenario shrank to a broker with no consumer).
    liveness: bool,
    budget: u32,
    runs: u32,
    stopped: bool,
    best: Scenario,
    best_report: RunReport,
    best_size: Size,
    control: &'c mut dyn Control,
}

impl Search<'_> {
    fn keep_going(&mut self) -> bool {
        if self.runs >= self.budget {
            self.stopped = true;
        }
        if !self.stopped && !self.control.keep_going(self.runs, &self.best_size) {
            self.stopped = true;
        }
        !self.stopped
    }

    pub(crate) fn best(&self) -> &Scenario {
        &self.best
    }

    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    /// Runs `candidate` and keeps it when it still fails with the invariant and is no
    /// bigger; a candidate that does not read back as a valid file is skipped unrun.
    pub(crate) fn try_candidate(&mut self, candidate: Scenario) -> bool {
        if self.stopped {
            return false;
        }
        let Ok(candidate) = parse("shrunk.toml", &to_toml(&candidate)) else {
            return false;
        };
        if candidate == self.best {
            return false;
        }
        // The candidate holds its seed and bugs; the options add nothing.
        let mut run = candidate.build(&RunOptions::default());
        let report = run_to_end(run.as_mut());
        self.runs += 1;
        let fails = report
            .findings
            .iter()
            .any(|finding| finding.invariant == self.invariant);
        let size = Size::of(&candidate, &report);
        let smaller = size.faults <= self.best_size.faults && size.nodes <= self.best_size.nodes;
        let kept = fails && smaller;
        if kept {
            self.best = candidate;
            self.best_report = report;
            self.best_size = size;
        }
        self.keep_going();
        kept
    }
}
