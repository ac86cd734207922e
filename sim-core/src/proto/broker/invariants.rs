//! The broker's checkers. They follow every copy of every message through the
//! observations: enqueued (broker; a dead-lettered copy names the copy it came from),
//! confirmed, nacked or returned (broker), what publishers were told and published,
//! delivered and processed (consumers), dropped and recovered (broker), and crashes.
//! A copy is a publish id and its death history (`Message::copy`): a message and its own
//! dead-lettered copy in one queue are two copies, as RabbitMQ allows.

use std::collections::{BTreeMap, BTreeSet};

use super::{CopyId, DropReason, Host, Obs, Outcome};
use crate::invariant::{EndState, Invariant};
use crate::node::{NodeId, Wraps};

pub const CONFIRMED_DURABLE: &str = "broker.confirmed-durable";
pub const AT_LEAST_ONCE: &str = "broker.at-least-once";
pub const QUEUE_ORDER: &str = "broker.queue-order";
pub const NO_DUPLICATES: &str = "broker.no-duplicates";
pub const CONFIRMS_AGREE: &str = "broker.confirms-agree";
pub const PROGRESS: &str = "broker.progress";

/// A copy in a queue.
type Key = (String, CopyId);

fn show((queue, (id, lineage)): &Key) -> String {
    if *lineage == 0 {
        format!("{id:#x} in `{queue}`")
    } else {
        format!("{id:#x} (dead-lettered copy {lineage:08x}) in `{queue}`")
    }
}

/// Which copies are in which queue, as far as the checkers can tell.
#[derive(Clone, Default)]
struct Holdings {
    /// Copy -> whether it is persistent in a durable queue.
    alive: BTreeMap<Key, bool>,
}

impl Holdings {
    /// Follows one observation; returns the key a duplicate enqueue would clash with.
    fn observe(&mut self, obs: &Obs) -> Option<Key> {
        match obs {
            Obs::Enqueued {
                queue,
                copy,
                durable,
                ..
            } => {
                let key = (queue.clone(), *copy);
                if self.alive.insert(key.clone(), *durable).is_some() {
                    return Some(key);
                }
            }
            Obs::Dropped { queue, copy, .. } | Obs::Processed { queue, copy } => {
                self.alive.remove(&(queue.clone(), *copy));
            }
            Obs::Recovered { queues } => {
                self.alive.clear();
                for (queue, copies) in queues {
                    for copy in copies {
                        self.alive.insert((queue.clone(), *copy), true);
                    }
                }
            }
            _ => {}
        }
        None
    }
}

/// No confirmed persistent message in a durable queue is lost by a broker crash. A copy
/// dead-lettered shortly before the crash may correctly be back in the queue it came
/// from (the move was not synced yet): it survived.
#[derive(Clone, Default)]
pub struct ConfirmedDurable {
    holdings: Holdings,
    confirmed: BTreeSet<u64>,
    /// A dead-lettered copy -> the copy it came from.
    origin: BTreeMap<Key, Key>,
}

impl ConfirmedDurable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `key` or a copy it came from (its source, its source's source...)
    /// survived the crash.
    fn survived(&self, key: &Key, recovered: &BTreeSet<Key>) -> bool {
        let mut at = key;
        // A history is at most as long as the copies made: the walk ends.
        for _ in 0..=self.origin.len() {
            if recovered.contains(at) {
                return true;
            }
            match self.origin.get(at) {
                Some(source) => at = source,
                None => return false,
            }
        }
        false
    }
}

impl<H: Host> Invariant<H> for ConfirmedDurable {
    fn name(&self) -> &'static str {
        CONFIRMED_DURABLE
    }

    fn on_observation(&mut self, _time_ns: u64, _node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let Some(obs) = Wraps::<Obs>::part(obs) else {
            return Ok(());
        };
        match obs {
            Obs::Confirmed { id } => {
                self.confirmed.insert(*id);
            }
            Obs::Enqueued {
                queue,
                copy,
                from: Some(source),
                ..
            } => {
                self.origin.insert((queue.clone(), *copy), source.clone());
            }
            Obs::Recovered { queues } => {
                let recovered: BTreeSet<Key> = queues
                    .iter()
                    .flat_map(|(q, copies)| copies.iter().map(move |c| (q.clone(), *c)))
                    .collect();
                let lost = self.holdings.alive.iter().find(|(key, durable)| {
                    **durable
                        && self.confirmed.contains(&key.1 .0)
                        && !self.survived(key, &recovered)
                });
                if let Some((key, _)) = lost {
                    return Err(format!(
                        "confirmed persistent message {} was lost by the broker crash",
                        show(key)
                    ));
                }
            }
            _ => {}
        }
        self.holdings.observe(obs);
        Ok(())
    }
}

