//! The shop's checkers, fed by what the order service and the warehouse observe:
//!
//! - `shop.published` (liveness): by the end every order the service committed was
//!   confirmed by the broker (its outbox row went out), unless it was committed within
//!   the last `bound` (the time a relay needs after the faults stop: a broken connection
//!   noticed, a reconnect, a republish), since clients may still be ordering then.
//! - `shop.no-duplicates`: the warehouse applies each order at most once, however often
//!   the broker delivers it.
//! - `shop.converged` (eventual conservation): by the end the warehouse's stock of each
//!   item is its opening stock less every committed order of it, once (an order from the
//!   last `bound` counts whether applied yet or not). While the run
//!   goes, the checker reports the divergence (orders committed, not yet applied) as
//!   the metric `divergence`, the consistency half of the CAP chart.

use std::collections::{BTreeMap, BTreeSet};

use super::{Host, Obs, OrderId};
use crate::invariant::{EndState, Invariant};
use crate::node::{NodeId, Wraps};

pub const PUBLISHED: &str = "shop.published";
pub const NO_DUPLICATES: &str = "shop.no-duplicates";
pub const CONVERGED: &str = "shop.converged";

#[derive(Clone)]
pub struct Published {
    bound_ns: u64,
    /// Committed orders not yet confirmed: the service that holds them, and when.
    waiting: BTreeMap<OrderId, (NodeId, u64)>,
}

impl Published {
    pub fn new(bound_ns: u64) -> Self {
        Self {
            bound_ns,
            waiting: BTreeMap::new(),
        }
    }
}

impl<H: Host> Invariant<H> for Published {
    fn name(&self) -> &'static str {
        PUBLISHED
    }

    fn on_observation(&mut self, time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        match Wraps::<Obs>::part(obs) {
            Some(Obs::Committed { order, .. }) => {
                self.waiting.insert(*order, (node, time_ns));
            }
            Some(Obs::Published { order }) => {
                self.waiting.remove(order);
            }
            _ => {}
        }
        Ok(())
    }

    fn at_end(&mut self, end: &EndState) -> Result<(), String> {
        let up = |node: NodeId| end.up.get(node as usize).copied().unwrap_or(false);
        let old = |time_ns: u64| end.time_ns.saturating_sub(time_ns) > self.bound_ns;
        let stuck: Vec<OrderId> = self
            .waiting
            .iter()
            .filter(|(_, (node, time_ns))| up(*node) && old(*time_ns))
            .map(|(order, _)| *order)
            .collect();
        if stuck.is_empty() {
            return Ok(());
        }
        let first: Vec<String> = stuck.iter().take(5).map(|o| format!("{o:#x}")).collect();
        Err(format!(
            "no progress: {} committed orders were never published (first: {})",
            stuck.len(),
            first.join(", ")
        ))
    }
}

#[derive(Clone, Default)]
pub struct NoDuplicates {
    applied: BTreeSet<OrderId>,
    redelivered: u64,
}

impl<H: Host> Invariant<H> for NoDuplicates {
    fn name(&self) -> &'static str {
        NO_DUPLICATES
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        match Wraps::<Obs>::part(obs) {
            Some(Obs::Applied { order, .. }) if !self.applied.insert(*order) => {
                return Err(format!(
                    "the warehouse (node {node}) applied order {order:#x} twice"
                ));
            }
            Some(Obs::Redelivered { .. }) => self.redelivered += 1,
            _ => {}
        }
        Ok(())
    }

    fn stats(&self) -> Vec<(String, u64)> {
        vec![("shop.redeliveries-ignored".to_string(), self.redelivered)]
    }
}

#[derive(Clone)]
pub struct Converged {
    warehouse: NodeId,
    bound_ns: u64,
    opening: Vec<i64>,
    /// Each committed order: item, quantity, when.
    committed: BTreeMap<OrderId, (u32, u32, u64)>,
    applied: BTreeSet<OrderId>,
    /// Committed orders not applied yet: the divergence.
    behind: u64,
    /// The warehouse's stock as last observed.
    stock: Option<Vec<i64>>,
    divergence: Option<u64>,
    divergence_max: u64,
    samples: Vec<u64>,
}

impl Converged {
    pub fn new(warehouse: NodeId, items: u32, stock: i64, bound_ns: u64) -> Self {
        Self {
            warehouse,
            bound_ns,
            opening: vec![stock; items as usize],
            committed: BTreeMap::new(),
            applied: BTreeSet::new(),
            behind: 0,
            stock: None,
            divergence: None,
            divergence_max: 0,
            samples: Vec::new(),
        }
    }

    fn sample(&mut self) {
        if self.divergence != Some(self.behind) {
            self.divergence = Some(self.behind);
            self.divergence_max = self.divergence_max.max(self.behind);
            self.samples.push(self.behind);
        }
    }
}

impl<H: Host> Invariant<H> for Converged {
    fn name(&self) -> &'static str {
        CONVERGED
    }

    fn on_observation(&mut self, time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        match Wraps::<Obs>::part(obs) {
            Some(Obs::Committed { order, item, qty }) => {
                let new = self
                    .committed
                    .insert(*order, (*item, *qty, time_ns))
                    .is_none();
                if new && !self.applied.contains(order) {
                    self.behind += 1;
                }
            }
            Some(Obs::Applied { order, .. }) => {
                if self.applied.insert(*order) && self.committed.contains_key(order) {
                    self.behind -= 1;
                }
            }
            Some(Obs::Stock { levels }) if node == self.warehouse => {
                self.stock = Some(levels.clone());
            }
            _ => return Ok(()),
        }
        self.sample();
        Ok(())
    }

    fn at_end(&mut self, end: &EndState) -> Result<(), String> {
        if !end
            .up
            .get(self.warehouse as usize)
            .copied()
            .unwrap_or(false)
        {
            return Ok(());
        }
        // An order from the last `bound` may still be on its way: it counts as applied
        // or not, as it is.
        let mut expected = self.opening.clone();
        let mut young = 0;
        for (order, (item, qty, time_ns)) in &self.committed {
            let recent = end.time_ns.saturating_sub(*time_ns) <= self.bound_ns;
            if recent && !self.applied.contains(order) {
                young += 1;
                continue;
            }
            if let Some(level) = expected.get_mut(*item as usize) {
                *level -= *qty as i64;
            }
        }
        let stock = self.stock.clone().unwrap_or_else(|| self.opening.clone());
        if stock != expected {
            let behind = self.behind - young;
            let why = if behind > 0 {
                format!("{behind} of them were never applied")
            } else {
                "every one was applied, so applied effects were lost or doubled".to_string()
            };
            return Err(format!(
                "the warehouse's stock is {stock:?} after the quiet phase, but the {} \
                 committed orders leave {expected:?}: {why}",
                self.committed.len()
            ));
        }
        Ok(())
    }

    fn stats(&self) -> Vec<(String, u64)> {
        vec![
            ("shop.orders".to_string(), self.committed.len() as u64),
            ("shop.divergence-max".to_string(), self.divergence_max),
        ]
    }

    fn take_samples(&mut self, out: &mut Vec<(NodeId, &'static str, u64)>) {
        for value in self.samples.drain(..) {
            out.push((self.warehouse, "divergence", value));
        }
    }
}
