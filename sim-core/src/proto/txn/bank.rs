//! A bank client: transfers between random accounts and reads of every balance, sent to
//! a coordinator one at a time, each recorded in Jepsen's bank format (DESIGN.md): a
//! transfer's `value` is `{"from", "to", "amount"}`, a read's is every account's balance.
//!
//! A committed transfer is `ok`, a rolled-back one `fail`; a heuristic outcome, a broken
//! connection or no answer by the deadline is `info` (it may or may not have happened).
//! The client counts requests served and refused (metrics `served` and `refused`, the
//! CAP chart's availability). It never retries: each attempt is one operation.

use rand::Rng;
use serde_json::{json, Map, Value};

use super::pacer::Pacer;
use super::xa::{account_name, Account, Amount, Answer, Frame};
use super::{Host, Timer};
use crate::check::{HistoryEvent, OpFunction, OpType};
use crate::conn::{ConnId, ConnParams, Endpoint, Event, Events};
use crate::node::{Ctx, Node, NodeId, TimerId, Wraps};

/// History processes per node: a restarted client is a new process.
const PROCESSES_PER_NODE: u64 = 1_000;

#[derive(Clone, Debug)]
pub struct BankConfig {
    pub coordinator: NodeId,
    pub accounts: u32,
    pub amount_max: u64,
    /// Reads among operations, in percent.
    pub read_percent: u32,
    pub ops: u32,
    pub think_ns: u64,
    /// How long the client waits for an answer before it records `info`.
    pub deadline_ns: u64,
    pub conn: ConnParams,
}

#[derive(Clone)]
pub struct BankClient {
    cfg: BankConfig,
    endpoint: Endpoint<Frame>,
    conn: Option<ConnId>,
    process: u64,
    pacer: Pacer,
    /// The operation in flight, as its history event names it.
    current: Option<(OpFunction, Value)>,
}

impl BankClient {
    pub fn new(cfg: BankConfig) -> Self {
        assert!(cfg.accounts >= 2, "a transfer needs two accounts");
        let conn = cfg.conn;
        let pacer = Pacer::new(cfg.ops, cfg.think_ns, cfg.deadline_ns);
        Self {
            cfg,
            endpoint: Endpoint::new(conn),
            conn: None,
            process: 0,
            pacer,
            current: None,
        }
    }

    fn next<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let Some(req) = self.pacer.start(ctx, |req| Timer::Deadline(req).into()) else {
            return;
        };
        let read = ctx.rng().random_range(0..100u32) < self.cfg.read_percent;
        let (f, value, frame) = if read {
            (OpFunction::Read, Value::Null, Frame::ReadAll { req })
        } else {
            let accounts = self.cfg.accounts;
            let from: Account = ctx.rng().random_range(0..accounts);
            let to = (from + 1 + ctx.rng().random_range(0..accounts - 1)) % accounts;
            let amount = ctx.rng().random_range(1..=self.cfg.amount_max) as Amount;
            let value = json!({
                "from": account_name(from),
                "to": account_name(to),
                "amount": amount,
            });
            let frame = Frame::Transfer {
                req,
                from,
                to,
                amount,
            };
            (OpFunction::Transfer, value, frame)
        };
        let event = HistoryEvent::new(self.process, OpType::Invoke, f, value.clone());
        ctx.history(event);
        self.current = Some((f, value));
        if self.conn.is_none() {
            self.conn = self.endpoint.open(ctx, self.cfg.coordinator).ok();
        }
        let sent = self
            .conn
            .is_some_and(|conn| self.endpoint.send(ctx, conn, frame).is_ok());
        if !sent {
            self.conn = None;
            self.complete(ctx, OpType::Info, None);
        }
    }

    /// Records the current operation's completion and schedules the next one.
    fn complete<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, kind: OpType, read: Option<Value>) {
        let Some((f, value)) = self.current.take() else {
            return;
        };
        let value = read.unwrap_or(value);
        ctx.history(HistoryEvent::new(self.process, kind, f, value));
        self.pacer
            .finish(ctx, kind == OpType::Ok, Timer::Next.into());
    }

    fn on_answer<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, req: u64, answer: Answer) {
        if self.pacer.current() != Some(req) {
            return;
        }
        match answer {
            Answer::Committed => self.complete(ctx, OpType::Ok, None),
            Answer::Balances(balances) => {
                let mut object = Map::new();
                for (account, balance) in balances {
                    object.insert(account_name(account), json!(balance));
                }
                self.complete(ctx, OpType::Ok, Some(Value::Object(object)));
            }
            Answer::RolledBack(_) => self.complete(ctx, OpType::Fail, None),
            Answer::Heuristic(_) | Answer::Unknown => self.complete(ctx, OpType::Info, None),
        }
    }

    fn handle<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, events: Events<Frame>) {
        for event in events {
            match event {
                Event::Frame {
                    frame: Frame::Answer { req, answer },
                    ..
                } => self.on_answer(ctx, req, answer),
                Event::Broken { conn, .. } | Event::Closed { conn } if self.conn == Some(conn) => {
                    self.conn = None;
                    self.complete(ctx, OpType::Info, None);
                }
                _ => {}
            }
        }
    }
}

impl<H: Host> Node<H> for BankClient {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.endpoint.start(ctx);
        self.process = ctx.id() as u64 * PROCESSES_PER_NODE
            + (ctx.incarnation() as u64).min(PROCESSES_PER_NODE - 1);
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
                self.complete(ctx, OpType::Info, None)
            }
            _ => {}
        }
    }

    fn role(&self) -> String {
        "bank client".into()
    }

    fn inspect(&self) -> String {
        format!("{}\n{}", self.pacer.describe(), self.endpoint.describe())
    }
}
