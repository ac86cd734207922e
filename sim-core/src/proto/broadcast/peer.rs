//! One broadcast peer: its log, its pending retransmissions, its timers.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;

use super::bugs::{ACK_BEFORE_PERSIST, DELIVER_BEFORE_SYNC, NO_RETRANSMIT};
use super::{Host, LogRecord, MessageId, Msg, Obs, Params, Timer, MESSAGES_MAX, RETRANSMITS_MAX};
use crate::check::{HistoryEvent, OpFunction, OpType};
use crate::node::{Ctx, Node, NodeId, TimerId, Wraps};

const LOG_FILE: &str = "broadcast.log";

/// Who still owes an ack for one message, and how often it was retransmitted.
#[derive(Clone, Debug, Default)]
struct Pending {
    payload: u64,
    unacked: BTreeSet<NodeId>,
    retransmits: u32,
}

#[derive(Clone)]
pub struct Peer {
    params: Params,
    /// Every broadcast peer of the run, this one included.
    peers: Vec<NodeId>,
    log: BTreeSet<MessageId>,
    pending: BTreeMap<MessageId, Pending>,
    /// Received but not yet persisted: only ever non-empty under ack-before-persist.
    unflushed: BTreeMap<MessageId, u64>,
    own_next: u32,
}

impl Peer {
    pub fn new(params: Params, peers: Vec<NodeId>) -> Self {
        assert!(params.messages <= MESSAGES_MAX);
        assert!(params.retransmit_ns > 0);
        assert!(!peers.is_empty());
        Self {
            params,
            peers,
            log: BTreeSet::new(),
            pending: BTreeMap::new(),
            unflushed: BTreeMap::new(),
            own_next: 0,
        }
    }

    fn others(&self, except: &[NodeId]) -> BTreeSet<NodeId> {
        self.peers
            .iter()
            .copied()
            .filter(|peer| !except.contains(peer))
            .collect()
    }

    /// Persists (append, sync), then delivers. Order matters: a delivery must survive
    /// our own crash, or the integrity checker sees us forget it.
    fn persist_and_deliver<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, id: MessageId, payload: u64) {
        assert!(!self.log.contains(&id), "each message is persisted once");
        let record = LogRecord {
            origin: id.0,
            seq: id.1,
            payload,
        };
        ctx.disk().append_record(LOG_FILE, &record);
        // Bug zoo: `broadcast.deliver-before-sync` leaves the record to a later sync.
        if !ctx.bug(DELIVER_BEFORE_SYNC) {
            ctx.disk().sync();
        }
        self.log.insert(id);
        ctx.observe(Obs::Deliver(id));
    }

    /// Starts sending `id` to every peer in `to` until each acks.
    fn start_sending<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        id: MessageId,
        payload: u64,
        to: BTreeSet<NodeId>,
    ) {
        for peer in &to {
            ctx.send(
                *peer,
                Msg::Data {
                    origin: id.0,
                    seq: id.1,
                    payload,
                },
            );
        }
        if !to.is_empty() {
            self.pending.insert(
                id,
                Pending {
                    payload,
                    unacked: to,
                    retransmits: 0,
                },
            );
        }
    }

    fn on_timer_broadcast<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        if self.own_next >= self.params.messages {
            return;
        }
        let id = (ctx.id(), self.own_next);
        let payload: u64 = ctx.rng().random();
        let value = serde_json::Value::String(format!("{}:{}", id.0, id.1));
        let invoke = HistoryEvent::new(
            ctx.id() as u64,
            OpType::Invoke,
            OpFunction::Append,
            value.clone(),
        );
        ctx.history(invoke.with_key("log"));
        self.persist_and_deliver(ctx, id, payload);
        ctx.observe(Obs::Broadcast(id));
        let ok = HistoryEvent::new(ctx.id() as u64, OpType::Ok, OpFunction::Append, value);
        ctx.history(ok.with_key("log"));
        self.own_next += 1;
        let to = self.others(&[ctx.id()]);
        self.start_sending(ctx, id, payload, to);
        ctx.set_timer(self.params.interval_ns, Timer::Broadcast);
    }

    fn on_timer_retransmit<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        for (id, payload) in std::mem::take(&mut self.unflushed) {
            if !self.log.contains(&id) {
                self.persist_and_deliver(ctx, id, payload);
                let to = self.others(&[ctx.id()]);
                self.start_sending(ctx, id, payload, to);
            }
        }
        if !ctx.bug(NO_RETRANSMIT) {
            if !self.pending.is_empty() {
                ctx.sometimes("broadcast.retransmitted");
            }
            let mut exhausted = Vec::new();
            for (id, pending) in &mut self.pending {
                for peer in &pending.unacked {
                    ctx.send(
                        *peer,
                        Msg::Data {
                            origin: id.0,
                            seq: id.1,
                            payload: pending.payload,
                        },
                    );
                }
                pending.retransmits += 1;
                if pending.retransmits >= RETRANSMITS_MAX {
                    exhausted.push(*id);
                }
            }
            for id in exhausted {
                ctx.sometimes("broadcast.gave-up");
                ctx.note(format!(
                    "giving up on message {id:?} after {RETRANSMITS_MAX} retransmits"
                ));
                self.pending.remove(&id);
            }
        }
        ctx.set_timer(self.params.retransmit_ns, Timer::Retransmit);
    }

    fn on_message_data<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        id: MessageId,
        payload: u64,
    ) {
        let known = self.log.contains(&id) || self.unflushed.contains_key(&id);
        if !known {
            if ctx.bug(ACK_BEFORE_PERSIST) {
                // Planted: the ack leaves before the message is durable.
                self.unflushed.insert(id, payload);
            } else {
                self.persist_and_deliver(ctx, id, payload);
                let to = self.others(&[ctx.id(), from]);
                self.start_sending(ctx, id, payload, to);
            }
        }
        ctx.send(
            from,
            Msg::Ack {
                origin: id.0,
                seq: id.1,
            },
        );
    }
}

