//! The client library: a connection with one channel, embedded in a client node.
//!
//! Synchronous methods (declare, bind, qos, consume, confirm.select) wait for their reply
//! one at a time, queued in call order, as the Java client's RPC continuation does;
//! publishes and acks go out at once. Frames travel over a connection (`conn`), as AMQP
//! runs over TCP. The client sends heartbeats and declares the broker dead after two
//! silent intervals (AMQP's heartbeat timeout), when the broker closes the connection, or
//! when the connection breaks; it then opens a new connection, reopens its channel and
//! replays the recorded topology (exchanges, queues, bindings, qos, confirm mode,
//! consumers), as the Java client's automatic recovery does. Publishes not yet confirmed
//! are handed back to the application, which decides whether to republish them.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::{ClientHost, Frame, Message, Method, Reply};
use crate::conn::{ConnId, ConnParams, Endpoint, Event as ConnEvent};
use crate::node::{Ctx, NodeId, TimerId, Wraps};

/// The client library's one timer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Timer {
    /// Heartbeats, and reconnecting when the broker is silent.
    Heartbeat,
}
/// Channel reopen attempts after errors before the client gives up on the channel.
const CHANNEL_REOPENS_MAX: u32 = 16;

/// What the client library tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The channel is open and the recorded topology is in place again.
    Ready {
        recovered: bool,
    },
    Reply(Reply),
    Delivery {
        connection: u32,
        delivery_tag: u64,
        redelivered: bool,
        queue: String,
        message: Message,
    },
    Returned {
        code: u16,
        message: Message,
    },
    Confirmed {
        message: Message,
        ack: bool,
    },
    ChannelClosed {
        code: u16,
        text: String,
    },
    /// The connection or channel went away; these publishes were never confirmed.
    Lost {
        unconfirmed: Vec<Message>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Connecting,
    OpeningChannel,
    Open,
    Failed,
}

pub struct Client {
    broker: NodeId,
    heartbeat_ns: u64,
    state: State,
    /// How many connections this client opened: delivery tags belong to one.
    connection: u32,
    endpoint: Endpoint<Frame>,
    /// The current connection, while there is one.
    conn: Option<ConnId>,
    /// On the monotonic clock: a heartbeat timeout must not follow wall-clock jumps.
    last_heard_ns: u64,
    /// Methods replayed after a reconnect, in the order first called.
    topology: Vec<Method>,
    waiting: VecDeque<Method>,
    in_flight: Option<Method>,
    recovering: bool,
    confirm_seq: u64,
    unconfirmed: BTreeMap<u64, Message>,
    channel_reopens: u32,
}

impl Client {
    pub fn new(broker: NodeId, heartbeat_ns: u64, conn: ConnParams) -> Self {
        assert!(heartbeat_ns > 0);
        Self {
            broker,
            heartbeat_ns,
            state: State::Connecting,
            connection: 0,
            endpoint: Endpoint::new(conn),
            conn: None,
            last_heard_ns: 0,
            topology: Vec::new(),
            waiting: VecDeque::new(),
            in_flight: None,
            recovering: false,
            confirm_seq: 0,
            unconfirmed: BTreeMap::new(),
            channel_reopens: 0,
        }
    }

