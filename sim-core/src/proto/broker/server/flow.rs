//! A message's life in the broker, as RabbitMQ's classic queues live it: routed to each
//! matching queue once, refused up front by a full `reject-publish` queue (nack),
//! offered to a waiting consumer before a TTL of 0 or a max-length of 0 can drop it,
//! shed from the head of a full `drop-head` queue (after enqueues and requeues alike),
//! expired at the head on an absolute deadline, delivered round robin within each
//! consumer's prefetch, acked, rejected or requeued to its original position, and
//! dead-lettered with its death history, cycles (automatic deaths only) dropped.
//! Confirms: a nack for a refused publish, an ack at once otherwise, or after the group
//! commit when the message went to the log. It never answers a synchronous method.

use super::super::bugs::{
    CONFIRM_BEFORE_SYNC, LIFO_DISPATCH, REQUEUE_DROPS_UNACKED, ROUTE_DUPLICATES, SILENT_REFUSAL,
};
use super::super::queue::{Consumer, Queued};
use super::super::topic;
use super::super::{Death, DropReason, ExchangeKind, Frame, Host, Message, Obs, NOT_FOUND};
use super::storage::LogRecord;
use super::{touched, AmqpError, AwaitingSync, Broker, DeadLetter, Unacked, Work, MESSAGES_MAX};
use crate::node::{Ctx, NodeId};
use crate::proto::broker::PRECONDITION_FAILED;

impl Broker {
    /// Routes one message to its queues: each matching queue once (bug zoo:
    /// `broker.route-duplicates` adds it once per matching binding). None if the
    /// exchange does not exist.
    fn route<H: Host>(
        &self,
        ctx: &Ctx<'_, H>,
        exchange: &str,
        routing_key: &str,
    ) -> Option<Vec<String>> {
        if exchange.is_empty() {
            return Some(
                self.queues
                    .contains_key(routing_key)
                    .then(|| routing_key.to_string())
                    .into_iter()
                    .collect(),
            );
        }
        let source = self.exchanges.get(exchange)?;
        let mut queues: Vec<String> = source
            .bindings
            .iter()
            .filter(|(_, key)| match source.kind {
                ExchangeKind::Direct => key == routing_key,
                ExchangeKind::Topic => topic::matches(key, routing_key),
                ExchangeKind::Fanout => true,
            })
            .map(|(queue, _)| queue.clone())
            .collect();
        if !ctx.bug(ROUTE_DUPLICATES) {
            queues.sort();
            queues.dedup();
        }
        Some(queues)
    }

