//! A harness that drives one node handler by handler and shows what each handler did as
//! text, one line per intent in the order the handler made it (disk operations placed
//! among them), in the manner of etcd raft's `rafttest` interaction files. Tests compare
//! that text with the expected text written beside them.
//!
//! There is no network and no engine here: the test plays every other node by
//! delivering messages by hand, and plays time by firing the node's timers. It shares
//! `Ctx` with the engine, so a node cannot tell the difference. It never runs more than
//! the one handler it is asked to.
//!
//! Lines look like:
//! ```text
//! send 2 Ack { zxid: 4294967297 }
//! timer Tick in 20ms
//! cancel Finalize
//! disk append zab/log 41 bytes
//! disk sync
//! observe Applied { zxid: 4294967297, digest: 99 }
//! history {"process":3,"type":"ok",...}
//! ```

mod remote;

use std::fmt::Write;

use rand_chacha::ChaCha8Rng;

use crate::bugs::BugSet;
use crate::catalogue;
use crate::disk::Disk;
use crate::engine::stream;
use crate::node::{Ctx, CtxParts, Ids, Intent, LiveTimer, MsgId, Node, NodeId, Proto, TimerId};
use crate::units::format_duration;

pub use remote::Remote;

/// One node under test.
pub struct Harness<P: Proto> {
    id: NodeId,
    node_count: u32,
    node: Box<dyn Node<P>>,
    now_ns: u64,
    timers: Vec<LiveTimer<P::Timer>>,
    /// When each pending timer is due, by id.
    due_ns: Vec<(TimerId, u64)>,
    ids: Ids,
    rng: ChaCha8Rng,
    disk: Disk,
    bugs: BugSet,
    intents: Vec<Intent<P>>,
    handlers: u64,
    incarnation: u32,
}

impl<P: Proto> Harness<P> {
    /// Node `id` of a run of `node_count` nodes, seeded like node `id` of a run with
    /// `seed`. Nothing runs until `start`.
    pub fn new(id: NodeId, node_count: u32, seed: u64, node: Box<dyn Node<P>>) -> Self {
        assert!(id < node_count);
        let mut disk = Disk::new(stream(seed, crate::rng::STREAM_DISK_BASE + id as u64));
        disk.keep_journal();
        Self {
            id,
            node_count,
            node,
            now_ns: 0,
            timers: Vec::new(),
            due_ns: Vec::new(),
            ids: Ids {
                msg_next: 0,
                timer_next: 1,
            },
            rng: stream(seed, id as u64),
            disk,
            bugs: BugSet::default(),
            intents: Vec::new(),
            handlers: 0,
            incarnation: 0,
        }
    }

    /// Switches on planted bug `name` (it must exist).
    pub fn with_bug(mut self, name: &str) -> Self {
        catalogue::enable_bug(&mut self.bugs, name).expect("a known bug");
        self
    }

    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Moves the clock forward without firing anything.
    pub fn advance_to(&mut self, now_ns: u64) {
        assert!(now_ns >= self.now_ns, "time never runs backwards");
        self.now_ns = now_ns;
    }

    pub fn node(&self) -> &dyn Node<P> {
        self.node.as_ref()
    }

    pub fn disk(&mut self) -> &mut Disk {
        &mut self.disk
    }

    /// Boots the node.
    pub fn start(&mut self) -> String {
        self.handle(None, |node, ctx| node.on_start(ctx))
    }

    /// Delivers `msg` from `from`.
    pub fn deliver(&mut self, from: NodeId, msg: impl Into<P::Msg>) -> String {
        let msg = msg.into();
        let id: MsgId = 1_000_000 + self.handlers;
        self.handle(Some(id), |node, ctx| node.on_message(ctx, from, msg))
    }

    /// Fires the earliest pending timer equal to `timer`, moving the clock to its due
    /// time (or leaving it, if that has passed). Panics when none is pending: a test
    /// that expects a timer must see it set.
    pub fn fire(&mut self, timer: impl Into<P::Timer>) -> String {
        let timer = timer.into();
        let index = self
            .timers
            .iter()
            .position(|live| live.timer == timer)
            .unwrap_or_else(|| panic!("no pending timer {timer:?}; pending: {}", self.pending()));
        let live = self.timers.remove(index);
        let due_ns = self.take_due(live.id);
        self.now_ns = self.now_ns.max(due_ns);
        let (id, value) = (live.id, live.timer);
        self.handle(None, |node, ctx| node.on_timer(ctx, id, value))
    }

    /// The node crashes (memory, timers and unsynced disk gone) and `fresh` boots in its
    /// place, recovering from the disk.
    pub fn restart(&mut self, fresh: Box<dyn Node<P>>) -> String {
        self.disk.crash();
        self.disk.take_journal();
        self.incarnation += 1;
        self.timers.clear();
        self.due_ns.clear();
        self.node = fresh;
        self.start()
    }

