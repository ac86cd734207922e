//! The registry's client library, as ZooKeeper's `ClientCnxn`: one connection at a time
//! to one server of the ensemble, pings to keep the session alive, failover to the next
//! server when the connection goes quiet, and the watches set again after a reconnect.
//!
//! The two failures a ZooKeeper user must tell apart:
//! - ConnectionLoss: the connection broke with a request in flight. Its outcome is
//!   unknown; the session may still be alive, and the client reconnects with it.
//! - SessionExpired: the ensemble closed the session (its ephemeral nodes are gone). The
//!   handle is dead; the application opens a new session (`new_session`).
//!
//! The library is sans-IO: the hosting node hands it messages and ticks and gets `Event`s
//! back. One request is outstanding at a time.

use std::collections::BTreeSet;

use rand::Rng;

use super::tree::ZkError;
use serde::Serialize;

use super::bugs::WATCHES_LOST_ON_RECONNECT;
use super::{ClientHost, Msg, Op, Reply, WatchEvent, WatchKind};
use crate::node::{Ctx, NodeId};
use crate::proto::zab::Zxid;

/// The client library's one timer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Timer {
    /// Connect timeouts, read timeouts and pings.
    Tick,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    pub servers: Vec<NodeId>,
    pub session_timeout_ns: u64,
    /// Accept a read-only server (ZooKeeper's `canBeReadOnly`).
    pub read_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
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

pub struct Client {
    config: ClientConfig,
    state: State,
    server_index: usize,
    session: u64,
    timeout_ns: u64,
    xid: u64,
    outstanding: Option<(u64, Op, bool)>,
    connect_started_ns: u64,
    connected_ns: u64,
    last_heard_ns: u64,
    last_sent_ns: u64,
    last_zxid: Zxid,
    /// Frames sent and received on this connection since `Connected` (see `Msg::Ping`).
    sent: u64,
    received: u64,
    data_watches: BTreeSet<String>,
    exist_watches: BTreeSet<String>,
    child_watches: BTreeSet<String>,
}

impl Client {
    pub fn new(config: ClientConfig) -> Self {
        assert!(!config.servers.is_empty());
        assert!(config.session_timeout_ns > 0);
        let timeout_ns = config.session_timeout_ns;
        Self {
            config,
            state: State::Connecting,
            server_index: 0,
            session: 0,
            timeout_ns,
            xid: 0,
            outstanding: None,
            connect_started_ns: 0,
            connected_ns: 0,
            last_heard_ns: 0,
            last_sent_ns: 0,
            last_zxid: 0,
            sent: 0,
            received: 0,
            data_watches: BTreeSet::new(),
            exist_watches: BTreeSet::new(),
            child_watches: BTreeSet::new(),
        }
    }

    /// How often the host should call `on_tick`.
    pub fn tick_ns(&self) -> u64 {
        (self.config.session_timeout_ns / 6).max(1)
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

    /// Starts connecting to a random server, as ZooKeeper shuffles its connect string,
    /// and starts the library's tick.
    pub fn start<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        let count = self.config.servers.len() as u32;
        self.server_index = ctx.rng().random_range(0..count) as usize;
        self.connect(ctx);
        ctx.set_timer(self.tick_ns(), Timer::Tick);
    }

    /// The library's timer came due.
    pub fn on_timer<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, timer: Timer) -> Vec<Event> {
        let Timer::Tick = timer;
        let events = self.on_tick(ctx);
        ctx.set_timer(self.tick_ns(), Timer::Tick);
        events
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

    /// Sends a request; the answer comes back as `Event::Response`.
    pub fn request<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        op: Op,
        watch: bool,
    ) -> Result<(), ZkError> {
        assert!(self.outstanding.is_none(), "one request at a time");
        match self.state {
            State::Expired => return Err(ZkError::SessionExpired),
            State::Connecting => return Err(ZkError::ConnectionLoss),
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

    /// Sends a frame on the current connection, counting it.
    fn send<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, msg: Msg) {
        self.sent += 1;
        self.last_sent_ns = ctx.now_ns();
        ctx.send(self.server(), msg);
    }

    fn connect<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.state = State::Connecting;
        self.connect_started_ns = ctx.now_ns();
        let connect = Msg::Connect {
            session: self.session,
            timeout_ns: self.timeout_ns,
            read_only: self.config.read_only,
            last_zxid: self.last_zxid,
        };
        ctx.send(self.server(), connect);
    }

    fn connect_next<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.server_index = (self.server_index + 1) % self.config.servers.len();
        self.connect(ctx);
    }

    /// The connection broke: the request in flight has an unknown outcome.
    fn lose_connection<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, events: &mut Vec<Event>) {
        if let Some((_, op, _)) = self.outstanding.take() {
            events.push(Event::Response {
                op,
                result: Err(ZkError::ConnectionLoss),
            });
        }
        events.push(Event::Disconnected);
        self.connect_next(ctx);
    }

    pub fn on_message<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        msg: Msg,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        if from != self.server() || self.state == State::Expired {
            return events;
        }
        self.last_heard_ns = ctx.now_ns();
        match msg {
            Msg::Connected {
                session,
                timeout_ns,
                read_only,
            } => {
                if self.state != State::Connecting {
                    return events;
                }
                let resumed = session != 0 && session == self.session;
                self.session = session;
                if timeout_ns > 0 {
                    self.timeout_ns = timeout_ns;
                }
                self.state = if read_only {
                    State::ConnectedReadOnly
                } else {
                    State::Connected
                };
                self.connected_ns = ctx.now_ns();
                self.sent = 0;
                self.received = 0;
                let watching = !(self.data_watches.is_empty()
                    && self.exist_watches.is_empty()
                    && self.child_watches.is_empty());
                // Bug zoo: `registry.watches-lost-on-reconnect` forgets to set them again.
                if resumed && watching && !ctx.bug(WATCHES_LOST_ON_RECONNECT) {
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
                self.state = State::Expired;
                if let Some((_, op, _)) = self.outstanding.take() {
                    events.push(Event::Response {
                        op,
                        result: Err(ZkError::SessionExpired),
                    });
                }
                events.push(Event::Expired);
            }
            Msg::Closed { expired: false } => self.lose_connection(ctx, &mut events),
            Msg::Pong { sent } => {
                self.received += 1;
                if sent != self.received {
                    // A frame from the server was lost: the stream is broken.
                    self.lose_connection(ctx, &mut events);
                }
            }
            Msg::Response { xid, zxid, result } => {
                self.received += 1;
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
                self.received += 1;
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
            _ => {}
        }
        events
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
    fn on_tick<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) -> Vec<Event> {
        let mut events = Vec::new();
        let now = ctx.now_ns();
        let servers = self.config.servers.len() as u64;
        match self.state {
            State::Expired => {}
            State::Connecting => {
                // ZooKeeper's connect timeout: the session timeout over the server count.
                if now.saturating_sub(self.connect_started_ns) > self.timeout_ns / servers {
                    self.connect_next(ctx);
                }
            }
            State::Connected | State::ConnectedReadOnly => {
                let read_timeout = self.timeout_ns * 2 / 3;
                if now.saturating_sub(self.last_heard_ns) > read_timeout {
                    self.lose_connection(ctx, &mut events);
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
                        sent: self.sent + 1,
                    };
                    self.send(ctx, ping);
                }
            }
        }
        events
    }
}
