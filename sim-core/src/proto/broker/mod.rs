//! A RabbitMQ-style message broker (the AMQP 0-9-1 model) and its client library.
//!
//! One `broker` node holds exchanges (direct, topic, fanout and the default exchange),
//! queues and bindings; `publisher` and `consumer` nodes run workloads through the
//! client library in `client.rs`. Semantics follow RabbitMQ: a message goes to each
//! matching queue once; publisher confirms are sent only once the broker holds the
//! message as promised (a persistent message in a durable queue: synced to disk); unacked
//! deliveries of a dead connection are requeued with the redelivered flag; protocol
//! errors close the channel with RabbitMQ's reply codes (404 NOT_FOUND, 405
//! RESOURCE_LOCKED, 406 PRECONDITION_FAILED, 403 ACCESS_REFUSED).
//!
//! Deviations, documented: one channel per connection; connection liveness by heartbeats
//! over the simulated network (two missed beats close it); no transactions, headers
//! exchange, priorities, quorum queues or flow control; message bodies are a number.
//!
//! Invariants (`invariants.rs`): `broker.confirmed-durable` (no confirmed persistent
//! message is lost by a broker crash), `broker.at-least-once` (with manual acks every
//! accepted message is processed by the end), `broker.queue-order` (a consumer sees a
//! queue's messages in order until a requeue), `broker.no-duplicates` (a copy is never
//! in one queue twice), `broker.confirms-agree` (publishers are told what the broker did
//! with each message), `broker.progress` (every live publisher finishes). Auto-ack
//! consumers losing work on a crash is counted as the documented trade-off it is
//! (`broker.auto-ack-lost`), not reported as a finding. Planted bugs (`bugs.rs`):
//! `broker.confirm-before-sync`, `broker.requeue-drops-unacked`, `broker.route-duplicates`,
//! `broker.lifo-dispatch`, `broker.publish-before-setup`, `broker.silent-refusal`.

pub mod apps;
pub mod bugs;
pub mod client;
pub mod discovery;
pub mod invariants;
mod queue;
pub mod server;
pub mod spec;
pub mod topic;

pub use server::Broker;

use serde::{Deserialize, Serialize};

use crate::conn;
use crate::node::{NodeId, Proto, Wraps};
use crate::proto::spec::{ComponentSpec, Mark};

pub const COMPONENT: ComponentSpec = ComponentSpec {
    name: "broker",
    description: "exchanges, queues, confirms, acks and durability, and the client library",
    invariants: &[
        invariants::CONFIRMED_DURABLE,
        invariants::AT_LEAST_ONCE,
        invariants::QUEUE_ORDER,
        invariants::NO_DUPLICATES,
        invariants::CONFIRMS_AGREE,
        invariants::PROGRESS,
    ],
    gauges: &[],
    bugs: bugs::BUGS,
    marks: &[
        Mark {
            name: "broker.publish-nacked",
            doc: "a publish a full reject-publish queue refused was nacked",
            hint: "overflow = \"reject-publish\" with a small max_length (params)",
        },
        Mark {
            name: "broker.dead-letter-expired",
            doc: "a message whose TTL ran out was dead-lettered",
            hint: "a queue with message_ttl and a dead-letter exchange (params)",
        },
        Mark {
            name: "broker.dead-letter-max-length",
            doc: "a head dropped from a full queue was dead-lettered",
            hint: "a queue with max_length and a dead-letter exchange (params)",
        },
        Mark {
            name: "broker.dead-letter-rejected",
            doc: "a message a consumer rejected without requeue was dead-lettered",
            hint: "reject_every above 0 with a dead-letter exchange (params)",
        },
        Mark {
            name: "broker.dead-letter-cycle",
            doc: "a dead-letter that would have looped back to its queue was dropped",
            hint: "a dead-letter queue that dead-letters back to its source (params)",
        },
        Mark {
            name: "broker.requeued-after-connection-died",
            doc: "a dead consumer's unacked deliveries went back to their queue",
            hint: "crash consumers holding manual-ack work (nemesis crash)",
        },
        Mark {
            name: "broker.message-recovered-from-disk",
            doc: "a restarted broker recovered a persistent message from its log",
            hint: "crash the broker with durable queues under load (nemesis crash)",
        },
        Mark {
            name: "broker.client-call-sent-again",
            doc: "a client sent again a synchronous call its broken connection left unanswered",
            hint: "crash the broker while clients declare or select confirms (nemesis crash)",
        },
    ],
};

