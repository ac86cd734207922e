//! What ZAB runs are checked for, from the observations its peers make; they run in any
//! cluster whose nodes host a ZAB peer.
//!
//! - `zab.one-leader-per-epoch`: no two servers establish the same epoch.
//! - `zab.agreement`: every server applies one global sequence of committed
//!   transactions: the same transactions in the same order, none skipped, none undone
//!   (checked by running digests, so a snapshot or restart is checked too).

use std::collections::{BTreeMap, BTreeSet};

use super::{show_zxid, Obs, Zxid};
use crate::chunked::Chunked;
use crate::invariant::Invariant;
use crate::node::{NodeId, Proto, Wraps};

pub const ONE_LEADER_PER_EPOCH: &str = "zab.one-leader-per-epoch";
pub const AGREEMENT: &str = "zab.agreement";

/// The global committed sequence, as the first server to apply each transaction saw it,
/// and where each server stands in it.
///
/// The sequence only grows, for the whole run, and zxids rise along it (a transaction's
/// zxid is its place in ZAB's total order; `on_applied` fails one that does not rise):
/// so it is found by binary search rather than a map beside it, and kept in chunks that
/// copies of the run (the browser's checkpoints) share.
#[derive(Clone, Default)]
pub struct Chain {
    /// (zxid, digest of the history up to it), zxids strictly rising.
    entries: Chunked<(Zxid, u64)>,
    position: BTreeMap<NodeId, Option<usize>>,
    /// Servers whose history left the committed one: followed again once a state they
    /// load or apply matches it (same zxid, same digest: the same history).
    lost_track: BTreeSet<NodeId>,
}

/// How a server's applied sequence left the global one.
pub struct Divergence {
    pub message: String,
    /// Global entries the server skipped or undid.
    pub lost: Vec<Zxid>,
}

impl Chain {
    /// Where `zxid` is in the committed sequence, if it is there.
    fn find(&self, zxid: Zxid) -> Option<usize> {
        let at = self.entries.partition_point(|(z, _)| *z < zxid);
        self.entries.get(at).filter(|(z, _)| *z == zxid).map(|_| at)
    }

    fn entry(&self, pos: usize) -> (Zxid, u64) {
        *self
            .entries
            .get(pos)
            .expect("positions are in the sequence")
    }

    /// Transactions committed from position `from` on, `count` of them at most.
    fn zxids_from(&self, from: usize, count: usize) -> Vec<Zxid> {
        self.entries
            .iter_from(from)
            .take(count)
            .map(|(z, _)| *z)
            .collect()
    }

    /// Stops checking `node` until its state matches the committed sequence again.
    pub fn lose_track(&mut self, node: NodeId) {
        self.position.remove(&node);
        self.lost_track.insert(node);
    }

    pub fn on_obs(&mut self, node: NodeId, obs: &Obs) -> Result<(), Divergence> {
        if self.lost_track.contains(&node) {
            if let Obs::Loaded { zxid, digest } | Obs::Applied { zxid, digest } = *obs {
                let found = self.find(zxid);
                let matching = zxid == 0 && digest == 0
                    || found.is_some_and(|pos| self.entry(pos).1 == digest);
                if matching {
                    self.lost_track.remove(&node);
                    self.position.insert(node, found.filter(|_| zxid != 0));
                }
            }
            return Ok(());
        }
        match *obs {
            Obs::Loaded { zxid, digest } => self.on_loaded(node, zxid, digest),
            Obs::Applied { zxid, digest } => self.on_applied(node, zxid, digest),
            Obs::Truncated { to, applied } => {
                let lost = self.zxids_in(to, applied);
                Err(Divergence {
                    message: format!(
                        "server {node} truncated committed transactions after {} (it had applied up to {})",
                        show_zxid(to),
                        show_zxid(applied)
                    ),
                    lost,
                })
            }
            _ => Ok(()),
        }
    }

    fn zxids_in(&self, after: Zxid, up_to: Zxid) -> Vec<Zxid> {
        let from = self.entries.partition_point(|(z, _)| *z <= after);
        let to = self.entries.partition_point(|(z, _)| *z <= up_to);
        self.zxids_from(from, to.saturating_sub(from))
    }

