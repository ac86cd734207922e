//! The registry's client library, as ZooKeeper's `ClientCnxn`: one connection at a time
//! to one server of the ensemble, pings to keep the session alive, failover to the next
//! server when the connection breaks or goes quiet, and the watches set again after a
//! reconnect. Sessions run over connections (`conn`), as ZooKeeper's run over TCP.
//!
//! The two failures a ZooKeeper user must tell apart:
//! - ConnectionLoss: the connection broke with a request in flight. Its outcome is
//!   unknown; the session may still be alive, and the client reconnects with it.
//! - SessionExpired: the ensemble closed the session (its ephemeral nodes are gone). The
//!   handle is dead; the application opens a new session (`new_session`).
//!
//! Between two connection attempts the client waits a random moment, as ZooKeeper's does
//! (`ClientCnxn.startConnect`), so clients never spin against servers that refuse them.
//!
//! The library is sans-IO: the hosting node hands it messages and timers and gets
//! `Event`s back. One request is outstanding at a time; a second is refused, not queued.

use std::collections::BTreeSet;

use rand::Rng;
use serde::Serialize;

use super::bugs::WATCHES_LOST_ON_RECONNECT;
use super::tree::ZkError;
use super::{ClientHost, Msg, Obs, Op, Reply, WatchEvent, WatchKind};
use crate::conn::{ConnId, ConnParams, Endpoint, Event as ConnEvent, Events};
use crate::node::{Ctx, NodeId, TimerId, Wraps};
use crate::proto::zab::Zxid;

/// The client library's timers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Timer {
    /// Connect timeouts, read timeouts and pings.
    Tick,
    /// The wait between two connection attempts is over.
    Reconnect,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    pub servers: Vec<NodeId>,
    pub session_timeout_ns: u64,
    /// Accept a read-only server (ZooKeeper's `canBeReadOnly`).
    pub read_only: bool,
    /// How the client's connections behave.
    pub conn: ConnParams,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting a moment before the next connection attempt.
    Waiting,
    Connecting,
    Connected,
    ConnectedReadOnly,
    Expired,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Connected {
        read_only: bool,
    },
    Disconnected,
    Expired,
    Response {
        op: Op,
        result: Result<Reply, ZkError>,
    },
    Watch(WatchEvent),
}

/// Why a request was not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Not connected, or the session is gone: what ZooKeeper's client would answer.
    Zk(ZkError),
    /// A request is already outstanding: the caller waits for its answer first.
    Busy,
}

#[derive(Clone)]
pub struct Client {
    config: ClientConfig,
    state: State,
    server_index: usize,
    session: u64,
    /// The session timeout: asked for, then as the server granted it.
    timeout_ns: u64,
    /// The pending tick and the interval it was set with.
    tick: Option<(TimerId, u64)>,
    xid: u64,
    outstanding: Option<(u64, Op, bool)>,
    /// Times on the monotonic clock: timeouts must not follow wall-clock jumps.
    connect_started_ns: u64,
    connected_ns: u64,
    last_heard_ns: u64,
    last_sent_ns: u64,
    last_zxid: Zxid,
    endpoint: Endpoint<Msg>,
    /// The connection of the current attempt or session.
    conn: Option<ConnId>,
    data_watches: BTreeSet<String>,
    exist_watches: BTreeSet<String>,
    child_watches: BTreeSet<String>,
}

impl Client {
    pub fn new(config: ClientConfig) -> Self {
        assert!(!config.servers.is_empty());
        assert!(config.session_timeout_ns > 0);
        let timeout_ns = config.session_timeout_ns;
        let endpoint = Endpoint::new(config.conn);
        Self {
            config,
            state: State::Connecting,
            server_index: 0,
            session: 0,
            timeout_ns,
            tick: None,
            xid: 0,
            outstanding: None,
            connect_started_ns: 0,
            connected_ns: 0,
            last_heard_ns: 0,
            last_sent_ns: 0,
            last_zxid: 0,
            endpoint,
            conn: None,
            data_watches: BTreeSet::new(),
            exist_watches: BTreeSet::new(),
            child_watches: BTreeSet::new(),
        }
    }

    /// How often the library's tick runs: six times per session timeout, so it pings
    /// after a third of it and notices a silent server after two thirds.
    pub fn tick_ns(&self) -> u64 {
        (self.timeout_ns / 6).max(1)
    }

    fn arm_tick<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        let interval = self.tick_ns();
        self.tick = Some((ctx.set_timer(interval, Timer::Tick), interval));
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn session(&self) -> u64 {
        self.session
    }

