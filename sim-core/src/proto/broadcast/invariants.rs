//! Broadcast's checkers, fed only by observations and crashes.

use std::collections::{BTreeMap, BTreeSet};

use super::{Host, MessageId, Obs};
use crate::invariant::{EndState, Invariant};
use crate::node::{NodeId, Wraps};

pub const INTEGRITY: &str = "broadcast.integrity";
pub const AGREEMENT: &str = "broadcast.agreement";

/// Delivered messages were broadcast, are delivered once, and are never forgotten.
#[derive(Clone, Default)]
pub struct Integrity {
    broadcast: BTreeSet<MessageId>,
    delivered: BTreeMap<NodeId, BTreeSet<MessageId>>,
}

impl<H: Host> Invariant<H> for Integrity {
    fn name(&self) -> &'static str {
        INTEGRITY
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let Some(obs) = Wraps::<Obs>::part(obs) else {
            return Ok(());
        };
        match obs {
            Obs::Broadcast(id) => {
                if id.0 != node || !self.broadcast.insert(*id) {
                    return Err(format!(
                        "node {node} broadcast {id:?} twice or not as origin"
                    ));
                }
            }
            Obs::Deliver(id) => {
                // The origin delivers its own message just before reporting the broadcast.
                if id.0 != node && !self.broadcast.contains(id) {
                    return Err(format!(
                        "node {node} delivered {id:?}, which nobody broadcast"
                    ));
                }
                if !self.delivered.entry(node).or_default().insert(*id) {
                    return Err(format!("node {node} delivered {id:?} twice"));
                }
            }
            Obs::Recovered(ids) => {
                let recovered: BTreeSet<MessageId> = ids.iter().copied().collect();
                let before = self.delivered.entry(node).or_default();
                if let Some(lost) = before.difference(&recovered).next() {
                    return Err(format!(
                        "node {node} forgot {lost:?}, which it had delivered"
                    ));
                }
                *before = recovered;
            }
        }
        Ok(())
    }
}

/// By the end, every running peer delivered every message any peer delivered.
#[derive(Clone, Default)]
pub struct Agreement {
    delivered: BTreeMap<NodeId, BTreeSet<MessageId>>,
}

impl<H: Host> Invariant<H> for Agreement {
    fn name(&self) -> &'static str {
        AGREEMENT
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let Some(obs) = Wraps::<Obs>::part(obs) else {
            return Ok(());
        };
        match obs {
            Obs::Deliver(id) => {
                self.delivered.entry(node).or_default().insert(*id);
            }
            Obs::Recovered(ids) => {
                self.delivered.insert(node, ids.iter().copied().collect());
            }
            Obs::Broadcast(_) => {}
        }
        Ok(())
    }

    fn at_end(&mut self, end: &EndState) -> Result<(), String> {
        let everything: BTreeSet<MessageId> = self.delivered.values().flatten().copied().collect();
        let mut missing = Vec::new();
        for (node, up) in end.up.iter().enumerate() {
            if !up {
                continue;
            }
            let node = node as NodeId;
            let have = self.delivered.get(&node).cloned().unwrap_or_default();
            for id in everything.difference(&have) {
                missing.push(format!("node {node} lacks {id:?}"));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let shown: Vec<String> = missing.iter().take(5).cloned().collect();
        Err(format!(
            "no progress: {} deliveries missing after the quiet phase: {}{}",
            missing.len(),
            shown.join(", "),
            if missing.len() > 5 { ", ..." } else { "" }
        ))
    }
}
