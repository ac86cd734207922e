//! The seeded random nemesis: it holds one fault at a time, undoing it before choosing
//! the next, and strikes only the nodes of the kinds the scenario names as its targets.
//! It draws from its own stream only and never applies a fault itself: the engine does,
//! and records each one so the schedule it produced can replace it in a shrunk run.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::Fault;
use crate::ids::NodeId;

/// The kinds of fault a nemesis may choose from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NemesisKind {
    Crash,
    Partition,
    /// A random minority's messages to everyone else are lost; the other way works.
    OneWay,
    Pause,
    ClockSkew,
}

impl NemesisKind {
    pub const ALL: [NemesisKind; 5] = [
        NemesisKind::Crash,
        NemesisKind::Partition,
        NemesisKind::OneWay,
        NemesisKind::Pause,
        NemesisKind::ClockSkew,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NemesisKind::Crash => "crash",
            NemesisKind::Partition => "partition",
            NemesisKind::OneWay => "partition-one-way",
            NemesisKind::Pause => "pause",
            NemesisKind::ClockSkew => "clock-skew",
        }
    }

    pub fn parse(name: &str) -> Option<NemesisKind> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NemesisConfig {
    pub kinds: Vec<NemesisKind>,
    /// Time between one fault healing and the next striking, drawn uniformly.
    pub interval_ns_min: u64,
    pub interval_ns_max: u64,
    /// How long each fault lasts before the nemesis undoes it, drawn uniformly.
    pub fault_ns_min: u64,
    pub fault_ns_max: u64,
    /// Skew faults draw offsets within ± this bound.
    pub skew_ns_max: u64,
    /// The node kinds it strikes, as the scenario writes them; empty means every node.
    /// Partitions cut a minority of these nodes off from everyone else.
    pub targets: Vec<String>,
}

/// A seeded random fault generator. It holds one fault at a time and undoes it before
/// choosing the next, so a quorum protocol always gets windows in which it can progress.
#[derive(Clone, Debug)]
pub struct Nemesis {
    config: NemesisConfig,
    node_count: u32,
    /// The nodes it may strike, in id order.
    targets: Vec<NodeId>,
    rng: ChaCha8Rng,
    undo: Vec<Fault>,
}

impl Nemesis {
    /// A nemesis over nodes `0..node_count` whose kinds are `kinds` (in id order).
    pub fn new(config: NemesisConfig, kinds: &[String], rng: ChaCha8Rng) -> Self {
        assert!(!config.kinds.is_empty());
        assert!(config.interval_ns_min <= config.interval_ns_max);
        assert!(config.fault_ns_min <= config.fault_ns_max);
        let node_count = kinds.len() as u32;
        assert!(node_count > 0);
        let targets: Vec<NodeId> = (0..node_count)
            .filter(|id| config.targets.is_empty() || config.targets.contains(&kinds[*id as usize]))
            .collect();
        assert!(
            !targets.is_empty(),
            "the scenario checks its targets name nodes"
        );
        Self {
            config,
            node_count,
            targets,
            rng,
            undo: Vec::new(),
        }
    }

    pub fn first_delay_ns(&mut self) -> u64 {
        self.rng
            .random_range(self.config.interval_ns_min..=self.config.interval_ns_max)
    }

    /// Called when the nemesis' timer fires: returns the faults to apply now and the delay
    /// until it wants to act again.
    pub fn act(&mut self) -> (Vec<Fault>, u64) {
        if !self.undo.is_empty() {
            let undo = std::mem::take(&mut self.undo);
            let delay = self
                .rng
                .random_range(self.config.interval_ns_min..=self.config.interval_ns_max);
            return (undo, delay);
        }
        let kind_count = self.config.kinds.len() as u32;
        let kind = self.config.kinds[self.rng.random_range(0..kind_count) as usize];
        let node = self.targets[self.rng.random_range(0..self.targets.len() as u32) as usize];
        let strike = match kind {
            NemesisKind::Crash => {
                self.undo.push(Fault::Restart { node });
                Fault::Crash { node }
            }
            NemesisKind::Pause => {
                self.undo.push(Fault::Resume { node });
                Fault::Pause { node }
            }
            NemesisKind::Partition => {
                self.undo.push(Fault::Heal);
                Fault::Partition {
                    groups: vec![self.random_minority()],
                }
            }
            NemesisKind::OneWay => {
                self.undo.push(Fault::Heal);
                let from = self.random_minority();
                let to = (0..self.node_count)
                    .filter(|node| !from.contains(node))
                    .collect();
                Fault::PartitionOneWay { from, to }
            }
            NemesisKind::ClockSkew => {
                let bound = self.config.skew_ns_max as i64;
                let offset_ns = self.rng.random_range(-bound..=bound);
                let drift_ppm = self.rng.random_range(-500..=500);
                self.undo.push(Fault::ClockSkew {
                    node,
                    offset_ns: 0,
                    drift_ppm: 0,
                });
                Fault::ClockSkew {
                    node,
                    offset_ns,
                    drift_ppm,
                }
            }
        };
        let delay = self
            .rng
            .random_range(self.config.fault_ns_min..=self.config.fault_ns_max);
        (vec![strike], delay)
    }

