//! The warehouse: consumes order messages and reserves stock, once per order.
//!
//! A delivery of an order already applied is acked and nothing else (an idempotent
//! consumer: the orders it applied are remembered on disk). A new one is applied in one
//! synced record (the effect and the "applied" mark together) and only then acked, so a
//! crash before the ack gets a redelivery that is recognised, and a crash after it lost
//! nothing. Stock may go below zero: the shop sells while partitioned and finds out
//! later (an oversell, AP's price; the `oversold` metric counts them).
//!
//! This module never talks to the order service: only the broker joins them.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::super::bugs::{ACK_BEFORE_APPLY, NOT_IDEMPOTENT};
use super::{unbody, Host, Obs, OrderId, QUEUE};
use crate::conn::ConnParams;
use crate::node::{Ctx, Node, NodeId, TimerId};
use crate::proto::broker::client::{Client, Event};
use crate::proto::broker::{Method, QueueArgs};

const LOG_FILE: &str = "warehouse.log";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Applied {
    order: OrderId,
    item: u32,
    qty: u32,
}

#[derive(Clone, Debug)]
pub struct WarehouseConfig {
    pub broker: NodeId,
    pub heartbeat_ns: u64,
    pub items: u32,
    pub stock: i64,
    pub prefetch: u32,
    pub conn: ConnParams,
}

#[derive(Clone)]
pub struct Warehouse {
    cfg: WarehouseConfig,
    broker: Client,
    declared: bool,
    stock: Vec<i64>,
    applied: BTreeSet<OrderId>,
    oversold: u64,
}

impl Warehouse {
    pub fn new(cfg: WarehouseConfig) -> Self {
        assert!(cfg.items > 0);
        let broker = Client::new(cfg.broker, cfg.heartbeat_ns, cfg.conn);
        Self {
            stock: vec![cfg.stock; cfg.items as usize],
            cfg,
            broker,
            declared: false,
            applied: BTreeSet::new(),
            oversold: 0,
        }
    }

    fn recover<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let (records, torn) = ctx.disk().read_records::<Applied>(LOG_FILE);
        if torn {
            ctx.disk().truncate_torn_records(LOG_FILE);
        }
        for record in records {
            if let Some(level) = self.stock.get_mut(record.item as usize) {
                *level -= record.qty as i64;
            }
            self.applied.insert(record.order);
        }
        ctx.observe(Obs::Stock {
            levels: self.stock.clone(),
        });
    }

    fn on_delivery<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        channel: u32,
        tag: u64,
        order: OrderId,
        body: u64,
    ) {
        let (item, qty) = unbody(body);
        let seen = self.applied.contains(&order) && !ctx.bug(NOT_IDEMPOTENT);
        if seen || item >= self.cfg.items {
            // A redelivery of an order applied before (or a malformed one): ack only.
            if seen {
                ctx.sometimes("shop.redelivery-ignored");
                ctx.observe(Obs::Redelivered { order });
            }
            self.broker.ack(ctx, channel, tag);
            return;
        }
        let early_ack = ctx.bug(ACK_BEFORE_APPLY);
        if early_ack {
            self.broker.ack(ctx, channel, tag);
        }
        ctx.disk()
            .append_record(LOG_FILE, &Applied { order, item, qty });
        if !early_ack {
            ctx.disk().sync();
        }
        self.applied.insert(order);
        let level = &mut self.stock[item as usize];
        *level -= qty as i64;
        if *level < 0 {
            self.oversold += 1;
            ctx.metric("oversold", self.oversold);
        }
        ctx.observe(Obs::Applied { order, item, qty });
        ctx.observe(Obs::Stock {
            levels: self.stock.clone(),
        });
        if !early_ack {
            self.broker.ack(ctx, channel, tag);
        }
    }

    fn on_broker<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, event: Event) {
        match event {
            Event::Ready { recovered: false } if !self.declared => {
                self.declared = true;
                let queue = Method::QueueDeclare {
                    name: QUEUE.into(),
                    durable: true,
                    exclusive: false,
                    auto_delete: false,
                    args: QueueArgs::default(),
                };
                let qos = Method::BasicQos {
                    prefetch: self.cfg.prefetch,
                };
                let consume = Method::BasicConsume {
                    queue: QUEUE.into(),
                    tag: format!("warehouse-{}", ctx.id()),
                    auto_ack: false,
                };
                for method in [queue, qos, consume] {
                    self.broker.call(ctx, method);
                }
            }
            Event::Delivery {
                channel,
                delivery_tag,
                message,
                ..
            } => self.on_delivery(ctx, channel, delivery_tag, message.id, message.body),
            _ => {}
        }
    }
}

impl<H: Host> Node<H> for Warehouse {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.recover(ctx);
        self.broker.start(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        if let Ok(events) = self.broker.take_message(ctx, from, msg) {
            for event in events {
                self.on_broker(ctx, event);
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
        if let Ok(events) = self.broker.take_timer(ctx, id, timer) {
            for event in events {
                self.on_broker(ctx, event);
            }
        }
    }

    fn role(&self) -> String {
        "warehouse".into()
    }

    fn inspect(&self) -> String {
        format!(
            "stock {:?}, {} orders applied, {} oversold\n{}",
            self.stock,
            self.applied.len(),
            self.oversold,
            self.broker.connections()
        )
    }
}
