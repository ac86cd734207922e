//! The client library: a connection with one channel, embedded in a client node.
//!
//! Synchronous methods (declare, bind, qos, consume, confirm.select) wait for their reply
//! one at a time, queued in call order, as the Java client's RPC continuation does (the
//! caller of a synchronous method is blocked until it returns). Publishing waits until
//! every synchronous call made so far is answered, so no message overtakes its exchange,
//! its binding or `confirm.select`; acks go out at once. Frames travel over a connection (`conn`), as AMQP
//! runs over TCP. The client sends heartbeats and declares the broker dead after two
//! silent intervals (AMQP's heartbeat timeout), when the broker closes the connection, or
//! when the connection breaks; it then opens a new connection, reopens its channel and
//! replays the recorded topology (exchanges, queues, bindings, qos, confirm mode,
//! consumers), as the Java client's automatic recovery does. Publishes not yet confirmed
//! are handed back to the application, which decides whether to republish them.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::bugs::PUBLISH_BEFORE_SETUP;
use super::{ClientHost, Frame, Message, Method, Obs, Outcome, Reply, CONNECTION_FORCED};
use crate::conn::{ConnId, ConnParams, Endpoint, Event as ConnEvent};
use crate::node::{Ctx, NodeId, TimerId, Wraps};

/// The client library's one timer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Timer {
    /// Heartbeats, and reconnecting when the broker is silent.
    Heartbeat,
}
/// Channel reopen attempts after errors, in a row, before the client gives up on the
/// channel. The count starts again after `HEALTHY_HEARTBEATS` heartbeats without one.
const CHANNEL_REOPENS_MAX: u32 = 16;
const HEALTHY_HEARTBEATS: u64 = 10;