    /// A random non-empty minority of the targets (at least one node, fewer than half
    /// when possible).
    fn random_minority(&mut self) -> Vec<NodeId> {
        let count = self.targets.len() as u32;
        let size = ((count.saturating_sub(1)) / 2).max(1);
        let mut nodes = self.targets.clone();
        // u32 draws, never usize: wasm32 and x86_64 must draw the same numbers.
        for i in 0..size {
            let j = self.rng.random_range(i..count);
            nodes.swap(i as usize, j as usize);
        }
        nodes.truncate(size as usize);
        nodes.sort_unstable();
        nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn kinds(count: usize) -> Vec<String> {
        vec!["server".to_string(); count]
    }

    fn config() -> NemesisConfig {
        NemesisConfig {
            kinds: NemesisKind::ALL.to_vec(),
            interval_ns_min: 10,
            interval_ns_max: 20,
            fault_ns_min: 5,
            fault_ns_max: 6,
            skew_ns_max: 1_000,
            targets: Vec::new(),
        }
    }

    #[test]
    fn every_strike_is_undone_by_the_next_action() {
        let mut nemesis = Nemesis::new(config(), &kinds(5), ChaCha8Rng::seed_from_u64(3));
        for _ in 0..50 {
            let (strike, fault_ns) = nemesis.act();
            assert_eq!(strike.len(), 1);
            assert!((5..=6).contains(&fault_ns));
            let (undo, pause_ns) = nemesis.act();
            assert!((10..=20).contains(&pause_ns));
            let expected = match &strike[0] {
                Fault::Crash { node } => Fault::Restart { node: *node },
                Fault::Pause { node } => Fault::Resume { node: *node },
                Fault::Partition { groups } => {
                    assert!(groups[0].len() == 2, "a minority of five is two");
                    Fault::Heal
                }
                Fault::PartitionOneWay { from, to } => {
                    assert_eq!(from.len(), 2, "a minority of five is two");
                    assert_eq!(to.len(), 3, "the rest");
                    assert!(from.iter().all(|node| !to.contains(node)));
                    Fault::Heal
                }
                Fault::ClockSkew { node, .. } => Fault::ClockSkew {
                    node: *node,
                    offset_ns: 0,
                    drift_ppm: 0,
                },
                other => panic!("unexpected strike {other:?}"),
            };
            assert_eq!(undo, vec![expected]);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let run = |seed| {
            let mut nemesis = Nemesis::new(config(), &kinds(3), ChaCha8Rng::seed_from_u64(seed));
            (0..20).map(|_| nemesis.act()).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }

    #[test]
    fn a_nemesis_with_targets_strikes_only_their_nodes() {
        let mut kinds = kinds(3);
        kinds.extend(["client".to_string(), "client".to_string()]);
        let config = NemesisConfig {
            targets: vec!["client".to_string()],
            ..config()
        };
        let mut nemesis = Nemesis::new(config, &kinds, ChaCha8Rng::seed_from_u64(5));
        for _ in 0..100 {
            for fault in nemesis.act().0 {
                let struck = match &fault {
                    Fault::Partition { groups } => groups[0].clone(),
                    Fault::PartitionOneWay { from, to } => {
                        assert_eq!(to.len(), 4, "cut off from everyone else");
                        from.clone()
                    }
                    Fault::Heal => continue,
                    other => other.nodes(),
                };
                assert!(struck.iter().all(|node| *node >= 3), "{fault:?}");
            }
        }
    }
}