    /// The pending timers, earliest first: `Tick at 20ms, Finalize at 30ms`.
    pub fn pending(&self) -> String {
        let mut pending: Vec<(u64, String)> = self
            .timers
            .iter()
            .map(|live| {
                let due = self.due_of(live.id);
                (due, format!("{:?} at {}", live.timer, format_duration(due)))
            })
            .collect();
        pending.sort();
        let shown: Vec<String> = pending.into_iter().map(|(_, text)| text).collect();
        shown.join(", ")
    }

    fn due_of(&self, id: TimerId) -> u64 {
        self.due_ns
            .iter()
            .find(|(timer, _)| *timer == id)
            .map_or(0, |(_, due)| *due)
    }

    fn take_due(&mut self, id: TimerId) -> u64 {
        let index = self
            .due_ns
            .iter()
            .position(|(timer, _)| *timer == id)
            .expect("a live timer has a due time");
        self.due_ns.remove(index).1
    }

    fn handle(
        &mut self,
        message: Option<MsgId>,
        handler: impl FnOnce(&mut dyn Node<P>, &mut Ctx<'_, P>),
    ) -> String {
        let event = self.handlers;
        self.handlers += 1;
        let before: Vec<(TimerId, String)> = self
            .timers
            .iter()
            .map(|live| (live.id, format!("{:?}", live.timer)))
            .collect();
        let mut ctx = Ctx::new(CtxParts {
            id: self.id,
            node_count: self.node_count,
            local_ns: self.now_ns,
            monotonic_ns: self.now_ns,
            event,
            message,
            incarnation: self.incarnation,
            intents: &mut self.intents,
            timers: &mut self.timers,
            ids: &mut self.ids,
            rng: &mut self.rng,
            disk: &mut self.disk,
            bugs: &self.bugs,
        });
        handler(self.node.as_mut(), &mut ctx);
        let mut out = String::new();
        for (id, name) in before {
            if !self.timers.iter().any(|live| live.id == id) {
                self.due_ns.retain(|(timer, _)| *timer != id);
                writeln!(out, "cancel {name}").expect("writing to a string");
            }
        }
        let journal = self.disk.take_journal();
        let mut journal = journal.into_iter().peekable();
        let intents = std::mem::take(&mut self.intents);
        for (index, intent) in intents.into_iter().enumerate() {
            while let Some((_, op)) = journal.next_if(|(mark, _)| *mark as usize <= index) {
                writeln!(out, "disk {op}").expect("writing to a string");
            }
            // Rare-path marks are coverage, not behaviour: steps do not list them.
            if matches!(intent, Intent::Sometimes(_)) {
                continue;
            }
            let line = self.describe(intent);
            writeln!(out, "{line}").expect("writing to a string");
        }
        for (_, op) in journal {
            writeln!(out, "disk {op}").expect("writing to a string");
        }
        out
    }

    fn describe(&mut self, intent: Intent<P>) -> String {
        match intent {
            Intent::Send { to, msg, .. } => format!("send {to} {msg:?}"),
            Intent::SetTimer { id, delay_ns } => {
                self.due_ns.push((id, self.now_ns + delay_ns));
                let timer = self
                    .timers
                    .iter()
                    .find(|live| live.id == id)
                    .map(|live| format!("{:?}", live.timer))
                    .unwrap_or_else(|| "(cancelled at once)".to_string());
                format!("timer {timer} in {}", format_duration(delay_ns))
            }
            Intent::Observe(obs) => format!("observe {obs:?}"),
            Intent::History(event) => {
                let line = serde_json::to_string(&*event).expect("history events serialise");
                format!("history {line}")
            }
            Intent::Annotate { key, value } => format!("annotate {key}={value}"),
            Intent::Note(text) => format!("note {text}"),
            Intent::Metric { name, value } => format!("metric {name}={value}"),
            Intent::Sometimes(mark) => format!("sometimes {mark}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ping_pong::{self, Client, Params, PingPong};

    fn client() -> Harness<PingPong> {
        let params = Params {
            messages: 4,
            timeout_ns: 25_000_000,
        };
        Harness::new(0, 2, 1, Box::new(Client::new(1, params)))
    }

    #[test]
    fn a_handler_shows_its_intents_in_order() {
        let mut harness = client();
        assert_eq!(
            harness.start(),
            "send 1 Ping(0)\ntimer Retransmit in 25ms\n"
        );
        assert_eq!(
            harness.deliver(1, ping_pong::Msg::Pong(0)),
            "cancel Retransmit\nobserve Pong(0)\nsend 1 Ping(1)\ntimer Retransmit in 25ms\n"
        );
        assert_eq!(harness.pending(), "Retransmit at 25ms");
    }

    #[test]
    fn firing_a_timer_moves_the_clock_to_its_due_time() {
        let mut harness = client();
        harness.start();
        assert_eq!(
            harness.fire(ping_pong::Timer::Retransmit),
            "send 1 Ping(0)\ntimer Retransmit in 25ms\n"
        );
        assert_eq!(harness.now_ns(), 25_000_000);
        assert_eq!(harness.pending(), "Retransmit at 50ms");
    }

    #[test]
    #[should_panic(expected = "no pending timer")]
    fn firing_a_timer_that_is_not_pending_is_a_test_error() {
        let mut harness = client();
        harness.fire(ping_pong::Timer::Retransmit);
    }
}
