//! The `Node` trait every simulated process implements, `Ctx`, its only window on the
//! world, and `Wraps`, how a component's types travel inside its host's.
//!
//! A node is a plain struct: a handler gets its state and one event, runs to completion,
//! and acts only through `Ctx`. Sends, timers, observations, history, annotations, notes
//! and metrics are recorded as one ordered list of intents that the engine drains after
//! the handler returns, in the order the handler made them, so the trace keeps that
//! order. Disk and randomness are the exceptions that act at once, because they are the
//! node's own: its disk and its own seeded stream. This module never touches the event
//! queue, the network or the trace.
//!
//! Components compose. A reusable piece (the ZAB peer, a client library, the connection
//! layer) has its own message, observation and timer types; a host wraps them into its
//! own with `From`, and unwraps what arrives with `Wraps::into_part`, as stateright's
//! `register.rs` wraps a sub-protocol's messages. A component states what it needs of
//! its host once, as a trait with associated type bounds (`ZabHost`), instead of a
//! where-clause on every handler.

use std::fmt::Debug;

use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::bugs::BugSet;
use crate::check::HistoryEvent;
use crate::disk::Disk;

pub use crate::ids::{MsgId, NodeId, TimerId};

/// The most timers one node may have pending; more is a protocol bug (a timer leak), and
/// the run ends with a `limit.timers` finding.
pub const TIMERS_PER_NODE_MAX: u32 = 100_000;
/// The most intents one handler may record; more ends the run with `limit.intents`.
pub const INTENTS_PER_HANDLER_MAX: u32 = 1_000_000;

/// Names the types of one run's nodes, so nodes of several kinds can share a run.
pub trait Proto: Clone + 'static {
    /// Every message any node sends. `Serialize` gives the canonical bytes the trace hash
    /// covers; `Debug` is what traces show.
    type Msg: Clone + Debug + Serialize + 'static;
    /// What nodes report to the invariant checkers (deliveries, commits, leaders...).
    type Obs: Clone + Debug + 'static;
    /// Every timer a node sets: a value (an enum of the components' timer enums), so
    /// traces name it. `Serialize` feeds the trace hash; `PartialEq` lets a node cancel
    /// a timer by value.
    type Timer: Clone + Debug + PartialEq + Serialize + 'static;
}

/// A host type (message, observation or timer) that can carry a component's `T`.
/// `From<T>` wraps; `into_part` and `part` unwrap, handing back what is not a `T`.
pub trait Wraps<T>: From<T> + Sized {
    fn into_part(self) -> Result<T, Self>;
    fn part(&self) -> Option<&T>;
}

/// Every type carries itself: a component run as its own protocol needs no wrapping.
impl<T> Wraps<T> for T {
    fn into_part(self) -> Result<T, Self> {
        Ok(self)
    }

    fn part(&self) -> Option<&T> {
        Some(self)
    }
}

/// A node copied whole, for run snapshots (`Run::snapshot`). Every `Node` that is
/// `Clone` has it; a node cannot opt out, so any run can be checkpointed.
pub trait CloneNode<P: Proto> {
    fn clone_node(&self) -> Box<dyn Node<P>>;
}

impl<P: Proto, T: Node<P> + Clone + 'static> CloneNode<P> for T {
    fn clone_node(&self) -> Box<dyn Node<P>> {
        Box::new(self.clone())
    }
}

impl<P: Proto> Clone for Box<dyn Node<P>> {
    fn clone(&self) -> Self {
        self.clone_node()
    }
}