/// What the client library tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The channel is open and the recorded topology is in place again.
    Ready {
        recovered: bool,
    },
    Reply(Reply),
    /// A delivery on channel `channel` (the client's count of channels opened): only
    /// that channel can ack it.
    Delivery {
        channel: u32,
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
    /// The broker closed the connection (a hard error, or it does not know the
    /// connection); the library reconnects and recovers.
    ConnectionClosed {
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

#[derive(Clone)]
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
    /// Counts the channels this client opened (across connections).
    channel: u32,
    /// The broker answered `confirm.select` on the current channel.
    confirm_mode: bool,
    confirm_seq: u64,
    unconfirmed: BTreeMap<u64, Message>,
    channel_reopens: u32,
    /// When the last channel error came (monotonic clock).
    channel_error_ns: u64,
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
            channel: 0,
            confirm_mode: false,
            confirm_seq: 0,
            unconfirmed: BTreeMap::new(),
            channel_reopens: 0,
            channel_error_ns: 0,
        }
    }

    pub fn start<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.endpoint.start(ctx);
        self.connect(ctx);
        ctx.set_timer(self.heartbeat_ns, Timer::Heartbeat);
    }

    /// Open, recovered, and every synchronous call answered: ready to publish.
    pub fn is_open(&self) -> bool {
        self.state == State::Open && !self.recovering && self.is_settled()
    }

    fn is_settled(&self) -> bool {
        self.in_flight.is_none() && self.waiting.is_empty()
    }

    pub fn connection(&self) -> u32 {
        self.connection
    }

    /// The current channel's number (see `Event::Delivery`).
    pub fn channel(&self) -> u32 {
        self.channel
    }

    /// Publishes not yet confirmed or nacked.
    pub fn unconfirmed(&self) -> usize {
        self.unconfirmed.len()
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

    /// Calls a synchronous method (queued behind the one in flight). Once it succeeds it
    /// is recorded for recovery if it shapes the topology (as the Java client records a
    /// consumer on consume-ok): a call the broker refused is never replayed.
    pub fn call<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, method: Method) {
        assert!(
            method.is_synchronous(),
            "use publish/ack for asynchronous methods"
        );
        self.waiting.push_back(method);
        self.pump(ctx);
    }

    fn record(&mut self, method: Method) {
        let shapes_topology = matches!(
            method,
            Method::ExchangeDeclare { .. }
                | Method::QueueDeclare { .. }
                | Method::QueueBind { .. }
                | Method::BasicQos { .. }
                | Method::BasicConsume { .. }
                | Method::ConfirmSelect
        );
        if shapes_topology && !self.topology.contains(&method) {
            self.topology.push(method);
        }
    }

    /// The method in flight failed (the broker closed the channel or the connection
    /// over it). One being replayed in recovery is dropped from the topology, or
    /// recovery would fail the same way forever; one never recorded stays so.
    fn forget_failed(&mut self) {
        if let Some(failed) = self.in_flight.take() {
            if self.recovering {
                self.topology.retain(|m| *m != failed);
            }
        }
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
        // Bug zoo: `broker.publish-before-setup` publishes while declares, binds and
        // confirm.select are still unanswered, and counts confirms from the call.
        let early = ctx.bug(PUBLISH_BEFORE_SETUP);
        let open = self.state == State::Open && !self.recovering;
        if !(open && (early || self.is_settled())) {
            return false;
        }
        let confirming = if early {
            self.topology.contains(&Method::ConfirmSelect)
        } else {
            self.confirm_mode
        };
        if confirming {
            self.confirm_seq += 1;
            self.unconfirmed.insert(self.confirm_seq, message.clone());
        }
        ctx.observe(Obs::Published { id: message.id });
        let method = Method::BasicPublish {
            exchange: exchange.to_string(),
            routing_key: routing_key.to_string(),
            mandatory,
            message,
        };
        self.send(ctx, Frame::Method(method));
        true
    }

    /// Acks a delivery; one of another channel is skipped (see `settle`).
    pub fn ack<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        channel: u32,
        delivery_tag: u64,
    ) -> bool {
        self.settle(
            ctx,
            channel,
            Method::BasicAck {
                delivery_tag,
                multiple: false,
            },
        )
    }

    pub fn reject<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        channel: u32,
        delivery_tag: u64,
        requeue: bool,
    ) -> bool {
        self.settle(
            ctx,
            channel,
            Method::BasicReject {
                delivery_tag,
                requeue,
            },
        )
    }

    /// A delivery of another channel (one that closed, or an older connection's) is not
    /// ackable here: its message went back to its queue when that channel closed, and
    /// its tag would name another delivery on this one.
    fn settle<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        channel: u32,
        method: Method,
    ) -> bool {
        if channel != self.channel || self.state != State::Open {
            return false;
        }
        self.send(ctx, Frame::Method(method));
        true
    }

    /// Sends an asynchronous method as is, with no check of the library's: for tests
    /// that play a client doing what the library would not (acking a tag twice, acking
    /// with `multiple`), and for applications that settle in bulk.
    pub fn send_raw<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, method: Method) {
        assert!(
            !method.is_synchronous(),
            "synchronous methods go through `call`"
        );
        if self.state == State::Open {
            self.send(ctx, Frame::Method(method));
        }
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
        if let Frame::ConnectionClose { code, text } = frame {
            // A hard error caused by the method in flight: it must not be replayed, or
            // recovery would fail forever. (An unknown connection, 320, is no fault of
            // the method's.)
            if code != CONNECTION_FORCED {
                self.forget_failed();
            }
            let mut events = vec![Event::ConnectionClosed { code, text }];
            events.extend(self.reconnect(ctx));
            return events;
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
                if let Some(done) = self.in_flight.take() {
                    self.record(done);
                }
                if reply == Reply::ConfirmSelectOk {
                    self.confirm_mode = true;
                }
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
                events.push(Event::Delivery {
                    channel: self.channel,
                    delivery_tag,
                    redelivered,
                    queue,
                    message,
                });
            }
            Frame::Return { code, message } => {
                let told = Obs::Told {
                    id: message.id,
                    outcome: Outcome::Returned,
                };
                ctx.observe(told);
                events.push(Event::Returned { code, message });
            }
            Frame::Confirm { seq, ack } => {
                if let Some(message) = self.unconfirmed.remove(&seq) {
                    let outcome = if ack {
                        Outcome::Confirmed
                    } else {
                        Outcome::Nacked
                    };
                    ctx.observe(Obs::Told {
                        id: message.id,
                        outcome,
                    });
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
        self.channel += 1;
        self.confirm_mode = false;
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
        self.forget_failed();
        events.push(self.lose_unconfirmed(ctx));
        let now = ctx.monotonic_ns();
        if now.saturating_sub(self.channel_error_ns) > HEALTHY_HEARTBEATS * self.heartbeat_ns {
            self.channel_reopens = 0;
        }
        self.channel_error_ns = now;
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
        // A synchronous call the broker never answered goes again on the next
        // connection, after the recovered topology: the application that made it waits
        // for its answer (confirm.select above all: losing it would leave publishes
        // unconfirmed for good). The Java client throws to the caller instead.
        if let Some(unanswered) = self.in_flight.take() {
            if !self.topology.contains(&unanswered) {
                ctx.sometimes("broker.client-call-sent-again");
                self.waiting.push_front(unanswered);
            }
        }
        self.recovering = false;
        let lost = self.lose_unconfirmed(ctx);
        self.connect(ctx);
        vec![lost]
    }

    /// The channel went with these publishes unconfirmed: the application decides.
    fn lose_unconfirmed<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) -> Event {
        self.confirm_mode = false;
        let unconfirmed: Vec<Message> = std::mem::take(&mut self.unconfirmed)
            .into_values()
            .collect();
        for message in &unconfirmed {
            ctx.observe(Obs::Unconfirmed { id: message.id });
        }
        Event::Lost { unconfirmed }
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
