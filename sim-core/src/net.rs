//! The virtual network: per-link latency, loss, duplication, reordering and partitions.
//!
//! `Net` decides the fate of one message at send time (dropped, or delivered after a
//! delay, maybe twice) and whether a link is cut at delivery time. Each directed link
//! draws from its own random stream (`rng::link_stream_id`), the same draws for every
//! message whatever cut is in force, so a change on one link (a fault removed, a message
//! more) never moves another link's fates: what shrinking a run relies on. It never holds
//! messages, never sees their contents and never knows a protocol: the engine owns the
//! queue.
//!
//! Rules (documented for users, tested below):
//! - A message to oneself is delivered after `SELF_DELAY_NS`, never lost or cut.
//! - Partitions are checked at send and again at delivery: a message on the wire when a
//!   cut starts is lost, as with a firewall that drops packets on arrival.
//! - Reordering delays a message by up to `reorder_ns_max` extra, so later messages on the
//!   same link overtake it; with fixed latency and no reordering a link is FIFO.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::ids::NodeId;

pub const SELF_DELAY_NS: u64 = 1_000;
/// The largest latency any model may produce (one hour), so `now + delay` never wraps.
pub const LATENCY_NS_MAX: u64 = 3_600_000_000_000;
pub const PPM: u32 = 1_000_000;

/// How long a message takes on a link, in integer nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latency {
    Fixed {
        ns: u64,
    },
    Uniform {
        min_ns: u64,
        max_ns: u64,
    },
    /// Pareto with shape 1, truncated: `P(latency > x) = min/x` up to `max_ns`. The
    /// median is twice the minimum and one message in a hundred takes a hundred times it.
    /// Sampled by inverse CDF in integers: `min * 2^32 / (2^32 - u)`.
    LongTail {
        min_ns: u64,
        max_ns: u64,
    },
}

impl Latency {
    pub fn validate(&self) -> Result<(), String> {
        let (min, max) = match *self {
            Latency::Fixed { ns } => (ns, ns),
            Latency::Uniform { min_ns, max_ns } | Latency::LongTail { min_ns, max_ns } => {
                (min_ns, max_ns)
            }
        };
        if min > max {
            return Err(format!(
                "latency minimum {min} ns exceeds its maximum {max} ns"
            ));
        }
        if max > LATENCY_NS_MAX {
            return Err(format!("latency {max} ns exceeds the one-hour limit"));
        }
        if matches!(self, Latency::LongTail { .. }) && min == 0 {
            return Err("a long-tail latency needs a minimum above zero".into());
        }
        Ok(())
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> u64 {
        match *self {
            Latency::Fixed { ns } => ns,
            Latency::Uniform { min_ns, max_ns } => rng.random_range(min_ns..=max_ns),
            Latency::LongTail { min_ns, max_ns } => {
                let u: u64 = rng.random_range(0..(1u64 << 32));
                let scaled = (min_ns as u128) << 32;
                let value = scaled / ((1u128 << 32) - u as u128);
                (value.min(max_ns as u128)) as u64
            }
        }
    }
}

/// The behaviour of one directed link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkModel {
    pub latency: Latency,
    /// Deliver in send order, as a TCP stream does: a message never overtakes an earlier
    /// one on the same link (it waits for it). Jitter is kept, reordering is not.
    pub fifo: bool,
    pub loss_ppm: u32,
    pub duplicate_ppm: u32,
    pub reorder_ppm: u32,
    pub reorder_ns_max: u64,
}

impl Default for LinkModel {
    fn default() -> Self {
        Self {
            latency: Latency::Fixed { ns: 1_000_000 },
            fifo: false,
            loss_ppm: 0,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            reorder_ns_max: 0,
        }
    }
}

impl LinkModel {
    pub fn validate(&self) -> Result<(), String> {
        self.latency.validate()?;
        for (name, ppm) in [
            ("loss", self.loss_ppm),
            ("duplicate", self.duplicate_ppm),
            ("reorder", self.reorder_ppm),
        ] {
            if ppm > PPM {
                return Err(format!("{name} probability above 1"));
            }
        }
        if self.reorder_ns_max > LATENCY_NS_MAX {
            return Err("reorder window exceeds the one-hour limit".into());
        }
        Ok(())
    }
}

