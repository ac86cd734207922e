//! The channel's methods and RabbitMQ's answers to them: declares and their equivalence
//! checks, binds, deletes, consumers, qos, confirm mode, with the reply codes and error
//! classes of `rabbit_channel` (403/404/405/406 close the channel; 504 and 530 close the
//! connection). It never moves a message; `flow.rs` does.

use super::super::queue::{Consumer, Queue};
use super::super::{
    ExchangeKind, Host, Method, QueueArgs, Reply, ACCESS_REFUSED, NOT_ALLOWED, NOT_FOUND,
    PRECONDITION_FAILED, RESOURCE_LOCKED,
};
use super::storage::Exchange;
use super::{AmqpError, Broker, Work};
use crate::node::{Ctx, NodeId};
use crate::proto::broker::ConnectionId;

/// Queues the broker holds at most; more declares are refused.
const QUEUES_MAX: u32 = 10_000;

fn channel_error(code: u16, text: String) -> AmqpError {
    AmqpError::Channel(code, text)
}

impl Broker {
    pub(super) fn on_method<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        method: Method,
    ) {
        let reply = match method {
            Method::ChannelOpen => unreachable!("handled with the channel's state"),
            Method::ExchangeDeclare {
                name,
                kind,
                durable,
            } => self.exchange_declare(ctx, name, kind, durable),
            Method::QueueDeclare {
                name,
                durable,
                exclusive,
                auto_delete,
                args,
            } => self.queue_declare(ctx, from, name, durable, exclusive, auto_delete, args),
            Method::QueueBind {
                queue,
                exchange,
                key,
            } => self.queue_bind(ctx, from, queue, exchange, key),
            Method::QueueDelete { name } => self.queue_delete(ctx, from, name),
            Method::BasicQos { prefetch } => {
                self.channel(from).prefetch = prefetch;
                Ok(Some(Reply::BasicQosOk))
            }
            Method::BasicConsume {
                queue,
                tag,
                auto_ack,
            } => self.basic_consume(ctx, from, queue, tag, auto_ack),
            Method::BasicCancel { tag } => {
                self.cancel_consumer(ctx, from, &tag);
                Ok(Some(Reply::BasicCancelOk { tag }))
            }
            Method::ConfirmSelect => {
                self.channel(from).confirm_mode = true;
                Ok(Some(Reply::ConfirmSelectOk))
            }
            Method::BasicPublish {
                exchange,
                routing_key,
                mandatory,
                message,
            } => self
                .basic_publish(ctx, from, exchange, routing_key, mandatory, message)
                .map(|()| None),
            Method::BasicAck {
                delivery_tag,
                multiple,
            } => self
                .settle(ctx, from, delivery_tag, multiple, None)
                .map(|()| None),
            Method::BasicNack {
                delivery_tag,
                multiple,
                requeue,
            } => self
                .settle(ctx, from, delivery_tag, multiple, Some(requeue))
                .map(|()| None),
            Method::BasicReject {
                delivery_tag,
                requeue,
            } => self
                .settle(ctx, from, delivery_tag, false, Some(requeue))
                .map(|()| None),
        };
        self.answer(ctx, from, reply);
    }

    fn exchange_declare<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        name: String,
        kind: ExchangeKind,
        durable: bool,
    ) -> Result<Option<Reply>, AmqpError> {
        if let Some(existing) = self.exchanges.get(&name) {
            if existing.kind != kind || existing.durable != durable {
                let text = format!("PRECONDITION_FAILED - inequivalent arg 'type' or 'durable' for exchange '{name}'");
                return Err(channel_error(PRECONDITION_FAILED, text));
            }
            return Ok(Some(Reply::ExchangeDeclareOk));
        }
        if name.is_empty() || name.starts_with("amq.") {
            let text =
                format!("ACCESS_REFUSED - exchange name '{name}' contains reserved prefix 'amq.'");
            return Err(channel_error(ACCESS_REFUSED, text));
        }
        self.exchanges.insert(
            name,
            Exchange {
                kind,
                durable,
                bindings: Vec::new(),
            },
        );
        if durable {
            self.save_meta(ctx);
        }
        Ok(Some(Reply::ExchangeDeclareOk))
    }

    /// `queue.declare`, as `rabbit_channel` and `rabbit_amqqueue` check it: the `amq.`
    /// prefix first (403), then, for an existing queue, exclusivity exactly (405, also
    /// when only the flag differs), then durable, auto-delete and arguments (406). An
    /// exclusive queue is never durable.
    #[allow(clippy::too_many_arguments)]
    fn queue_declare<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        name: String,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        args: QueueArgs,
    ) -> Result<Option<Reply>, AmqpError> {
        let owner = self.owner(client);
        let durable = durable && !exclusive;
        if name.starts_with("amq.") {
            let text =
                format!("ACCESS_REFUSED - queue name '{name}' contains reserved prefix 'amq.*'");
            return Err(channel_error(ACCESS_REFUSED, text));
        }
        let name = if name.is_empty() {
            self.queue_name_next += 1;
            format!("amq.gen-{client}-{}", self.queue_name_next)
        } else {
            name
        };
        if let Some(queue) = self.queues.get(&name) {
            let wanted = exclusive.then_some(owner);
            if queue.exclusive_owner != wanted {
                return Err(locked(&name));
            }
            if queue.durable != durable || queue.args != args || queue.auto_delete != auto_delete {
                let text = format!("PRECONDITION_FAILED - inequivalent arg for queue '{name}'");
                return Err(channel_error(PRECONDITION_FAILED, text));
            }
            let reply = Reply::QueueDeclareOk {
                name,
                messages: queue.ready.len() as u32,
                consumers: queue.consumers.len() as u32,
            };
            return Ok(Some(reply));
        }
        if self.queues.len() as u32 >= QUEUES_MAX {
            return Err(channel_error(
                PRECONDITION_FAILED,
                format!("too many queues ({QUEUES_MAX})"),
            ));
        }
        let mut queue = Queue::new(name.clone(), durable, auto_delete, args);
        queue.exclusive_owner = exclusive.then_some(owner);
        self.queues.insert(name.clone(), queue);
        if durable {
            self.save_meta(ctx);
        }
        Ok(Some(Reply::QueueDeclareOk {
            name,
            messages: 0,
            consumers: 0,
        }))
    }

    /// Another connection's exclusive queue is out of reach (405).
    fn check_exclusive(&self, queue: &Queue, owner: ConnectionId) -> Result<(), AmqpError> {
        match queue.exclusive_owner {
            Some(holder) if holder != owner => Err(locked(&queue.name)),
            _ => Ok(()),
        }
    }

    fn queue_bind<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        queue: String,
        exchange: String,
        key: String,
    ) -> Result<Option<Reply>, AmqpError> {
        if exchange.is_empty() {
            let text =
                "ACCESS_REFUSED - operation not permitted on the default exchange".to_string();
            return Err(channel_error(ACCESS_REFUSED, text));
        }
        let owner = self.owner(client);
        let Some(target) = self.queues.get(&queue) else {
            return Err(channel_error(
                NOT_FOUND,
                format!("NOT_FOUND - no queue '{queue}'"),
            ));
        };
        self.check_exclusive(target, owner)?;
        let durable_queue = target.durable;
        let Some(source) = self.exchanges.get_mut(&exchange) else {
            return Err(channel_error(
                NOT_FOUND,
                format!("NOT_FOUND - no exchange '{exchange}'"),
            ));
        };
        let binding = (queue, key);
        if !source.bindings.contains(&binding) {
            source.bindings.push(binding);
            if source.durable && durable_queue {
                self.save_meta(ctx);
            }
        }
        Ok(Some(Reply::QueueBindOk))
    }

    /// `queue.delete`: another connection's exclusive queue is 405; a queue that does
    /// not exist is deleted already (delete-ok, 0 messages), as RabbitMQ answers.
    fn queue_delete<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        name: String,
    ) -> Result<Option<Reply>, AmqpError> {
        let owner = self.owner(client);
        let Some(queue) = self.queues.get(&name) else {
            return Ok(Some(Reply::QueueDeleteOk { messages: 0 }));
        };
        self.check_exclusive(queue, owner)?;
        let messages = queue.ready.len() as u32;
        self.delete_queue(ctx, &name);
        Ok(Some(Reply::QueueDeleteOk { messages }))
    }

    /// Deletes a queue: its messages are dropped, its bindings and consumers go. Unacked
    /// deliveries stay on their channels; an ack for one is accepted and does nothing.
    pub(super) fn delete_queue<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, name: &str) {
        let Some(queue) = self.queues.remove(name) else {
            return;
        };
        for queued in queue.ready.values().chain(queue.unacked.values()) {
            ctx.observe(crate::proto::broker::Obs::Dropped {
                queue: name.to_string(),
                copy: queued.message.copy(),
                reason: crate::proto::broker::DropReason::QueueDeleted,
            });
        }
        self.messages -= queue.ready.len() as u32 + queue.unacked.len() as u32;
        for exchange in self.exchanges.values_mut() {
            exchange.bindings.retain(|(q, _)| q != name);
        }
        for connection in self.connections.values_mut() {
            if let Some(channel) = connection.channel.as_mut() {
                channel.consumers.retain(|_, (_, q)| q != name);
            }
        }
        if queue.durable {
            self.save_meta(ctx);
            self.compact_log(ctx);
        }
    }

    fn basic_consume<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        queue_name: String,
        tag: String,
        auto_ack: bool,
    ) -> Result<Option<Reply>, AmqpError> {
        let owner = self.owner(client);
        let Some(queue) = self.queues.get(&queue_name) else {
            return Err(channel_error(
                NOT_FOUND,
                format!("NOT_FOUND - no queue '{queue_name}'"),
            ));
        };
        self.check_exclusive(queue, owner)?;
        let id = self.consumer_next;
        self.consumer_next += 1;
        let channel = self.channel(client);
        let tag = if tag.is_empty() {
            channel.consumer_tag_next += 1;
            format!("amq.ctag-{}", channel.consumer_tag_next)
        } else {
            tag
        };
        if channel.consumers.contains_key(&tag) {
            // A hard error in RabbitMQ: the connection closes, not just the channel.
            let text = format!("NOT_ALLOWED - attempt to reuse consumer tag '{tag}'");
            return Err(AmqpError::Connection(NOT_ALLOWED, text));
        }
        channel
            .consumers
            .insert(tag.clone(), (id, queue_name.clone()));
        let consumer = Consumer {
            id,
            connection: owner,
            channel: channel.generation,
            tag: tag.clone(),
            auto_ack,
            prefetch: channel.prefetch,
        };
        let queue = self.queues.get_mut(&queue_name).expect("checked above");
        queue.consumers.push(consumer);
        queue.had_consumer = true;
        self.send(
            ctx,
            client,
            super::Frame::Reply(Reply::BasicConsumeOk { tag }),
        );
        self.schedule(ctx, Work::Dispatch(queue_name));
        Ok(None)
    }

    fn cancel_consumer<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, client: NodeId, tag: &str) {
        let Some((_, queue)) = self.channel(client).consumers.remove(tag) else {
            return;
        };
        let owner = self.owner(client);
        self.remove_consumer(ctx, owner, tag, &queue);
    }

    /// Takes a consumer off its queue; an auto-delete queue goes with its last consumer.
    pub(super) fn remove_consumer<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        owner: ConnectionId,
        tag: &str,
        queue_name: &str,
    ) {
        let Some(queue) = self.queues.get_mut(queue_name) else {
            return;
        };
        queue
            .consumers
            .retain(|c| !(c.connection == owner && c.tag == tag));
        if queue.auto_delete && queue.had_consumer && queue.consumers.is_empty() {
            self.delete_queue(ctx, queue_name);
        }
    }
}

fn locked(name: &str) -> AmqpError {
    channel_error(
        RESOURCE_LOCKED,
        format!(
            "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}' \
             (or the exclusive property does not match)"
        ),
    )
}
