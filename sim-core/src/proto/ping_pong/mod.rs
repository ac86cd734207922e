//! Ping-pong: clients send `Ping(n)` to their server and wait for `Pong(n)` before the
//! next, so exactly one message per pair is in flight. Client `i` talks to server `i`.
//!
//! It is the engine's speed benchmark and the smallest example of a protocol with two
//! node kinds, written generic over its host (`Host`) so it runs both as its own
//! protocol (`PingPong`, the benchmark) and beside every other protocol. A client
//! retransmits its ping after `timeout` (when set) so the protocol survives loss.
//! Invariants: pongs arrive in order (`ping-pong.order`) and every client finishes its
//! exchange (`ping-pong.progress`); planted bugs in `bugs.rs`.

pub mod bugs;
pub mod invariants;
pub mod over_conn;
pub mod spec;

use serde::Serialize;

use crate::node::{Ctx, Node, NodeId, Proto, TimerId, Wraps};
use crate::proto::spec::{ComponentSpec, Mark};

pub const COMPONENT: ComponentSpec = ComponentSpec {
    name: "ping-pong",
    description: "one message in flight per client-server pair",
    invariants: &[invariants::ORDER, invariants::PROGRESS],
    gauges: &[],
    bugs: bugs::BUGS,
    marks: &[
        Mark {
            name: "ping-pong.retransmit",
            doc: "a client's ping went unanswered until its timeout and was sent again",
            hint: "loss on the links and a timeout (network loss, params timeout)",
        },
        Mark {
            name: "ping-pong.stale-pong",
            doc: "a client ignored a duplicate or late pong of an earlier round",
            hint: "duplication or a retransmission racing a slow pong (network duplicate)",
        },
    ],
};

/// Ping-pong run on its own: the benchmark's protocol.
#[derive(Clone)]
pub struct PingPong;

impl Proto for PingPong {
    type Msg = Msg;
    type Obs = Obs;
    type Timer = Timer;
}

/// What a node hosting ping-pong needs of its host's types.
pub trait Host: Proto<Msg: Wraps<Msg>, Obs: Wraps<Obs>, Timer: Wraps<Timer>> {}
impl<P: Proto<Msg: Wraps<Msg>, Obs: Wraps<Obs>, Timer: Wraps<Timer>>> Host for P {}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Msg {
    Ping(u64),
    Pong(u64),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Obs {
    /// The client saw the pong for round `n` (its first, in order).
    Pong(u64),
    /// The client finished all its rounds.
    Done,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Timer {
    /// No pong came back in time: ping again.
    Retransmit,
}

/// How many one-way messages each pair exchanges: `messages / 2` rounds.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub messages: u64,
    /// Zero means never retransmit (the benchmark, on a lossless network).
    pub timeout_ns: u64,
}

#[derive(Clone)]
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

    fn ping<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        ctx.send(self.server, Msg::Ping(self.round));
        if self.params.timeout_ns > 0 && !ctx.bug(bugs::NO_RETRANSMIT) {
            self.timer = Some(ctx.set_timer(self.params.timeout_ns, Timer::Retransmit));
        }
    }
}

impl<H: Host> Node<H> for Client {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.ping(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, _from: NodeId, msg: H::Msg) {
        let Ok(Msg::Pong(round)) = msg.into_part() else {
            return;
        };
        // A duplicate, or a late answer to a retransmission, is not this round's pong.
        if round != self.round && !ctx.bug(bugs::ACCEPT_ANY_PONG) {
            assert!(
                !ctx.bug(bugs::ASSERT_CURRENT_ROUND),
                "pong {round} is not for round {}",
                self.round
            );
            ctx.sometimes("ping-pong.stale-pong");
            return;
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

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, _id: TimerId, timer: H::Timer) {
        let Ok(Timer::Retransmit) = timer.into_part() else {
            return;
        };
        self.timer = None;
        if self.round < self.rounds() {
            ctx.sometimes("ping-pong.retransmit");
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

#[derive(Clone, Default)]
pub struct Server {
    pongs: u64,
}

impl Server {
    pub fn new() -> Self {
        Self::default()
    }
}

impl<H: Host> Node<H> for Server {
    fn on_start(&mut self, _ctx: &mut Ctx<'_, H>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        if let Ok(Msg::Ping(round)) = msg.into_part() {
            self.pongs += 1;
            ctx.send(from, Msg::Pong(round));
        }
    }

    fn on_timer(&mut self, _ctx: &mut Ctx<'_, H>, _id: TimerId, _timer: H::Timer) {}

    fn role(&self) -> String {
        "server".into()
    }

    fn inspect(&self) -> String {
        format!("{} pongs sent", self.pongs)
    }
}
