//! What ZAB runs are checked for, from the observations its peers make; they run in any
//! cluster whose nodes host a ZAB peer.
//!
//! - `zab.one-leader-per-epoch`: no two servers establish the same epoch.
//! - `zab.agreement`: every server applies one global sequence of committed
//!   transactions: the same transactions in the same order, none skipped, none undone
//!   (checked by running digests, so a snapshot or restart is checked too).

use std::collections::{BTreeMap, BTreeSet};

use super::{show_zxid, Obs, Zxid};
use crate::invariant::Invariant;
use crate::node::{NodeId, Proto, Wraps};

pub const ONE_LEADER_PER_EPOCH: &str = "zab.one-leader-per-epoch";
pub const AGREEMENT: &str = "zab.agreement";

/// The global committed sequence, as the first server to apply each transaction saw it,
/// and where each server stands in it.
#[derive(Clone, Default)]
pub struct Chain {
    entries: Vec<(Zxid, u64)>,
    index: BTreeMap<Zxid, usize>,
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
    /// Stops checking `node` until its state matches the committed sequence again.
    pub fn lose_track(&mut self, node: NodeId) {
        self.position.remove(&node);
        self.lost_track.insert(node);
    }

    pub fn on_obs(&mut self, node: NodeId, obs: &Obs) -> Result<(), Divergence> {
        if self.lost_track.contains(&node) {
            if let Obs::Loaded { zxid, digest } | Obs::Applied { zxid, digest } = *obs {
                let matching = zxid == 0 && digest == 0
                    || self
                        .index
                        .get(&zxid)
                        .is_some_and(|pos| self.entries[*pos].1 == digest);
                if matching {
                    self.lost_track.remove(&node);
                    let pos = (zxid != 0).then(|| self.index[&zxid]);
                    self.position.insert(node, pos);
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
        self.index
            .range(after + 1..=up_to)
            .map(|(z, _)| *z)
            .collect()
    }

    fn on_loaded(&mut self, node: NodeId, zxid: Zxid, digest: u64) -> Result<(), Divergence> {
        if zxid == 0 {
            self.position.insert(node, None);
            return Ok(());
        }
        let Some(&pos) = self.index.get(&zxid) else {
            return Err(Divergence {
                message: format!(
                    "server {node} loaded a state at {} that was never committed",
                    show_zxid(zxid)
                ),
                lost: Vec::new(),
            });
        };
        if self.entries[pos].1 != digest {
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
            show_zxid(self.entries[p].0)
        });
        let pos = match self.index.get(&zxid) {
            Some(&pos) => pos,
            None => {
                if expected != self.entries.len() {
                    let lost: Vec<Zxid> =
                        self.entries[expected..].iter().map(|(z, _)| *z).collect();
                    return Err(Divergence {
                        message: format!(
                            "server {node} applied {} after {after}, but {} was committed there first",
                            show_zxid(zxid),
                            show_zxid(lost[0])
                        ),
                        lost,
                    });
                }
                self.entries.push((zxid, digest));
                self.index.insert(zxid, expected);
                expected
            }
        };
        if pos != expected {
            let lost = if pos > expected {
                self.entries[expected..pos]
                    .iter()
                    .map(|(z, _)| *z)
                    .collect()
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
        if self.entries[pos].1 != digest {
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
