//! The broker node: exchanges, queues, bindings, connections, confirms and persistence.
//!
//! Durability: durable exchanges, queues and their bindings live in `broker.meta`
//! (rewritten and synced on every change, before the declare-ok); persistent messages in
//! durable queues are appended to `broker.log` (enqueue and remove records) and synced by
//! a group commit every `sync_interval`. A confirm for such a message waits for that sync
//! (bug zoo: `broker.confirm-before-sync`). Transient queues and transient messages live
//! only in memory and are gone after a crash, as documented by RabbitMQ. Recovered
//! messages come back marked redelivered: the broker cannot know whether a consumer saw
//! them before the crash.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::bugs::{CONFIRM_BEFORE_SYNC, LIFO_DISPATCH, REQUEUE_DROPS_UNACKED, ROUTE_DUPLICATES};
use super::queue::{Consumer, Queue, Queued};
use super::topic;
use super::{
    ConnectionId, DropReason, ExchangeKind, Frame, Host, Message, Method, Obs, Overflow, QueueArgs,
    Reply, Timer, ACCESS_REFUSED, CONNECTION_FORCED, NOT_ALLOWED, NOT_FOUND, PRECONDITION_FAILED,
    RESOURCE_LOCKED,
};
use crate::conn::{ConnId, ConnParams, Endpoint, Event as ConnEvent, Events};
use crate::node::{Ctx, Node, NodeId, TimerId, Wraps};

const META_FILE: &str = "broker.meta";
const LOG_FILE: &str = "broker.log";
/// Messages the broker holds in all queues; past it, publishes are refused (nacked).
pub const MESSAGES_MAX: u32 = 1_000_000;
/// Log records before the broker compacts the log to its live records.
const LOG_RECORDS_MAX: u32 = 100_000;
const QUEUES_MAX: u32 = 10_000;

#[derive(Clone, Copy, Debug)]
pub struct BrokerParams {
    pub heartbeat_ns: u64,
    pub sync_interval_ns: u64,
    /// How the broker's connections behave.
    pub conn: ConnParams,
}

#[derive(Debug, Serialize, Deserialize)]
struct Exchange {
    kind: ExchangeKind,
    durable: bool,
    /// (queue, binding key), in bind order, each pair once.
    bindings: Vec<(String, String)>,
}

/// A durable exchange as `broker.meta` keeps it: name, type, (queue, key) bindings.
type DurableExchange = (String, ExchangeKind, Vec<(String, String)>);

#[derive(Debug, Default, Serialize, Deserialize)]
struct Meta {
    exchanges: Vec<DurableExchange>,
    queues: Vec<(String, bool, QueueArgs)>,
}

#[derive(Debug, Serialize, Deserialize)]
enum LogRecord {
    Enqueue {
        queue: String,
        position: u64,
        routing_key: String,
        message: Message,
    },
    Remove {
        queue: String,
        position: u64,
    },
}

#[derive(Debug)]
struct Unacked {
    queue: String,
    position: u64,
    consumer_tag: String,
}

#[derive(Debug)]
struct Connection {
    /// The transport connection this AMQP connection runs on.
    conn: ConnId,
    /// The client's number for it (`conn.number`): owners of exclusive queues and
    /// consumers name their connection by it.
    number: u32,
    last_heard_ns: u64,
    channel_open: bool,
    confirm_mode: bool,
    publish_seq: u64,
    delivery_tag_next: u64,
    prefetch: u32,
    /// Consumer tag -> (queue, unacked deliveries).
    consumers: BTreeMap<String, (String, u32)>,
    unacked: BTreeMap<u64, Unacked>,
    consumer_tag_next: u32,
}

impl Connection {
    fn new(conn: ConnId, now_ns: u64) -> Self {
        Self {
            conn,
            number: conn.number,
            last_heard_ns: now_ns,
            channel_open: false,
            confirm_mode: false,
            publish_seq: 0,
            delivery_tag_next: 1,
            prefetch: 0,
            consumers: BTreeMap::new(),
            unacked: BTreeMap::new(),
            consumer_tag_next: 1,
        }
    }
}

