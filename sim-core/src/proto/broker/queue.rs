//! One queue: ready messages in enqueue order, unacked deliveries, consumers, limits.
//!
//! Messages are keyed by their enqueue position, so a requeued message goes back to its
//! original place, as in RabbitMQ's classic queues.

use std::collections::BTreeMap;

use super::{ConnectionId, Message, QueueArgs};

#[derive(Clone, Debug)]
pub(super) struct Queued {
    pub message: Message,
    pub routing_key: String,
    pub enqueued_ns: u64,
    pub redelivered: bool,
}

#[derive(Clone, Debug)]
pub(super) struct Consumer {
    pub connection: ConnectionId,
    pub tag: String,
    pub auto_ack: bool,
}

#[derive(Debug)]
pub(super) struct Queue {
    pub name: String,
    pub durable: bool,
    pub exclusive_owner: Option<ConnectionId>,
    pub auto_delete: bool,
    pub args: QueueArgs,
    pub ready: BTreeMap<u64, Queued>,
    /// Delivered and not yet acked, by position; the connection holds the delivery tag.
    pub unacked: BTreeMap<u64, Queued>,
    pub position_next: u64,
    pub consumers: Vec<Consumer>,
    /// Round-robin cursor over `consumers`.
    pub cursor: u32,
    pub had_consumer: bool,
}

impl Queue {
    pub fn new(name: String, durable: bool, auto_delete: bool, args: QueueArgs) -> Self {
        Self {
            name,
            durable,
            exclusive_owner: None,
            auto_delete,
            args,
            ready: BTreeMap::new(),
            unacked: BTreeMap::new(),
            position_next: 0,
            consumers: Vec::new(),
            cursor: 0,
            had_consumer: false,
        }
    }

    pub fn depth(&self) -> u32 {
        (self.ready.len() + self.unacked.len()) as u32
    }

    /// Whether one more message would exceed `max_length` (counting only ready ones, as
    /// RabbitMQ does).
    pub fn is_full(&self) -> bool {
        self.args
            .max_length
            .is_some_and(|max| self.ready.len() as u32 >= max)
    }

    pub fn push(&mut self, queued: Queued) -> u64 {
        let position = self.position_next;
        self.position_next += 1;
        self.ready.insert(position, queued);
        position
    }

    /// Puts an unacked delivery back at its original position, marked redelivered.
    pub fn requeue(&mut self, position: u64) {
        let mut queued = self
            .unacked
            .remove(&position)
            .expect("requeue of an unacked message");
        queued.redelivered = true;
        let previous = self.ready.insert(position, queued);
        assert!(previous.is_none(), "positions are unique");
    }

    /// The oldest ready message, if its TTL has passed at `now_ns`.
    pub fn expired_head(&self, now_ns: u64) -> Option<u64> {
        let ttl = self.args.message_ttl_ns?;
        let (position, head) = self.ready.first_key_value()?;
        (head.enqueued_ns.saturating_add(ttl) <= now_ns).then_some(*position)
    }
}
