//! Did the swarm reach the rare paths? Each component a scenario hosts declares marks
//! (`Ctx::sometimes`) on its rare paths; a swarm counts the seeds that reached each and
//! names, loudly and with a hint, the marks no seed reached. `swarm merge` sums shards.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sim_core::scenario::Scenario;

use crate::output::{paint, BOLD, RED};

/// One declared mark and the seeds of a swarm that reached it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct MarkCount {
    pub(crate) mark: String,
    pub(crate) seeds: u64,
    pub(crate) doc: String,
    /// What to change in the scenario to reach it, when no seed did.
    pub(crate) hint: String,
}

/// The declared marks of the scenario's components, each at zero seeds.
pub(crate) fn declared(scenario: &Scenario) -> Vec<MarkCount> {
    let mut marks = Vec::new();
    for component in scenario.components() {
        let Some(spec) = sim_core::catalogue::component(component) else {
            continue;
        };
        for mark in spec.marks {
            marks.push(MarkCount {
                mark: mark.name.to_string(),
                seeds: 0,
                doc: mark.doc.to_string(),
                hint: mark.hint.to_string(),
            });
        }
    }
    marks
}

/// Counts one seed's marks (each once per seed).
pub(crate) fn add_seed(counts: &mut [MarkCount], reached: &BTreeMap<String, u64>) {
    for count in counts.iter_mut() {
        if reached.contains_key(&count.mark) {
            count.seeds += 1;
        }
    }
}

/// Sums the counts of shards (marks matched by name).
pub(crate) fn merge(into: &mut Vec<MarkCount>, shard: Vec<MarkCount>) {
    for mark in shard {
        match into.iter_mut().find(|known| known.mark == mark.mark) {
            Some(known) => known.seeds += mark.seeds,
            None => into.push(mark),
        }
    }
}

/// The marks as text: the reached ones in one line each, then the others, loudly.
pub(crate) fn print(marks: &[MarkCount], seeds: u64) {
    if marks.is_empty() {
        return;
    }
    let width = marks.iter().map(|m| m.mark.len()).max().unwrap_or(0);
    println!("rare paths (seeds that reached each, of {seeds}):");
    for mark in marks.iter().filter(|m| m.seeds > 0) {
        println!("  {:<width$}  {:>8}", mark.mark, mark.seeds);
    }
    let missed: Vec<&MarkCount> = marks.iter().filter(|m| m.seeds == 0).collect();
    if missed.is_empty() {
        println!("  every rare path was reached");
        return;
    }
    println!(
        "{}",
        paint(
            RED,
            &format!(
                "NOT REACHED by any seed ({} of {}):",
                missed.len(),
                marks.len()
            )
        )
    );
    for mark in missed {
        println!("  {}: {}", paint(BOLD, &mark.mark), mark.doc);
        println!("      to reach it: {}", mark.hint);
    }
}
