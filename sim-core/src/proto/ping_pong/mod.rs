//! Ping-pong: clients send `Ping(n)` to their server and wait for `Pong(n)` before the
//! next, so exactly one message per pair is in flight. Client `i` talks to server `i`.
//!
//! It is the engine's speed benchmark and the smallest example of a protocol with two
//! node kinds. A client retransmits its ping after `timeout` (when set) so the protocol
//! survives loss. Invariants: pongs arrive in order (`ping-pong.order`) and every client
//! finishes its exchange (`ping-pong.progress`).

pub mod invariants;

use serde::Serialize;

use crate::node::{Ctx, Node, NodeId, Proto, TimerId};

pub struct PingPong;

impl Proto for PingPong {
    type Msg = Msg;
    type Obs = Obs;
}

#[derive(Clone, Debug, Serialize)]
pub enum Msg {
    Ping(u64),
    Pong(u64),
}

#[derive(Clone, Debug)]
pub enum Obs {
    /// The client saw the pong for round `n` (its first, in order).
    Pong(u64),
    /// The client finished all its rounds.
    Done,
}

/// How many one-way messages each pair exchanges: `messages / 2` rounds.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub messages: u64,
    /// Zero means never retransmit (the benchmark, on a lossless network).
    pub timeout_ns: u64,
}

pub struct Client {
    server: NodeId,
    params: Params,
    round: u64,
    timer: Option<TimerId>,
}

impl Client {
    pub fn new(server: NodeId, params: Params) -> Self {
        assert!(params.messages >= 2, "a round is a ping and a pong");
        Self {
            server,
            params,
            round: 0,
            timer: None,
        }
    }

    fn rounds(&self) -> u64 {
        self.params.messages / 2
    }

    fn ping(&mut self, ctx: &mut Ctx<'_, PingPong>) {
        ctx.send(self.server, Msg::Ping(self.round));
        if self.params.timeout_ns > 0 {
            self.timer = Some(ctx.set_timer(self.params.timeout_ns, 0));
        }
    }
}

impl Node<PingPong> for Client {
    fn on_start(&mut self, ctx: &mut Ctx<'_, PingPong>) {
        self.ping(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, PingPong>, _from: NodeId, msg: Msg) {
        let Msg::Pong(round) = msg else { return };
        if round != self.round {
            return; // A duplicate or a late answer to a retransmission.
        }
        if let Some(timer) = self.timer.take() {
            ctx.cancel_timer(timer);
        }
        ctx.observe(Obs::Pong(round));
        self.round += 1;
        if self.round < self.rounds() {
            self.ping(ctx);
        } else {
            ctx.observe(Obs::Done);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, PingPong>, _timer: TimerId, _tag: u64) {
        self.timer = None;
        if self.round < self.rounds() {
            self.ping(ctx);
        }
    }

    fn role(&self) -> String {
        "client".into()
    }

    fn inspect(&self) -> String {
        format!(
            "round {} of {}, server {}",
            self.round,
            self.rounds(),
            self.server
        )
    }
}

pub struct Server {
    pongs: u64,
}

impl Server {
    pub fn new() -> Self {
        Self { pongs: 0 }
    }
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Node<PingPong> for Server {
    fn on_start(&mut self, _ctx: &mut Ctx<'_, PingPong>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_, PingPong>, from: NodeId, msg: Msg) {
        if let Msg::Ping(round) = msg {
            self.pongs += 1;
            ctx.send(from, Msg::Pong(round));
        }
    }

    fn on_timer(&mut self, _ctx: &mut Ctx<'_, PingPong>, _timer: TimerId, _tag: u64) {}

    fn role(&self) -> String {
        "server".into()
    }

    fn inspect(&self) -> String {
        format!("{} pongs sent", self.pongs)
    }
}
