//! A registry server: ZooKeeper's request pipeline around one ZAB peer.
//!
//! Reads are answered at once from this server's committed state (so a follower may be
//! behind: ZooKeeper's sequential consistency); writes and syncs go through ZAB and are
//! answered by the server the client talks to once it applies them. Watches live on the
//! server that set them and fire, one-shot, before the reply that follows them on the
//! connection. The leader keeps every session's deadline: followers pass on which
//! sessions their clients touched, and an expired session is closed by a transaction,
//! which removes its ephemeral nodes everywhere.
//!
//! Read-only mode (`readonlymode.enabled`): a server that has looked for a leader for a
//! while accepts clients that allow it, answers their reads from its possibly stale
//! state, and refuses writes with NotReadOnly.

use std::collections::{BTreeMap, BTreeSet};

use super::bugs::{CONNECT_TO_THE_PAST, SESSIONS_NEVER_EXPIRE, STALE_READ_AS_LINEARIZABLE};
use super::state::{Origin, Outcome, Registry, Txn, TxnOp};
use super::tree::ZkError;
use super::{Host, Msg, Obs, Op, Reply, Timer, WatchEvent, WatchKind};
use crate::conn::{ConnId, ConnParams, Endpoint, Event as ConnEvent, Events};
use crate::node::{Ctx, Node, NodeId, TimerId, Wraps};
use crate::proto::zab::{self, Peer};

/// The most client connections one server holds.
pub const CONNECTIONS_MAX: usize = 1_000;
/// Sessions and znodes an inspector lists at most.
const INSPECT_LINES_MAX: usize = 200;
/// The most watches one server holds; later ones are not set.
pub const WATCHES_MAX: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerParams {
    pub zab: zab::Config,
    pub read_only: bool,
    /// Ticks of looking for a leader before a server serves read-only.
    pub read_only_after_ticks: u64,
    /// How the server's connections behave (to clients, and to the other servers).
    pub conn: ConnParams,
}

/// A client's connect that waits for its session to be created or revalidated. The
/// answer must be for this very request: a client that crashed and came back asks
/// again on a new connection, and the old request's answer (its old session) must not
/// be handed to the new one.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// The session asked for; 0 asks for a new one.
    session: u64,
    /// Numbers the new-session requests (the `CreateSession` txn's xid).
    attempt: u64,
    timeout_ns: u64,
}

/// A client's session as this server serves it.
#[derive(Clone, Copy, Debug)]
struct Conn {
    session: u64,
    read_only: bool,
    last_heard_ns: u64,
}

#[derive(Clone)]
pub struct Server {
    params: ServerParams,
    zab: Peer<Registry>,
    conns: BTreeMap<NodeId, Conn>,
    /// Clients whose connection waits for a session to be created or revalidated.
    connecting: BTreeMap<NodeId, Pending>,
    /// Counts new-session requests, to tell a stale `CreateSession` from the current one.
    attempts: u64,
    data_watches: BTreeMap<String, BTreeSet<NodeId>>,
    child_watches: BTreeMap<String, BTreeSet<NodeId>>,
    /// Sessions touched since the last tick (a follower passes them to its leader).
    touched: BTreeSet<u64>,
    /// The leader's session deadlines, and the sessions it is closing. Deadlines are on
    /// the monotonic clock, as ZooKeeper's `ExpiryQueue`: a jump of the wall clock must
    /// not expire every session at once.
    deadlines: BTreeMap<u64, u64>,
    closing: BTreeSet<u64>,
    /// The leader's record of which server each session is connected through. A request
    /// that arrives through another server was sent before the client moved (a paused
    /// server's backlog): ZooKeeper refuses it with SessionMoved, or it would act long
    /// after its client gave up on it.
    owners: BTreeMap<u64, NodeId>,
    was_leading: bool,
    was_serving: bool,
    /// Client sessions, and this server's own messages to the others (touches,
    /// revalidations), over connections.
    net: Endpoint<Msg>,
    /// The connection each client's session runs on.
    client_conns: BTreeMap<NodeId, ConnId>,
    /// The connection this server opened to each other server.
    server_conns: BTreeMap<NodeId, ConnId>,
}