    pub fn start<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.endpoint.start(ctx);
        self.connect(ctx);
        ctx.set_timer(self.heartbeat_ns, Timer::Heartbeat);
    }

    pub fn is_open(&self) -> bool {
        self.state == State::Open && !self.recovering
    }

    pub fn connection(&self) -> u32 {
        self.connection
    }

    /// The client's connections, one line each, for inspectors.
    pub fn connections(&self) -> String {
        self.endpoint.describe()
    }

    /// Sends a frame on the current connection. A connection that refuses it (its send
    /// buffer overflowed) is gone: the next heartbeat tick reconnects.
    fn send<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, frame: Frame) {
        let Some(conn) = self.conn else {
            return;
        };
        if self.endpoint.send(ctx, conn, frame).is_err() {
            self.conn = None;
        }
    }

    fn connect<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        if let Some(old) = self.conn.take() {
            self.endpoint.abort(ctx, old);
        }
        self.connection += 1;
        self.state = State::Connecting;
        self.last_heard_ns = ctx.monotonic_ns();
        // Too many connections cannot happen: one at a time, the old one aborted.
        self.conn = self.endpoint.open(ctx, self.broker).ok();
        self.send(ctx, Frame::Open);
    }

    /// Calls a synchronous method (queued behind the one in flight) and records it for
    /// recovery if it shapes the topology.
    pub fn call<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, method: Method) {
        assert!(
            method.is_synchronous(),
            "use publish/ack for asynchronous methods"
        );
        let recorded = matches!(
            method,
            Method::ExchangeDeclare { .. }
                | Method::QueueDeclare { .. }
                | Method::QueueBind { .. }
                | Method::BasicQos { .. }
                | Method::BasicConsume { .. }
                | Method::ConfirmSelect
        );
        if recorded && !self.topology.contains(&method) {
            self.topology.push(method.clone());
        }
        self.waiting.push_back(method);
        self.pump(ctx);
    }

    fn pump<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        if self.state != State::Open || self.in_flight.is_some() {
            return;
        }
        let Some(method) = self.waiting.pop_front() else {
            if self.recovering {
                self.recovering = false;
            }
            return;
        };
        self.in_flight = Some(method.clone());
        self.send(ctx, Frame::Method(method));
    }

    /// Publishes one message; in confirm mode it is held until the broker confirms it.
    /// Returns false when the channel is not open (the application should retry).
    pub fn publish<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        message: Message,
    ) -> bool {
        if !self.is_open() {
            return false;
        }
        if self.topology.contains(&Method::ConfirmSelect) {
            self.confirm_seq += 1;
            self.unconfirmed.insert(self.confirm_seq, message.clone());
        }
        let method = Method::BasicPublish {
            exchange: exchange.to_string(),
            routing_key: routing_key.to_string(),
            mandatory,
            message,
        };
        self.send(ctx, Frame::Method(method));
        true
    }

    /// Acks a delivery; a delivery from an older connection is not ackable any more (its
    /// message was requeued when that connection died), so the ack is skipped.
    pub fn ack<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        connection: u32,
        delivery_tag: u64,
    ) -> bool {
        self.settle(
            ctx,
            connection,
            Method::BasicAck {
                delivery_tag,
                multiple: false,
            },
        )
    }

    pub fn reject<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        connection: u32,
        delivery_tag: u64,
        requeue: bool,
    ) -> bool {
        self.settle(
            ctx,
            connection,
            Method::BasicReject {
                delivery_tag,
                requeue,
            },
        )
    }

    fn settle<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        connection: u32,
        method: Method,
    ) -> bool {
        if connection != self.connection || self.state != State::Open {
            return false;
        }
        self.send(ctx, Frame::Method(method));
        true
    }

    /// Takes `msg` if it is a segment of the client's connections (what the application
    /// should know comes back), or hands it back.
    pub fn take_message<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        msg: H::Msg,
    ) -> Result<Vec<Event>, H::Msg> {
        let events = self.endpoint.take_message(ctx, from, msg)?;
        Ok(self.on_conn_events(ctx, events))
    }

    /// Takes `timer` if it is the library's (its heartbeat, or a connection's), or hands
    /// it back.
    pub fn take_timer<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        id: TimerId,
        timer: H::Timer,
    ) -> Result<Vec<Event>, H::Timer> {
        let timer = match self.endpoint.take_timer(ctx, id, timer) {
            Ok(events) => return Ok(self.on_conn_events(ctx, events)),
            Err(timer) => timer,
        };
        let timer = Wraps::<Timer>::into_part(timer)?;
        Ok(self.on_timer(ctx, timer))
    }

    fn on_conn_events<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        events: crate::conn::Events<Frame>,
    ) -> Vec<Event> {
        let mut out = Vec::new();
        for event in events {
            match event {
                ConnEvent::Frame { conn, frame } if Some(conn) == self.conn => {
                    out.extend(self.on_frame(ctx, frame));
                }
                ConnEvent::Broken { conn, .. } | ConnEvent::Closed { conn }
                    if Some(conn) == self.conn =>
                {
                    self.conn = None;
                    out.extend(self.reconnect(ctx));
                }
                ConnEvent::Accepted { conn } => self.endpoint.abort(ctx, conn),
                _ => {}
            }
        }
        out
    }

    /// Handles a frame from the broker; returns what the application should know.
    fn on_frame<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, frame: Frame) -> Vec<Event> {
        if let Frame::ConnectionClose { .. } = frame {
            return self.reconnect(ctx);
        }
        self.last_heard_ns = ctx.monotonic_ns();
        let mut events = Vec::new();
        match frame {
            Frame::OpenOk => {
                self.state = State::OpeningChannel;
                self.send(ctx, Frame::Method(Method::ChannelOpen));
            }
            Frame::Reply(Reply::ChannelOpenOk) => self.on_channel_open(ctx, &mut events),
            Frame::Reply(reply) => {
                self.in_flight = None;
                if !self.recovering {
                    events.push(Event::Reply(reply));
                }
                let was_recovering = self.recovering;
                self.pump(ctx);
                if was_recovering && !self.recovering {
                    events.push(Event::Ready { recovered: true });
                }
            }
            Frame::Deliver {
                delivery_tag,
                redelivered,
                queue,
                message,
                ..
            } => {
                let connection = self.connection;
                events.push(Event::Delivery {
                    connection,
                    delivery_tag,
                    redelivered,
                    queue,
                    message,
                });
            }
            Frame::Return { code, message } => events.push(Event::Returned { code, message }),
            Frame::Confirm { seq, ack } => {
                if let Some(message) = self.unconfirmed.remove(&seq) {
                    events.push(Event::Confirmed { message, ack });
                }
            }
            Frame::ChannelClose { code, text } => {
                events.push(Event::ChannelClosed { code, text });
                self.on_channel_close(ctx, &mut events);
            }
            Frame::Heartbeat
            | Frame::Open
            | Frame::Close
            | Frame::Method(_)
            | Frame::ConnectionClose { .. } => {}
        }
        events
    }

    fn on_channel_open<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, events: &mut Vec<Event>) {
        self.state = State::Open;
        self.in_flight = None;
        self.confirm_seq = 0;
        let recovered = !self.topology.is_empty();
        // Recovery first, then whatever the application called meanwhile.
        let pending: Vec<Method> = self.waiting.drain(..).collect();
        self.waiting.extend(self.topology.iter().cloned());
        self.waiting
            .extend(pending.into_iter().filter(|m| !self.topology.contains(m)));
        self.recovering = recovered;
        self.pump(ctx);
        if !recovered {
            events.push(Event::Ready { recovered: false });
        }
    }

    fn on_channel_close<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, events: &mut Vec<Event>) {
        // The method that failed must not be replayed, or recovery would fail forever.
        if let Some(failed) = self.in_flight.take() {
            self.topology.retain(|m| *m != failed);
        }
        events.push(Event::Lost {
            unconfirmed: std::mem::take(&mut self.unconfirmed)
                .into_values()
                .collect(),
        });
        self.channel_reopens += 1;
        if self.channel_reopens > CHANNEL_REOPENS_MAX {
            self.state = State::Failed;
            ctx.note("giving up on the channel after repeated channel errors");
            return;
        }
        self.state = State::OpeningChannel;
        self.send(ctx, Frame::Method(Method::ChannelOpen));
    }

    fn reconnect<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) -> Vec<Event> {
        self.in_flight = None;
        self.recovering = false;
        let unconfirmed = std::mem::take(&mut self.unconfirmed)
            .into_values()
            .collect();
        self.connect(ctx);
        vec![Event::Lost { unconfirmed }]
    }

    /// The library's own timer: heartbeats, and reconnecting when the broker is silent
    /// (AMQP's heartbeat timeout) or the connection is gone.
    fn on_timer<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, timer: Timer) -> Vec<Event> {
        let Timer::Heartbeat = timer;
        ctx.set_timer(self.heartbeat_ns, Timer::Heartbeat);
        if self.state == State::Failed {
            return Vec::new();
        }
        let silent_ns = ctx.monotonic_ns().saturating_sub(self.last_heard_ns);
        if silent_ns > 2 * self.heartbeat_ns || self.conn.is_none() {
            return self.reconnect(ctx);
        }
        if self.state == State::Connecting {
            return Vec::new(); // Waiting for open-ok; the silence check above retries.
        }
        self.send(ctx, Frame::Heartbeat);
        Vec::new()
    }
}
