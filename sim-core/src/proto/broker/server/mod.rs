//! The broker node: its state, its connections and channels, its timers. What each part
//! of the work does lives beside it: `methods.rs` (the channel's synchronous methods:
//! declare, bind, delete, consume, qos), `flow.rs` (a message's life: publish, route,
//! enqueue, dispatch, ack, requeue, expire, overflow, dead-letter), `storage.rs`
//! (`broker.meta` and `broker.log`, recovery).
//!
//! Durability: durable exchanges, queues and their bindings live in `broker.meta`
//! (rewritten and synced on every change, before the declare-ok); persistent messages in
//! durable queues are appended to `broker.log` (enqueue and remove records) and synced by
//! a group commit every `sync_interval`. A confirm for such a message waits for that sync
//! (bug zoo: `broker.confirm-before-sync`). Transient queues and transient messages live
//! only in memory and are gone after a crash, as documented by RabbitMQ. Recovered
//! messages come back marked redelivered: the broker cannot know whether a consumer saw
//! them before the crash.
//!
//! Work that one event causes in other queues (a dead-lettered message, a queue to
//! dispatch) is queued and run before the handler returns, never by recursion: a chain of
//! dead-letter exchanges is as long as the scenario makes it.

mod flow;
mod methods;
mod storage;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::queue::Queue;
use super::{ConnectionId, DropReason, CHANNEL_ERROR, CONNECTION_FORCED};
use super::{Frame, Host, Message, Method, Obs, Reply, Timer};
use crate::conn::{ConnId, ConnParams, Endpoint, Event as ConnEvent, Events};
use crate::node::{Ctx, Node, NodeId, TimerId, Wraps};

/// Messages the broker holds in all queues; past it, publishes are refused (nacked).
pub const MESSAGES_MAX: u32 = 1_000_000;
/// Queued work items (dispatches, dead-letters) one event may cause; past it, a
/// dead-letter is dropped with a note (it would mean a runaway configuration).
const WORK_MAX: usize = 100_000;

#[derive(Clone, Copy, Debug)]
pub struct BrokerParams {
    pub heartbeat_ns: u64,
    pub sync_interval_ns: u64,
    /// How the broker's connections behave.
    pub conn: ConnParams,
}

#[derive(Clone, Debug)]
struct Unacked {
    queue: String,
    position: u64,
    consumer: u64,
}

/// The connection's one channel, while it is open.
#[derive(Clone, Debug)]
struct Channel {
    /// Counts the channels opened on this connection: confirms and delivery tags
    /// belong to one.
    generation: u32,
    confirm_mode: bool,
    publish_seq: u64,
    delivery_tag_next: u64,
    /// The prefetch for consumers created from now on (`basic.qos`, global=false).
    prefetch: u32,
    /// Consumer tag -> (consumer id, queue).
    consumers: BTreeMap<String, (u64, String)>,
    /// Unacked deliveries per consumer id.
    unacked_count: BTreeMap<u64, u32>,
    unacked: BTreeMap<u64, Unacked>,
    consumer_tag_next: u32,
}

impl Channel {
    fn new(generation: u32) -> Self {
        Self {
            generation,
            confirm_mode: false,
            publish_seq: 0,
            delivery_tag_next: 1,
            prefetch: 0,
            consumers: BTreeMap::new(),
            unacked_count: BTreeMap::new(),
            unacked: BTreeMap::new(),
            consumer_tag_next: 0,
        }
    }
}

#[derive(Clone, Debug)]
struct Connection {
    /// The transport connection this AMQP connection runs on.
    conn: ConnId,
    /// The client's number for it (`conn.number`): owners of exclusive queues and
    /// consumers name their connection by it.
    number: u32,
    last_heard_ns: u64,
    channel: Option<Channel>,
    channels_opened: u32,
}

impl Connection {
    fn new(conn: ConnId, now_ns: u64) -> Self {
        Self {
            conn,
            number: conn.number,
            last_heard_ns: now_ns,
            channel: None,
            channels_opened: 0,
        }
    }

    fn id(&self, client: NodeId) -> ConnectionId {
        (client, self.number)
    }
}

/// A confirm held until the next sync makes its message durable; it goes only to the
/// very channel the message was published on.
#[derive(Clone, Debug)]
struct AwaitingSync {
    client: NodeId,
    connection: u32,
    channel: u32,
    seq: u64,
    id: u64,
}

/// Work one event causes elsewhere, run before the handler returns.
#[derive(Clone, Debug)]
enum Work {
    Dispatch(String),
    DeadLetter(DeadLetter),
}

