//! The fault schedule and the seeded random nemesis.
//!
//! A `Fault` is a value: the engine applies it at its time and records it in the trace.
//! Scheduled faults come from the scenario (or the browser's clicks, which join the
//! schedule so a run stays replayable); the `Nemesis` invents faults from its own random
//! stream for swarms. Neither ever touches a node, the network or a disk directly.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::disk::DiskFaults;
use crate::ids::NodeId;

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

/// The most nodes one fault spec may name (bounds the parsing work of a URL).
pub const SPEC_NODES_MAX: usize = 64;

impl ScheduledFault {
    /// Reads a hand-injected fault, as `faultline run --fault` and the browser's URL write
    /// them: `crash:3@1.2s`, `restart:3@2s`, `pause:4@1s`, `resume:4@1.5s`,
    /// `partition:0,4@2.2s` (the listed nodes cut off from the rest; several groups are
    /// separated by `/`: `partition:0,1/2,3@1s`), `oneway:0,1>2@1s` (messages from 0 and
    /// 1 to 2 are dropped; one-way cuts add up, so two cut one link both ways) and
    /// `heal@3s`.
    pub fn parse_spec(spec: &str) -> Result<ScheduledFault, String> {
        let expected = "expected ACTION[:NODES]@TIME, e.g. `crash:3@1.2s`, `partition:0,4@2s`, \
                        `heal@3s` (actions: crash, restart, pause, resume, partition, heal)";
        let Some((action, time)) = spec.rsplit_once('@') else {
            return Err(format!("fault `{spec}`: no `@TIME`; {expected}"));
        };
        let at_ns = crate::units::parse_duration_ns(time)
            .map_err(|error| format!("fault `{spec}`: bad time: {error}"))?;
        let at_ns =
            u64::try_from(at_ns).map_err(|_| format!("fault `{spec}`: time is negative"))?;
        let (name, args) = action.split_once(':').unwrap_or((action, ""));
        let node = || -> Result<NodeId, String> {
            args.parse::<NodeId>()
                .map_err(|_| format!("fault `{spec}`: `{name}` needs one node id, found `{args}`"))
        };
        let fault = match name {
            "crash" => Fault::Crash { node: node()? },
            "restart" => Fault::Restart { node: node()? },
            "pause" => Fault::Pause { node: node()? },
            "resume" => Fault::Resume { node: node()? },
            "heal" if args.is_empty() => Fault::Heal,
            "partition" => Fault::Partition {
                groups: parse_groups(spec, args)?,
            },
            "oneway" => {
                let (from, to) = args.split_once('>').ok_or_else(|| {
                    format!("fault `{spec}`: `oneway` needs FROM>TO, e.g. `0,1>2`")
                })?;
                let mut groups = parse_groups(spec, &format!("{from}/{to}"))?;
                if groups.len() != 2 {
                    return Err(format!(
                        "fault `{spec}`: `oneway` needs FROM>TO, e.g. `0,1>2`"
                    ));
                }
                let to = groups.pop().expect("two groups");
                let from = groups.pop().expect("two groups");
                Fault::PartitionOneWay { from, to }
            }
            _ => {
                return Err(format!(
                    "fault `{spec}`: unknown action `{name}`; {expected}"
                ))
            }
        };
        Ok(ScheduledFault { at_ns, fault })
    }

    /// The spec `parse_spec` reads back; `None` for faults it has no syntax for.
    pub fn spec(&self) -> Option<String> {
        let action = match &self.fault {
            Fault::Crash { node } => format!("crash:{node}"),
            Fault::Restart { node } => format!("restart:{node}"),
            Fault::Pause { node } => format!("pause:{node}"),
            Fault::Resume { node } => format!("resume:{node}"),
            Fault::Heal => "heal".to_string(),
            Fault::Partition { groups } => {
                let groups: Vec<String> = groups
                    .iter()
                    .map(|group| {
                        let ids: Vec<String> = group.iter().map(u32::to_string).collect();
                        ids.join(",")
                    })
                    .collect();
                format!("partition:{}", groups.join("/"))
            }
            Fault::PartitionOneWay { from, to } => {
                let ids = |group: &[NodeId]| {
                    let ids: Vec<String> = group.iter().map(u32::to_string).collect();
                    ids.join(",")
                };
                format!("oneway:{}>{}", ids(from), ids(to))
            }
            _ => return None,
        };
        Some(format!(
            "{action}@{}",
            crate::units::format_duration(self.at_ns)
        ))
    }
}

fn parse_groups(spec: &str, args: &str) -> Result<Vec<Vec<NodeId>>, String> {
    let mut groups = Vec::new();
    let mut named = 0;
    for group in args.split('/') {
        let mut ids = Vec::new();
        for id in group.split(',') {
            let id = id.parse::<NodeId>().map_err(|_| {
                format!(
                    "fault `{spec}`: partition groups are node ids like `0,4/1,2`, found `{id}`"
                )
            })?;
            named += 1;
            if named > SPEC_NODES_MAX {
                return Err(format!("fault `{spec}`: more than {SPEC_NODES_MAX} nodes"));
            }
            ids.push(id);
        }
        groups.push(ids);
    }
    Ok(groups)
}

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

    #[test]
    fn fault_specs_round_trip() {
        for spec in [
            "crash:3@1.2s",
            "restart:3@2s",
            "pause:4@1ms",
            "resume:4@1.5s",
            "partition:0,4@2.2s",
            "partition:0,1/2,3@1s",
            "oneway:0,1>2@1s",
            "heal@3s",
        ] {
            let fault = ScheduledFault::parse_spec(spec).unwrap();
            assert_eq!(fault.spec().as_deref(), Some(spec));
        }
        let crash = ScheduledFault::parse_spec("crash:3@1.2s").unwrap();
        assert_eq!(crash.at_ns, 1_200_000_000);
        assert_eq!(crash.fault, Fault::Crash { node: 3 });
    }

    #[test]
    fn bad_fault_specs_say_what_is_expected() {
        for (spec, wanted) in [
            ("crash:3", "no `@TIME`"),
            ("crash:x@1s", "needs one node id"),
            ("explode:1@1s", "unknown action `explode`"),
            ("partition:0,a@1s", "partition groups are node ids"),
            ("crash:1@-1s", "negative"),
            ("crash:1@1parsec", "bad time"),
            ("heal:1@1s", "unknown action `heal`"),
            ("oneway:0,1@1s", "needs FROM>TO"),
            ("oneway:0>1/2@1s", "needs FROM>TO"),
        ] {
            let error = ScheduledFault::parse_spec(spec).unwrap_err();
            assert!(error.contains(wanted), "{spec}: {error}");
        }
        let many = format!("partition:{}@1s", vec!["1"; SPEC_NODES_MAX + 1].join(","));
        assert!(ScheduledFault::parse_spec(&many)
            .unwrap_err()
            .contains("more than"));
    }

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
            let mut nemesis = Nemesis::new(config(), 3, ChaCha8Rng::seed_from_u64(seed));
            (0..20).map(|_| nemesis.act()).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }
}