    pub fn server(&self) -> NodeId {
        self.config.servers[self.server_index]
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected | State::ConnectedReadOnly)
    }

    pub fn is_busy(&self) -> bool {
        self.outstanding.is_some()
    }

    /// The highest zxid this client has seen (ZooKeeper's `lastZxid`).
    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// The client's connections, one line each, for inspectors.
    pub fn connections(&self) -> String {
        self.endpoint.describe()
    }

    /// Starts connecting to a random server, as ZooKeeper shuffles its connect string,
    /// and starts the library's tick.
    pub fn start<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.endpoint.start(ctx);
        let count = self.config.servers.len() as u32;
        self.server_index = ctx.rng().random_range(0..count) as usize;
        self.connect(ctx);
        self.arm_tick(ctx);
    }

    /// After `Event::Expired`: a fresh session, with no watches.
    pub fn new_session<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.session = 0;
        self.timeout_ns = self.config.session_timeout_ns;
        self.data_watches.clear();
        self.exist_watches.clear();
        self.child_watches.clear();
        self.connect(ctx);
    }

    /// Sends a request; the answer comes back as `Event::Response`. A second request
    /// while one is outstanding is refused with `Busy`: callbacks may come in any order
    /// (a watch while a request waits), and the library never panics over it.
    pub fn request<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        op: Op,
        watch: bool,
    ) -> Result<(), RequestError> {
        if self.outstanding.is_some() {
            return Err(RequestError::Busy);
        }
        match self.state {
            State::Expired => return Err(RequestError::Zk(ZkError::SessionExpired)),
            State::Connecting | State::Waiting => {
                return Err(RequestError::Zk(ZkError::ConnectionLoss))
            }
            State::Connected | State::ConnectedReadOnly => {}
        }
        self.xid += 1;
        let request = Msg::Request {
            session: self.session,
            xid: self.xid,
            op: op.clone(),
            watch,
        };
        self.send(ctx, request);
        self.outstanding = Some((self.xid, op, watch));
        Ok(())
    }

    /// Sends a frame on the current connection. A connection that refuses it (its send
    /// buffer overflowed) is gone; the next tick notices.
    fn send<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, msg: Msg) {
        self.last_sent_ns = ctx.monotonic_ns();
        if let Some(conn) = self.conn {
            if self.endpoint.send(ctx, conn, msg).is_err() {
                self.conn = None;
            }
        }
    }

    /// Opens a connection to the current server and asks it for the session.
    fn connect<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        if let Some(old) = self.conn.take() {
            self.endpoint.abort(ctx, old);
        }
        self.state = State::Connecting;
        self.connect_started_ns = ctx.monotonic_ns();
        // Too many connections cannot happen: one at a time, the old one aborted.
        self.conn = self.endpoint.open(ctx, self.server()).ok();
        let connect = Msg::Connect {
            session: self.session,
            timeout_ns: self.timeout_ns,
            read_only: self.config.read_only,
            last_zxid: self.last_zxid,
        };
        self.send(ctx, connect);
    }

    /// Gives up on this server: waits a random moment, then tries the next one.
    fn connect_next<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        if let Some(old) = self.conn.take() {
            self.endpoint.abort(ctx, old);
        }
        self.server_index = (self.server_index + 1) % self.config.servers.len();
        self.state = State::Waiting;
        // ZooKeeper sleeps up to a second (against sessions of tens of seconds); here a
        // thirtieth of the session timeout, and never nothing, so no run can spin.
        let spread_ns = (self.timeout_ns / 30).max(1);
        let wait_ns = 1_000_000 + ctx.rng().random_range(0..spread_ns);
        ctx.set_timer(wait_ns, Timer::Reconnect);
    }

    /// The connection broke: the request in flight has an unknown outcome.
    fn lose_connection<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, events: &mut Vec<Event>) {
        if let Some((_, op, _)) = self.outstanding.take() {
            events.push(Event::Response {
                op,
                result: Err(ZkError::ConnectionLoss),
            });
        }
        if self.is_connected() {
            events.push(Event::Disconnected);
        }
        self.connect_next(ctx);
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

    /// Takes `timer` if it is the library's (its own, or a connection's), or hands it
    /// back.
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
        let mut events = Vec::new();
        match Wraps::<Timer>::into_part(timer)? {
            Timer::Tick => {
                self.on_tick(ctx, &mut events);
                self.arm_tick(ctx);
            }
            Timer::Reconnect => {
                if self.state == State::Waiting {
                    self.connect(ctx);
                }
            }
        }
        Ok(events)
    }

    fn on_conn_events<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        conn_events: Events<Msg>,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        for event in conn_events {
            match event {
                ConnEvent::Frame { conn, frame } if Some(conn) == self.conn => {
                    self.on_frame(ctx, frame, &mut events);
                }
                ConnEvent::Broken { conn, .. } | ConnEvent::Closed { conn }
                    if Some(conn) == self.conn =>
                {
                    self.conn = None;
                    if self.state != State::Expired {
                        self.lose_connection(ctx, &mut events);
                    }
                }
                ConnEvent::Accepted { conn } => self.endpoint.abort(ctx, conn),
                _ => {}
            }
        }
        events
    }

    fn on_frame<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, msg: Msg, events: &mut Vec<Event>) {
        if self.state == State::Expired {
            return;
        }
        self.last_heard_ns = ctx.monotonic_ns();
        match msg {
            Msg::Connected {
                session,
                timeout_ns,
                read_only,
            } => {
                if self.state != State::Connecting {
                    return;
                }
                let resumed = session != 0 && session == self.session;
                self.session = session;
                if timeout_ns > 0 {
                    self.timeout_ns = timeout_ns;
                    // The server may grant less than was asked: tick to its measure now.
                    if let Some((timer, interval)) = self.tick {
                        if self.tick_ns() < interval {
                            ctx.cancel_timer(timer);
                            self.arm_tick(ctx);
                        }
                    }
                }
                self.state = if read_only {
                    State::ConnectedReadOnly
                } else {
                    State::Connected
                };
                self.connected_ns = ctx.monotonic_ns();
                let watching = !(self.data_watches.is_empty()
                    && self.exist_watches.is_empty()
                    && self.child_watches.is_empty());
                // Bug zoo: `registry.watches-lost-on-reconnect` forgets to set them again.
                if resumed && watching && !ctx.bug(WATCHES_LOST_ON_RECONNECT) {
                    ctx.sometimes("registry.watches-set-again");
                    let set = Msg::SetWatches {
                        session,
                        last_zxid: self.last_zxid,
                        data: self.data_watches.iter().cloned().collect(),
                        exist: self.exist_watches.iter().cloned().collect(),
                        child: self.child_watches.iter().cloned().collect(),
                    };
                    self.send(ctx, set);
                }
                events.push(Event::Connected { read_only });
            }
            Msg::Closed { expired: true } => {
                ctx.sometimes("registry.client-sees-expiry");
                self.state = State::Expired;
                if let Some(conn) = self.conn.take() {
                    self.endpoint.abort(ctx, conn);
                }
                if let Some((_, op, _)) = self.outstanding.take() {
                    events.push(Event::Response {
                        op,
                        result: Err(ZkError::SessionExpired),
                    });
                }
                events.push(Event::Expired);
            }
            Msg::Closed { expired: false } => self.lose_connection(ctx, events),
            Msg::Response { xid, zxid, result } => {
                ctx.observe(Obs::Seen { zxid });
                self.last_zxid = self.last_zxid.max(zxid);
                match self.outstanding.take() {
                    Some((outstanding, op, watch)) if outstanding == xid => {
                        if watch {
                            self.remember_watch(&op, &result);
                        }
                        events.push(Event::Response { op, result });
                    }
                    other => self.outstanding = other,
                }
            }
            Msg::Watch(event) => {
                match event.kind {
                    WatchKind::NodeChildrenChanged => {
                        self.child_watches.remove(&event.path);
                    }
                    WatchKind::NodeDeleted => {
                        self.data_watches.remove(&event.path);
                        self.child_watches.remove(&event.path);
                    }
                    WatchKind::NodeCreated | WatchKind::NodeDataChanged => {
                        self.data_watches.remove(&event.path);
                        self.exist_watches.remove(&event.path);
                    }
                }
                events.push(Event::Watch(event));
            }
            _ => {} // Pongs only refresh `last_heard_ns`.
        }
    }

    fn remember_watch(&mut self, op: &Op, result: &Result<Reply, ZkError>) {
        let path = op.path().to_string();
        match (op, result) {
            (Op::GetData { .. }, Ok(_)) | (Op::Exists { .. }, Ok(Reply::Stat(_))) => {
                self.data_watches.insert(path);
            }
            (Op::Exists { .. }, Ok(Reply::NoStat)) => {
                self.exist_watches.insert(path);
            }
            (Op::GetChildren { .. }, Ok(_)) => {
                self.child_watches.insert(path);
            }
            _ => {}
        }
    }

    /// Timeouts and pings, every `tick_ns`.
    fn on_tick<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, events: &mut Vec<Event>) {
        let now = ctx.monotonic_ns();
        let servers = self.config.servers.len() as u64;
        match self.state {
            State::Expired | State::Waiting => {}
            State::Connecting => {
                // ZooKeeper's connect timeout: the session timeout over the server count.
                if now.saturating_sub(self.connect_started_ns) > self.timeout_ns / servers {
                    self.connect_next(ctx);
                }
            }
            State::Connected | State::ConnectedReadOnly => {
                let read_timeout = self.timeout_ns * 2 / 3;
                if self.conn.is_none() || now.saturating_sub(self.last_heard_ns) > read_timeout {
                    self.lose_connection(ctx, events);
                } else if self.state == State::ConnectedReadOnly
                    && self.outstanding.is_none()
                    && now.saturating_sub(self.connected_ns) > self.timeout_ns
                {
                    // Look for a server that can write again, as ZooKeeper's client does.
                    events.push(Event::Disconnected);
                    self.connect_next(ctx);
                } else if now.saturating_sub(self.last_sent_ns) >= self.timeout_ns / 3 {
                    let ping = Msg::Ping {
                        session: self.session,
                    };
                    self.send(ctx, ping);
                }
            }
        }
    }
}