/// With manual acks, every copy the broker accepted is processed by the end, unless a
/// documented loss applies: a transient message or queue in a broker crash, a TTL,
/// max-length or reject drop, or an auto-ack delivery whose consumer died (counted).
///
/// A backlog still draining at the end is not a stall: a copy that was never handed out
/// (or was handed out within the drain window) in a queue that delivered or processed
/// something within the drain window is waiting its turn; the quiet phase was too short
/// for it (counted as `broker.draining-at-end`). A copy delivered before the window and
/// still unprocessed is stuck, however busy its queue.
#[derive(Clone)]
pub struct AtLeastOnce {
    broker: NodeId,
    holdings: Holdings,
    auto_acked: BTreeSet<CopyId>,
    processed: BTreeSet<CopyId>,
    /// How recent a queue's last delivery or processing must be for it to count as draining.
    drain_window_ns: u64,
    /// Queue -> when it last delivered or processed a copy.
    last_active_ns: BTreeMap<String, u64>,
    /// Copy -> when it was last delivered (until processed, dropped or recovered).
    delivered_ns: BTreeMap<Key, u64>,
    draining_at_end: u64,
}

impl AtLeastOnce {
    pub fn new(broker: NodeId, drain_window_ns: u64) -> Self {
        Self {
            broker,
            holdings: Holdings::default(),
            auto_acked: BTreeSet::new(),
            processed: BTreeSet::new(),
            drain_window_ns,
            last_active_ns: BTreeMap::new(),
            delivered_ns: BTreeMap::new(),
            draining_at_end: 0,
        }
    }

    fn auto_ack_lost(&self) -> u64 {
        self.auto_acked.difference(&self.processed).count() as u64
    }

    /// Whether a held copy is waiting behind a backlog its queue is still working off.
    fn waiting_its_turn(&self, key: &Key, end_ns: u64) -> bool {
        let recent = |at: u64| end_ns.saturating_sub(at) <= self.drain_window_ns;
        let queue_active = self
            .last_active_ns
            .get(&key.0)
            .is_some_and(|at| recent(*at));
        let handed_out_long_ago = self.delivered_ns.get(key).is_some_and(|at| !recent(*at));
        queue_active && !handed_out_long_ago
    }
}

impl<H: Host> Invariant<H> for AtLeastOnce {
    fn name(&self) -> &'static str {
        AT_LEAST_ONCE
    }

    fn on_observation(&mut self, time_ns: u64, _node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let Some(obs) = Wraps::<Obs>::part(obs) else {
            return Ok(());
        };
        match obs {
            Obs::Dropped {
                queue,
                copy,
                reason,
            } => {
                if *reason == DropReason::AutoAcked {
                    self.auto_acked.insert(*copy);
                }
                self.delivered_ns.remove(&(queue.clone(), *copy));
            }
            Obs::Delivered { queue, copy, .. } => {
                self.last_active_ns.insert(queue.clone(), time_ns);
                self.delivered_ns.insert((queue.clone(), *copy), time_ns);
            }
            Obs::Processed { queue, copy } => {
                self.processed.insert(*copy);
                self.last_active_ns.insert(queue.clone(), time_ns);
                self.delivered_ns.remove(&(queue.clone(), *copy));
            }
            // A restarted broker hands every recovered copy out afresh.
            Obs::Recovered { .. } => self.delivered_ns.clear(),
            _ => {}
        }
        self.holdings.observe(obs);
        Ok(())
    }

    fn on_crash(&mut self, node: NodeId) {
        if node == self.broker {
            // Transient messages and queues die with the broker, as RabbitMQ documents.
            self.holdings.alive.retain(|_, durable| *durable);
        }
    }

    fn at_end(&mut self, end: &EndState) -> Result<(), String> {
        let (waiting, stuck): (Vec<&Key>, Vec<&Key>) = self
            .holdings
            .alive
            .keys()
            .partition(|key| self.waiting_its_turn(key, end.time_ns));
        self.draining_at_end = waiting.len() as u64;
        if stuck.is_empty() {
            return Ok(());
        }
        let shown: Vec<String> = stuck.iter().take(5).map(|key| show(key)).collect();
        Err(format!(
            "no progress: {} accepted messages were never processed, and their queues \
             were not working off a backlog in the last {}: {}{}",
            stuck.len(),
            crate::units::format_duration(self.drain_window_ns),
            shown.join(", "),
            if stuck.len() > 5 { ", ..." } else { "" }
        ))
    }

    fn stats(&self) -> Vec<(String, u64)> {
        vec![
            ("broker.processed".to_string(), self.processed.len() as u64),
            ("broker.auto-ack-lost".to_string(), self.auto_ack_lost()),
            ("broker.draining-at-end".to_string(), self.draining_at_end),
        ]
    }
}

