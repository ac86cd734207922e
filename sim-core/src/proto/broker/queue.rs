//! One queue: ready messages in enqueue order, unacked deliveries, consumers, limits.
//! It holds state and answers questions about it; what to do with a message that
//! expires or overflows (drop it, dead-letter it, log it) is the broker's.
//!
//! Messages are keyed by their enqueue position, so a requeued message goes back to its
//! original place, as in RabbitMQ's classic queues.

use std::collections::BTreeMap;

use super::{ConnectionId, Message, Overflow, QueueArgs};

#[derive(Clone, Debug)]
pub(super) struct Queued {
    pub message: Message,
    pub routing_key: String,
    /// When the message expires, on the broker's wall clock: fixed at enqueue from the
    /// queue's TTL, kept across requeues and restarts (RabbitMQ stores it with the
    /// message, so downtime counts).
    pub expires_at_ns: Option<u64>,
    pub redelivered: bool,
}

#[derive(Clone, Debug)]
pub(super) struct Consumer {
    /// Unique for the broker's life: a tag can be reused after a cancel, an id cannot.
    pub id: u64,
    pub connection: ConnectionId,
    /// The channel's generation when the consumer was created.
    pub channel: u32,
    pub tag: String,
    pub auto_ack: bool,
    /// Its unacked deliveries limit (0: none), fixed by the `basic.qos` in force when it
    /// was created (RabbitMQ's per-consumer prefetch).
    pub prefetch: u32,
}

#[derive(Clone, Debug)]
pub(super) struct Queue {
    pub name: String,
    pub durable: bool,
    pub exclusive_owner: Option<ConnectionId>,
    pub auto_delete: bool,
    pub args: QueueArgs,
    pub ready: BTreeMap<u64, Queued>,
    /// Delivered and not yet acked, by position; the channel holds the delivery tag.
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

    /// Whether a publish is refused before it is even offered to a consumer:
    /// `reject-publish` with `len + 1 > max` ready messages (RabbitMQ's
    /// `will_overflow`; only ready messages count).
    pub fn refuses_publish(&self) -> bool {
        self.args.overflow == Overflow::RejectPublish
            && self
                .args
                .max_length
                .is_some_and(|max| self.ready.len() as u64 + 1 > max as u64)
    }

    /// The ready heads a `drop-head` queue must shed to be within `max_length` again
    /// (RabbitMQ's `maybe_drop_head`, run after an enqueue and after a requeue). A
    /// `reject-publish` queue sheds nothing: a requeue may take it over its limit.
    pub fn over_max_length(&self) -> Vec<u64> {
        let Some(max) = self.args.max_length else {
            return Vec::new();
        };
        if self.args.overflow != Overflow::DropHead {
            return Vec::new();
        }
        let excess = self.ready.len().saturating_sub(max as usize);
        self.ready.keys().take(excess).copied().collect()
    }

    pub fn push(&mut self, queued: Queued) -> u64 {
        let position = self.position_next;
        self.position_next += 1;
        self.ready.insert(position, queued);
        position
    }

    /// Puts an unacked delivery back at its original position, marked redelivered.
    /// False if it is not unacked here (its queue was deleted and declared again).
    pub fn requeue(&mut self, position: u64) -> bool {
        let Some(mut queued) = self.unacked.remove(&position) else {
            return false;
        };
        queued.redelivered = true;
        let previous = self.ready.insert(position, queued);
        assert!(previous.is_none(), "positions are unique");
        true
    }

    /// The oldest ready message, if it expired at `now_ns`: strictly before now when
    /// `or_now` is false (a message that expires this very instant may still go to a
    /// waiting consumer, as `x-message-ttl = 0` does), at or before now when true.
    pub fn expired_head(&self, now_ns: u64, or_now: bool) -> Option<u64> {
        let (position, head) = self.ready.first_key_value()?;
        let expires = head.expires_at_ns?;
        let expired = if or_now {
            expires <= now_ns
        } else {
            expires < now_ns
        };
        expired.then_some(*position)
    }

    /// When the head expires, if it does.
    pub fn head_expiry(&self) -> Option<u64> {
        self.ready.first_key_value()?.1.expires_at_ns
    }
}