impl Server {
    pub fn new(id: NodeId, params: ServerParams) -> Self {
        let zab = Peer::new(id, params.zab.clone(), params.conn);
        let net = Endpoint::new(params.conn);
        Self {
            params,
            zab,
            net,
            client_conns: BTreeMap::new(),
            server_conns: BTreeMap::new(),
            conns: BTreeMap::new(),
            connecting: BTreeMap::new(),
            attempts: 0,
            data_watches: BTreeMap::new(),
            child_watches: BTreeMap::new(),
            touched: BTreeSet::new(),
            deadlines: BTreeMap::new(),
            closing: BTreeSet::new(),
            owners: BTreeMap::new(),
            was_leading: false,
            was_serving: false,
        }
    }

    fn read_only_active(&self) -> bool {
        self.params.read_only
            && self
                .zab
                .looking_ticks()
                .is_some_and(|ticks| ticks >= self.params.read_only_after_ticks)
    }

    fn origin<H: Host>(&self, ctx: &Ctx<'_, H>, client: NodeId, session: u64, xid: u64) -> Origin {
        Origin {
            server: ctx.id(),
            client,
            session,
            xid,
        }
    }

    /// Tells the client why, then closes its connection (gracefully: the reason arrives
    /// first) and forgets its session's connection and watches.
    fn close<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, client: NodeId, expired: bool) {
        self.send_client(ctx, client, Msg::Closed { expired });
        if let Some(conn) = self.client_conns.remove(&client) {
            self.net.close(ctx, conn);
        }
        self.forget_client(client);
    }

    /// The client's connection is gone: so are its session's connection here and its
    /// watches (ZooKeeper's watches belong to a connection).
    fn forget_client(&mut self, client: NodeId) {
        self.conns.remove(&client);
        self.connecting.remove(&client);
        for watchers in self
            .data_watches
            .values_mut()
            .chain(self.child_watches.values_mut())
        {
            watchers.remove(&client);
        }
    }

    /// Sends a frame on the client's connection, if it still has one.
    fn send_client<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, client: NodeId, msg: Msg) {
        let Some(conn) = self.client_conns.get(&client).copied() else {
            return;
        };
        if self.net.send(ctx, conn, msg).is_err() {
            self.client_conns.remove(&client);
            self.forget_client(client);
        }
    }

    /// Sends a frame to another server over this server's connection to it.
    fn send_server<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, server: NodeId, msg: Msg) {
        let conn = match self.server_conns.get(&server) {
            Some(conn) => *conn,
            None => match self.net.open(ctx, server) {
                Ok(conn) => {
                    self.server_conns.insert(server, conn);
                    conn
                }
                Err(_) => return, // Never: a handful of servers.
            },
        };
        if self.net.send(ctx, conn, msg).is_err() {
            self.server_conns.remove(&server);
        }
    }

    /// Sends a frame on a client's session connection (`reply` is ZooKeeper's word).
    fn reply<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, client: NodeId, msg: Msg) {
        if self.conns.contains_key(&client) {
            self.send_client(ctx, client, msg);
        }
    }

    fn accept<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        session: u64,
        read_only: bool,
    ) {
        let timeout_ns = self
            .connecting
            .remove(&client)
            .map_or(0, |pending| pending.timeout_ns);
        let conn = Conn {
            session,
            read_only,
            last_heard_ns: ctx.monotonic_ns(),
        };
        self.conns.insert(client, conn);
        self.touch(ctx, session);
        let timeout_ns = self
            .zab
            .state()
            .sessions
            .get(&session)
            .map_or(timeout_ns, |info| info.timeout_ns);
        let connected = Msg::Connected {
            session,
            timeout_ns,
            read_only,
        };
        self.send_client(ctx, client, connected);
    }

    fn touch<H: Host>(&mut self, ctx: &Ctx<'_, H>, session: u64) {
        if session == 0 {
            return;
        }
        if self.zab.is_leading() {
            if let Some(info) = self.zab.state().sessions.get(&session) {
                self.deadlines
                    .insert(session, ctx.monotonic_ns() + info.timeout_ns);
            }
        } else {
            self.touched.insert(session);
        }
    }

    fn on_connect<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        session: u64,
        timeout_ns: u64,
        read_only: bool,
        last_zxid: u64,
    ) {
        self.conns.remove(&client);
        if self.conns.len() >= CONNECTIONS_MAX {
            self.close(ctx, client, false);
            return;
        }
        let timeout_ns = negotiate_timeout(timeout_ns, self.params.zab.tick_ns);
        // ZooKeeper refuses a client that has seen a later state than this server's
        // (`processConnectRequest`), read-only or not: it would go back in time.
        if last_zxid > self.zab.applied() && !ctx.bug(CONNECT_TO_THE_PAST) {
            ctx.sometimes("registry.refused-client-from-the-future");
            self.close(ctx, client, false);
            return;
        }
        if !self.zab.is_serving() {
            if read_only && self.read_only_active() {
                ctx.sometimes("registry.read-only-session");
                self.accept(ctx, client, session, true);
            } else {
                self.close(ctx, client, false);
            }
            return;
        }
        self.attempts += 1;
        let pending = Pending {
            session,
            attempt: self.attempts,
            timeout_ns,
        };
        self.connecting.insert(client, pending);
        if session == 0 {
            let txn = Txn {
                origin: self.origin(ctx, client, 0, pending.attempt),
                op: TxnOp::CreateSession { timeout_ns },
            };
            if self.zab.submit(ctx, txn).is_err() {
                self.close(ctx, client, false);
            }
        } else if self.zab.is_leading() {
            let valid = self.zab.state().sessions.contains_key(&session);
            if valid {
                self.owners.insert(session, ctx.id());
            }
            self.on_revalidated(ctx, client, session, valid);
        } else if let Some(leader) = self.zab.leader() {
            self.send_server(ctx, leader, Msg::Revalidate { session, client });
        }
    }

    fn on_revalidated<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        session: u64,
        valid: bool,
    ) {
        let asked = self.connecting.get(&client).map(|pending| pending.session);
        if asked != Some(session) {
            return; // An answer to an earlier connect of this client.
        }
        if valid {
            self.accept(ctx, client, session, false);
        } else {
            self.close(ctx, client, true);
        }
    }

    fn on_request<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        session: u64,
        xid: u64,
        op: Op,
        watch: bool,
    ) {
        let Some(conn) = self.conns.get_mut(&client).filter(|c| c.session == session) else {
            self.close(ctx, client, false);
            return;
        };
        conn.last_heard_ns = ctx.monotonic_ns();
        let read_only = conn.read_only;
        self.touch(ctx, session);
        if op.is_read() {
            self.serve_read(ctx, client, xid, &op, watch);
            return;
        }
        if read_only {
            ctx.sometimes("registry.write-refused-read-only");
            let refused = Msg::Response {
                xid,
                zxid: self.zab.applied(),
                result: Err(ZkError::NotReadOnly),
            };
            self.reply(ctx, client, refused);
            return;
        }
        if op == Op::Sync && ctx.bug(STALE_READ_AS_LINEARIZABLE) {
            let done = Msg::Response {
                xid,
                zxid: self.zab.applied(),
                result: Ok(Reply::Done),
            };
            self.reply(ctx, client, done);
            return;
        }
        let txn_op = match op {
            Op::Create { path, data, mode } => TxnOp::Create { path, data, mode },
            Op::Delete { path, version } => TxnOp::Delete { path, version },
            Op::SetData {
                path,
                data,
                version,
            } => TxnOp::SetData {
                path,
                data,
                version,
            },
            Op::Sync => TxnOp::Sync,
            Op::GetData { .. } | Op::Exists { .. } | Op::GetChildren { .. } => {
                unreachable!("reads are served above")
            }
        };
        let txn = Txn {
            origin: self.origin(ctx, client, session, xid),
            op: txn_op,
        };
        let txn = self.check_owner(txn);
        if self.zab.submit(ctx, txn).is_err() {
            self.close(ctx, client, false);
        }
    }

    /// On the leader: a request whose session is connected through another server
    /// becomes a refusal. The first server seen for a session owns it.
    fn check_owner(&mut self, txn: Txn) -> Txn {
        let session = txn.origin.session;
        let checked = !matches!(
            txn.op,
            TxnOp::CreateSession { .. } | TxnOp::CloseSession { .. }
        );
        if !self.zab.is_leading() || session == 0 || !checked {
            return txn;
        }
        let owner = *self.owners.entry(session).or_insert(txn.origin.server);
        if owner == txn.origin.server {
            return txn;
        }
        Txn {
            origin: txn.origin,
            op: TxnOp::Refused {
                error: ZkError::SessionMoved,
            },
        }
    }

    fn serve_read<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        xid: u64,
        op: &Op,
        watch: bool,
    ) {
        let tree = &self.zab.state().tree;
        let zxid = self.zab.applied();
        let path = op.path().to_string();
        let result = match op {
            Op::GetData { path } => tree
                .get_data(path)
                .map(|(data, stat)| Reply::Data(data, stat)),
            Op::Exists { path } => tree
                .exists(path)
                .map(|stat| stat.map_or(Reply::NoStat, Reply::Stat)),
            Op::GetChildren { path } => tree.get_children(path).map(Reply::Children),
            _ => unreachable!("only reads are served here"),
        };
        match (&result, op) {
            (Ok(Reply::Children(children)), _) => {
                let children = children.clone();
                ctx.observe(Obs::Children {
                    path: path.clone(),
                    zxid,
                    children,
                });
            }
            (_, Op::GetData { .. } | Op::Exists { .. }) => ctx.observe(Obs::Read {
                client,
                path: path.clone(),
                zxid,
            }),
            _ => {}
        }
        let watching = self.data_watches.values().map(BTreeSet::len).sum::<usize>()
            + self
                .child_watches
                .values()
                .map(BTreeSet::len)
                .sum::<usize>();
        if watch && result.is_ok() && watching < WATCHES_MAX {
            let table = if matches!(op, Op::GetChildren { .. }) {
                &mut self.child_watches
            } else {
                &mut self.data_watches
            };
            table.entry(path).or_default().insert(client);
        }
        self.reply(ctx, client, Msg::Response { xid, zxid, result });
    }

    fn on_ping<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, client: NodeId, session: u64) {
        let Some(conn) = self.conns.get_mut(&client).filter(|c| c.session == session) else {
            self.close(ctx, client, false);
            return;
        };
        conn.last_heard_ns = ctx.monotonic_ns();
        self.touch(ctx, session);
        self.reply(ctx, client, Msg::Pong);
    }

    fn on_set_watches<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: NodeId,
        last_zxid: u64,
        data: Vec<String>,
        exist: Vec<String>,
        child: Vec<String>,
    ) {
        if !self.conns.contains_key(&client) {
            return;
        }
        let tree = &self.zab.state().tree;
        let mut fire = Vec::new();
        for path in data {
            match tree.exists(&path) {
                Ok(None) => fire.push((WatchKind::NodeDeleted, path)),
                Ok(Some(stat)) if stat.mzxid as u64 > last_zxid => {
                    fire.push((WatchKind::NodeDataChanged, path))
                }
                _ => {
                    self.data_watches.entry(path).or_default().insert(client);
                }
            }
        }
        for path in exist {
            match tree.exists(&path) {
                Ok(Some(_)) => fire.push((WatchKind::NodeCreated, path)),
                _ => {
                    self.data_watches.entry(path).or_default().insert(client);
                }
            }
        }
        for path in child {
            match tree.exists(&path) {
                Ok(None) => fire.push((WatchKind::NodeDeleted, path)),
                Ok(Some(stat)) if stat.pzxid as u64 > last_zxid => {
                    fire.push((WatchKind::NodeChildrenChanged, path))
                }
                _ => {
                    self.child_watches.entry(path).or_default().insert(client);
                }
            }
        }
        for (kind, path) in fire {
            self.reply(ctx, client, Msg::Watch(WatchEvent { kind, path }));
        }
    }

    /// Submits the writes followers forwarded (checked for moved sessions), then answers
    /// and fires watches for what ZAB committed since the last call.
    fn after_zab<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        for txn in self.zab.take_forwarded() {
            let txn = self.check_owner(txn);
            // The client times out and retries if this is refused.
            let _ = self.zab.submit(ctx, txn);
        }
        for (zxid, txn, outcome) in self.zab.take_applied() {
            self.on_applied(ctx, zxid, txn, outcome);
        }
        let serving = self.zab.is_serving();
        let leading = self.zab.is_leading();
        if self.was_serving && !serving {
            // ZooKeeper closes client connections when a server leaves broadcast.
            let clients: Vec<NodeId> = self.conns.keys().copied().collect();
            for client in clients {
                self.close(ctx, client, false);
            }
        }
        if serving && !self.was_serving {
            // Read-only clients must move to a server that can write.
            let read_only: Vec<NodeId> = self
                .conns
                .iter()
                .filter(|(_, c)| c.read_only)
                .map(|(id, _)| *id)
                .collect();
            for client in read_only {
                self.close(ctx, client, false);
            }
        }
        if leading && !self.was_leading {
            // A new leader gives every session a full timeout, as ZooKeeper's does.
            let now = ctx.monotonic_ns();
            self.deadlines = self
                .zab
                .state()
                .sessions
                .iter()
                .map(|(id, info)| (*id, now + info.timeout_ns))
                .collect();
            self.closing.clear();
        }
        if !leading {
            self.deadlines.clear();
            self.owners.clear();
        }
        self.was_serving = serving;
        self.was_leading = leading;
    }

    fn on_applied<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, zxid: u64, txn: Txn, outcome: Outcome) {
        let mut changed = Vec::new();
        match (&txn.op, &outcome.result) {
            (TxnOp::CreateSession { timeout_ns }, Ok(_)) => {
                ctx.observe(Obs::SessionOpened {
                    session: zxid,
                    client: txn.origin.client,
                    zxid,
                });
                if self.zab.is_leading() {
                    self.deadlines.insert(zxid, ctx.monotonic_ns() + timeout_ns);
                    self.owners.insert(zxid, txn.origin.server);
                }
            }
            (TxnOp::CloseSession { session }, _) => {
                ctx.observe(Obs::SessionClosed {
                    session: *session,
                    zxid,
                });
                self.deadlines.remove(session);
                self.closing.remove(session);
                self.owners.remove(session);
                for path in &outcome.removed {
                    self.fire_deleted(ctx, path);
                    changed.push(path.clone());
                }
                let owners: Vec<NodeId> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.session == *session)
                    .map(|(id, _)| *id)
                    .collect();
                for client in owners {
                    self.close(ctx, client, true);
                }
            }
            (TxnOp::Create { mode, .. }, Ok(Reply::Created(path))) => {
                if mode.is_ephemeral() {
                    ctx.observe(Obs::EphemeralCreated {
                        path: path.clone(),
                        session: txn.origin.session,
                    });
                }
                self.fire(ctx, true, path, WatchKind::NodeCreated);
                self.fire(ctx, false, parent(path), WatchKind::NodeChildrenChanged);
                changed.push(path.clone());
            }
            (TxnOp::Delete { path, .. }, Ok(_)) => {
                self.fire_deleted(ctx, path);
                changed.push(path.clone());
            }
            (TxnOp::SetData { path, .. }, Ok(_)) => {
                self.fire(ctx, true, path, WatchKind::NodeDataChanged);
                changed.push(path.clone());
            }
            _ => {}
        }
        if !changed.is_empty() {
            ctx.observe(Obs::Changed {
                zxid,
                paths: changed,
            });
        }
        if txn.origin.server != ctx.id() {
            return;
        }
        let client = txn.origin.client;
        if let TxnOp::CreateSession { .. } = txn.op {
            let current = self
                .connecting
                .get(&client)
                .is_some_and(|pending| pending.session == 0 && pending.attempt == txn.origin.xid);
            if current {
                match outcome.result {
                    Ok(_) => self.accept(ctx, client, zxid, false),
                    Err(_) => self.close(ctx, client, false),
                }
            }
            return;
        }
        let on_this_connection = self
            .conns
            .get(&client)
            .is_some_and(|c| c.session == txn.origin.session);
        if !on_this_connection {
            return;
        }
        if outcome.result.is_ok() && !matches!(txn.op, TxnOp::Sync) {
            ctx.observe(Obs::Acked { zxid });
        }
        let response = Msg::Response {
            xid: txn.origin.xid,
            zxid,
            result: outcome.result,
        };
        self.reply(ctx, client, response);
    }

    /// A deleted node's data and child watchers hear NodeDeleted once each, even a
    /// client that set both (ZooKeeper's `DataTree.deleteNode` triggers the child
    /// watches with the data watchers suppressed); its parent's child watchers hear
    /// NodeChildrenChanged.
    fn fire_deleted<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, path: &str) {
        let mut watchers = self.data_watches.remove(path).unwrap_or_default();
        watchers.extend(self.child_watches.remove(path).unwrap_or_default());
        for client in watchers {
            let event = WatchEvent {
                kind: WatchKind::NodeDeleted,
                path: path.to_string(),
            };
            self.reply(ctx, client, Msg::Watch(event));
        }
        self.fire(ctx, false, parent(path), WatchKind::NodeChildrenChanged);
    }

    fn fire<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, data: bool, path: &str, kind: WatchKind) {
        let table = if data {
            &mut self.data_watches
        } else {
            &mut self.child_watches
        };
        let Some(watchers) = table.remove(path) else {
            return;
        };
        for client in watchers {
            let event = WatchEvent {
                kind,
                path: path.to_string(),
            };
            self.reply(ctx, client, Msg::Watch(event));
        }
    }

    fn on_tick<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let now = ctx.monotonic_ns();
        if let (false, Some(leader)) = (self.zab.is_leading(), self.zab.leader()) {
            if !self.touched.is_empty() {
                let sessions = std::mem::take(&mut self.touched).into_iter().collect();
                self.send_server(ctx, leader, Msg::Touch { sessions });
            }
        }
        // Bug zoo: `registry.sessions-never-expire` skips the leader's session expiry.
        if self.zab.is_leading() && !ctx.bug(SESSIONS_NEVER_EXPIRE) {
            let expired: Vec<u64> = self
                .deadlines
                .iter()
                .filter(|(s, deadline)| **deadline <= now && !self.closing.contains(s))
                .map(|(s, _)| *s)
                .collect();
            for session in expired {
                ctx.sometimes("registry.session-expired");
                let txn = Txn {
                    origin: self.origin(ctx, ctx.id(), 0, 0),
                    op: TxnOp::CloseSession { session },
                };
                if self.zab.submit(ctx, txn).is_ok() {
                    self.closing.insert(session);
                }
            }
        }
        // A client silent for longer than its session timeout has gone away.
        let silent: Vec<NodeId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                let timeout = self
                    .zab
                    .state()
                    .sessions
                    .get(&c.session)
                    .map_or(u64::MAX / 4, |info| info.timeout_ns);
                now.saturating_sub(c.last_heard_ns) > timeout
            })
            .map(|(id, _)| *id)
            .collect();
        for client in silent {
            self.conns.remove(&client);
        }
    }
}