/// Why a message never arrived.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    Loss,
    Partition,
    /// The destination was down, or restarted since the message was sent.
    Crashed,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Loss => "loss",
            DropReason::Partition => "partition",
            DropReason::Crashed => "crashed",
        }
    }

    /// A small number for the trace hash: 1, 2, 3 (0 means no drop).
    pub fn code(self) -> u64 {
        self as u64 + 1
    }
}

/// What the network does with one message at send time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Drop(DropReason),
    Deliver {
        delay_ns: u64,
        duplicate_delay_ns: Option<u64>,
    },
}

/// The network of one run.
#[derive(Clone, Debug)]
pub struct Net {
    default: LinkModel,
    overrides: BTreeMap<(NodeId, NodeId), LinkModel>,
    /// Partition side of each node; two nodes on different sides cannot talk.
    sides: Vec<u32>,
    one_way_cuts: BTreeSet<(NodeId, NodeId)>,
    /// True when any cut is in force, so the common case skips the lookups.
    any_cut: bool,
    /// The latest arrival time scheduled on each FIFO link.
    fifo_arrival_ns: BTreeMap<(NodeId, NodeId), u64>,
    seed: u64,
    /// Each used link's index in `streams`; streams are made on a link's first message.
    stream_of: BTreeMap<(NodeId, NodeId), u32>,
    streams: Vec<ChaCha8Rng>,
}

impl Net {
    /// A whole network; `seed` is the run's, from which each link's stream is derived.
    pub fn new(node_count: u32, default: LinkModel, seed: u64) -> Self {
        assert!(default.validate().is_ok());
        Self {
            default,
            overrides: BTreeMap::new(),
            sides: vec![0; node_count as usize],
            one_way_cuts: BTreeSet::new(),
            any_cut: false,
            fifo_arrival_ns: BTreeMap::new(),
            seed,
            stream_of: BTreeMap::new(),
            streams: Vec::new(),
        }
    }

    pub fn set_link(&mut self, from: NodeId, to: NodeId, model: LinkModel) {
        assert!(model.validate().is_ok());
        self.overrides.insert((from, to), model);
    }