impl<H: Host> Node<H> for Peer {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        let (records, torn) = ctx.disk().read_records::<LogRecord>(LOG_FILE);
        if torn {
            ctx.sometimes("broadcast.torn-log");
            ctx.disk().truncate_torn_records(LOG_FILE);
            ctx.disk().sync();
        }
        let me = ctx.id();
        for record in &records {
            let id = (record.origin, record.seq);
            self.log.insert(id);
            if record.origin == me {
                self.own_next = self.own_next.max(record.seq + 1);
            }
        }
        ctx.observe(Obs::Recovered(self.log.iter().copied().collect()));
        // Acks are not persisted, so we resend our own messages to everyone. Relayed ones
        // need no resend: their origin retransmits until every peer has acked.
        for record in records.into_iter().filter(|record| record.origin == me) {
            ctx.sometimes("broadcast.resent-after-restart");
            let to = self.others(&[me]);
            self.start_sending(ctx, (record.origin, record.seq), record.payload, to);
        }
        ctx.set_timer(self.params.interval_ns, Timer::Broadcast);
        ctx.set_timer(self.params.retransmit_ns, Timer::Retransmit);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        let Ok(msg) = msg.into_part() else { return };
        match msg {
            Msg::Data {
                origin,
                seq,
                payload,
            } => self.on_message_data(ctx, from, (origin, seq), payload),
            Msg::Ack { origin, seq } => {
                let id = (origin, seq);
                if let Some(pending) = self.pending.get_mut(&id) {
                    pending.unacked.remove(&from);
                    if pending.unacked.is_empty() {
                        self.pending.remove(&id);
                    }
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, _id: TimerId, timer: H::Timer) {
        match timer.into_part() {
            Ok(Timer::Broadcast) => self.on_timer_broadcast(ctx),
            Ok(Timer::Retransmit) => self.on_timer_retransmit(ctx),
            Err(_) => {}
        }
    }

    fn role(&self) -> String {
        "peer".into()
    }

    fn inspect(&self) -> String {
        format!(
            "delivered {}, own {} of {}, awaiting acks for {}",
            self.log.len(),
            self.own_next,
            self.params.messages,
            self.pending.len()
        )
    }
}