/// A confirm held until the next sync makes its message durable.
#[derive(Debug)]
struct AwaitingSync {
    client: NodeId,
    connection: u32,
    seq: u64,
    id: u64,
}

/// A channel error: the channel closes with this code and text.
struct ChannelError(u16, String);

pub struct Broker {
    params: BrokerParams,
    exchanges: BTreeMap<String, Exchange>,
    queues: BTreeMap<String, Queue>,
    connections: BTreeMap<NodeId, Connection>,
    /// The transport: one connection per client, AMQP running on it.
    endpoint: Endpoint<Frame>,
    awaiting_sync: Vec<AwaitingSync>,
    sync_armed: bool,
    log_records: u32,
    messages: u32,
    queue_name_next: u32,
}

impl Broker {
    pub fn new(params: BrokerParams) -> Self {
        assert!(params.heartbeat_ns > 0 && params.sync_interval_ns > 0);
        Self {
            exchanges: BTreeMap::new(),
            queues: BTreeMap::new(),
            connections: BTreeMap::new(),
            endpoint: Endpoint::new(params.conn),
            awaiting_sync: Vec::new(),
            sync_armed: false,
            log_records: 0,
            messages: 0,
            queue_name_next: 1,
            params,
        }
    }

    fn recover<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        for (name, kind) in [
            ("amq.direct", ExchangeKind::Direct),
            ("amq.topic", ExchangeKind::Topic),
            ("amq.fanout", ExchangeKind::Fanout),
        ] {
            let exchange = Exchange {
                kind,
                durable: true,
                bindings: Vec::new(),
            };
            self.exchanges.insert(name.to_string(), exchange);
        }
        let meta: Meta = postcard::from_bytes(ctx.disk().read(META_FILE)).unwrap_or_default();
        for (name, auto_delete, args) in meta.queues {
            self.queues
                .insert(name.clone(), Queue::new(name, true, auto_delete, args));
        }
        for (name, kind, bindings) in meta.exchanges {
            self.exchanges.insert(
                name,
                Exchange {
                    kind,
                    durable: true,
                    bindings,
                },
            );
        }
        let (records, torn) = ctx.disk().read_records::<LogRecord>(LOG_FILE);
        if torn {
            ctx.disk().truncate_torn_records(LOG_FILE);
        }
        for record in records {
            match record {
                LogRecord::Enqueue {
                    queue,
                    position,
                    routing_key,
                    message,
                } => {
                    let Some(queue) = self.queues.get_mut(&queue) else {
                        continue;
                    };
                    let queued = Queued {
                        message,
                        routing_key,
                        enqueued_ns: ctx.now_ns(),
                        redelivered: true,
                    };
                    queue.ready.insert(position, queued);
                    queue.position_next = queue.position_next.max(position + 1);
                }
                LogRecord::Remove { queue, position } => {
                    if let Some(queue) = self.queues.get_mut(&queue) {
                        queue.ready.remove(&position);
                    }
                }
            }
        }
        self.messages = self.queues.values().map(|q| q.ready.len() as u32).sum();
        self.compact_log(ctx);
        let recovered = self
            .queues
            .values()
            .map(|q| {
                (
                    q.name.clone(),
                    q.ready.values().map(|m| m.message.id).collect(),
                )
            })
            .collect();
        ctx.observe(Obs::Recovered { queues: recovered });
    }

    /// Rewrites the log to the live records only, and syncs it.
    fn compact_log<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let mut live = Vec::new();
        let mut count = 0;
        for queue in self.queues.values().filter(|q| q.durable) {
            for (position, queued) in queue.ready.iter().chain(queue.unacked.iter()) {
                if queued.message.persistent {
                    let record = LogRecord::Enqueue {
                        queue: queue.name.clone(),
                        position: *position,
                        routing_key: queued.routing_key.clone(),
                        message: queued.message.clone(),
                    };
                    live.extend_from_slice(&crate::disk::frame_record(&record));
                    count += 1;
                }
            }
        }
        ctx.disk().write(LOG_FILE, &live);
        ctx.disk().sync();
        self.log_records = count;
    }

    fn save_meta<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let durable_queues: Vec<&Queue> = self.queues.values().filter(|q| q.durable).collect();
        let is_durable_queue = |name: &str| durable_queues.iter().any(|q| q.name == name);
        let meta = Meta {
            exchanges: self
                .exchanges
                .iter()
                .filter(|(name, x)| x.durable && !name.starts_with("amq."))
                .map(|(name, x)| {
                    let bindings = x
                        .bindings
                        .iter()
                        .filter(|(q, _)| is_durable_queue(q))
                        .cloned()
                        .collect();
                    (name.clone(), x.kind, bindings)
                })
                .collect(),
            queues: durable_queues
                .iter()
                .map(|q| (q.name.clone(), q.auto_delete, q.args.clone()))
                .collect(),
        };
        let mut meta = meta;
        // Bindings of durable queues to the built-in exchanges are durable too.
        for (name, x) in self
            .exchanges
            .iter()
            .filter(|(name, _)| name.starts_with("amq."))
        {
            let bindings: Vec<(String, String)> = x
                .bindings
                .iter()
                .filter(|(q, _)| is_durable_queue(q))
                .cloned()
                .collect();
            if !bindings.is_empty() {
                meta.exchanges.push((name.clone(), x.kind, bindings));
            }
        }
        let bytes = postcard::to_allocvec(&meta).expect("meta serialises");
        ctx.disk().write(META_FILE, &bytes);
        ctx.disk().sync();
    }

    fn log<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, record: &LogRecord) {
        ctx.disk().append_record(LOG_FILE, record);
        self.log_records += 1;
    }

    fn on_message_method<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, method: Method) {
        let channel_open = self.connections.get(&from).is_some_and(|c| c.channel_open);
        if !channel_open && method != Method::ChannelOpen {
            return; // The channel was closed by an error; the client reopens it first.
        }
        let reply = match method {
            Method::ChannelOpen => Ok(Some(self.channel_open(from, ctx.now_ns()))),
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
            Method::QueueDelete { name } => self.queue_delete(ctx, name),
            Method::BasicQos { prefetch } => {
                self.connection(from).prefetch = prefetch;
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
                self.connection(from).confirm_mode = true;
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
        match reply {
            Ok(Some(reply)) => self.send(ctx, from, Frame::Reply(reply)),
            Ok(None) => {}
            Err(ChannelError(code, text)) => self.close_channel(ctx, from, code, text),
        }
    }

    fn connection(&mut self, client: NodeId) -> &mut Connection {
        self.connections
            .get_mut(&client)
            .expect("the method's connection exists")
    }

    fn channel_open(&mut self, client: NodeId, now_ns: u64) -> Reply {
        let old = &self.connections[&client];
        let mut fresh = Connection::new(old.conn, now_ns);
        fresh.channel_open = true;
        self.connections.insert(client, fresh);
        Reply::ChannelOpenOk
    }

    /// Sends one frame on the client's current connection. One whose send buffer
    /// overflowed broke: its AMQP connection closes with it.
    fn send<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, client: NodeId, frame: Frame) {
        let conn = self
            .connections
            .get(&client)
            .expect("sending on a live connection")
            .conn;
        if self.endpoint.send(ctx, conn, frame).is_err() {
            self.close_connection(ctx, client);
        }
    }

    fn exchange_declare<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        name: String,
        kind: ExchangeKind,
        durable: bool,
    ) -> Result<Option<Reply>, ChannelError> {
        if let Some(existing) = self.exchanges.get(&name) {
            if existing.kind != kind || existing.durable != durable {
                let text = format!("PRECONDITION_FAILED - inequivalent arg 'type' or 'durable' for exchange '{name}'");
                return Err(ChannelError(PRECONDITION_FAILED, text));
            }
            return Ok(Some(Reply::ExchangeDeclareOk));
        }
        if name.is_empty() || name.starts_with("amq.") {
            let text =
                format!("ACCESS_REFUSED - exchange name '{name}' contains reserved prefix 'amq.'");
            return Err(ChannelError(ACCESS_REFUSED, text));
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
    ) -> Result<Option<Reply>, ChannelError> {
        let owner: ConnectionId = (client, self.connections[&client].number);
        let name = if name.is_empty() {
            self.queue_name_next += 1;
            format!("amq.gen-{client}-{}", self.queue_name_next)
        } else {
            name
        };
        if let Some(queue) = self.queues.get(&name) {
            self.check_exclusive(queue, owner)?;
            if queue.durable != durable || queue.args != args || queue.auto_delete != auto_delete {
                let text = format!("PRECONDITION_FAILED - inequivalent arg for queue '{name}'");
                return Err(ChannelError(PRECONDITION_FAILED, text));
            }
            let reply = Reply::QueueDeclareOk {
                name,
                messages: queue.ready.len() as u32,
                consumers: queue.consumers.len() as u32,
            };
            return Ok(Some(reply));
        }
        if self.queues.len() as u32 >= QUEUES_MAX {
            return Err(ChannelError(
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

    fn check_exclusive(&self, queue: &Queue, owner: ConnectionId) -> Result<(), ChannelError> {
        match queue.exclusive_owner {
            Some(holder) if holder != owner => Err(ChannelError(
                RESOURCE_LOCKED,
                format!(
                    "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{}'",
                    queue.name
                ),
            )),
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
    ) -> Result<Option<Reply>, ChannelError> {
        if exchange.is_empty() {
            let text =
                "ACCESS_REFUSED - operation not permitted on the default exchange".to_string();
            return Err(ChannelError(ACCESS_REFUSED, text));
        }
        let owner = (client, self.connections[&client].number);
        let Some(target) = self.queues.get(&queue) else {
            return Err(ChannelError(
                NOT_FOUND,
                format!("NOT_FOUND - no queue '{queue}'"),
            ));
        };
        self.check_exclusive(target, owner)?;
        let durable_queue = target.durable;
        let Some(source) = self.exchanges.get_mut(&exchange) else {
            return Err(ChannelError(
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

    fn queue_delete<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        name: String,
    ) -> Result<Option<Reply>, ChannelError> {
        let Some(queue) = self.queues.remove(&name) else {
            return Err(ChannelError(
                NOT_FOUND,
                format!("NOT_FOUND - no queue '{name}'"),
            ));
        };
        let messages = queue.ready.len() as u32;
        for queued in queue.ready.values().chain(queue.unacked.values()) {
            ctx.observe(Obs::Dropped {
                queue: name.clone(),
                id: queued.message.id,
                reason: DropReason::QueueDeleted,
            });
        }
        self.messages -= queue.ready.len() as u32 + queue.unacked.len() as u32;
        for exchange in self.exchanges.values_mut() {
            exchange.bindings.retain(|(q, _)| *q != name);
        }
        for connection in self.connections.values_mut() {
            connection
                .unacked
                .retain(|_, unacked| unacked.queue != name);
            connection.consumers.retain(|_, (q, _)| *q != name);
        }
        if queue.durable {
            self.save_meta(ctx);
            self.compact_log(ctx);
        }
        Ok(Some(Reply::QueueDeleteOk { messages }))
    }

    fn basic_consume<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        queue_name: String,
        tag: String,
        auto_ack: bool,
    ) -> Result<Option<Reply>, ChannelError> {
        let owner = (client, self.connections[&client].number);
        let Some(queue) = self.queues.get(&queue_name) else {
            return Err(ChannelError(
                NOT_FOUND,
                format!("NOT_FOUND - no queue '{queue_name}'"),
            ));
        };
        self.check_exclusive(queue, owner)?;
        let connection = self.connection(client);
        let tag = if tag.is_empty() {
            connection.consumer_tag_next += 1;
            format!("amq.ctag-{}", connection.consumer_tag_next)
        } else {
            tag
        };
        if connection.consumers.contains_key(&tag) {
            let text = format!("NOT_ALLOWED - attempt to reuse consumer tag '{tag}'");
            return Err(ChannelError(NOT_ALLOWED, text));
        }
        connection
            .consumers
            .insert(tag.clone(), (queue_name.clone(), 0));
        let queue = self.queues.get_mut(&queue_name).expect("checked above");
        queue.consumers.push(Consumer {
            connection: owner,
            tag: tag.clone(),
            auto_ack,
        });
        queue.had_consumer = true;
        self.send(ctx, client, Frame::Reply(Reply::BasicConsumeOk { tag }));
        self.dispatch(ctx, &queue_name);
        Ok(None)
    }

    fn cancel_consumer<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, client: NodeId, tag: &str) {
        let Some((queue_name, _)) = self.connection(client).consumers.remove(tag) else {
            return;
        };
        let owner = (client, self.connections[&client].number);
        let Some(queue) = self.queues.get_mut(&queue_name) else {
            return;
        };
        queue
            .consumers
            .retain(|c| !(c.connection == owner && c.tag == tag));
        if queue.auto_delete && queue.had_consumer && queue.consumers.is_empty() {
            let _ = self.queue_delete(ctx, queue_name);
        }
    }

    /// Routes one message to its queues: each matching queue once (bug zoo:
    /// `broker.route-duplicates` adds it once per matching binding).
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

    #[allow(clippy::too_many_arguments)]
    fn basic_publish<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        exchange: String,
        routing_key: String,
        mandatory: bool,
        message: Message,
    ) -> Result<(), ChannelError> {
        let Some(queues) = self.route(ctx, &exchange, &routing_key) else {
            return Err(ChannelError(
                NOT_FOUND,
                format!("NOT_FOUND - no exchange '{exchange}'"),
            ));
        };
        let connection = self.connection(client);
        let (number, confirm) = (connection.number, connection.confirm_mode);
        let seq = if confirm {
            connection.publish_seq += 1;
            connection.publish_seq
        } else {
            0
        };
        if queues.is_empty() && mandatory {
            self.send(
                ctx,
                client,
                Frame::Return {
                    code: super::NO_ROUTE,
                    message: message.clone(),
                },
            );
        }
        let (refused, needs_sync) = self.enqueue_all(ctx, &queues, &routing_key, &message);
        if confirm {
            if refused {
                self.send(ctx, client, Frame::Confirm { seq, ack: false });
            } else if needs_sync && !ctx.bug(CONFIRM_BEFORE_SYNC) {
                self.awaiting_sync.push(AwaitingSync {
                    client,
                    connection: number,
                    seq,
                    id: message.id,
                });
                self.arm_sync(ctx);
            } else {
                ctx.observe(Obs::Confirmed { id: message.id });
                self.send(ctx, client, Frame::Confirm { seq, ack: true });
            }
        }
        for queue in queues {
            self.dispatch(ctx, &queue);
        }
        Ok(())
    }

    /// Puts `message` into each queue; returns (refused by some queue, needs a sync).
    fn enqueue_all<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        queues: &[String],
        routing_key: &str,
        message: &Message,
    ) -> (bool, bool) {
        let (mut refused, mut needs_sync) = (false, false);
        for name in queues {
            let queue = &self.queues[name];
            if self.messages >= MESSAGES_MAX {
                refused = true;
                continue;
            }
            if queue.is_full() {
                match queue.args.overflow {
                    Overflow::RejectPublish => {
                        refused = true;
                        continue;
                    }
                    Overflow::DropHead => {
                        let head = *queue.ready.keys().next().expect("a full queue has a head");
                        self.drop_message(ctx, name, head, DropReason::MaxLength);
                    }
                }
            }
            needs_sync |= self.enqueue(ctx, name, routing_key, message.clone());
        }
        (refused, needs_sync)
    }

    /// Appends one message to one queue; true if it went to the log and needs a sync.
    fn enqueue<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        name: &str,
        routing_key: &str,
        message: Message,
    ) -> bool {
        let now_ns = ctx.now_ns();
        let queue = self.queues.get_mut(name).expect("routed queues exist");
        let durable = queue.durable && message.persistent;
        let queued = Queued {
            message: message.clone(),
            routing_key: routing_key.to_string(),
            enqueued_ns: now_ns,
            redelivered: false,
        };
        let position = queue.push(queued);
        self.messages += 1;
        ctx.observe(Obs::Enqueued {
            queue: name.to_string(),
            id: message.id,
            durable,
        });
        if durable {
            let record = LogRecord::Enqueue {
                queue: name.to_string(),
                position,
                routing_key: routing_key.to_string(),
                message,
            };
            self.log(ctx, &record);
        }
        durable
    }

    /// Removes a ready or unacked message without an ack, dead-lettering it if the queue
    /// has a dead-letter exchange.
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
            .or_else(|| queue.unacked.remove(&position));
        let queued = queued.expect("the dropped message is in the queue");
        let (durable, args) = (queue.durable, queue.args.clone());
        self.messages -= 1;
        ctx.observe(Obs::Dropped {
            queue: name.to_string(),
            id: queued.message.id,
            reason,
        });
        if durable && queued.message.persistent {
            self.log(
                ctx,
                &LogRecord::Remove {
                    queue: name.to_string(),
                    position,
                },
            );
        }
        let dead_letter = reason != DropReason::AutoAcked && reason != DropReason::QueueDeleted;
        if let (true, Some(exchange)) = (dead_letter, args.dead_letter_exchange) {
            let key = args.dead_letter_routing_key.unwrap_or(queued.routing_key);
            let mut message = queued.message;
            message.deaths += 1;
            if let Some(targets) = self.route(ctx, &exchange, &key) {
                let targets: Vec<String> = targets.into_iter().filter(|t| t != name).collect();
                let (_, needs_sync) = self.enqueue_all(ctx, &targets, &key, &message);
                if needs_sync {
                    self.arm_sync(ctx);
                }
            }
        }
    }

    /// Hands ready messages to consumers with spare prefetch, round robin.
    fn dispatch<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, name: &str) {
        let now_ns = ctx.now_ns();
        loop {
            let Some(queue) = self.queues.get(name) else {
                return;
            };
            if let Some(expired) = queue.expired_head(now_ns) {
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
            let Some(consumer) = self.next_consumer(name) else {
                return;
            };
            self.deliver(ctx, name, position, consumer);
        }
    }

    fn next_consumer(&mut self, name: &str) -> Option<Consumer> {
        let queue = self.queues.get_mut(name)?;
        let count = queue.consumers.len() as u32;
        for step in 0..count {
            let index = ((queue.cursor + step) % count) as usize;
            let consumer = &queue.consumers[index];
            let connection = self.connections.get(&consumer.connection.0)?;
            let (_, unacked) = connection.consumers.get(&consumer.tag)?;
            if consumer.auto_ack || connection.prefetch == 0 || *unacked < connection.prefetch {
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
        let connection = self.connection(client);
        debug_assert_eq!(connection.number, consumer.connection.1);
        let delivery_tag = connection.delivery_tag_next;
        connection.delivery_tag_next += 1;
        if !consumer.auto_ack {
            connection
                .consumers
                .get_mut(&consumer.tag)
                .expect("consumer")
                .1 += 1;
            let unacked = Unacked {
                queue: name.to_string(),
                position,
                consumer_tag: consumer.tag.clone(),
            };
            connection.unacked.insert(delivery_tag, unacked);
        }
        let queue = name.to_string();
        let frame = Frame::Deliver {
            consumer_tag: consumer.tag,
            delivery_tag,
            redelivered,
            queue,
            message,
        };
        self.send(ctx, client, frame);
        if consumer.auto_ack {
            self.drop_message(ctx, name, position, DropReason::AutoAcked);
        }
    }

    /// basic.ack (requeue = None), basic.nack and basic.reject.
    fn settle<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        delivery_tag: u64,
        multiple: bool,
        requeue: Option<bool>,
    ) -> Result<(), ChannelError> {
        let connection = self.connection(client);
        let tags: Vec<u64> = if multiple {
            connection
                .unacked
                .range(..=delivery_tag)
                .map(|(tag, _)| *tag)
                .collect()
        } else {
            vec![delivery_tag]
        };
        let known = !tags.is_empty() && tags.iter().all(|tag| connection.unacked.contains_key(tag));
        // `basic.ack multiple` with tag 0 acks everything outstanding, even nothing.
        if !(known || (multiple && delivery_tag == 0)) {
            let text = format!("PRECONDITION_FAILED - unknown delivery tag {delivery_tag}");
            return Err(ChannelError(PRECONDITION_FAILED, text));
        }
        let mut touched = Vec::new();
        for tag in tags {
            let unacked = self
                .connection(client)
                .unacked
                .remove(&tag)
                .expect("checked above");
            if let Some((_, count)) = self
                .connection(client)
                .consumers
                .get_mut(&unacked.consumer_tag)
            {
                *count -= 1;
            }
            match requeue {
                None => self.remove_acked(ctx, &unacked.queue, unacked.position),
                Some(true) => self
                    .queues
                    .get_mut(&unacked.queue)
                    .expect("queue")
                    .requeue(unacked.position),
                Some(false) => {
                    self.drop_message(ctx, &unacked.queue, unacked.position, DropReason::Rejected)
                }
            }
            touched.push(unacked.queue);
        }
        touched.dedup();
        for queue in touched {
            self.dispatch(ctx, &queue);
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
            self.log(
                ctx,
                &LogRecord::Remove {
                    queue: name.to_string(),
                    position,
                },
            );
        }
    }

    fn close_channel<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        code: u16,
        text: String,
    ) {
        self.send(ctx, client, Frame::ChannelClose { code, text });
        self.release_channel(ctx, client, false);
    }

    /// Requeues a channel's unacked deliveries and cancels its consumers. A dead
    /// connection under bug `broker.requeue-drops-unacked` drops them instead.
    fn release_channel<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        connection_dead: bool,
    ) {
        let connection = self.connection(client);
        connection.channel_open = false;
        let unacked = std::mem::take(&mut connection.unacked);
        let consumers: Vec<String> = connection.consumers.keys().cloned().collect();
        let mut touched = Vec::new();
        for (_, delivery) in unacked {
            let queue = self
                .queues
                .get_mut(&delivery.queue)
                .expect("unacked queue exists");
            if connection_dead && ctx.bug(REQUEUE_DROPS_UNACKED) {
                queue.unacked.remove(&delivery.position); // Planted: the work vanishes.
                self.messages -= 1;
            } else {
                queue.requeue(delivery.position);
            }
            touched.push(delivery.queue);
        }
        for tag in consumers {
            self.cancel_consumer(ctx, client, &tag);
        }
        touched.dedup();
        for queue in touched {
            self.dispatch(ctx, &queue);
        }
    }

    fn close_connection<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, client: NodeId) {
        if !self.connections.contains_key(&client) {
            return;
        }
        self.release_channel(ctx, client, true);
        let owner = (client, self.connections[&client].number);
        let exclusive: Vec<String> = self
            .queues
            .values()
            .filter(|q| q.exclusive_owner == Some(owner))
            .map(|q| q.name.clone())
            .collect();
        for name in exclusive {
            let _ = self.queue_delete(ctx, name);
        }
        if let Some(connection) = self.connections.remove(&client) {
            self.endpoint.close(ctx, connection.conn);
        }
    }

    /// What the transport reports: frames of an AMQP connection, and connections that
    /// broke or closed (their AMQP connection closes with them).
    fn on_conn_events<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, events: Events<Frame>) {
        for event in events {
            match event {
                ConnEvent::Frame { conn, frame } => self.on_frame(ctx, conn, frame),
                ConnEvent::Broken { conn, .. } | ConnEvent::Closed { conn } => {
                    if self.connections.get(&conn.peer).map(|c| c.conn) == Some(conn) {
                        self.close_connection(ctx, conn.peer);
                    }
                }
                ConnEvent::Accepted { .. } | ConnEvent::Opened { .. } => {}
            }
        }
    }

    fn on_frame<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, conn: ConnId, frame: Frame) {
        let from = conn.peer;
        let now_ns = ctx.now_ns();
        if frame == Frame::Open {
            // A reconnecting client replaces its old connection.
            if let Some(old) = self.connections.get(&from).map(|c| c.conn) {
                self.close_connection(ctx, from);
                if old != conn {
                    self.endpoint.abort(ctx, old);
                }
            }
            self.connections.insert(from, Connection::new(conn, now_ns));
            self.send(ctx, from, Frame::OpenOk);
            return;
        }
        let Some(connection) = self.connections.get_mut(&from).filter(|c| c.conn == conn) else {
            // A frame on a connection with no AMQP connection open on it (replaced by a
            // newer one, or opened before this broker restarted): refuse it.
            let text = "CONNECTION_FORCED - unknown connection".to_string();
            let close = Frame::ConnectionClose {
                code: CONNECTION_FORCED,
                text,
            };
            let _ = self.endpoint.send(ctx, conn, close);
            self.endpoint.close(ctx, conn);
            return;
        };
        connection.last_heard_ns = now_ns;
        match frame {
            Frame::Close => self.close_connection(ctx, from),
            Frame::Method(method) => self.on_message_method(ctx, from, method),
            _ => {} // Heartbeats only refresh `last_heard_ns`.
        }
    }

    fn arm_sync<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        if !self.sync_armed {
            self.sync_armed = true;
            ctx.set_timer(self.params.sync_interval_ns, Timer::ServerSync);
        }
    }

    /// The group commit: one sync makes every appended record durable, then the confirms
    /// that waited for it go out.
    fn on_timer_sync<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.sync_armed = false;
        ctx.disk().sync();
        for waiting in std::mem::take(&mut self.awaiting_sync) {
            let current = self
                .connections
                .get(&waiting.client)
                .is_some_and(|c| c.number == waiting.connection);
            ctx.observe(Obs::Confirmed { id: waiting.id });
            if current {
                self.send(
                    ctx,
                    waiting.client,
                    Frame::Confirm {
                        seq: waiting.seq,
                        ack: true,
                    },
                );
            }
        }
    }

    fn on_timer_tick<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let now_ns = ctx.now_ns();
        let dead_after_ns = 2 * self.params.heartbeat_ns;
        let dead: Vec<NodeId> = self
            .connections
            .iter()
            .filter(|(_, c)| now_ns.saturating_sub(c.last_heard_ns) > dead_after_ns)
            .map(|(client, _)| *client)
            .collect();
        for client in dead {
            ctx.note(format!(
                "connection of node {client} missed its heartbeats: closing it"
            ));
            self.close_connection(ctx, client);
        }
        let clients: Vec<NodeId> = self.connections.keys().copied().collect();
        for client in clients {
            self.send(ctx, client, Frame::Heartbeat);
        }
        let names: Vec<String> = self.queues.keys().cloned().collect();
        for name in names {
            self.dispatch(ctx, &name); // Expires TTL heads even with no consumer activity.
            if let Some(queue) = self.queues.get(&name) {
                ctx.metric(format!("queue.{name}.depth"), queue.depth() as u64);
            }
        }
        if self.log_records > LOG_RECORDS_MAX {
            self.compact_log(ctx);
        }
        ctx.set_timer(self.params.heartbeat_ns / 2, Timer::ServerTick);
    }
}