impl Server {
    /// What the connections report: client frames, the other servers' frames, and
    /// connections that broke or closed.
    fn on_net_events<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, events: Events<Msg>) {
        for event in events {
            match event {
                ConnEvent::Frame { conn, frame } => self.on_frame(ctx, conn, frame),
                ConnEvent::Broken { conn, .. } | ConnEvent::Closed { conn } => {
                    let peer = conn.peer;
                    if self.client_conns.get(&peer) == Some(&conn) {
                        self.client_conns.remove(&peer);
                        self.forget_client(peer);
                    }
                    if self.server_conns.get(&peer) == Some(&conn) {
                        self.server_conns.remove(&peer);
                    }
                }
                ConnEvent::Opened { .. } | ConnEvent::Accepted { .. } => {}
            }
        }
    }

    fn on_frame<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, conn: ConnId, msg: Msg) {
        let from = conn.peer;
        match msg {
            Msg::Touch { sessions } if self.zab.is_leading() => {
                for session in sessions {
                    self.touch(ctx, session);
                }
            }
            Msg::Revalidate { session, client } if self.zab.is_leading() => {
                let valid = self.zab.state().sessions.contains_key(&session);
                if valid {
                    self.touch(ctx, session);
                    self.owners.insert(session, from);
                }
                let answer = Msg::Revalidated {
                    session,
                    client,
                    valid,
                };
                self.send_server(ctx, from, answer);
            }
            Msg::Revalidated {
                session,
                client,
                valid,
            } => self.on_revalidated(ctx, client, session, valid),
            Msg::Connect {
                session,
                timeout_ns,
                read_only,
                last_zxid,
            } => {
                // A client's new connection replaces its old one here.
                if let Some(old) = self.client_conns.insert(from, conn) {
                    if old != conn {
                        self.net.abort(ctx, old);
                        self.forget_client(from);
                    }
                }
                self.on_connect(ctx, from, session, timeout_ns, read_only, last_zxid)
            }
            // The rest of a client's frames count only on its current connection.
            _ if self.client_conns.get(&from) != Some(&conn) => self.net.close(ctx, conn),
            Msg::Request {
                session,
                xid,
                op,
                watch,
            } => self.on_request(ctx, from, session, xid, op, watch),
            Msg::Ping { session } => self.on_ping(ctx, from, session),
            Msg::SetWatches {
                session: _,
                last_zxid,
                data,
                exist,
                child,
            } => self.on_set_watches(ctx, from, last_zxid, data, exist, child),
            _ => {}
        }
    }
}