/// A simulated process. Handlers must be deterministic functions of their inputs, the
/// node's state, its disk and `Ctx::rng`.
pub trait Node<P: Proto>: CloneNode<P> {
    /// Called once at boot and again after every restart (with a fresh struct): this is
    /// where a node recovers from its disk.
    fn on_start(&mut self, ctx: &mut Ctx<'_, P>);
    fn on_message(&mut self, ctx: &mut Ctx<'_, P>, from: NodeId, msg: P::Msg);
    /// A timer set with `Ctx::set_timer` came due: its id and its value.
    fn on_timer(&mut self, ctx: &mut Ctx<'_, P>, id: TimerId, timer: P::Timer);
    /// A short role for displays ("leader", "follower", "client").
    fn role(&self) -> String {
        String::new()
    }
    /// A human-readable dump of the node's state for inspectors.
    fn inspect(&self) -> String {
        String::new()
    }
}

/// A pending timer of one node: what `on_timer` will be handed, and which event's handler
/// set it (the timer's cause in the trace).
#[derive(Clone, Debug)]
pub struct LiveTimer<T> {
    pub id: TimerId,
    pub timer: T,
    pub set_by: u64,
}

/// One thing a handler asked for, in the order it asked.
#[derive(Clone, Debug)]
pub enum Intent<P: Proto> {
    Send {
        to: NodeId,
        id: MsgId,
        msg: P::Msg,
    },
    /// The timer's value is already in the node's live list; the engine queues its event.
    SetTimer {
        id: TimerId,
        delay_ns: u64,
    },
    Observe(P::Obs),
    /// A client-history event (boxed: rare and large).
    History(Box<HistoryEvent>),
    Annotate {
        key: &'static str,
        value: String,
    },
    Note(String),
    Metric {
        name: std::borrow::Cow<'static, str>,
        value: u64,
    },
    /// A rare path was reached (see `Ctx::sometimes`).
    Sometimes(&'static str),
}

/// The counters a `Ctx` draws identities from; the engine owns them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    pub msg_next: MsgId,
    pub timer_next: TimerId,
}

/// A node's only window on the world during one handler call.
pub struct Ctx<'a, P: Proto> {
    pub(crate) id: NodeId,
    pub(crate) node_count: u32,
    pub(crate) local_ns: u64,
    pub(crate) monotonic_ns: u64,
    pub(crate) event: u64,
    pub(crate) message: Option<MsgId>,
    pub(crate) incarnation: u32,
    pub(crate) intents: &'a mut Vec<Intent<P>>,
    pub(crate) timers: &'a mut Vec<LiveTimer<P::Timer>>,
    pub(crate) ids: &'a mut Ids,
    pub(crate) rng: &'a mut ChaCha8Rng,
    pub(crate) disk: &'a mut Disk,
    pub(crate) bugs: &'a BugSet,
}

/// Everything a `Ctx` borrows; the engine and the testing harness build one per handler.
pub struct CtxParts<'a, P: Proto> {
    pub id: NodeId,
    pub node_count: u32,
    pub local_ns: u64,
    pub monotonic_ns: u64,
    pub event: u64,
    pub message: Option<MsgId>,
    /// How many times the node booted before this life (see `Ctx::incarnation`).
    pub incarnation: u32,
    pub intents: &'a mut Vec<Intent<P>>,
    pub timers: &'a mut Vec<LiveTimer<P::Timer>>,
    pub ids: &'a mut Ids,
    pub rng: &'a mut ChaCha8Rng,
    pub disk: &'a mut Disk,
    pub bugs: &'a BugSet,
}

impl<'a, P: Proto> Ctx<'a, P> {
    pub fn new(parts: CtxParts<'a, P>) -> Self {
        debug_assert!(parts.id < parts.node_count);
        Self {
            id: parts.id,
            node_count: parts.node_count,
            local_ns: parts.local_ns,
            monotonic_ns: parts.monotonic_ns,
            event: parts.event,
            message: parts.message,
            incarnation: parts.incarnation,
            intents: parts.intents,
            timers: parts.timers,
            ids: parts.ids,
            rng: parts.rng,
            disk: parts.disk,
            bugs: parts.bugs,
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// How many nodes the run has; ids are `0..node_count()`.
    pub fn node_count(&self) -> u32 {
        self.node_count
    }

    /// This node's local clock in nanoseconds: virtual time moved by its clock skew
    /// (offset and drift). It can run backwards across a skew fault, as wall clocks do.
    pub fn now_ns(&self) -> u64 {
        self.local_ns
    }

    /// This node's monotonic clock (Java's `System.nanoTime`, Linux's
    /// `CLOCK_MONOTONIC`): elapsed virtual time at the node's drift rate, untouched by
    /// offset jumps, so it never runs backwards. Measure timeouts with it.
    pub fn monotonic_ns(&self) -> u64 {
        self.monotonic_ns
    }

    /// How many times this node booted before this life: 0 at first, one more after
    /// every restart. A real node keeps such a boot counter in a file; here it survives
    /// everything, disk faults included.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// The trace index of the event this handler is handling (a delivery, a timer, the
    /// start): what everything the handler records is caused by.
    pub fn event(&self) -> u64 {
        self.event
    }

    /// The id of the message being delivered, when this handler handles a delivery.
    pub fn message_id(&self) -> Option<MsgId> {
        self.message
    }

    /// Queues `msg` for `to`; the network decides when, whether and how often it arrives.
    /// Returns the message's id, which its deliveries and drops carry.
    pub fn send(&mut self, to: NodeId, msg: impl Into<P::Msg>) -> MsgId {
        assert!(to < self.node_count, "send to unknown node {to}");
        let id = self.ids.msg_next;
        self.ids.msg_next += 1;
        self.intents.push(Intent::Send {
            to,
            id,
            msg: msg.into(),
        });
        id
    }

    /// Sets a timer that fires after `delay_ns` of this node's local time and hands
    /// `timer` back to `on_timer`.
    pub fn set_timer(&mut self, delay_ns: u64, timer: impl Into<P::Timer>) -> TimerId {
        let id = self.ids.timer_next;
        self.ids.timer_next += 1;
        debug_assert!(
            self.timers.last().is_none_or(|last| last.id < id),
            "live timers stay in id order"
        );
        self.timers.push(LiveTimer {
            id,
            timer: timer.into(),
            set_by: self.event,
        });
        self.intents.push(Intent::SetTimer { id, delay_ns });
        id
    }

    /// Cancels a timer by id; cancelling one that already fired or was cancelled is a
    /// no-op. Returns whether it was pending.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        match self.timers.binary_search_by_key(&id, |live| live.id) {
            Ok(index) => {
                self.timers.remove(index);
                true
            }
            Err(_) => false,
        }
    }

