//! A shop client: places orders with the order service, one at a time, and counts how
//! many were served (metrics `served` and `refused`, the CAP chart's availability). A
//! broken connection or no answer by the deadline is a refusal; it never retries.

use rand::Rng;

use super::super::pacer::Pacer;
use super::{Frame, Host, Timer};
use crate::conn::{ConnId, ConnParams, Endpoint, Event, Events};
use crate::node::{Ctx, Node, NodeId, TimerId, Wraps};

#[derive(Clone, Debug)]
pub struct ShopClientConfig {
    pub orders: NodeId,
    pub items: u32,
    pub qty_max: u32,
    pub ops: u32,
    pub think_ns: u64,
    pub deadline_ns: u64,
    pub conn: ConnParams,
}

#[derive(Clone)]
pub struct ShopClient {
    cfg: ShopClientConfig,
    endpoint: Endpoint<Frame>,
    conn: Option<ConnId>,
    pacer: Pacer,
}

impl ShopClient {
    pub fn new(cfg: ShopClientConfig) -> Self {
        assert!(cfg.items > 0 && cfg.qty_max > 0);
        let conn = cfg.conn;
        let pacer = Pacer::new(cfg.ops, cfg.think_ns, cfg.deadline_ns);
        Self {
            cfg,
            endpoint: Endpoint::new(conn),
            conn: None,
            pacer,
        }
    }

    fn next<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let Some(req) = self.pacer.start(ctx, |req| Timer::Deadline(req).into()) else {
            return;
        };
        let item = ctx.rng().random_range(0..self.cfg.items);
        let qty = ctx.rng().random_range(1..=self.cfg.qty_max);
        if self.conn.is_none() {
            self.conn = self.endpoint.open(ctx, self.cfg.orders).ok();
        }
        let place = Frame::Place { req, item, qty };
        let sent = self
            .conn
            .is_some_and(|conn| self.endpoint.send(ctx, conn, place).is_ok());
        if !sent {
            self.conn = None;
            self.pacer.finish(ctx, false, Timer::Next.into());
        }
    }

    fn handle<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, events: Events<Frame>) {
        for event in events {
            match event {
                Event::Frame {
                    frame: Frame::Placed { req, .. },
                    ..
                } if self.pacer.current() == Some(req) => {
                    self.pacer.finish(ctx, true, Timer::Next.into());
                }
                Event::Broken { conn, .. } | Event::Closed { conn } if self.conn == Some(conn) => {
                    self.conn = None;
                    self.pacer.finish(ctx, false, Timer::Next.into());
                }
                _ => {}
            }
        }
    }
}

impl<H: Host> Node<H> for ShopClient {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.endpoint.start(ctx);
        self.pacer.begin(ctx, Timer::Next.into());
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        if let Ok(events) = self.endpoint.take_message(ctx, from, msg) {
            self.handle(ctx, events);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
        let timer = match self.endpoint.take_timer(ctx, id, timer) {
            Ok(events) => return self.handle(ctx, events),
            Err(timer) => timer,
        };
        match timer.into_part() {
            Ok(Timer::Next) => self.next(ctx),
            Ok(Timer::Deadline(req)) if self.pacer.current() == Some(req) => {
                self.pacer.finish(ctx, false, Timer::Next.into());
            }
            _ => {}
        }
    }

    fn role(&self) -> String {
        "shop client".into()
    }

    fn inspect(&self) -> String {
        format!("{}\n{}", self.pacer.describe(), self.endpoint.describe())
    }
}
