//! The order service: commits orders locally with their outbox rows, and relays the
//! outbox to the broker.
//!
//! An order is one record appended and synced (order and outbox row in one local
//! transaction) before the client hears `Placed`. The relay, every `relay_interval`,
//! publishes the rows not yet in flight as persistent messages with publisher confirms,
//! and deletes a row (appends `Published`) only when the broker confirms it. A lost or
//! refused publish stays in the outbox and goes again: at least once, so the warehouse
//! must be idempotent. A restart reads the outbox back and relays what is left.
//!
//! This module never waits for the broker to answer a client: the shop stays available.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::super::bugs::DELETE_BEFORE_PUBLISH;
use super::{body, Frame, Host, Obs, OrderId, Timer, EXCHANGE, QUEUE};
use crate::conn::{ConnId, ConnParams, Endpoint, Event as ConnEvent};
use crate::node::{Ctx, Node, NodeId, TimerId, Wraps};
use crate::proto::broker::client::{Client, Event};
use crate::proto::broker::{ExchangeKind, Message, Method, QueueArgs};

const LOG_FILE: &str = "orders.log";
/// Outbox rows one relay turn publishes at most.
const RELAY_BATCH_MAX: usize = 64;
/// Orders one service takes at most (ids carry the count in 32 bits).
pub const ORDERS_MAX: u64 = 1 << 32;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Record {
    /// The order row and its outbox row, in one local transaction.
    Order { order: OrderId, item: u32, qty: u32 },
    /// The outbox row is deleted: the broker confirmed the message.
    Published { order: OrderId },
}

#[derive(Clone, Debug)]
pub struct OrdersConfig {
    pub broker: NodeId,
    pub heartbeat_ns: u64,
    pub relay_interval_ns: u64,
    pub conn: ConnParams,
}

#[derive(Clone)]
pub struct Orders {
    cfg: OrdersConfig,
    endpoint: Endpoint<Frame>,
    broker: Client,
    ready: bool,
    count: u64,
    /// Outbox rows not yet confirmed: order -> (item, qty).
    outbox: BTreeMap<OrderId, (u32, u32)>,
    /// Published, awaiting the broker's confirm.
    in_flight: BTreeSet<OrderId>,
}

impl Orders {
    pub fn new(cfg: OrdersConfig) -> Self {
        let broker = Client::new(cfg.broker, cfg.heartbeat_ns, cfg.conn);
        Self {
            endpoint: Endpoint::new(cfg.conn),
            broker,
            cfg,
            ready: false,
            count: 0,
            outbox: BTreeMap::new(),
            in_flight: BTreeSet::new(),
        }
    }