/// The session timeout a server grants: what the client asked for, within 2 to 20
/// ticks (ZooKeeper's `minSessionTimeout` and `maxSessionTimeout` defaults).
pub fn negotiate_timeout(asked_ns: u64, tick_ns: u64) -> u64 {
    asked_ns.clamp(2 * tick_ns, 20 * tick_ns)
}

/// The parent of a valid non-root path.
fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

impl<H: Host> Node<H> for Server {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.net.start(ctx);
        self.zab.on_start(ctx);
        ctx.set_timer(self.params.zab.tick_ns, Timer::ServerTick);
        self.after_zab(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        let msg = match self.zab.take_message(ctx, from, msg) {
            Ok(()) => return self.after_zab(ctx),
            Err(msg) => msg,
        };
        if let Ok(events) = self.net.take_message(ctx, from, msg) {
            self.on_net_events(ctx, events);
            self.after_zab(ctx);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
        let timer = match self.zab.take_timer(ctx, id, timer) {
            Ok(()) => return self.after_zab(ctx),
            Err(timer) => timer,
        };
        let timer = match self.net.take_timer(ctx, id, timer) {
            Ok(events) => {
                self.on_net_events(ctx, events);
                return self.after_zab(ctx);
            }
            Err(timer) => timer,
        };
        if let Ok(Timer::ServerTick) = Wraps::<Timer>::into_part(timer) {
            self.on_tick(ctx);
            ctx.set_timer(self.params.zab.tick_ns, Timer::ServerTick);
        }
        self.after_zab(ctx);
    }

    fn role(&self) -> String {
        if !self.zab.is_serving() && self.read_only_active() {
            return "read-only".to_string();
        }
        self.zab.peer_state().name().to_string()
    }

    fn inspect(&self) -> String {
        let state = self.zab.state();
        let mut text = self.zab.inspect();
        text.push_str(&format!(
            "\nznodes={} sessions={} connections={} watches={}",
            state.tree.node_count(),
            state.sessions.len(),
            self.conns.len(),
            self.data_watches.len() + self.child_watches.len()
        ));
        text.push_str("\n\nsessions (id: client, timeout):\n");
        for (id, info) in state.sessions.iter().take(INSPECT_LINES_MAX) {
            let timeout = crate::units::format_duration(info.timeout_ns);
            text.push_str(&format!("  {id:#x}: client {}, {timeout}\n", info.client));
        }
        text.push_str("\nznodes (committed):\n");
        text.push_str(&state.tree.outline(INSPECT_LINES_MAX));
        text.push_str("\n\nZAB links:\n");
        text.push_str(&self.zab.links());
        text.push_str("\n\nclient and server connections:\n");
        text.push_str(&self.net.describe());
        text
    }
}
