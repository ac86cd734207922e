//! Connections with TCP's observable semantics over the datagram network: frames arrive in
//! order, once each, or the connection breaks and both ends are told, as a socket error
//! would tell them. Loss and reordering become delay; duplicates are dropped.
//!
//! A node hosts one `Endpoint<F>` per component that talks over connections (the frame
//! type `F` is the component's message type); segments and timers are typed by `F`, so a
//! registry server's ZAB links and its client sessions never mix. The endpoint is
//! sans-IO like everything else: the host hands it segments and timers and gets `Event`s
//! back.
//!
//! How it works (see `endpoint.rs`):
//! - a three-way-free handshake: `Syn`, answered by `SynAck` (data may follow at once and
//!   counts as the answer if it overtakes it);
//! - per direction, sequence numbers from 1, one frame per segment, cumulative acks that
//!   ride on data going the other way or, after `delayed_ack`, on a pure `Ack`;
//! - at most `window` segments in flight; more wait in a send buffer of `send_buffer`
//!   frames (past it the connection breaks: the writer is too far ahead);
//! - retransmission of everything in flight when the retransmission timeout expires, the
//!   timeout estimated from round trips as TCP does (Jacobson/Karels, Karn's rule), at
//!   least `rto_min`, doubling on every expiry up to `rto_max`;
//! - a break when a segment stays unacknowledged for `timeout`, or an idle peer stays
//!   silent that long after `keepalive` probes; on a reset from the peer; and when the
//!   peer restarted (every boot has a new boot id, carried by every segment).
//!
//! State changes are annotated in the trace (`conn.state`: opening, open, retransmitting,
//! broken, closed). This module never looks inside a frame and never knows a protocol.

mod endpoint;

pub use endpoint::{Endpoint, OpenError, SendError};

use std::fmt;
use std::marker::PhantomData;

use serde::{Serialize, Serializer};

use crate::node::{NodeId, Proto, Wraps};
use crate::units::format_duration;

/// A node's boot id: its boot counter plus one (`Ctx::incarnation`), carried by every
/// segment, so a peer that restarted is told apart from the one that opened a
/// connection, as TCP tells them apart by their initial sequence numbers. 0 means
/// unknown.
pub type Boot = u32;

/// A sequence number: one per frame, per direction, per connection, from 1. 32 bits
/// hold more frames than a run may have events (`engine::EVENTS_MAX`).
pub type Seq = u32;

/// The most connections one endpoint holds; more opens are refused.
pub const CONNS_MAX: usize = 10_000;

/// A connection as its endpoint names it: the peer, which side opened it, and the
/// opener's number for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ConnId {
    pub peer: NodeId,
    /// True when this endpoint opened the connection.
    pub mine: bool,
    pub number: u32,
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = if self.mine { "to" } else { "from" };
        write!(f, "#{} {side} {}", self.number, self.peer)
    }
}

/// Scenario-level parameters of every connection (`[connections]` in a scenario file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnParams {
    /// The smallest retransmission timeout, and the first one before any round trip was
    /// measured.
    pub rto_min_ns: u64,
    /// The largest retransmission timeout exponential backoff reaches.
    pub rto_max_ns: u64,
    /// A segment unacknowledged this long (or an idle peer silent this long, with
    /// keepalive) breaks the connection.
    pub timeout_ns: u64,
    /// Segments in flight per direction.
    pub window: u32,
    /// Frames a writer may queue beyond the window before the connection breaks.
    pub send_buffer: u32,
    /// How long a receiver waits for data to carry its ack before sending it alone.
    pub delayed_ack_ns: u64,
    /// An idle connection is probed after this much silence; 0 never probes.
    pub keepalive_ns: u64,
}

impl Default for ConnParams {
    fn default() -> Self {
        Self {
            rto_min_ns: 20_000_000,
            rto_max_ns: 200_000_000,
            timeout_ns: 2_000_000_000,
            window: 64,
            send_buffer: 10_000,
            delayed_ack_ns: 5_000_000,
            keepalive_ns: 500_000_000,
        }
    }
}

impl ConnParams {
    /// The bounds a scenario's values must respect; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.rto_min_ns == 0 {
            return Err(("rto_min", "must be above zero".into()));
        }
        if self.rto_max_ns < self.rto_min_ns {
            return Err((
                "rto_max",
                format!(
                    "{} is below rto_min {}",
                    format_duration(self.rto_max_ns),
                    format_duration(self.rto_min_ns)
                ),
            ));
        }
        if self.timeout_ns <= self.rto_min_ns {
            return Err((
                "timeout",
                format!(
                    "{} leaves no time to retransmit after rto_min {}",
                    format_duration(self.timeout_ns),
                    format_duration(self.rto_min_ns)
                ),
            ));
        }
        if self.window == 0 {
            return Err(("window", "must be at least 1".into()));
        }
        if self.delayed_ack_ns >= self.rto_min_ns {
            return Err((
                "delayed_ack",
                "must be shorter than rto_min, or every ack comes too late".into(),
            ));
        }
        Ok(())
    }
}

/// Why a connection broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum BreakReason {
    /// A segment (or, idle, the peer) went unanswered for `timeout`.
    Timeout,
    /// The peer reset it: it no longer knows the connection.
    Reset,
    /// The peer booted again; the connection died with its old memory.
    PeerRestarted,
    /// The writer queued more than `send_buffer` frames beyond the window.
    SendBufferFull,
}