impl<H: Host> Node<H> for Broker {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.endpoint.start(ctx);
        self.recover(ctx);
        ctx.set_timer(self.params.heartbeat_ns / 2, Timer::ServerTick);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        if let Ok(events) = self.endpoint.take_message(ctx, from, msg) {
            self.on_conn_events(ctx, events);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
        let timer = match self.endpoint.take_timer(ctx, id, timer) {
            Ok(events) => return self.on_conn_events(ctx, events),
            Err(timer) => timer,
        };
        match Wraps::<Timer>::into_part(timer) {
            Ok(Timer::ServerTick) => self.on_timer_tick(ctx),
            Ok(Timer::ServerSync) => self.on_timer_sync(ctx),
            _ => {}
        }
    }

    fn role(&self) -> String {
        "broker".into()
    }

    fn inspect(&self) -> String {
        let mut lines = vec![format!(
            "{} connections, {} messages held",
            self.connections.len(),
            self.messages
        )];
        for queue in self.queues.values() {
            lines.push(format!(
                "queue {}{}: {} ready, {} unacked, {} consumers",
                queue.name,
                if queue.durable { " (durable)" } else { "" },
                queue.ready.len(),
                queue.unacked.len(),
                queue.consumers.len()
            ));
        }
        lines.push(format!("\nconnections:\n{}", self.endpoint.describe()));
        lines.join("\n")
    }
}
