//! A swarm's findings grouped by invariant: how many seeds each invariant failed in, the
//! smallest such seed and the commands that reproduce and show it, and, with `swarm
//! --shrink`, that seed shrunk. Counts stay exact when the findings list is truncated;
//! `swarm merge` combines the groups of shards (sums, smallest seeds) without the lists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::shrink;
use crate::output::{paint, BOLD};

/// The findings of one invariant across a swarm.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Group {
    pub(crate) invariant: String,
    /// Seeds in which the invariant failed (exact, whatever the findings cap).
    pub(crate) seeds: u64,
    pub(crate) smallest_seed: u64,
    pub(crate) reproduce: String,
    #[serde(default)]
    pub(crate) web_url: Option<String>,
    /// The smallest seed shrunk (`swarm --shrink`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) shrunk: Option<shrink::Report>,
}

/// Groups being counted, keyed by invariant (so reports list them in name order).
#[derive(Default)]
pub(crate) struct Groups {
    by_invariant: BTreeMap<String, Group>,
}

impl Groups {
    /// Counts one failing seed's invariants (each once per seed); `commands` gives the
    /// reproduce command and browser address of a seed.
    pub(crate) fn add_seed<'a>(
        &mut self,
        seed: u64,
        invariants: impl Iterator<Item = &'a str>,
        commands: &dyn Fn(u64) -> (String, Option<String>),
    ) {
        let mut seen: Vec<&str> = invariants.collect();
        seen.sort_unstable();
        seen.dedup();
        for invariant in seen {
            match self.by_invariant.get_mut(invariant) {
                Some(group) => {
                    group.seeds += 1;
                    if seed < group.smallest_seed {
                        let (reproduce, web_url) = commands(seed);
                        group.smallest_seed = seed;
                        group.reproduce = reproduce;
                        group.web_url = web_url;
                    }
                }
                None => {
                    let (reproduce, web_url) = commands(seed);
                    let group = Group {
                        invariant: invariant.to_string(),
                        seeds: 1,
                        smallest_seed: seed,
                        reproduce,
                        web_url,
                        shrunk: None,
                    };
                    self.by_invariant.insert(invariant.to_string(), group);
                }
            }
        }
    }

    /// Adds a shard's groups: seeds summed, the smallest seed (and its shrink) kept.
    pub(crate) fn merge(&mut self, groups: Vec<Group>) {
        for group in groups {
            match self.by_invariant.get_mut(&group.invariant) {
                Some(known) => {
                    known.seeds += group.seeds;
                    if group.smallest_seed < known.smallest_seed {
                        let seeds = known.seeds;
                        *known = group;
                        known.seeds = seeds;
                    }
                }
                None => {
                    self.by_invariant.insert(group.invariant.clone(), group);
                }
            }
        }
    }

    pub(crate) fn into_vec(self) -> Vec<Group> {
        self.by_invariant.into_values().collect()
    }
}

/// The groups as text: one block per invariant, the most frequent first.
pub(crate) fn print(groups: &[Group]) {
    let mut sorted: Vec<&Group> = groups.iter().collect();
    sorted.sort_by(|a, b| b.seeds.cmp(&a.seeds).then(a.invariant.cmp(&b.invariant)));
    println!("findings by invariant:");
    for group in sorted {
        println!(
            "  {}: {} seed{}, smallest {}",
            paint(BOLD, &group.invariant),
            group.seeds,
            if group.seeds == 1 { "" } else { "s" },
            group.smallest_seed
        );
        println!("    reproduce: {}", group.reproduce);
        if let Some(url) = &group.web_url {
            println!("    watch it: {url}");
        }
        if let Some(shrunk) = &group.shrunk {
            println!(
                "    shrunk: {} faults -> {}, {} nodes -> {}, {} events -> {} ({} runs)",
                shrunk.before.faults,
                shrunk.after.faults,
                shrunk.before.nodes,
                shrunk.after.nodes,
                shrunk.before.events,
                shrunk.after.events,
                shrunk.runs
            );
            println!("      replay: {}", shrunk.replay);
            println!("      watch:  {}", shrunk.web_url);
        }
    }
}
