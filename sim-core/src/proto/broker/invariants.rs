//! The broker's checkers. They follow every message through the observations: enqueued
//! (broker), confirmed (broker), delivered and processed (consumers), dropped (broker),
//! recovered after a broker restart (broker), and crashes of the broker node.

use std::collections::{BTreeMap, BTreeSet};

use super::{DropReason, Host, Obs};
use crate::invariant::{EndState, Invariant};
use crate::node::{NodeId, Wraps};

pub const CONFIRMED_DURABLE: &str = "broker.confirmed-durable";
pub const AT_LEAST_ONCE: &str = "broker.at-least-once";
pub const QUEUE_ORDER: &str = "broker.queue-order";
pub const NO_DUPLICATES: &str = "broker.no-duplicates";

/// A message in a queue: (queue, publish-attempt id).
type Key = (String, u64);

/// Which messages are in which queue, as far as the checkers can tell.
#[derive(Default)]
struct Holdings {
    /// Message -> whether it is persistent in a durable queue.
    alive: BTreeMap<Key, bool>,
}

impl Holdings {
    /// Follows one observation; returns the key a duplicate enqueue would clash with.
    fn observe(&mut self, obs: &Obs) -> Option<Key> {
        match obs {
            Obs::Enqueued { queue, id, durable } => {
                let key = (queue.clone(), *id);
                if self.alive.insert(key.clone(), *durable).is_some() {
                    return Some(key);
                }
            }
            Obs::Dropped { queue, id, .. } | Obs::Processed { queue, id } => {
                self.alive.remove(&(queue.clone(), *id));
            }
            Obs::Recovered { queues } => {
                self.alive.clear();
                for (queue, ids) in queues {
                    for id in ids {
                        self.alive.insert((queue.clone(), *id), true);
                    }
                }
            }
            Obs::Confirmed { .. } | Obs::Delivered { .. } => {}
        }
        None
    }
}

/// No confirmed persistent message in a durable queue is lost by a broker crash.
pub struct ConfirmedDurable {
    holdings: Holdings,
    confirmed: BTreeSet<u64>,
}

impl ConfirmedDurable {
    pub fn new() -> Self {
        Self {
            holdings: Holdings::default(),
            confirmed: BTreeSet::new(),
        }
    }
}

impl Default for ConfirmedDurable {
    fn default() -> Self {
        Self::new()
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
        if let Obs::Confirmed { id } = obs {
            self.confirmed.insert(*id);
        }
        if let Obs::Recovered { queues } = obs {
            let recovered: BTreeSet<Key> = queues
                .iter()
                .flat_map(|(q, ids)| ids.iter().map(move |id| (q.clone(), *id)))
                .collect();
            let lost = self.holdings.alive.iter().find(|(key, durable)| {
                **durable && self.confirmed.contains(&key.1) && !recovered.contains(*key)
            });
            if let Some(((queue, id), _)) = lost {
                return Err(format!(
                    "confirmed persistent message {id:#x} in durable queue `{queue}` was lost by the broker crash"
                ));
            }
        }
        self.holdings.observe(obs);
        Ok(())
    }
}

/// With manual acks, every message the broker accepted is processed by the end, unless a
/// documented loss applies: a transient message or queue in a broker crash, a TTL,
/// max-length or reject drop, or an auto-ack delivery whose consumer died (counted).
pub struct AtLeastOnce {
    broker: NodeId,
    holdings: Holdings,
    auto_acked: BTreeSet<u64>,
    processed: BTreeSet<u64>,
}

impl AtLeastOnce {
    pub fn new(broker: NodeId) -> Self {
        Self {
            broker,
            holdings: Holdings::default(),
            auto_acked: BTreeSet::new(),
            processed: BTreeSet::new(),
        }
    }

    fn auto_ack_lost(&self) -> u64 {
        self.auto_acked.difference(&self.processed).count() as u64
    }
}

impl<H: Host> Invariant<H> for AtLeastOnce {
    fn name(&self) -> &'static str {
        AT_LEAST_ONCE
    }

    fn on_observation(&mut self, _time_ns: u64, _node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let Some(obs) = Wraps::<Obs>::part(obs) else {
            return Ok(());
        };
        match obs {
            Obs::Dropped {
                id,
                reason: DropReason::AutoAcked,
                ..
            } => {
                self.auto_acked.insert(*id);
            }
            Obs::Processed { id, .. } => {
                self.processed.insert(*id);
            }
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

    fn at_end(&mut self, _end: &EndState) -> Result<(), String> {
        if self.holdings.alive.is_empty() {
            return Ok(());
        }
        let shown: Vec<String> = self
            .holdings
            .alive
            .keys()
            .take(5)
            .map(|(q, id)| format!("{id:#x} in `{q}`"))
            .collect();
        Err(format!(
            "no progress: {} accepted messages were never processed: {}{}",
            self.holdings.alive.len(),
            shown.join(", "),
            if self.holdings.alive.len() > 5 {
                ", ..."
            } else {
                ""
            }
        ))
    }

    fn stats(&self) -> Vec<(String, u64)> {
        vec![
            ("broker.processed".to_string(), self.processed.len() as u64),
            ("broker.auto-ack-lost".to_string(), self.auto_ack_lost()),
        ]
    }
}

/// A consumer sees a queue's messages in enqueue order, until the queue requeues one.
#[derive(Default)]
pub struct QueueOrder {
    position: BTreeMap<Key, u64>,
    enqueued: BTreeMap<String, u64>,
    last: BTreeMap<(String, NodeId), u64>,
    requeued: BTreeSet<String>,
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
            Obs::Enqueued { queue, id, .. } => {
                let next = self.enqueued.entry(queue.clone()).or_insert(0);
                self.position.insert((queue.clone(), *id), *next);
                *next += 1;
            }
            Obs::Delivered {
                queue,
                redelivered: true,
                ..
            } => {
                self.requeued.insert(queue.clone());
            }
            Obs::Delivered {
                queue,
                id,
                consumer,
                ..
            } if !self.requeued.contains(queue) => {
                let Some(&position) = self.position.get(&(queue.clone(), *id)) else {
                    return Ok(());
                };
                let last = self.last.entry((queue.clone(), *consumer)).or_insert(0);
                if position < *last {
                    return Err(format!(
                        "consumer {consumer} got message {id:#x} of `{queue}` after a later one, with no requeue"
                    ));
                }
                *last = position;
            }
            Obs::Recovered { .. } => self.requeued.extend(self.enqueued.keys().cloned()),
            _ => {}
        }
        Ok(())
    }
}