/// A consumer sees a queue's copies in enqueue order, until the queue requeues one.
///
/// It remembers each copy's place in its queue while the queue is checked, so queues go
/// by a number of their own (`queues`) rather than a name in every entry, and a queue
/// that requeued forgets its copies' places (it is never checked again): a copy of the
/// run (a checkpoint in the browser) holds a few bytes a message, not a string.
#[derive(Clone, Default)]
pub struct QueueOrder {
    /// Queue names, by the number the other fields know them by.
    queues: Vec<String>,
    position: BTreeMap<(u32, CopyId), u64>,
    /// Copies enqueued so far, per queue number.
    enqueued: Vec<u64>,
    last: BTreeMap<(u32, NodeId), u64>,
    /// Per queue number: whether it requeued a copy (or recovered from a crash). For
    /// good: such a queue is no longer checked.
    requeued: Vec<bool>,
}

impl QueueOrder {
    /// The number of `queue`, given one when it is new. A broker has a few queues.
    fn number(&mut self, queue: &str) -> u32 {
        if let Some(at) = self.queues.iter().position(|q| q == queue) {
            return at as u32;
        }
        self.queues.push(queue.to_string());
        self.enqueued.push(0);
        self.requeued.push(false);
        (self.queues.len() - 1) as u32
    }

    /// Stops checking the queues marked requeued: their places are never read again.
    fn forget_requeued(&mut self) {
        let requeued = &self.requeued;
        self.position
            .retain(|(queue, _), _| !requeued[*queue as usize]);
        self.last.retain(|(queue, _), _| !requeued[*queue as usize]);
    }
}

impl<H: Host> Invariant<H> for QueueOrder {
    fn name(&self) -> &'static str {
        QUEUE_ORDER
    }

    fn on_observation(&mut self, _time_ns: u64, _node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let Some(obs) = Wraps::<Obs>::part(obs) else {
            return Ok(());
        };
        match obs {
            Obs::Enqueued { queue, copy, .. } => {
                let number = self.number(queue);
                let next = &mut self.enqueued[number as usize];
                if !self.requeued[number as usize] {
                    self.position.insert((number, *copy), *next);
                }
                *next += 1;
            }
            Obs::Delivered {
                queue,
                redelivered: true,
                ..
            } => {
                let number = self.number(queue);
                if !self.requeued[number as usize] {
                    self.requeued[number as usize] = true;
                    self.forget_requeued();
                }
            }
            Obs::Delivered {
                queue,
                copy,
                consumer,
                ..
            } => {
                let number = self.number(queue);
                if self.requeued[number as usize] {
                    return Ok(());
                }
                let Some(&position) = self.position.get(&(number, *copy)) else {
                    return Ok(());
                };
                let last = self.last.entry((number, *consumer)).or_insert(0);
                if position < *last {
                    return Err(format!(
                        "consumer {consumer} got message {} after a later one, with no requeue",
                        show(&(queue.clone(), *copy))
                    ));
                }
                *last = position;
            }
            // Every queue that held a copy: the recovered broker delivers afresh.
            Obs::Recovered { .. } => {
                for (requeued, enqueued) in self.requeued.iter_mut().zip(&self.enqueued) {
                    *requeued |= *enqueued > 0;
                }
                self.forget_requeued();
            }
            _ => {}
        }
        Ok(())
    }
}