    pub(super) fn basic_publish<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        exchange: String,
        routing_key: String,
        mandatory: bool,
        message: Message,
    ) -> Result<(), AmqpError> {
        let Some(queues) = self.route(ctx, &exchange, &routing_key) else {
            return Err(AmqpError::Channel(
                NOT_FOUND,
                format!("NOT_FOUND - no exchange '{exchange}'"),
            ));
        };
        let connection = self.connections[&client].number;
        let channel = self.channel(client);
        let (generation, confirm) = (channel.generation, channel.confirm_mode);
        let seq = if confirm {
            channel.publish_seq += 1;
            channel.publish_seq
        } else {
            0
        };
        if queues.is_empty() && mandatory {
            // basic.return goes before the confirm, as RabbitMQ sends them.
            ctx.observe(Obs::Returned { id: message.id });
            let returned = Frame::Return {
                code: super::super::NO_ROUTE,
                message: message.clone(),
            };
            self.send(ctx, client, returned);
        }
        let mut refused = false;
        let mut needs_sync = false;
        for queue in &queues {
            if self.messages >= MESSAGES_MAX || self.queues[queue].refuses_publish() {
                refused = true;
                continue;
            }
            needs_sync |= self.enqueue(ctx, queue, &routing_key, message.clone(), None);
        }
        if !confirm {
            return Ok(());
        }
        if refused {
            // RabbitMQ nacks a publish any of whose queues refused it (bug zoo:
            // `broker.silent-refusal` says nothing).
            if ctx.bug(SILENT_REFUSAL) {
                return Ok(());
            }
            ctx.sometimes("broker.publish-nacked");
            ctx.observe(Obs::Nacked { id: message.id });
            self.send(ctx, client, Frame::Confirm { seq, ack: false });
        } else if needs_sync && !ctx.bug(CONFIRM_BEFORE_SYNC) {
            self.awaiting_sync.push(AwaitingSync {
                client,
                connection,
                channel: generation,
                seq,
                id: message.id,
            });
            self.arm_sync(ctx);
        } else {
            ctx.observe(Obs::Confirmed { id: message.id });
            self.send(ctx, client, Frame::Confirm { seq, ack: true });
        }
        Ok(())
    }

    /// Puts one copy into one queue, offers it to a waiting consumer, then sheds what a
    /// full `drop-head` queue must; true if the copy went to the log and needs a sync.
    fn enqueue<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        name: &str,
        routing_key: &str,
        message: Message,
        from: Option<(String, super::super::CopyId)>,
    ) -> bool {
        let now_ns = ctx.now_ns();
        let queue = self.queues.get_mut(name).expect("routed queues exist");
        let durable = queue.durable && message.persistent;
        let expires_at_ns = queue
            .args
            .message_ttl_ns
            .map(|ttl| now_ns.saturating_add(ttl));
        let copy = message.copy();
        let queued = Queued {
            message: message.clone(),
            routing_key: routing_key.to_string(),
            expires_at_ns,
            redelivered: false,
        };
        let position = queue.push(queued);
        self.messages += 1;
        ctx.observe(Obs::Enqueued {
            queue: name.to_string(),
            copy,
            durable,
            from,
        });
        if durable {
            let record = LogRecord::Enqueue {
                queue: name.to_string(),
                position,
                routing_key: routing_key.to_string(),
                message,
                expires_at_ns,
            };
            self.log(ctx, record);
        }
        self.dispatch(ctx, name);
        self.shed(ctx, name);
        durable
    }

    /// Drops (or dead-letters) the heads a full `drop-head` queue must shed.
    fn shed<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, name: &str) {
        let Some(queue) = self.queues.get(name) else {
            return;
        };
        for position in queue.over_max_length() {
            self.drop_message(ctx, name, position, DropReason::MaxLength);
        }
    }

    /// Removes a ready or unacked copy without an ack. Dead-lettering (if the queue has
    /// a dead-letter exchange) is queued as work; the removal's log record waits for it
    /// and goes into one atomic record with the copies.
    fn drop_message<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        name: &str,
        position: u64,
        reason: DropReason,
    ) {
        let queue = self.queues.get_mut(name).expect("the queue exists");
        let queued = queue
            .ready
            .remove(&position)
            .or_else(|| queue.unacked.remove(&position))
            .expect("the dropped message is in the queue");
        let (durable, args) = (queue.durable, queue.args.clone());
        self.messages -= 1;
        ctx.observe(Obs::Dropped {
            queue: name.to_string(),
            copy: queued.message.copy(),
            reason,
        });
        let logged = durable && queued.message.persistent;
        let dead_letter = reason != DropReason::AutoAcked && reason != DropReason::QueueDeleted;
        match args.dead_letter_exchange {
            Some(_) if dead_letter => {
                let letter = DeadLetter {
                    message: queued.message,
                    reason,
                    source: name.to_string(),
                    routing_key: queued.routing_key,
                    remove_logged: logged.then_some(position),
                };
                self.schedule(ctx, Work::DeadLetter(letter));
            }
            _ if logged => {
                let record = LogRecord::Remove {
                    queue: name.to_string(),
                    position,
                };
                self.log(ctx, record);
            }
            _ => {}
        }
    }

    /// Publishes a dead message to its source's dead-letter exchange, as
    /// `rabbit_dead_letter` does: the death recorded first (one entry per queue and
    /// reason, counted, newest first), then routed with the dead-letter routing key or
    /// the message's own; targets that would close a cycle of automatic deaths dropped
    /// (a rejection anywhere in the loop breaks it); each remaining target gets a fresh
    /// copy, unconfirmed and at most once, under its own TTL and limits. The copies and
    /// the source's removal are logged as one atomic record: RabbitMQ's queues by default
    /// dead-letter at most once (the source copy goes right after an unconfirmed
    /// publish); ours leave the message in exactly one place across a crash.
    pub(super) fn dead_letter<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, letter: DeadLetter) {
        let DeadLetter {
            mut message,
            reason,
            source,
            routing_key,
            remove_logged,
        } = letter;
        let args = self.queues.get(&source).map(|q| q.args.clone());
        let exchange = args.as_ref().and_then(|a| a.dead_letter_exchange.clone());
        let key = args
            .and_then(|a| a.dead_letter_routing_key)
            .unwrap_or(routing_key);
        let dead = message.copy();
        if exchange.is_some() {
            ctx.sometimes(match reason {
                DropReason::Expired => "broker.dead-letter-expired",
                DropReason::MaxLength => "broker.dead-letter-max-length",
                _ => "broker.dead-letter-rejected",
            });
        }
        record_death(&mut message, &source, reason);
        let targets = exchange
            .and_then(|exchange| self.route(ctx, &exchange, &key))
            .unwrap_or_default();
        let mut needs_sync = false;
        self.log_group_open();
        for target in targets {
            if reason != DropReason::Rejected && is_cycle(&message, &target) {
                ctx.sometimes("broker.dead-letter-cycle");
                ctx.note(format!(
                    "dead-letter cycle: message {:#x} not sent back to `{target}`",
                    message.id
                ));
                continue;
            }
            if self.messages >= MESSAGES_MAX || self.queues[&target].refuses_publish() {
                continue; // Dropped silently, as RabbitMQ's unconfirmed dead-letter is.
            }
            let from = Some((source.clone(), dead));
            needs_sync |= self.enqueue(ctx, &target, &key, message.clone(), from);
        }
        if let Some(position) = remove_logged {
            let record = LogRecord::Remove {
                queue: source,
                position,
            };
            self.log(ctx, record);
            needs_sync = true;
        }
        self.log_group_close(ctx);
        if needs_sync {
            self.arm_sync(ctx);
        }
    }

    /// Hands ready messages to consumers with spare prefetch, round robin; drops heads
    /// whose time passed. A head expiring this very instant still goes to a consumer
    /// that can take it (TTL 0 delivers to a waiting consumer), and expires otherwise.
    pub(super) fn dispatch<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, name: &str) {
        let now_ns = ctx.now_ns();
        loop {
            let Some(queue) = self.queues.get(name) else {
                return;
            };
            if let Some(expired) = queue.expired_head(now_ns, false) {
                self.drop_message(ctx, name, expired, DropReason::Expired);
                continue;
            }
            // Bug zoo: `broker.lifo-dispatch` hands out the newest ready message first.
            let next = if ctx.bug(LIFO_DISPATCH) {
                queue.ready.keys().next_back()
            } else {
                queue.ready.keys().next()
            };
            let Some(&position) = next else {
                return;
            };
            if let Some(consumer) = self.next_consumer(name) {
                self.deliver(ctx, name, position, consumer);
                continue;
            }
            let queue = &self.queues[name];
            if let Some(expired) = queue.expired_head(now_ns, true) {
                self.drop_message(ctx, name, expired, DropReason::Expired);
                continue;
            }
            if let Some(at) = queue.head_expiry() {
                self.arm_expiry(ctx, at);
            }
            return;
        }
    }

    fn next_consumer(&mut self, name: &str) -> Option<Consumer> {
        let queue = self.queues.get_mut(name)?;
        let count = queue.consumers.len() as u32;
        for step in 0..count {
            let index = ((queue.cursor + step) % count) as usize;
            let consumer = &queue.consumers[index];
            let Some(channel) = self
                .connections
                .get(&consumer.connection.0)
                .filter(|c| c.number == consumer.connection.1)
                .and_then(|c| c.channel.as_ref())
                .filter(|ch| ch.generation == consumer.channel)
            else {
                continue;
            };
            let unacked = channel
                .unacked_count
                .get(&consumer.id)
                .copied()
                .unwrap_or(0);
            if consumer.auto_ack || consumer.prefetch == 0 || unacked < consumer.prefetch {
                queue.cursor = (index as u32 + 1) % count;
                return Some(consumer.clone());
            }
        }
        None
    }

    fn deliver<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        name: &str,
        position: u64,
        consumer: Consumer,
    ) {
        let queue = self.queues.get_mut(name).expect("dispatching queue");
        let queued = queue.ready.remove(&position).expect("the head is ready");
        let (redelivered, message) = (queued.redelivered, queued.message.clone());
        queue.unacked.insert(position, queued);
        let client = consumer.connection.0;
        let channel = self.channel(client);
        debug_assert_eq!(channel.generation, consumer.channel);
        let delivery_tag = channel.delivery_tag_next;
        channel.delivery_tag_next += 1;
        if !consumer.auto_ack {
            *channel.unacked_count.entry(consumer.id).or_insert(0) += 1;
            let unacked = Unacked {
                queue: name.to_string(),
                position,
                consumer: consumer.id,
            };
            channel.unacked.insert(delivery_tag, unacked);
        }
        let frame = Frame::Deliver {
            consumer_tag: consumer.tag,
            delivery_tag,
            redelivered,
            queue: name.to_string(),
            message,
        };
        self.send(ctx, client, frame);
        if consumer.auto_ack {
            self.drop_message(ctx, name, position, DropReason::AutoAcked);
        }
    }

    /// basic.ack (requeue = None), basic.nack and basic.reject, as `rabbit_channel`
    /// collects them: `multiple` with tag 0 is everything outstanding; otherwise the tag
    /// named must be outstanding (406), and `multiple` takes every older one with it.
    /// Settled in delivery-tag order; a delivery whose queue was deleted settles as a
    /// no-op.
    pub(super) fn settle<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        delivery_tag: u64,
        multiple: bool,
        requeue: Option<bool>,
    ) -> Result<(), AmqpError> {
        let channel = self.channel(client);
        let tags: Vec<u64> = if multiple && delivery_tag == 0 {
            channel.unacked.keys().copied().collect()
        } else if channel.unacked.contains_key(&delivery_tag) {
            if multiple {
                let older = channel.unacked.range(..=delivery_tag);
                older.map(|(tag, _)| *tag).collect()
            } else {
                vec![delivery_tag]
            }
        } else {
            let text = format!("PRECONDITION_FAILED - unknown delivery tag {delivery_tag}");
            return Err(AmqpError::Channel(PRECONDITION_FAILED, text));
        };
        let mut deliveries = Vec::new();
        for tag in tags {
            let unacked = channel.unacked.remove(&tag).expect("listed above");
            let count = channel
                .unacked_count
                .get_mut(&unacked.consumer)
                .expect("a delivery counts against its consumer");
            *count -= 1;
            deliveries.push(unacked);
        }
        match requeue {
            Some(true) => self.requeue_all(ctx, deliveries, false),
            _ => {
                let queues = touched(deliveries.iter().map(|d| d.queue.clone()));
                for delivery in deliveries {
                    let held = self
                        .queues
                        .get(&delivery.queue)
                        .is_some_and(|q| q.unacked.contains_key(&delivery.position));
                    if !held {
                        continue; // Its queue was deleted: nothing to settle.
                    }
                    match requeue {
                        None => self.remove_acked(ctx, &delivery.queue, delivery.position),
                        _ => self.drop_message(
                            ctx,
                            &delivery.queue,
                            delivery.position,
                            DropReason::Rejected,
                        ),
                    }
                }
                for queue in queues {
                    self.schedule(ctx, Work::Dispatch(queue));
                }
            }
        }
        Ok(())
    }

    fn remove_acked<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, name: &str, position: u64) {
        let queue = self.queues.get_mut(name).expect("an acked message's queue");
        let queued = queue
            .unacked
            .remove(&position)
            .expect("acked messages are unacked");
        self.messages -= 1;
        if queue.durable && queued.message.persistent {
            let record = LogRecord::Remove {
                queue: name.to_string(),
                position,
            };
            self.log(ctx, record);
        }
    }

    /// Puts deliveries back at their positions (redelivered), then sheds what full
    /// `drop-head` queues must (RabbitMQ's `requeue_and_run`), then dispatches. Under bug
    /// `broker.requeue-drops-unacked` a dead connection's deliveries vanish instead.
    pub(super) fn requeue_all<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        deliveries: Vec<Unacked>,
        connection_dead: bool,
    ) {
        if connection_dead && !deliveries.is_empty() {
            ctx.sometimes("broker.requeued-after-connection-died");
        }
        let queues = touched(deliveries.iter().map(|d| d.queue.clone()));
        for delivery in deliveries {
            let Some(queue) = self.queues.get_mut(&delivery.queue) else {
                continue;
            };
            if connection_dead && ctx.bug(REQUEUE_DROPS_UNACKED) {
                // Planted: the work vanishes.
                if queue.unacked.remove(&delivery.position).is_some() {
                    self.messages -= 1;
                }
            } else {
                queue.requeue(delivery.position);
            }
        }
        for queue in queues {
            self.shed(ctx, &queue);
            self.schedule(ctx, Work::Dispatch(queue));
        }
    }
}