/// What a node hosting the broker client library needs of its host's types: AMQP frames
/// travel over connections (`conn`), as AMQP runs over TCP.
pub trait ClientHost:
    conn::Host<Frame> + Proto<Obs: Wraps<Obs>, Timer: Wraps<client::Timer>>
{
}
impl<P: conn::Host<Frame> + Proto<Obs: Wraps<Obs>, Timer: Wraps<client::Timer>>> ClientHost for P {}

/// What travels between a broker and its clients: frames on connections.
pub type Msg = conn::Segment<Frame>;

/// What a broker node or a broker workload needs of its host's types.
pub trait Host: ClientHost + Proto<Timer: Wraps<Timer>> {}
impl<P: ClientHost + Proto<Timer: Wraps<Timer>>> Host for P {}

/// The timers of the broker node and the workloads (the client library has its own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Timer {
    /// The broker's heartbeat check of its connections.
    ServerTick,
    /// The broker's group commit: sync the log, then confirm.
    ServerSync,
    /// A queue's head message expires (its TTL).
    ServerExpire,
    /// A publisher's next burst.
    Publish,
    /// A consumer finished working on a message.
    Work,
}

/// Identifies one client connection: the client node and its connection number.
pub type ConnectionId = (NodeId, u32);

pub const NOT_FOUND: u16 = 404;
pub const ACCESS_REFUSED: u16 = 403;
pub const RESOURCE_LOCKED: u16 = 405;
pub const PRECONDITION_FAILED: u16 = 406;
pub const NO_ROUTE: u16 = 312;
pub const CONNECTION_FORCED: u16 = 320;
pub const NOT_ALLOWED: u16 = 530;
pub const CHANNEL_ERROR: u16 = 504;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ExchangeKind {
    Direct,
    Topic,
    Fanout,
}

/// What happens when a queue at `max_length` receives one more message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Overflow {
    /// Drop (or dead-letter) the oldest message: RabbitMQ's default.
    DropHead,
    /// Refuse the new message; a publisher in confirm mode gets a nack.
    RejectPublish,
}

/// The `x-` arguments of a queue declaration that the broker understands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueArgs {
    pub max_length: Option<u32>,
    pub overflow: Overflow,
    pub message_ttl_ns: Option<u64>,
    pub dead_letter_exchange: Option<String>,
    pub dead_letter_routing_key: Option<String>,
}

impl Default for QueueArgs {
    fn default() -> Self {
        Self {
            max_length: None,
            overflow: Overflow::DropHead,
            message_ttl_ns: None,
            dead_letter_exchange: None,
            dead_letter_routing_key: None,
        }
    }
}

/// A message as published: `id` is the application's identity for checkers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: u64,
    pub persistent: bool,
    pub body: u64,
    /// The death history RabbitMQ keeps in `x-death`: one entry per (queue, reason),
    /// newest first, each with how often it happened. Empty for a fresh publish (a
    /// client's own history is not interpreted, as RabbitMQ 4 does).
    pub deaths: Vec<Death>,
}

impl Message {
    pub fn new(id: u64, persistent: bool, body: u64) -> Self {
        Self {
            id,
            persistent,
            body,
            deaths: Vec::new(),
        }
    }

    /// How many times this copy was dead-lettered.
    pub fn generation(&self) -> u32 {
        self.deaths.iter().map(|death| death.count).sum()
    }

    /// Which copy of publish `id` this is, for the checkers: its id and a digest of its
    /// death history (0 for the published copy). Copies dead-lettered from different
    /// queues, or at different times, differ; one copy never equals another.
    pub fn copy(&self) -> CopyId {
        if self.deaths.is_empty() {
            return (self.id, 0);
        }
        // FNV-1a over the history: stable across platforms, as every hash here must be.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for byte in bytes {
                hash = (hash ^ *byte as u64).wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for death in &self.deaths {
            eat(death.queue.as_bytes());
            eat(&[0xff, death.reason as u8]);
            eat(&death.count.to_le_bytes());
        }
        (self.id, (hash as u32 ^ (hash >> 32) as u32) | 1)
    }
}

/// One entry of a message's death history (`x-death`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Death {
    pub queue: String,
    pub reason: DropReason,
    pub count: u32,
}