    /// Splits the nodes into sides; nodes not named form one more side together.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        let rest_side = groups.len() as u32 + 1;
        self.sides.iter_mut().for_each(|side| *side = rest_side);
        for (index, group) in groups.iter().enumerate() {
            for node in group {
                self.sides[*node as usize] = index as u32 + 1;
            }
        }
        self.any_cut = true;
    }

    /// Cuts every link from a node in `from` to a node in `to`, one direction only.
    pub fn cut_one_way(&mut self, from: &[NodeId], to: &[NodeId]) {
        for a in from {
            for b in to {
                if a != b {
                    self.one_way_cuts.insert((*a, *b));
                }
            }
        }
        self.any_cut = !self.one_way_cuts.is_empty() || self.any_cut;
    }

    /// Removes every partition and one-way cut.
    pub fn heal(&mut self) {
        self.sides.iter_mut().for_each(|side| *side = 0);
        self.one_way_cuts.clear();
        self.any_cut = false;
    }

    #[inline]
    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        if !self.any_cut || from == to {
            return false;
        }
        self.sides[from as usize] != self.sides[to as usize]
            || self.one_way_cuts.contains(&(from, to))
    }

    /// The partition side of each node (all equal when healed), for displays.
    pub fn sides(&self) -> &[u32] {
        &self.sides
    }

    /// Decides at send time (`now_ns`) what happens to one message from `from` to `to`.
    /// The link's draws come first and do not depend on cuts, so a partition removed
    /// or added leaves the fates of the link's other messages as they were.
    #[inline]
    pub fn fate(&mut self, from: NodeId, to: NodeId, now_ns: u64) -> Fate {
        if from == to {
            return Fate::Deliver {
                delay_ns: SELF_DELAY_NS,
                duplicate_delay_ns: None,
            };
        }
        let model = if self.overrides.is_empty() {
            self.default
        } else {
            *self.overrides.get(&(from, to)).unwrap_or(&self.default)
        };
        let rng = self.link_stream(from, to);
        let lost = model.loss_ppm > 0 && rng.random_range(0..PPM) < model.loss_ppm;
        let mut delay_ns = delay(&model, rng);
        let duplicate = model.duplicate_ppm > 0 && rng.random_range(0..PPM) < model.duplicate_ppm;
        let mut duplicate_delay_ns = if duplicate {
            Some(delay(&model, rng))
        } else {
            None
        };
        if self.is_cut(from, to) {
            return Fate::Drop(DropReason::Partition);
        }
        if lost {
            return Fate::Drop(DropReason::Loss);
        }
        if model.fifo {
            let last = self.fifo_arrival_ns.entry((from, to)).or_insert(0);
            delay_ns = delay_ns.max(last.saturating_sub(now_ns));
            *last = now_ns + delay_ns;
            if let Some(copy_ns) = &mut duplicate_delay_ns {
                *copy_ns = (*copy_ns).max(delay_ns);
                *last = now_ns + *copy_ns;
            }
        }
        Fate::Deliver {
            delay_ns,
            duplicate_delay_ns,
        }
    }

    /// The link's own random stream, made on its first message.
    fn link_stream(&mut self, from: NodeId, to: NodeId) -> &mut ChaCha8Rng {
        let next = self.streams.len() as u32;
        let index = *self.stream_of.entry((from, to)).or_insert(next);
        if index == next {
            let id = crate::rng::link_stream_id(from, to);
            self.streams.push(crate::rng::stream(self.seed, id));
        }
        &mut self.streams[index as usize]
    }
}