    fn recover<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let (records, torn) = ctx.disk().read_records::<Record>(LOG_FILE);
        if torn {
            ctx.disk().truncate_torn_records(LOG_FILE);
        }
        for record in records {
            match record {
                Record::Order { order, item, qty } => {
                    self.count = self.count.max(order & (ORDERS_MAX - 1));
                    self.outbox.insert(order, (item, qty));
                }
                Record::Published { order } => {
                    self.outbox.remove(&order);
                }
            }
        }
    }

    fn place<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        conn: ConnId,
        req: u64,
        item: u32,
        qty: u32,
    ) {
        if self.count + 1 >= ORDERS_MAX {
            return; // No answer: the client's deadline counts it unserved.
        }
        self.count += 1;
        let order = (ctx.id() as u64) << 32 | self.count;
        ctx.disk()
            .append_record(LOG_FILE, &Record::Order { order, item, qty });
        ctx.disk().sync();
        self.outbox.insert(order, (item, qty));
        ctx.observe(Obs::Committed { order, item, qty });
        let _ = self.endpoint.send(ctx, conn, Frame::Placed { req, order });
        ctx.metric("outbox", self.outbox.len() as u64);
    }

    fn relay<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        ctx.set_timer(self.cfg.relay_interval_ns, Timer::Relay);
        if !self.ready || !self.broker.is_open() {
            return;
        }
        let due: Vec<(OrderId, (u32, u32))> = self
            .outbox
            .iter()
            .filter(|(order, _)| !self.in_flight.contains(order))
            .take(RELAY_BATCH_MAX)
            .map(|(order, row)| (*order, *row))
            .collect();
        for (order, (item, qty)) in due {
            if ctx.bug(DELETE_BEFORE_PUBLISH) {
                // The row goes first; if the publish is lost, nothing sends it again.
                self.delete(ctx, order, true);
            }
            let message = Message::new(order, true, body(item, qty));
            if !self.broker.publish(ctx, EXCHANGE, QUEUE, false, message) {
                break;
            }
            self.in_flight.insert(order);
        }
    }

    fn delete<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, order: OrderId, sync: bool) {
        if self.outbox.remove(&order).is_none() {
            return;
        }
        // Unsynced is safe: a delete lost to a crash only publishes the order again.
        ctx.disk()
            .append_record(LOG_FILE, &Record::Published { order });
        if sync {
            ctx.disk().sync();
        }
        ctx.metric("outbox", self.outbox.len() as u64);
    }

    fn on_broker<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, event: Event) {
        match event {
            Event::Ready { recovered } => {
                if !recovered && !self.ready {
                    let exchange = Method::ExchangeDeclare {
                        name: EXCHANGE.into(),
                        kind: ExchangeKind::Direct,
                        durable: true,
                    };
                    let queue = Method::QueueDeclare {
                        name: QUEUE.into(),
                        durable: true,
                        exclusive: false,
                        auto_delete: false,
                        args: QueueArgs::default(),
                    };
                    let bind = Method::QueueBind {
                        queue: QUEUE.into(),
                        exchange: EXCHANGE.into(),
                        key: QUEUE.into(),
                    };
                    for method in [exchange, queue, bind, Method::ConfirmSelect] {
                        self.broker.call(ctx, method);
                    }
                }
                self.ready = true;
            }
            Event::Confirmed { message, ack } => {
                self.in_flight.remove(&message.id);
                if ack {
                    ctx.observe(Obs::Published { order: message.id });
                    self.delete(ctx, message.id, false);
                }
            }
            Event::Lost { unconfirmed } => {
                if !unconfirmed.is_empty() {
                    ctx.sometimes("shop.publish-unconfirmed-goes-again");
                }
                for message in unconfirmed {
                    self.in_flight.remove(&message.id);
                }
            }
            _ => {}
        }
    }

    fn on_conn<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, events: crate::conn::Events<Frame>) {
        for event in events {
            if let ConnEvent::Frame {
                conn,
                frame: Frame::Place { req, item, qty },
            } = event
            {
                self.place(ctx, conn, req, item, qty);
            }
        }
    }
}

impl<H: Host> Node<H> for Orders {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.endpoint.start(ctx);
        self.recover(ctx);
        self.broker.start(ctx);
        ctx.set_timer(self.cfg.relay_interval_ns, Timer::Relay);
        ctx.metric("outbox", self.outbox.len() as u64);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        let msg = match self.endpoint.take_message(ctx, from, msg) {
            Ok(events) => return self.on_conn(ctx, events),
            Err(msg) => msg,
        };
        if let Ok(events) = self.broker.take_message(ctx, from, msg) {
            for event in events {
                self.on_broker(ctx, event);
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
        let timer = match self.endpoint.take_timer(ctx, id, timer) {
            Ok(events) => return self.on_conn(ctx, events),
            Err(timer) => timer,
        };
        let timer = match self.broker.take_timer(ctx, id, timer) {
            Ok(events) => {
                for event in events {
                    self.on_broker(ctx, event);
                }
                return;
            }
            Err(timer) => timer,
        };
        if let Ok(Timer::Relay) = timer.into_part() {
            self.relay(ctx);
        }
    }

    fn role(&self) -> String {
        "orders".into()
    }

    fn inspect(&self) -> String {
        format!(
            "orders {}, outbox {} ({} in flight)\nclients:\n{}\nbroker:\n{}",
            self.count,
            self.outbox.len(),
            self.in_flight.len(),
            self.endpoint.describe(),
            self.broker.connections()
        )
    }
}