/// A copy is never in one queue twice (one publish, one copy per matching queue).
#[derive(Clone, Default)]
pub struct NoDuplicates {
    holdings: Holdings,
}

impl<H: Host> Invariant<H> for NoDuplicates {
    fn name(&self) -> &'static str {
        NO_DUPLICATES
    }

    fn on_observation(&mut self, _time_ns: u64, _node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let Some(obs) = Wraps::<Obs>::part(obs) else {
            return Ok(());
        };
        match self.holdings.observe(obs) {
            Some(key) => Err(format!("message {} twice from one publish", show(&key))),
            None => Ok(()),
        }
    }
}

/// What each publisher was told about a publish (confirmed, nacked, returned) is what
/// the broker did with it: a confirm lands on the message the broker confirmed, never
/// on a neighbour.
#[derive(Clone, Default)]
pub struct ConfirmsAgree {
    /// What the broker did with each publish id: a bit per outcome (`outcome_bit`), not
    /// a set of its own, which cost an allocation a message.
    broker: BTreeMap<u64, u8>,
}

fn outcome_bit(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Confirmed => 1,
        Outcome::Nacked => 2,
        Outcome::Returned => 4,
    }
}

impl<H: Host> Invariant<H> for ConfirmsAgree {
    fn name(&self) -> &'static str {
        CONFIRMS_AGREE
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let Some(obs) = Wraps::<Obs>::part(obs) else {
            return Ok(());
        };
        let (id, outcome) = match obs {
            Obs::Confirmed { id } => (*id, Outcome::Confirmed),
            Obs::Nacked { id } => (*id, Outcome::Nacked),
            Obs::Returned { id } => (*id, Outcome::Returned),
            Obs::Told { id, outcome } => {
                let did = self
                    .broker
                    .get(id)
                    .is_some_and(|outcomes| outcomes & outcome_bit(*outcome) != 0);
                if !did {
                    return Err(format!(
                        "publisher {node} was told {outcome:?} for message {id:#x}, but the \
                         broker did not say so"
                    ));
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        *self.broker.entry(id).or_default() |= outcome_bit(outcome);
        Ok(())
    }
}

/// By the end, every live publisher published everything it had to and heard back about
/// each publish (with confirms): a publisher stuck with unanswered publishes, or never
/// getting to publish, is a stall, however clean the rest of the run looks.
#[derive(Clone)]
pub struct Progress {
    publishers: BTreeSet<NodeId>,
    finished: BTreeSet<NodeId>,
    /// Publishes each publisher sent and has no answer for yet.
    waiting: BTreeMap<NodeId, BTreeSet<u64>>,
}

impl Progress {
    pub fn new(publishers: Vec<NodeId>) -> Self {
        Self {
            publishers: publishers.into_iter().collect(),
            finished: BTreeSet::new(),
            waiting: BTreeMap::new(),
        }
    }
}

impl<H: Host> Invariant<H> for Progress {
    fn name(&self) -> &'static str {
        PROGRESS
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let Some(obs) = Wraps::<Obs>::part(obs) else {
            return Ok(());
        };
        match obs {
            Obs::Published { id } => {
                self.waiting.entry(node).or_default().insert(*id);
            }
            Obs::Told {
                id,
                outcome: Outcome::Confirmed | Outcome::Nacked,
            }
            | Obs::Unconfirmed { id } => {
                if let Some(waiting) = self.waiting.get_mut(&node) {
                    waiting.remove(id);
                }
            }
            Obs::Finished => {
                self.finished.insert(node);
            }
            _ => {}
        }
        Ok(())
    }

    fn on_crash(&mut self, node: NodeId) {
        // A restarted publisher starts over; what its old life sent is not its to answer.
        self.finished.remove(&node);
        self.waiting.remove(&node);
    }

    fn at_end(&mut self, end: &EndState) -> Result<(), String> {
        for publisher in &self.publishers {
            let up = end.up.get(*publisher as usize).copied().unwrap_or(false);
            if !up || self.finished.contains(publisher) {
                continue;
            }
            let waiting = self.waiting.get(publisher).map_or(0, BTreeSet::len);
            return Err(format!(
                "no progress: publisher {publisher} did not finish ({waiting} publishes \
                 without an answer)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
