//! Reliable broadcast with acks, retransmission and persistence (eager relaying).
//!
//! Every peer broadcasts `messages` messages of its own, one every `interval`. A peer
//! that receives a message it has not seen persists it (append and sync), delivers it,
//! relays it to every other peer, and acks the sender. Each peer retransmits every
//! message to every peer that has not acked it, every `retransmit`, up to
//! `RETRANSMITS_MAX` times. A restarted peer recovers its log and retransmits its own
//! messages to every peer, because acks are not persisted; relaying is only a shortcut,
//! the origin's retransmission is what guarantees agreement.
//!
//! Invariants (see `invariants.rs`):
//! - `broadcast.integrity`: a peer delivers only broadcast messages, each at most once,
//!   and never forgets a message it delivered (its recovered log holds it).
//! - `broadcast.agreement`: by the end of the quiet phase every running peer has
//!   delivered every message any peer delivered ("no progress" otherwise).
//!
//! Planted bugs (`bugs.rs`): `broadcast.ack-before-persist`, `broadcast.no-retransmit`.

pub mod bugs;
pub mod invariants;
mod peer;
pub mod spec;

pub use peer::Peer;

use serde::{Deserialize, Serialize};

use crate::node::{NodeId, Proto, Wraps};
use crate::proto::spec::{ComponentSpec, Mark};

pub const COMPONENT: ComponentSpec = ComponentSpec {
    name: "broadcast",
    description: "reliable broadcast with acks, retransmission and persistence",
    invariants: &[invariants::INTEGRITY, invariants::AGREEMENT],
    gauges: &[],
    bugs: bugs::BUGS,
    marks: &[
        Mark {
            name: "broadcast.retransmitted",
            doc: "a peer sent a message again to peers that had not acked it",
            hint: "loss or partitions (network loss, nemesis partition)",
        },
        Mark {
            name: "broadcast.gave-up",
            doc: "a peer stopped retransmitting a message after RETRANSMITS_MAX tries",
            hint: "cut one peer off for longer than 10,000 retransmits (a partition of \
                   retransmit x 10,000): beyond every built-in's duration",
        },
        Mark {
            name: "broadcast.resent-after-restart",
            doc: "a restarted peer sent its own logged messages to everyone again",
            hint: "crash peers that have broadcast (nemesis crash)",
        },
        Mark {
            name: "broadcast.torn-log",
            doc: "a restarted peer found a torn record at the end of its log and cut it off",
            hint: "only with a record unsynced at a crash: a correct peer syncs each record \
                   at once; torn_writes with bug broadcast.deliver-before-sync reach it",
        },
    ],
};

/// What a node hosting a broadcast peer needs of its host's types.
pub trait Host: Proto<Msg: Wraps<Msg>, Obs: Wraps<Obs>, Timer: Wraps<Timer>> {}
impl<P: Proto<Msg: Wraps<Msg>, Obs: Wraps<Obs>, Timer: Wraps<Timer>>> Host for P {}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Timer {
    /// Time to broadcast this peer's next message.
    Broadcast,
    /// Time to retransmit what is still unacked.
    Retransmit,
}

/// A message's identity: its origin and the origin's sequence number.
pub type MessageId = (NodeId, u32);

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Msg {
    Data {
        origin: NodeId,
        seq: u32,
        payload: u64,
    },
    Ack {
        origin: NodeId,
        seq: u32,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Obs {
    /// The origin persisted a new message of its own.
    Broadcast(MessageId),
    /// The peer persisted and delivered a message (its own ones included).
    Deliver(MessageId),
    /// The peer restarted and recovered these delivered messages from its disk.
    Recovered(Vec<MessageId>),
}

/// One record of a peer's log file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub origin: NodeId,
    pub seq: u32,
    pub payload: u64,
}

#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub messages: u32,
    pub interval_ns: u64,
    pub retransmit_ns: u64,
}

/// Retransmissions of one message to one peer before the sender gives up on it.
pub const RETRANSMITS_MAX: u32 = 10_000;
/// Messages one peer may originate; bounds logs and pending tables.
pub const MESSAGES_MAX: u32 = 10_000;