/// A message is never in one queue twice (one publish, one copy per matching queue).
#[derive(Default)]
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
            Some((queue, id)) => Err(format!(
                "message {id:#x} is in queue `{queue}` twice from one publish"
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::world::World;

    fn enqueued(id: u64, durable: bool) -> Obs {
        Obs::Enqueued {
            queue: "q".into(),
            id,
            durable,
        }
    }

    fn delivered(id: u64, redelivered: bool) -> Obs {
        Obs::Delivered {
            queue: "q".into(),
            id,
            redelivered,
            auto_ack: false,
            consumer: 7,
        }
    }

    fn feed<I: Invariant<World>>(invariant: &mut I, observations: &[Obs]) -> Result<(), String> {
        observations
            .iter()
            .try_for_each(|obs| invariant.on_observation(0, 0, &obs.clone().into()))
    }

    #[test]
    fn a_confirmed_durable_message_missing_after_recovery_is_a_violation() {
        let mut check = ConfirmedDurable::new();
        let crash = [
            enqueued(1, true),
            Obs::Confirmed { id: 1 },
            Obs::Recovered {
                queues: vec![("q".into(), vec![])],
            },
        ];
        let error = feed(&mut check, &crash).unwrap_err();
        assert!(
            error.contains("confirmed persistent message 0x1"),
            "{error}"
        );
    }

    #[test]
    fn unconfirmed_or_transient_or_processed_messages_may_vanish_in_a_crash() {
        let mut check = ConfirmedDurable::new();
        let observations = [
            enqueued(1, true),  // never confirmed
            enqueued(2, false), // transient
            Obs::Confirmed { id: 2 },
            enqueued(3, true),
            Obs::Confirmed { id: 3 },
            Obs::Processed {
                queue: "q".into(),
                id: 3,
            }, // acked before the crash
            Obs::Recovered {
                queues: vec![("q".into(), vec![])],
            },
        ];
        assert_eq!(feed(&mut check, &observations), Ok(()));
    }

    #[test]
    fn at_least_once_reports_unprocessed_messages_and_counts_auto_ack_losses() {
        let mut check = AtLeastOnce::new(0);
        let observations = [
            enqueued(1, true),
            enqueued(2, true),
            Obs::Dropped {
                queue: "q".into(),
                id: 2,
                reason: DropReason::AutoAcked,
            },
        ];
        feed(&mut check, &observations).unwrap();
        let error = Invariant::<World>::at_end(
            &mut check,
            &EndState {
                time_ns: 0,
                up: vec![true],
            },
        )
        .unwrap_err();
        assert!(
            error.starts_with("no progress: 1 accepted messages"),
            "{error}"
        );
        assert!(
            Invariant::<World>::stats(&check).contains(&("broker.auto-ack-lost".to_string(), 1))
        );
    }

    #[test]
    fn a_broker_crash_excuses_transient_messages() {
        let mut check = AtLeastOnce::new(0);
        feed(&mut check, &[enqueued(1, false)]).unwrap();
        Invariant::<World>::on_crash(&mut check, 0);
        assert_eq!(
            Invariant::<World>::at_end(
                &mut check,
                &EndState {
                    time_ns: 0,
                    up: vec![true]
                }
            ),
            Ok(())
        );
    }

    #[test]
    fn queue_order_catches_a_consumer_seeing_a_later_message_first() {
        let mut check = QueueOrder::default();
        let error = feed(
            &mut check,
            &[
                enqueued(1, true),
                enqueued(2, true),
                delivered(2, false),
                delivered(1, false),
            ],
        );
        assert!(error.unwrap_err().contains("after a later one"));
    }

    #[test]
    fn queue_order_stops_checking_a_queue_once_it_requeued() {
        let mut check = QueueOrder::default();
        let observations = [
            enqueued(1, true),
            enqueued(2, true),
            delivered(2, false),
            delivered(2, true),
            delivered(1, false),
        ];
        assert_eq!(feed(&mut check, &observations), Ok(()));
    }

    #[test]
    fn one_publish_in_one_queue_twice_is_a_duplicate() {
        let mut check = NoDuplicates::default();
        assert!(feed(&mut check, &[enqueued(1, true), enqueued(1, true)]).is_err());
        let mut check = NoDuplicates::default();
        let ok = [
            enqueued(1, true),
            Obs::Processed {
                queue: "q".into(),
                id: 1,
            },
            enqueued(1, true),
        ];
        assert_eq!(
            feed(&mut check, &ok),
            Ok(()),
            "a copy after the first left is not a duplicate"
        );
    }
}
