//! Running one handler: building its `Ctx`, then draining its intents in the order it made
//! them (sends become network decisions and deliveries, timers become events,
//! observations and history go to the invariants); and the two events that run a
//! handler, a delivery and a due timer. Everything a handler records names the event
//! that caused it.

use super::{Event, Queued, Sim, Status};
use crate::canon;
use crate::check::HistoryEvent;
use crate::net::{DropReason, Fate};
use crate::node::{
    Ctx, CtxParts, Intent, MsgId, Node, NodeId, Proto, TimerId, INTENTS_PER_HANDLER_MAX,
    TIMERS_PER_NODE_MAX,
};
use crate::trace::{label_of, no_payload, text_payload, EventKind, Rec};

/// A message on its way, without its body.
#[derive(Clone, Copy, Debug)]
pub(super) struct Delivery {
    pub from: NodeId,
    pub to: NodeId,
    pub incarnation: u32,
    pub msg_id: MsgId,
}

fn debug_detail<T: std::fmt::Debug>(value: &T) -> (String, String) {
    let detail = format!("{value:?}");
    (label_of(&detail), detail)
}

impl<P: Proto> Sim<P> {
    /// Runs one handler of `id`, caused by trace event `event`, and drains its intents.
    pub(super) fn call(
        &mut self,
        id: NodeId,
        event: u64,
        message: Option<MsgId>,
        handler: impl FnOnce(&mut dyn Node<P>, &mut Ctx<'_, P>),
    ) {
        debug_assert!(self.intents.is_empty());
        let node_count = self.slots.len() as u32;
        let now_ns = self.now_ns;
        let slot = &mut self.slots[id as usize];
        assert_eq!(slot.status, Status::Up, "only running nodes handle events");
        let mut node = slot.node.take().expect("a running node has its state");
        let mut ctx = Ctx::new(CtxParts {
            id,
            node_count,
            local_ns: slot.clock.wall_ns(now_ns),
            monotonic_ns: slot.clock.monotonic_ns(now_ns),
            event,
            message,
            incarnation: slot.incarnation,
            intents: &mut self.intents,
            timers: &mut slot.timers,
            ids: &mut self.ids,
            rng: &mut slot.rng,
            disk: &mut slot.disk,
            bugs: &self.config.bugs,
        });
        handler(node.as_mut(), &mut ctx);
        let slot = &mut self.slots[id as usize];
        slot.node = Some(node);
        let timers = slot.timers.len() as u32;
        if self.intents.len() as u64 > INTENTS_PER_HANDLER_MAX as u64 {
            self.intents.clear();
            let message = format!(
                "node {id} made more than {INTENTS_PER_HANDLER_MAX} intents in one handler"
            );
            self.stop_at_limit("limit.intents", message);
            return;
        }
        self.drain_intents(id, event);
        if timers > TIMERS_PER_NODE_MAX {
            let message = format!("node {id} has more than {TIMERS_PER_NODE_MAX} timers pending");
            self.stop_at_limit("limit.timers", message);
        }
    }

    fn drain_intents(&mut self, id: NodeId, cause: u64) {
        let mut intents = std::mem::take(&mut self.intents);
        let mut checked = false;
        for intent in intents.drain(..) {
            match intent {
                Intent::Send {
                    to,
                    id: msg_id,
                    msg,
                } => self.send(id, to, msg_id, msg, cause),
                Intent::SetTimer {
                    id: timer,
                    delay_ns,
                } => self.schedule_timer(id, timer, delay_ns),
                Intent::Observe(obs) => {
                    self.observe(id, cause, &obs);
                    checked = true;
                }
                Intent::History(event) => {
                    self.record_history(id, cause, *event);
                    checked = true;
                }
                Intent::Annotate { key, value } => {
                    let rec = Rec::new(self.now_ns, EventKind::Annotate, id).cause(Some(cause));
                    let text = format!("{key}={value}");
                    self.trace
                        .record(rec, text_payload(&text), || (key.to_string(), value));
                }
                Intent::Note(text) => {
                    let rec = Rec::new(self.now_ns, EventKind::Note, id).cause(Some(cause));
                    self.trace
                        .record(rec, text_payload(&text), || (String::new(), text.clone()));
                }
                Intent::Metric { name, value } => self.record_metric(id, name, value),
                Intent::Sometimes(mark) => *self.marks.entry(mark).or_insert(0) += 1,
            }
        }
        debug_assert!(self.intents.is_empty(), "draining records no new intents");
        self.intents = intents; // Keep the allocation for the next handler.
        if checked {
            self.take_samples();
        }
    }

    fn schedule_timer(&mut self, id: NodeId, timer: TimerId, local_delay_ns: u64) {
        let slot = &self.slots[id as usize];
        let incarnation = slot.incarnation;
        let time_ns = self
            .now_ns
            .saturating_add(slot.clock.real_delay_ns(local_delay_ns));
        let event = Event::Timer {
            node: id,
            incarnation,
            timer,
        };
        self.push(time_ns, event);
    }

    fn observe(&mut self, id: NodeId, cause: u64, obs: &P::Obs) {
        let rec = Rec::new(self.now_ns, EventKind::Observe, id).cause(Some(cause));
        self.trace.record(rec, no_payload, || debug_detail(obs));
        for index in 0..self.invariants.len() {
            if self.invariant_failed[index] {
                continue;
            }
            if let Err(message) = self.invariants[index].on_observation(self.now_ns, id, obs) {
                self.fail_invariant(index, message);
            }
        }
    }

    fn record_history(&mut self, id: NodeId, cause: u64, mut event: HistoryEvent) {
        if self.history.len() as u32 >= self.config.limits.history_max {
            let message = format!("history outgrew {} events", self.config.limits.history_max);
            self.stop_at_limit("limit.history", message);
            return;
        }
        event.time = Some(self.now_ns);
        let line = serde_json::to_string(&event).expect("history events serialise");
        let rec = Rec::new(self.now_ns, EventKind::History, id).cause(Some(cause));
        let label = format!("{:?}", event.f).to_lowercase();
        self.trace
            .record(rec, text_payload(&line), || (label, line.clone()));
        for index in 0..self.invariants.len() {
            if self.invariant_failed[index] {
                continue;
            }
            if let Err(message) = self.invariants[index].on_history(self.now_ns, id, &event) {
                self.fail_invariant(index, message);
            }
        }
        self.history.push(event);
    }

    pub(super) fn fail_invariant(&mut self, index: usize, message: String) {
        self.invariant_failed[index] = true;
        let name = self.invariants[index].name();
        self.add_finding(name, message);
    }

    fn take_samples(&mut self) {
        let mut samples = std::mem::take(&mut self.samples);
        for invariant in &mut self.invariants {
            invariant.take_samples(&mut samples);
        }
        for (node, name, value) in samples.drain(..) {
            self.record_metric(node, name.into(), value);
        }
        self.samples = samples;
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg_id: MsgId, msg: P::Msg, cause: u64) {
        let rec = Rec::new(self.now_ns, EventKind::Send, from)
            .peer(to)
            .id(msg_id)
            .cause(Some(cause));
        self.trace.record(
            rec,
            |hash| canon::hash_value(hash, &msg),
            || debug_detail(&msg),
        );
        match self.net.fate(from, to, self.now_ns) {
            Fate::Drop(reason) => self.record_drop(to, from, msg_id, reason, &msg),
            Fate::Deliver {
                delay_ns,
                duplicate_delay_ns,
            } => {
                let incarnation = self.slots[to as usize].incarnation;
                if let Some(duplicate_ns) = duplicate_delay_ns {
                    let copy = Event::Deliver {
                        from,
                        to,
                        incarnation,
                        msg_id,
                        msg: msg.clone(),
                    };
                    self.push(self.now_ns + duplicate_ns, copy);
                }
                let event = Event::Deliver {
                    from,
                    to,
                    incarnation,
                    msg_id,
                    msg,
                };
                self.push(self.now_ns + delay_ns, event);
            }
        }
    }

    pub(super) fn record_drop(
        &mut self,
        node: NodeId,
        peer: NodeId,
        msg_id: MsgId,
        reason: DropReason,
        msg: &P::Msg,
    ) {
        let rec = Rec::new(self.now_ns, EventKind::Drop, node)
            .peer(peer)
            .id(msg_id)
            .reason(reason);
        self.trace.record(rec, no_payload, || debug_detail(msg));
    }

    /// A message arrives: dropped if its destination crashed since it was sent or the
    /// link is cut now, held while the destination is paused, otherwise handled.
    pub(super) fn deliver(&mut self, delivery: Delivery, msg: P::Msg, seq: u64, time_ns: u64) {
        let Delivery {
            from,
            to,
            incarnation,
            msg_id,
        } = delivery;
        let slot = &self.slots[to as usize];
        let fate = if slot.status == Status::Down || slot.incarnation != incarnation {
            Some(DropReason::Crashed)
        } else if self.net.is_cut(from, to) {
            Some(DropReason::Partition)
        } else {
            None
        };
        if let Some(reason) = fate {
            self.record_drop(to, from, msg_id, reason, &msg);
            return;
        }
        if slot.status == Status::Paused {
            let event = Event::Deliver {
                from,
                to,
                incarnation,
                msg_id,
                msg,
            };
            self.hold(
                to,
                Queued {
                    time_ns,
                    seq,
                    event,
                },
            );
            return;
        }
        let rec = Rec::new(self.now_ns, EventKind::Deliver, to)
            .peer(from)
            .id(msg_id);
        let event = self.trace.record(rec, no_payload, || debug_detail(&msg));
        self.call(to, event, Some(msg_id), |node, ctx| {
            node.on_message(ctx, from, msg)
        });
    }

    /// A timer comes due: skipped if cancelled or from a crashed incarnation, held while
    /// its node is paused, otherwise handed to the node with its value.
    pub(super) fn fire_timer(
        &mut self,
        node: NodeId,
        incarnation: u32,
        timer: TimerId,
        time_ns: u64,
        seq: u64,
    ) {
        let slot = &mut self.slots[node as usize];
        if slot.incarnation != incarnation {
            return; // It belonged to a crashed incarnation.
        }
        if slot.status == Status::Paused {
            let event = Event::Timer {
                node,
                incarnation,
                timer,
            };
            self.hold(
                node,
                Queued {
                    time_ns,
                    seq,
                    event,
                },
            );
            return;
        }
        debug_assert_eq!(
            slot.status,
            Status::Up,
            "a down node has no live incarnation"
        );
        let Ok(index) = slot.timers.binary_search_by_key(&timer, |live| live.id) else {
            return; // Cancelled.
        };
        let live = slot.timers.remove(index);
        let rec = Rec::new(self.now_ns, EventKind::Timer, node)
            .id(timer)
            .cause(Some(live.set_by));
        let event = self.trace.record(
            rec,
            |hash| canon::hash_value(hash, &live.timer),
            || debug_detail(&live.timer),
        );
        let value = live.timer;
        self.call(node, event, None, |node, ctx| {
            node.on_timer(ctx, timer, value)
        });
    }

    pub(super) fn hold(&mut self, node: NodeId, queued: Queued<P::Msg>) {
        let slot = &mut self.slots[node as usize];
        if slot.held.len() as u32 >= super::HELD_EVENTS_MAX {
            let message = format!("node {node} paused with too many events");
            self.stop_at_limit("limit.held", message);
            return;
        }
        slot.held.push(queued);
    }
}