/// Client-to-broker methods on the connection's one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Method {
    ChannelOpen,
    ExchangeDeclare {
        name: String,
        kind: ExchangeKind,
        durable: bool,
    },
    QueueDeclare {
        name: String,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        args: QueueArgs,
    },
    QueueBind {
        queue: String,
        exchange: String,
        key: String,
    },
    QueueDelete {
        name: String,
    },
    BasicQos {
        prefetch: u32,
    },
    BasicConsume {
        queue: String,
        tag: String,
        auto_ack: bool,
    },
    BasicCancel {
        tag: String,
    },
    ConfirmSelect,
    BasicPublish {
        exchange: String,
        routing_key: String,
        mandatory: bool,
        message: Message,
    },
    BasicAck {
        delivery_tag: u64,
        multiple: bool,
    },
    BasicNack {
        delivery_tag: u64,
        multiple: bool,
        requeue: bool,
    },
    BasicReject {
        delivery_tag: u64,
        requeue: bool,
    },
}

impl Method {
    /// Synchronous methods wait for a reply; the client keeps one in flight at a time.
    pub fn is_synchronous(&self) -> bool {
        !matches!(
            self,
            Method::BasicPublish { .. }
                | Method::BasicAck { .. }
                | Method::BasicNack { .. }
                | Method::BasicReject { .. }
        )
    }
}

/// Replies to synchronous methods, in the order the methods were sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Reply {
    ChannelOpenOk,
    ExchangeDeclareOk,
    QueueDeclareOk {
        name: String,
        messages: u32,
        consumers: u32,
    },
    QueueBindOk,
    QueueDeleteOk {
        messages: u32,
    },
    BasicQosOk,
    BasicConsumeOk {
        tag: String,
    },
    BasicCancelOk {
        tag: String,
    },
    ConfirmSelectOk,
}

/// One AMQP frame. Connections (`conn`) carry them in order, once each, or break.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Frame {
    /// connection.open; a client's new connection replaces any older one.
    Open,
    OpenOk,
    Heartbeat,
    Close,
    Method(Method),
    Reply(Reply),
    Deliver {
        consumer_tag: String,
        delivery_tag: u64,
        redelivered: bool,
        queue: String,
        message: Message,
    },
    /// basic.return of an unroutable mandatory message.
    Return {
        code: u16,
        message: Message,
    },
    /// A publisher confirm (basic.ack or basic.nack from the broker).
    Confirm {
        seq: u64,
        ack: bool,
    },
    ChannelClose {
        code: u16,
        text: String,
    },
    ConnectionClose {
        code: u16,
        text: String,
    },
}

/// Why a message left a queue without being acked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DropReason {
    Expired,
    MaxLength,
    Rejected,
    QueueDeleted,
    /// Delivered to an auto-ack consumer: the broker forgets it at once.
    AutoAcked,
}

/// A copy of a message in a queue, as the checkers name it (see `Message::copy`). A
/// message and its own dead-lettered copy may share a queue (RabbitMQ allows it); they
/// are different copies.
pub type CopyId = (u64, u32);

/// What a publisher learned about one of its publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Confirmed,
    Nacked,
    Returned,
}

/// What the broker and its clients report to the checkers.
#[derive(Clone, Debug, PartialEq)]
pub enum Obs {
    /// The broker put a copy into `queue`; `durable` if it is a persistent message in a
    /// durable queue (it must survive a broker crash once confirmed). `from`: the queue
    /// it was dead-lettered from, if it was.
    Enqueued {
        queue: String,
        copy: CopyId,
        durable: bool,
        from: Option<(String, CopyId)>,
    },
    /// The broker confirmed (acked), nacked or returned publish `id` to its publisher.
    Confirmed {
        id: u64,
    },
    Nacked {
        id: u64,
    },
    Returned {
        id: u64,
    },
    Delivered {
        queue: String,
        copy: CopyId,
        redelivered: bool,
        auto_ack: bool,
        consumer: NodeId,
    },
    /// The consumer finished processing a copy (and acked it, for manual acks).
    Processed {
        queue: String,
        copy: CopyId,
    },
    /// The broker removed a copy from `queue` without an ack.
    Dropped {
        queue: String,
        copy: CopyId,
        reason: DropReason,
    },
    /// The broker (re)started; these are the copies each durable queue recovered.
    Recovered {
        queues: Vec<(String, Vec<CopyId>)>,
    },
    /// A publisher sent publish `id` (one attempt).
    Published {
        id: u64,
    },
    /// A publisher was told `outcome` for publish `id`.
    Told {
        id: u64,
        outcome: Outcome,
    },
    /// A publisher's connection or channel went with publish `id` unconfirmed.
    Unconfirmed {
        id: u64,
    },
    /// A publisher published everything it had to, and (with confirms) heard back.
    Finished,
}
