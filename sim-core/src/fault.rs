//! The fault schedule and the seeded random nemesis.
//!
//! A `Fault` is a value: the engine applies it at its time and records it in the trace.
//! Scheduled faults come from the scenario (or the browser's clicks, which join the
//! schedule so a run stays replayable); the `Nemesis` invents faults from its own random
//! stream for swarms. Neither ever touches a node, the network or a disk directly.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::disk::DiskFaults;
use crate::node::NodeId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The node loses its memory and everything unsynced on disk.
    Crash {
        node: NodeId,
    },
    /// A crashed node boots again from its disk. No-op on a running node.
    Restart {
        node: NodeId,
    },
    /// The node stops taking events (a GC pause, SIGSTOP); they wait until `Resume`.
    Pause {
        node: NodeId,
    },
    Resume {
        node: NodeId,
    },
    /// Nodes in different groups cannot talk; unnamed nodes form one more group.
    Partition {
        groups: Vec<Vec<NodeId>>,
    },
    /// Messages from `from` to `to` are dropped; the other direction still works.
    PartitionOneWay {
        from: Vec<NodeId>,
        to: Vec<NodeId>,
    },
    /// Removes every partition.
    Heal,
    /// The node's local clock = virtual time + offset + drift (parts per million).
    ClockSkew {
        node: NodeId,
        offset_ns: i64,
        drift_ppm: i32,
    },
    DiskFault {
        node: NodeId,
        faults: DiskFaults,
    },
}

impl Fault {
    /// The nodes the fault names, for validation against the node count.
    pub fn nodes(&self) -> Vec<NodeId> {
        match self {
            Fault::Crash { node }
            | Fault::Restart { node }
            | Fault::Pause { node }
            | Fault::Resume { node }
            | Fault::ClockSkew { node, .. }
            | Fault::DiskFault { node, .. } => vec![*node],
            Fault::Partition { groups } => groups.iter().flatten().copied().collect(),
            Fault::PartitionOneWay { from, to } => from.iter().chain(to).copied().collect(),
            Fault::Heal => Vec::new(),
        }
    }

    /// One line for traces and logs; also the fault's canonical hash input.
    pub fn describe(&self) -> String {
        match self {
            Fault::Crash { node } => format!("crash {node}"),
            Fault::Restart { node } => format!("restart {node}"),
            Fault::Pause { node } => format!("pause {node}"),
            Fault::Resume { node } => format!("resume {node}"),
            Fault::Partition { groups } => format!("partition {groups:?}"),
            Fault::PartitionOneWay { from, to } => format!("partition-one-way {from:?}->{to:?}"),
            Fault::Heal => "heal".to_string(),
            Fault::ClockSkew {
                node,
                offset_ns,
                drift_ppm,
            } => {
                format!("clock-skew {node} offset_ns={offset_ns} drift_ppm={drift_ppm}")
            }
            Fault::DiskFault { node, faults } => format!(
                "disk-fault {node} torn_write_ppm={} lost_sync_ppm={}",
                faults.torn_write_ppm, faults.lost_sync_ppm
            ),
        }
    }
}

/// A fault and the virtual time it strikes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledFault {
    pub at_ns: u64,
    pub fault: Fault,
}

/// The kinds of fault a nemesis may choose from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NemesisKind {
    Crash,
    Partition,
    Pause,
    ClockSkew,
}

impl NemesisKind {
    pub const ALL: [NemesisKind; 4] = [
        NemesisKind::Crash,
        NemesisKind::Partition,
        NemesisKind::Pause,
        NemesisKind::ClockSkew,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NemesisKind::Crash => "crash",
            NemesisKind::Partition => "partition",
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
}

/// A seeded random fault generator. It holds one fault at a time and undoes it before
/// choosing the next, so a quorum protocol always gets windows in which it can progress.
#[derive(Clone, Debug)]
pub struct Nemesis {
    config: NemesisConfig,
    node_count: u32,
    rng: ChaCha8Rng,
    undo: Vec<Fault>,
}

impl Nemesis {
    pub fn new(config: NemesisConfig, node_count: u32, rng: ChaCha8Rng) -> Self {
        assert!(!config.kinds.is_empty());
        assert!(config.interval_ns_min <= config.interval_ns_max);
        assert!(config.fault_ns_min <= config.fault_ns_max);
        assert!(node_count > 0);
        Self {
            config,
            node_count,
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
        let node = self.rng.random_range(0..self.node_count);
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

    /// A random non-empty minority (at least one node, fewer than half when possible).
    fn random_minority(&mut self) -> Vec<NodeId> {
        let size = ((self.node_count.saturating_sub(1)) / 2).max(1);
        let mut nodes: Vec<NodeId> = (0..self.node_count).collect();
        // u32 draws, never usize: wasm32 and x86_64 must draw the same numbers.
        for i in 0..size {
            let j = self.rng.random_range(i..self.node_count);
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

    fn config() -> NemesisConfig {
        NemesisConfig {
            kinds: NemesisKind::ALL.to_vec(),
            interval_ns_min: 10,
            interval_ns_max: 20,
            fault_ns_min: 5,
            fault_ns_max: 6,
            skew_ns_max: 1_000,
        }
    }

    #[test]
    fn every_strike_is_undone_by_the_next_action() {
        let mut nemesis = Nemesis::new(config(), 5, ChaCha8Rng::seed_from_u64(3));
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
            let mut nemesis = Nemesis::new(config(), 3, ChaCha8Rng::seed_from_u64(seed));
            (0..20).map(|_| nemesis.act()).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }
}