/// What the endpoint tells its host.
#[derive(Clone, Debug, PartialEq)]
pub enum Event<F> {
    /// A connection this endpoint opened is open.
    Opened { conn: ConnId },
    /// A peer opened a connection to this endpoint.
    Accepted { conn: ConnId },
    /// The next frame of a connection, in the order it was sent.
    Frame { conn: ConnId, frame: F },
    /// The peer closed the connection after its last frame.
    Closed { conn: ConnId },
    /// The connection broke; frames not yet delivered are lost.
    Broken { conn: ConnId, reason: BreakReason },
}

/// The events of one call, in order. Almost every call yields none or one, so the first
/// lives inline and only a second one allocates.
#[derive(Debug)]
pub struct Events<F> {
    first: Option<Event<F>>,
    more: Vec<Event<F>>,
}

impl<F> Default for Events<F> {
    fn default() -> Self {
        Self {
            first: None,
            more: Vec::new(),
        }
    }
}

impl<F> Events<F> {
    pub fn push(&mut self, event: Event<F>) {
        if self.first.is_none() && self.more.is_empty() {
            self.first = Some(event);
            return;
        }
        if let Some(first) = self.first.take() {
            self.more.push(first);
        }
        self.more.push(event);
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none() && self.more.is_empty()
    }
}

impl<F> IntoIterator for Events<F> {
    type Item = Event<F>;
    type IntoIter = std::iter::Chain<std::option::IntoIter<Event<F>>, std::vec::IntoIter<Event<F>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.more)
    }
}

/// The endpoint's view of its peer, carried by every segment after the `Syn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Route {
    /// True when the sender opened the connection.
    pub opener: bool,
    pub number: u32,
    /// The sender's boot id.
    pub from_boot: Boot,
    /// The receiver's boot id as the sender knows it.
    pub to_boot: Boot,
}

impl<F> From<Event<F>> for Events<F> {
    fn from(event: Event<F>) -> Self {
        Self {
            first: Some(event),
            more: Vec::new(),
        }
    }
}

/// What travels on the network.
#[derive(Clone, PartialEq, Serialize)]
pub enum Segment<F> {
    /// Opens connection `number` of the sender.
    Syn {
        number: u32,
        boot: Boot,
    },
    /// Accepts the receiver's connection `number`.
    SynAck {
        number: u32,
        boot: Boot,
        to_boot: Boot,
    },
    /// One frame, sequence number `seq`, with the cumulative ack of the other direction.
    Data {
        route: Route,
        seq: Seq,
        ack: Seq,
        frame: F,
    },
    /// The sender will send nothing after `seq`.
    Fin {
        route: Route,
        seq: Seq,
        ack: Seq,
    },
    Ack {
        route: Route,
        ack: Seq,
    },
    /// An idle connection's keepalive: the receiver answers with an `Ack`.
    Probe {
        route: Route,
        ack: Seq,
    },
    /// The sender does not know the connection (any more).
    Rst {
        route: Route,
    },
}

/// Data shows its frame first, so traces read as the protocol's messages.
impl<F: fmt::Debug> fmt::Debug for Segment<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Data {
                route,
                seq,
                ack,
                frame,
            } => write!(f, "{frame:?} [#{} seq {seq} ack {ack}]", route.number),
            Segment::Syn { number, .. } => write!(f, "Syn [#{number}]"),
            Segment::SynAck { number, .. } => write!(f, "SynAck [#{number}]"),
            Segment::Fin { route, seq, ack } => {
                write!(f, "Fin [#{} seq {seq} ack {ack}]", route.number)
            }
            Segment::Ack { route, ack } => write!(f, "Ack [#{} ack {ack}]", route.number),
            Segment::Probe { route, ack } => write!(f, "Probe [#{} ack {ack}]", route.number),
            Segment::Rst { route } => write!(f, "Rst [#{}]", route.number),
        }
    }
}

/// An endpoint's timer: one per connection, armed at its earliest deadline. Typed by the
/// frame type, so two endpoints in one node never take each other's timers.
pub struct Timer<F> {
    pub conn: ConnId,
    frame: PhantomData<fn() -> F>,
}

impl<F> Timer<F> {
    pub fn new(conn: ConnId) -> Self {
        Self {
            conn,
            frame: PhantomData,
        }
    }
}

impl<F> Clone for Timer<F> {
    fn clone(&self) -> Self {
        Self::new(self.conn)
    }
}

impl<F> PartialEq for Timer<F> {
    fn eq(&self, other: &Self) -> bool {
        self.conn == other.conn
    }
}

impl<F> fmt::Debug for Timer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Conn({})", self.conn)
    }
}

impl<F> Serialize for Timer<F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.conn.serialize(serializer)
    }
}

/// What a node hosting an endpoint for frames `F` needs of its host's types.
pub trait Host<F: 'static>: Proto<Msg: Wraps<Segment<F>>, Timer: Wraps<Timer<F>>> {}
impl<F: 'static, P: Proto<Msg: Wraps<Segment<F>>, Timer: Wraps<Timer<F>>>> Host<F> for P {}