/// One delivery's delay on a link: its latency, plus a reordering delay now and then.
fn delay(model: &LinkModel, rng: &mut ChaCha8Rng) -> u64 {
    let mut delay_ns = model.latency.sample(rng);
    if model.reorder_ppm > 0 && rng.random_range(0..PPM) < model.reorder_ppm {
        delay_ns += rng.random_range(0..=model.reorder_ns_max);
    }
    debug_assert!(delay_ns <= 2 * LATENCY_NS_MAX);
    delay_ns
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(model: LinkModel) -> Net {
        Net::new(4, model, 1)
    }

    #[test]
    fn a_two_way_partition_cuts_both_directions_and_heal_restores() {
        let mut net = net(LinkModel::default());
        net.partition(&[vec![0, 1]]);
        assert!(net.is_cut(0, 2) && net.is_cut(2, 0));
        assert!(!net.is_cut(0, 1) && !net.is_cut(2, 3), "same side talks");
        assert_eq!(net.fate(0, 3, 0), Fate::Drop(DropReason::Partition));
        net.heal();
        assert!(!net.is_cut(0, 2));
    }

    #[test]
    fn a_one_way_cut_leaves_the_other_direction_open() {
        let mut net = net(LinkModel::default());
        net.cut_one_way(&[0], &[1]);
        assert!(net.is_cut(0, 1));
        assert!(!net.is_cut(1, 0));
    }

    #[test]
    fn messages_to_oneself_are_never_cut_or_lost() {
        let mut net = net(LinkModel {
            loss_ppm: PPM,
            ..LinkModel::default()
        });
        net.partition(&[vec![0]]);
        assert!(matches!(net.fate(0, 0, 0), Fate::Deliver { .. }));
    }

    #[test]
    fn loss_and_duplication_follow_their_probabilities() {
        let model = LinkModel {
            loss_ppm: 250_000,
            duplicate_ppm: 500_000,
            ..Default::default()
        };
        let mut net = net(model);
        let (mut lost, mut duplicated) = (0, 0);
        for _ in 0..10_000 {
            match net.fate(0, 1, 0) {
                Fate::Drop(DropReason::Loss) => lost += 1,
                Fate::Deliver {
                    duplicate_delay_ns: Some(_),
                    ..
                } => duplicated += 1,
                _ => {}
            }
        }
        assert!((2_200..2_800).contains(&lost), "{lost}");
        assert!((3_400..4_100).contains(&duplicated), "{duplicated}");
    }

    #[test]
    fn long_tail_latency_stays_in_bounds_with_median_twice_the_minimum() {
        let model = LinkModel {
            latency: Latency::LongTail {
                min_ns: 1_000,
                max_ns: 1_000_000,
            },
            ..Default::default()
        };
        let mut net = net(model);
        let mut delays: Vec<u64> = (0..10_001)
            .map(|_| match net.fate(0, 1, 0) {
                Fate::Deliver { delay_ns, .. } => delay_ns,
                Fate::Drop(_) => unreachable!("no loss configured"),
            })
            .collect();
        delays.sort_unstable();
        assert!(delays[0] >= 1_000 && delays[10_000] <= 1_000_000);
        assert!(
            (1_800..2_200).contains(&delays[5_000]),
            "median {}",
            delays[5_000]
        );
        assert!(
            delays[9_990] > 50_000,
            "a real tail: p99.9 {}",
            delays[9_990]
        );
    }

    #[test]
    fn a_links_fates_ignore_other_links_and_cuts_that_came_and_went() {
        let lossy = LinkModel {
            latency: Latency::Uniform {
                min_ns: 1,
                max_ns: 1_000,
            },
            loss_ppm: 300_000,
            duplicate_ppm: 100_000,
            ..Default::default()
        };
        let fates = |other_traffic: bool, cut_first: bool| {
            let mut net = net(lossy);
            if cut_first {
                net.partition(&[vec![0]]);
            }
            let mut later = Vec::new();
            for now in 0..200 {
                if other_traffic {
                    net.fate(2, 3, now);
                    net.fate(3, 2, now);
                }
                let fate = net.fate(0, 1, now);
                if now == 20 {
                    net.heal();
                }
                if now > 20 {
                    later.push(fate);
                }
            }
            later
        };
        let alone = fates(false, false);
        assert!(
            alone.contains(&Fate::Drop(DropReason::Loss)),
            "a lossy link"
        );
        assert_eq!(
            alone,
            fates(true, false),
            "traffic elsewhere changes nothing"
        );
        assert_eq!(
            alone,
            fates(false, true),
            "a healed cut changes nothing later"
        );
    }

    #[test]
    fn overrides_apply_to_one_directed_link() {
        let mut net = net(LinkModel::default());
        net.set_link(
            0,
            1,
            LinkModel {
                loss_ppm: PPM,
                ..Default::default()
            },
        );
        assert_eq!(net.fate(0, 1, 0), Fate::Drop(DropReason::Loss));
        assert!(matches!(net.fate(1, 0, 0), Fate::Deliver { .. }));
    }

    #[test]
    fn a_fifo_link_keeps_send_order_despite_jitter() {
        let jittery = LinkModel {
            latency: Latency::Uniform {
                min_ns: 1,
                max_ns: 1_000,
            },
            ..Default::default()
        };
        let arrivals = |fifo: bool| {
            let mut net = net(LinkModel { fifo, ..jittery });
            (0..200u64)
                .map(|now| match net.fate(0, 1, now) {
                    Fate::Deliver { delay_ns, .. } => now + delay_ns,
                    Fate::Drop(_) => unreachable!("no loss configured"),
                })
                .collect::<Vec<u64>>()
        };
        assert!(
            arrivals(true).windows(2).all(|w| w[0] <= w[1]),
            "FIFO keeps order"
        );
        assert!(
            arrivals(false).windows(2).any(|w| w[0] > w[1]),
            "jitter alone reorders"
        );
    }

    #[test]
    fn invalid_models_are_refused_with_a_reason() {
        let bad = Latency::Uniform {
            min_ns: 5,
            max_ns: 1,
        };
        assert!(bad.validate().unwrap_err().contains("exceeds its maximum"));
        let tail = Latency::LongTail {
            min_ns: 0,
            max_ns: 10,
        };
        assert!(tail.validate().is_err());
    }
}
