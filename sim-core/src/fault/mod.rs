//! The fault schedule and the seeded random nemesis.
//!
//! A `Fault` is a value: the engine applies it at its time and records it in the trace.
//! Scheduled faults come from the scenario (or the browser's clicks, which join the
//! schedule so a run stays replayable); the `Nemesis` (`nemesis.rs`) invents faults from
//! its own random stream for swarms, and the run records each one so that a failing run's
//! nemesis can be replaced by the schedule it produced. Every fault has one spelling
//! (`spec.rs`), the one `--fault`, the browser's URL, the trace and the run report use.
//! Neither ever touches a node, the network or a disk directly.

mod nemesis;
mod spec;

pub use nemesis::{Nemesis, NemesisConfig, NemesisKind};
pub use spec::SPEC_NODES_MAX;

use crate::disk::DiskFaults;
use crate::ids::NodeId;

/// The largest clock offset a fault may set (a day), either way.
pub const SKEW_NS_MAX: i64 = 24 * 3_600 * 1_000_000_000;
/// The largest clock drift a fault may set, either way, in parts per million.
pub const DRIFT_PPM_MAX: i32 = 100_000;

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

    /// The fault in `--fault` spelling without its time (`crash:3`, `partition:0,4`);
    /// traces show it and hash it.
    pub fn describe(&self) -> String {
        spec::action(self)
    }

    /// The same fault with every node id passed through `map`; `None` when a node it
    /// needs maps to nothing (a shrinker removing nodes drops such faults).
    pub fn map_nodes(&self, map: &dyn Fn(NodeId) -> Option<NodeId>) -> Option<Fault> {
        let list =
            |nodes: &[NodeId]| -> Vec<NodeId> { nodes.iter().filter_map(|n| map(*n)).collect() };
        Some(match self {
            Fault::Crash { node } => Fault::Crash { node: map(*node)? },
            Fault::Restart { node } => Fault::Restart { node: map(*node)? },
            Fault::Pause { node } => Fault::Pause { node: map(*node)? },
            Fault::Resume { node } => Fault::Resume { node: map(*node)? },
            Fault::ClockSkew {
                node,
                offset_ns,
                drift_ppm,
            } => Fault::ClockSkew {
                node: map(*node)?,
                offset_ns: *offset_ns,
                drift_ppm: *drift_ppm,
            },
            Fault::DiskFault { node, faults } => Fault::DiskFault {
                node: map(*node)?,
                faults: *faults,
            },
            Fault::Heal => Fault::Heal,
            Fault::Partition { groups } => {
                let groups: Vec<Vec<NodeId>> = groups
                    .iter()
                    .map(|group| list(group))
                    .filter(|group| !group.is_empty())
                    .collect();
                if groups.is_empty() {
                    return None;
                }
                Fault::Partition { groups }
            }
            Fault::PartitionOneWay { from, to } => {
                let (from, to) = (list(from), list(to));
                if from.is_empty() || to.is_empty() {
                    return None;
                }
                Fault::PartitionOneWay { from, to }
            }
        })
    }
}

/// A fault and the virtual time it strikes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledFault {
    pub at_ns: u64,
    pub fault: Fault,
}

impl ScheduledFault {
    /// Reads a fault in `--fault` spelling; see `spec.rs` for the grammar.
    pub fn parse_spec(text: &str) -> Result<ScheduledFault, String> {
        spec::parse(text)
    }

    /// The spelling `parse_spec` reads back: `crash:3@1.2s`.
    pub fn spec(&self) -> String {
        format!(
            "{}@{}",
            self.fault.describe(),
            crate::units::format_duration(self.at_ns)
        )
    }
}