    /// Cancels every pending timer equal to `timer`; returns how many there were.
    pub fn cancel_timers(&mut self, timer: impl Into<P::Timer>) -> u32 {
        let timer = timer.into();
        let before = self.timers.len();
        self.timers.retain(|live| live.timer != timer);
        (before - self.timers.len()) as u32
    }

    /// Whether a timer equal to `timer` is pending.
    pub fn timer_pending(&self, timer: &P::Timer) -> bool {
        self.timers.iter().any(|live| live.timer == *timer)
    }

    /// This node's durable storage; see `disk` for what survives a crash.
    pub fn disk(&mut self) -> &mut Disk {
        self.disk.set_mark(self.intents.len() as u32);
        self.disk
    }

    /// This node's own random stream, seeded from the run seed and the node id.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        self.rng
    }

    /// Whether the planted bug `name` is switched on for this run.
    pub fn bug(&self, name: &str) -> bool {
        self.bugs.contains(name)
    }

    /// Reports something the invariant checkers read (a delivery, a commit, a leader).
    pub fn observe(&mut self, obs: impl Into<P::Obs>) {
        self.intents.push(Intent::Observe(obs.into()));
    }

    /// Records one client-history event (Jepsen format, see `check::HistoryEvent`). The
    /// engine stamps the virtual time, keeps it for `--history` and hands it to the
    /// invariants: a client records each operation once.
    pub fn history(&mut self, event: HistoryEvent) {
        self.intents.push(Intent::History(Box::new(event)));
    }

    /// A structured annotation in the trace: `key` names what it is (`span.cs`,
    /// `conn.state`), `value` says it. Dapper's annotations are made of these.
    pub fn annotate(&mut self, key: &'static str, value: impl ToString) {
        self.intents.push(Intent::Annotate {
            key,
            value: value.to_string(),
        });
    }

    /// One sample of a time series (queue depth, requests served...), for charts. Metrics
    /// describe a run; they are not part of its trace hash.
    pub fn metric(&mut self, name: impl Into<std::borrow::Cow<'static, str>>, value: u64) {
        self.intents.push(Intent::Metric {
            name: name.into(),
            value,
        });
    }

    /// Marks a rare path as reached ("sometimes" assertions, as Antithesis and
    /// FoundationDB's simulator have them): a swarm reports how many seeds reached each
    /// mark a component declares, and loudly the marks no seed reached. Marks describe
    /// coverage; they are neither in the trace nor in its hash.
    pub fn sometimes(&mut self, mark: &'static str) {
        debug_assert!(mark.contains('.'), "marks are named component.path: {mark}");
        self.intents.push(Intent::Sometimes(mark));
    }

    /// A free-text note in the trace, for humans reading a run.
    pub fn note(&mut self, text: impl Into<String>) {
        self.intents.push(Intent::Note(text.into()));
    }
}

/// Declares a host enum that wraps several components' types: one variant per
/// component, `From` and `Wraps` for each, and a `Debug` that shows the component's
/// value without the wrapper, so traces read `Proposal { .. }`, not `Zab(Proposal { .. })`.
/// Derive the rest (`Clone`, `Serialize`...) with the attributes given.
#[macro_export]
macro_rules! host_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident($ty:ty)),+ $(,)? }) => {
        $(#[$meta])*
        $vis enum $name {
            $($variant($ty)),+
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $($name::$variant(inner) => std::fmt::Debug::fmt(inner, f)),+
                }
            }
        }

        $(
            impl From<$ty> for $name {
                fn from(part: $ty) -> Self {
                    $name::$variant(part)
                }
            }

            impl $crate::node::Wraps<$ty> for $name {
                #[allow(unreachable_patterns)]
                fn into_part(self) -> Result<$ty, Self> {
                    match self {
                        $name::$variant(part) => Ok(part),
                        other => Err(other),
                    }
                }

                #[allow(unreachable_patterns)]
                fn part(&self) -> Option<&$ty> {
                    match self {
                        $name::$variant(part) => Some(part),
                        _ => None,
                    }
                }
            }
        )+
    };
}
