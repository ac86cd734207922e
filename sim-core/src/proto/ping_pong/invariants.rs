//! Ping-pong's checkers: pongs in order per client, and every client done by the end.

use std::collections::BTreeMap;

use super::Obs;
use crate::invariant::{EndState, Invariant};
use crate::node::{NodeId, Proto, Wraps};

pub const ORDER: &str = "ping-pong.order";
pub const PROGRESS: &str = "ping-pong.progress";

/// Each client sees rounds 0, 1, 2... in order (a restarted client starts again at 0).
#[derive(Clone, Default)]
pub struct Order {
    /// Indexed by node id: the benchmark checks thousands of clients per event.
    next: Vec<u64>,
}

impl<H: Proto<Obs: Wraps<Obs>>> Invariant<H> for Order {
    fn name(&self) -> &'static str {
        ORDER
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        if let Some(Obs::Pong(round)) = obs.part() {
            if self.next.len() <= node as usize {
                self.next.resize(node as usize + 1, 0);
            }
            let expected = &mut self.next[node as usize];
            if *round != *expected {
                return Err(format!(
                    "client {node} saw round {round}, expected {expected}"
                ));
            }
            *expected += 1;
        }
        Ok(())
    }

    fn on_crash(&mut self, node: NodeId) {
        if let Some(next) = self.next.get_mut(node as usize) {
            *next = 0;
        }
    }
}

/// Every client finishes all its rounds before the run ends.
#[derive(Clone)]
pub struct Progress {
    clients: Vec<NodeId>,
    done: BTreeMap<NodeId, bool>,
}

impl Progress {
    pub fn new(clients: Vec<NodeId>) -> Self {
        Self {
            clients,
            done: BTreeMap::new(),
        }
    }
}

impl<H: Proto<Obs: Wraps<Obs>>> Invariant<H> for Progress {
    fn name(&self) -> &'static str {
        PROGRESS
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        if let Some(Obs::Done) = obs.part() {
            self.done.insert(node, true);
        }
        Ok(())
    }

    fn on_crash(&mut self, node: NodeId) {
        self.done.remove(&node);
    }

    fn at_end(&mut self, _end: &EndState) -> Result<(), String> {
        let stalled: Vec<NodeId> = self
            .clients
            .iter()
            .copied()
            .filter(|c| !self.done.contains_key(c))
            .collect();
        if stalled.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "no progress: clients {stalled:?} did not finish their rounds"
            ))
        }
    }
}