/// A message leaving `source` for its dead-letter exchange.
#[derive(Clone, Debug)]
struct DeadLetter {
    message: Message,
    reason: DropReason,
    source: String,
    routing_key: String,
    /// The source's log position to mark removed in the same atomic record as the
    /// copies (a crash then leaves the message in exactly one place).
    remove_logged: Option<u64>,
}

/// A protocol error: a soft one closes the channel, a hard one the connection.
enum AmqpError {
    Channel(u16, String),
    Connection(u16, String),
}

#[derive(Clone)]
pub struct Broker {
    params: BrokerParams,
    exchanges: BTreeMap<String, storage::Exchange>,
    queues: BTreeMap<String, Queue>,
    connections: BTreeMap<NodeId, Connection>,
    /// The transport: one connection per client, AMQP running on it.
    endpoint: Endpoint<Frame>,
    awaiting_sync: Vec<AwaitingSync>,
    sync_armed: bool,
    log_records: u32,
    /// Records collected to be written as one `LogRecord::Atomic`, while open.
    log_group: Option<Vec<storage::LogRecord>>,
    messages: u32,
    queue_name_next: u32,
    consumer_next: u64,
    work: VecDeque<Work>,
    /// The expiry timer and when it fires (wall clock), if armed.
    expiry: Option<(TimerId, u64)>,
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
            log_group: None,
            messages: 0,
            queue_name_next: 1,
            consumer_next: 1,
            work: VecDeque::new(),
            expiry: None,
            params,
        }
    }

    fn channel(&mut self, client: NodeId) -> &mut Channel {
        self.connections
            .get_mut(&client)
            .and_then(|c| c.channel.as_mut())
            .expect("the method's channel is open")
    }

    fn owner(&self, client: NodeId) -> ConnectionId {
        self.connections[&client].id(client)
    }

    /// Sends one frame on the client's current connection. One whose send buffer
    /// overflowed broke: its AMQP connection closes with it.
    fn send<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, client: NodeId, frame: Frame) {
        let Some(conn) = self.connections.get(&client).map(|c| c.conn) else {
            return;
        };
        if self.endpoint.send(ctx, conn, frame).is_err() {
            self.close_connection(ctx, client);
        }
    }

    fn on_error<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, client: NodeId, error: AmqpError) {
        match error {
            AmqpError::Channel(code, text) => {
                self.send(ctx, client, Frame::ChannelClose { code, text });
                self.release_channel(ctx, client, false);
            }
            AmqpError::Connection(code, text) => {
                self.send(ctx, client, Frame::ConnectionClose { code, text });
                self.close_connection(ctx, client);
            }
        }
    }

    fn channel_open(&mut self, client: NodeId) -> Result<Option<Reply>, AmqpError> {
        let connection = self.connections.get_mut(&client).expect("connected");
        if connection.channel.is_some() {
            // RabbitMQ: "second 'channel.open' seen", a hard error.
            let text = "CHANNEL_ERROR - second 'channel.open' seen".to_string();
            return Err(AmqpError::Connection(CHANNEL_ERROR, text));
        }
        connection.channels_opened += 1;
        connection.channel = Some(Channel::new(connection.channels_opened));
        Ok(Some(Reply::ChannelOpenOk))
    }

    /// Closes the channel: requeues its unacked deliveries and cancels its consumers.
    /// A dead connection under bug `broker.requeue-drops-unacked` drops them instead.
    fn release_channel<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        connection_dead: bool,
    ) {
        let Some(channel) = self
            .connections
            .get_mut(&client)
            .and_then(|c| c.channel.take())
        else {
            return;
        };
        let owner = self.owner(client);
        let deliveries: Vec<Unacked> = channel.unacked.into_values().collect();
        self.requeue_all(ctx, deliveries, connection_dead);
        for (tag, (_, queue)) in channel.consumers {
            self.remove_consumer(ctx, owner, &tag, &queue);
        }
    }

    fn close_connection<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, client: NodeId) {
        if !self.connections.contains_key(&client) {
            return;
        }
        self.release_channel(ctx, client, true);
        let owner = self.owner(client);
        let exclusive: Vec<String> = self
            .queues
            .values()
            .filter(|q| q.exclusive_owner == Some(owner))
            .map(|q| q.name.clone())
            .collect();
        for name in exclusive {
            self.delete_queue(ctx, &name);
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
        self.run_work(ctx);
    }

    fn on_frame<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, conn: ConnId, frame: Frame) {
        let from = conn.peer;
        let now_ns = ctx.monotonic_ns();
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
        let channel_open = connection.channel.is_some();
        match frame {
            Frame::Close => self.close_connection(ctx, from),
            Frame::Method(Method::ChannelOpen) => {
                let reply = self.channel_open(from);
                self.answer(ctx, from, reply);
            }
            // A method on a channel the broker closed is one the client sent before it
            // heard of the close: discarded, as RabbitMQ discards them until the close
            // is acknowledged.
            Frame::Method(_) if !channel_open => {}
            Frame::Method(method) => self.on_method(ctx, from, method),
            _ => {} // Heartbeats only refresh `last_heard_ns`.
        }
    }

    fn answer<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        reply: Result<Option<Reply>, AmqpError>,
    ) {
        match reply {
            Ok(Some(reply)) => self.send(ctx, client, Frame::Reply(reply)),
            Ok(None) => {}
            Err(error) => self.on_error(ctx, client, error),
        }
    }

    /// Runs the work events caused, in order, until there is none.
    fn run_work<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        while let Some(work) = self.work.pop_front() {
            match work {
                Work::Dispatch(queue) => self.dispatch(ctx, &queue),
                Work::DeadLetter(letter) => self.dead_letter(ctx, letter),
            }
        }
    }

    fn schedule<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, work: Work) {
        if self.work.len() >= WORK_MAX {
            ctx.note("broker work queue full: dropping work (a runaway dead-letter chain?)");
            return;
        }
        self.work.push_back(work);
    }

    fn arm_sync<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        if !self.sync_armed {
            self.sync_armed = true;
            ctx.set_timer(self.params.sync_interval_ns, Timer::ServerSync);
        }
    }

    /// The group commit: one sync makes every appended record durable, then the confirms
    /// that waited for it go out, each to the channel its message came on.
    fn on_timer_sync<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.sync_armed = false;
        ctx.disk().sync();
        for waiting in std::mem::take(&mut self.awaiting_sync) {
            let current = self.connections.get(&waiting.client).is_some_and(|c| {
                c.number == waiting.connection
                    && c.channel
                        .as_ref()
                        .is_some_and(|ch| ch.generation == waiting.channel)
            });
            if current {
                ctx.observe(Obs::Confirmed { id: waiting.id });
                let confirm = Frame::Confirm {
                    seq: waiting.seq,
                    ack: true,
                };
                self.send(ctx, waiting.client, confirm);
            }
        }
    }

    /// Arms the expiry timer for a head that expires at `at_ns` (wall clock), unless an
    /// earlier one is armed.
    fn arm_expiry<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, at_ns: u64) {
        if let Some((timer, armed)) = self.expiry {
            if armed <= at_ns {
                return;
            }
            ctx.cancel_timer(timer);
        }
        let delay = at_ns.saturating_sub(ctx.now_ns()).max(1);
        self.expiry = Some((ctx.set_timer(delay, Timer::ServerExpire), at_ns));
    }

    fn on_timer_expire<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.expiry = None;
        let now = ctx.now_ns();
        let due: Vec<String> = self
            .queues
            .values()
            .filter(|q| q.head_expiry().is_some())
            .map(|q| q.name.clone())
            .collect();
        for name in due {
            let expiry = self.queues[&name].head_expiry();
            match expiry {
                Some(at) if at <= now => self.schedule(ctx, Work::Dispatch(name)),
                Some(at) => self.arm_expiry(ctx, at),
                None => {}
            }
        }
        self.run_work(ctx);
    }

    fn on_timer_tick<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let now_ns = ctx.monotonic_ns();
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
        for queue in self.queues.values() {
            ctx.metric(format!("queue.{}.depth", queue.name), queue.depth() as u64);
        }
        self.run_work(ctx);
        self.maybe_compact(ctx);
        ctx.set_timer(self.params.heartbeat_ns / 2, Timer::ServerTick);
    }
}

impl<H: Host> Node<H> for Broker {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.endpoint.start(ctx);
        self.recover(ctx);
        let names: Vec<String> = self.queues.keys().cloned().collect();
        for name in names {
            // Messages whose time passed while the broker was down expire now.
            self.schedule(ctx, Work::Dispatch(name));
        }
        self.run_work(ctx);
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
            Ok(Timer::ServerExpire) => self.on_timer_expire(ctx),
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

/// Which queues a set of deliveries touched, each once, in order.
fn touched(queues: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    queues
        .into_iter()
        .filter(|queue| seen.insert(queue.clone()))
        .collect()
}
