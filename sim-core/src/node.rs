//! The `Node` trait every simulated process implements, and `Ctx`, its only window on
//! the world.
//!
//! A node is a plain struct: a handler gets its state and one event, runs to completion,
//! and acts only by recording intents on `Ctx` (send, set or cancel a timer, observe,
//! record history, note). The engine drains those intents after the handler returns and
//! rules on delivery, delay, loss and order. Disk and randomness are the exceptions that
//! act at once, because they are the node's own: its disk and its own seeded stream.
//! This module never touches the event queue, the network or the trace.

use std::fmt::Debug;

use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::bugs::BugSet;
use crate::check::HistoryEvent;
use crate::disk::Disk;

/// A node's index in its run: 0..node_count, in the order the scenario lists them.
pub type NodeId = u32;
/// A timer's identity, unique within one run.
pub type TimerId = u64;

/// Names the types of one protocol, so nodes of several kinds can share a run.
pub trait Proto: 'static {
    /// Every message any node of this protocol sends. `Serialize` gives the canonical
    /// bytes the trace hash covers; `Debug` is what traces show.
    type Msg: Clone + Debug + Serialize + 'static;
    /// What nodes report to the invariant checkers (deliveries, commits, leaders...).
    type Obs: Clone + Debug + 'static;
}

/// A simulated process. Handlers must be deterministic functions of their inputs, the
/// node's state, its disk and `Ctx::rng`.
pub trait Node<P: Proto> {
    /// Called once at boot and again after every restart (with a fresh struct): this is
    /// where a node recovers from its disk.
    fn on_start(&mut self, ctx: &mut Ctx<'_, P>);
    fn on_message(&mut self, ctx: &mut Ctx<'_, P>, from: NodeId, msg: P::Msg);
    fn on_timer(&mut self, ctx: &mut Ctx<'_, P>, timer: TimerId, tag: u64);
    /// A short role for displays ("leader", "follower", "client").
    fn role(&self) -> String {
        String::new()
    }
    /// A human-readable dump of the node's state for inspectors.
    fn inspect(&self) -> String {
        String::new()
    }
}

/// The intents a handler recorded; the engine drains them after each handler.
pub struct Effects<P: Proto> {
    pub(crate) sends: Vec<(NodeId, P::Msg)>,
    pub(crate) timers_set: Vec<(TimerId, u64, u64)>,
    pub(crate) timers_cancelled: Vec<TimerId>,
    pub(crate) observations: Vec<P::Obs>,
    pub(crate) notes: Vec<String>,
    pub(crate) history: Vec<HistoryEvent>,
    pub(crate) metrics: Vec<(String, u64)>,
    pub(crate) timer_id_next: TimerId,
}

impl<P: Proto> Default for Effects<P> {
    fn default() -> Self {
        Self {
            sends: Vec::new(),
            timers_set: Vec::new(),
            timers_cancelled: Vec::new(),
            observations: Vec::new(),
            notes: Vec::new(),
            history: Vec::new(),
            metrics: Vec::new(),
            timer_id_next: 1,
        }
    }
}

impl<P: Proto> Effects<P> {
    pub(crate) fn is_drained(&self) -> bool {
        self.sends.is_empty()
            && self.timers_set.is_empty()
            && self.timers_cancelled.is_empty()
            && self.observations.is_empty()
            && self.notes.is_empty()
            && self.history.is_empty()
            && self.metrics.is_empty()
    }
}

/// A node's only window on the world during one handler call.
pub struct Ctx<'a, P: Proto> {
    pub(crate) id: NodeId,
    pub(crate) node_count: u32,
    pub(crate) local_ns: u64,
    pub(crate) effects: &'a mut Effects<P>,
    pub(crate) rng: &'a mut ChaCha8Rng,
    pub(crate) disk: &'a mut Disk,
    pub(crate) bugs: &'a BugSet,
}

impl<'a, P: Proto> Ctx<'a, P> {
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// How many nodes the run has; ids are `0..node_count()`.
    pub fn node_count(&self) -> u32 {
        self.node_count
    }

    /// This node's local clock in nanoseconds: virtual time moved by its clock skew
    /// (offset and drift). It can run backwards across a skew fault, as real clocks do.
    pub fn now_ns(&self) -> u64 {
        self.local_ns
    }

    /// Queues `msg` for `to`; the network decides when, whether and how often it arrives.
    pub fn send(&mut self, to: NodeId, msg: P::Msg) {
        assert!(to < self.node_count, "send to unknown node {to}");
        self.effects.sends.push((to, msg));
    }

    /// Sets a timer that fires after `delay_ns` of this node's local time, with `tag`
    /// handed back to `on_timer` so one handler can tell its timers apart.
    pub fn set_timer(&mut self, delay_ns: u64, tag: u64) -> TimerId {
        let id = self.effects.timer_id_next;
        self.effects.timer_id_next += 1;
        self.effects.timers_set.push((id, delay_ns, tag));
        id
    }

    /// Cancels a timer; cancelling one that already fired or was cancelled is a no-op.
    pub fn cancel_timer(&mut self, timer: TimerId) {
        self.effects.timers_cancelled.push(timer);
    }

    /// This node's durable storage; see `disk` for what survives a crash.
    pub fn disk(&mut self) -> &mut Disk {
        self.disk
    }

    /// This node's own random stream, seeded from the run seed and the node id.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        self.rng
    }

    /// Whether the planted bug `name` is switched on for this run.
    pub fn bug(&self, name: &str) -> bool {
        debug_assert!(crate::bugs::find(name).is_some(), "unknown bug {name}");
        self.bugs.contains(name)
    }

    /// Reports something the invariant checkers read (a delivery, a commit, a leader).
    pub fn observe(&mut self, obs: P::Obs) {
        self.effects.observations.push(obs);
    }

    /// Records one client-history event (Jepsen format, see `check::HistoryEvent`).
    /// The engine stamps the virtual time.
    pub fn history(&mut self, event: HistoryEvent) {
        self.effects.history.push(event);
    }

    /// One sample of a time series (queue depth, requests served...), for charts. Metrics
    /// describe a run; they are not part of its trace hash.
    pub fn metric(&mut self, name: impl Into<String>, value: u64) {
        self.effects.metrics.push((name.into(), value));
    }

    /// A free-text note in the trace, for humans reading a run.
    pub fn note(&mut self, text: impl Into<String>) {
        self.effects.notes.push(text.into());
    }
}