    fn on_loaded(&mut self, node: NodeId, zxid: Zxid, digest: u64) -> Result<(), Divergence> {
        if zxid == 0 {
            self.position.insert(node, None);
            return Ok(());
        }
        let Some(pos) = self.find(zxid) else {
            return Err(Divergence {
                message: format!(
                    "server {node} loaded a state at {} that was never committed",
                    show_zxid(zxid)
                ),
                lost: Vec::new(),
            });
        };
        if self.entry(pos).1 != digest {
            return Err(Divergence {
                message: format!(
                    "server {node} loaded a state at {} with a different history",
                    show_zxid(zxid)
                ),
                lost: Vec::new(),
            });
        }
        self.position.insert(node, Some(pos));
        Ok(())
    }

    fn on_applied(&mut self, node: NodeId, zxid: Zxid, digest: u64) -> Result<(), Divergence> {
        let last = self.position.get(&node).copied().flatten();
        let expected = last.map_or(0, |p| p + 1);
        let after = last.map_or("the empty state".to_string(), |p| {
            show_zxid(self.entry(p).0)
        });
        let pos = match self.find(zxid) {
            Some(pos) => pos,
            None => {
                if expected != self.entries.len() {
                    let lost = self.zxids_from(expected, usize::MAX);
                    return Err(Divergence {
                        message: format!(
                            "server {node} applied {} after {after}, but {} was committed there first",
                            show_zxid(zxid),
                            show_zxid(lost[0])
                        ),
                        lost,
                    });
                }
                if let Some(&(top, _)) = self.entries.last().filter(|(top, _)| *top >= zxid) {
                    return Err(Divergence {
                        message: format!(
                            "server {node} applied {} after {after}, below {} committed \
                             before it: zxids order the transactions",
                            show_zxid(zxid),
                            show_zxid(top)
                        ),
                        lost: Vec::new(),
                    });
                }
                self.entries.push((zxid, digest));
                expected
            }
        };
        if pos != expected {
            let lost = if pos > expected {
                self.zxids_from(expected, pos - expected)
            } else {
                Vec::new()
            };
            return Err(Divergence {
                message: format!(
                    "server {node} applied {} out of order, after {after}",
                    show_zxid(zxid)
                ),
                lost,
            });
        }
        if self.entry(pos).1 != digest {
            return Err(Divergence {
                message: format!(
                    "server {node} applied {} with a history that differs from the committed one",
                    show_zxid(zxid)
                ),
                lost: vec![zxid],
            });
        }
        self.position.insert(node, Some(pos));
        Ok(())
    }
}

#[derive(Clone, Default)]
pub struct OneLeaderPerEpoch {
    chosen: BTreeMap<u32, NodeId>,
}

impl<P: Proto<Obs: Wraps<Obs>>> Invariant<P> for OneLeaderPerEpoch {
    fn name(&self) -> &'static str {
        ONE_LEADER_PER_EPOCH
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &P::Obs) -> Result<(), String> {
        if let Some(Obs::EpochEstablished { epoch }) = obs.part() {
            if let Some(other) = self.chosen.insert(*epoch, node) {
                if other != node {
                    return Err(format!(
                        "servers {other} and {node} both lead epoch {epoch}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Elections that ended in an established leader: what a fault cost.
    fn stats(&self) -> Vec<(String, u64)> {
        vec![("zab.epochs".to_string(), self.chosen.len() as u64)]
    }
}

#[derive(Clone, Default)]
pub struct Agreement {
    chain: Chain,
}

impl<P: Proto<Obs: Wraps<Obs>>> Invariant<P> for Agreement {
    fn name(&self) -> &'static str {
        AGREEMENT
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &P::Obs) -> Result<(), String> {
        match obs.part() {
            Some(obs) => self.chain.on_obs(node, obs).map_err(|d| d.message),
            None => Ok(()),
        }
    }

    fn stats(&self) -> Vec<(String, u64)> {
        vec![("zab.committed".to_string(), self.chain.entries.len() as u64)]
    }
}