/// Adds one death to a message's history, as `mc:record_death`: the (queue, reason)
/// entry counted up and moved to the front, or a new one there.
fn record_death(message: &mut Message, queue: &str, reason: DropReason) {
    let existing = message
        .deaths
        .iter()
        .position(|death| death.queue == queue && death.reason == reason);
    let death = match existing {
        Some(index) => {
            let mut death = message.deaths.remove(index);
            death.count += 1;
            death
        }
        None => Death {
            queue: queue.to_string(),
            reason,
            count: 1,
        },
    };
    message.deaths.insert(0, death);
}

/// Whether sending a message (its death just recorded) to `target` closes a cycle of
/// automatic deaths (`rabbit_dead_letter:detect_cycles`): `target` is in its history, and
/// no death from the newest back to the newest one at `target` was a rejection.
fn is_cycle(message: &Message, target: &str) -> bool {
    let Some(at) = message
        .deaths
        .iter()
        .position(|death| death.queue == target)
    else {
        return false;
    };
    message.deaths[..=at]
        .iter()
        .all(|death| death.reason != DropReason::Rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message::new(1, true, 1)
    }

    #[test]
    fn a_death_is_counted_in_its_entry_and_moved_to_the_front() {
        let mut m = message();
        record_death(&mut m, "q", DropReason::Rejected);
        record_death(&mut m, "dlq", DropReason::Expired);
        record_death(&mut m, "q", DropReason::Rejected);
        let shown: Vec<(&str, DropReason, u32)> = m
            .deaths
            .iter()
            .map(|d| (d.queue.as_str(), d.reason, d.count))
            .collect();
        assert_eq!(
            shown,
            [
                ("q", DropReason::Rejected, 2),
                ("dlq", DropReason::Expired, 1)
            ]
        );
        assert_eq!(m.generation(), 3);
    }

    #[test]
    fn automatic_deaths_back_to_a_queue_are_a_cycle_and_a_rejection_breaks_it() {
        // dead_letter_routing_key_cycle_ttl: a queue dead-lettering to itself on expiry.
        let mut m = message();
        record_death(&mut m, "q", DropReason::Expired);
        assert!(is_cycle(&m, "q"));
        assert!(!is_cycle(&m, "other"));
        // dead_letter_reject_expire_expire: q1 (rejected) -> q2 (expired) -> q3
        // (expired) -> q1 is delivered: the rejection at q1 is in the loop.
        let mut m = message();
        record_death(&mut m, "q1", DropReason::Rejected);
        record_death(&mut m, "q2", DropReason::Expired);
        record_death(&mut m, "q3", DropReason::Expired);
        assert!(!is_cycle(&m, "q1"));
        // An expiry loop q1 -> q2 -> q1 is a cycle.
        let mut m = message();
        record_death(&mut m, "q1", DropReason::Expired);
        record_death(&mut m, "q2", DropReason::MaxLength);
        assert!(is_cycle(&m, "q1"));
    }
}
