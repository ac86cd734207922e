//! Broadcast's checkers, fed only by observations and crashes.

use std::collections::{BTreeMap, BTreeSet};

use super::{Broadcast, MessageId, Obs};
use crate::check::{EndState, Invariant};
use crate::node::NodeId;

/// Delivered messages were broadcast, are delivered once, and are never forgotten.
#[derive(Default)]
pub struct Integrity {
    broadcast: BTreeSet<MessageId>,
    delivered: BTreeMap<NodeId, BTreeSet<MessageId>>,
}

impl Invariant<Broadcast> for Integrity {
    fn name(&self) -> &'static str {
        "broadcast.integrity"
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &Obs) -> Result<(), String> {
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
#[derive(Default)]
pub struct Agreement {
    delivered: BTreeMap<NodeId, BTreeSet<MessageId>>,
}

impl Invariant<Broadcast> for Agreement {
    fn name(&self) -> &'static str {
        "broadcast.agreement"
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &Obs) -> Result<(), String> {
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
