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
//! queue's messages in order until a requeue), `broker.no-duplicates` (a message is never
//! in one queue twice). Auto-ack consumers losing work on a crash is counted as the
//! documented trade-off it is (`broker.auto-ack-lost`), not reported as a finding.
//! Planted bugs (`bugs.rs`): `broker.confirm-before-sync`, `broker.requeue-drops-unacked`,
//! `broker.route-duplicates`.

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
use crate::proto::spec::ComponentSpec;

pub const COMPONENT: ComponentSpec = ComponentSpec {
    name: "broker",
    description: "exchanges, queues, confirms, acks and durability, and the client library",
    invariants: &[
        invariants::CONFIRMED_DURABLE,
        invariants::AT_LEAST_ONCE,
        invariants::QUEUE_ORDER,
        invariants::NO_DUPLICATES,
    ],
    gauges: &[],
    bugs: bugs::BUGS,
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
    /// How often the message was dead-lettered (RabbitMQ's `x-death` count).
    pub deaths: u32,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    Expired,
    MaxLength,
    Rejected,
    QueueDeleted,
    /// Delivered to an auto-ack consumer: the broker forgets it at once.
    AutoAcked,
}

/// What the broker and its clients report to the checkers.
#[derive(Clone, Debug, PartialEq)]
pub enum Obs {
    /// The broker put message `id` into `queue`; `durable` if it is a persistent message
    /// in a durable queue (it must survive a broker crash once confirmed).
    Enqueued {
        queue: String,
        id: u64,
        durable: bool,
    },
    /// The broker sent a publisher confirm covering message `id`.
    Confirmed { id: u64 },
    Delivered {
        queue: String,
        id: u64,
        redelivered: bool,
        auto_ack: bool,
        consumer: NodeId,
    },
    /// The consumer finished processing `id` (and acked it, for manual acks).
    Processed { queue: String, id: u64 },
    /// The broker removed `id` from `queue` without an ack.
    Dropped {
        queue: String,
        id: u64,
        reason: DropReason,
    },
    /// The broker (re)started; these are the messages of each durable queue it recovered.
    Recovered { queues: Vec<(String, Vec<u64>)> },
}
