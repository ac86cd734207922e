//! Recipes built on the client library, as ZooKeeper's documentation and Curator describe
//! them.
//!
//! - `Lock`: each contender creates an ephemeral-sequential node under the lock's
//!   directory, named with its session so it can find it again after a ConnectionLoss
//!   (the "guid" of ZooKeeper's recipe); the lowest sequence number holds the lock; every
//!   other contender watches only its predecessor, so a release wakes one waiter, not the
//!   herd. The sequence number is the fencing token: it only ever grows.
//! - `Registration`: service registration as Dubbo does it in ZooKeeper: persistent
//!   parents `/services/<interface>/providers` (or any directory), one ephemeral child
//!   per provider, gone when the provider's session ends; discovery lists the children
//!   with a watch.
//! - `Directory`: a registry session of its own for a node that announces itself in a
//!   directory or watches one (a broker and its clients, RPC providers and consumers):
//!   the client library and a `Registration`, with retries on the client's tick.
//!
//! Each recipe owns the client's single outstanding request while it works.

use std::collections::VecDeque;

use super::client::{self as client_lib, Client, ClientConfig, Event, RequestError};
use super::tree::{CreateMode, ZkError};
use super::{ClientHost, Op, Reply, WatchKind};
use crate::node::{Ctx, NodeId, TimerId, Wraps};

#[derive(Clone, Debug, PartialEq, Eq)]
enum LockState {
    Idle,
    CreatingDir,
    Creating,
    /// After a ConnectionLoss: list the children to learn whether our create happened.
    Recovering,
    Listing,
    Watching(String),
    /// Deleting a node of ours that is not `node` (see `on_children`).
    DeletingStray,
    Held,
    Releasing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockEvent {
    Acquired {
        token: u64,
    },
    /// The session expired: the lock (held or awaited) is gone.
    Lost,
    Released,
}

#[derive(Clone)]
pub struct Lock {
    dir: String,
    state: LockState,
    node: Option<String>,
    /// A listing was due while the client had a request outstanding: done when that
    /// request's answer arrives.
    list_due: bool,
}

/// The fencing token in a sequential node's name: its 10-digit suffix.
pub fn sequence_of(name: &str) -> Option<u64> {
    let digits = name.get(name.len().checked_sub(10)?..)?;
    digits.parse().ok()
}

impl Lock {
    pub fn new(dir: &str) -> Self {
        Self {
            dir: dir.to_string(),
            state: LockState::Idle,
            node: None,
            list_due: false,
        }
    }

    pub fn is_held(&self) -> bool {
        self.state == LockState::Held
    }

    pub fn is_idle(&self) -> bool {
        self.state == LockState::Idle
    }

    fn prefix(&self, client: &Client) -> String {
        format!("{}/{:x}-lock-", self.dir, client.session())
    }

    /// Starts contending; `Acquired` follows once this client holds the lock.
    pub fn acquire<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: &mut Client,
    ) -> Result<(), ZkError> {
        assert_eq!(self.state, LockState::Idle, "acquire once at a time");
        self.node = None;
        self.create(ctx, client)
    }

    fn create<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: &mut Client,
    ) -> Result<(), ZkError> {
        self.state = LockState::Creating;
        let op = Op::Create {
            path: self.prefix(client),
            data: Vec::new(),
            mode: CreateMode::EphemeralSequential,
        };
        self.send(ctx, client, op, false)
    }

    fn send<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: &mut Client,
        op: Op,
        watch: bool,
    ) -> Result<(), ZkError> {
        match client.request(ctx, op, watch) {
            Ok(()) => Ok(()),
            Err(RequestError::Busy) => {
                // A watch fired while a request was out: list once its answer is in.
                self.list_due = true;
                Ok(())
            }
            Err(RequestError::Zk(error)) => {
                if self.state != LockState::Releasing {
                    // Not connected: pick up again on the next Connected event.
                    self.state = LockState::Recovering;
                }
                Err(error)
            }
        }
    }

    fn list<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, client: &mut Client, recovering: bool) {
        if recovering {
            ctx.sometimes("lock.recovering-after-reconnect");
        }
        self.state = if recovering {
            LockState::Recovering
        } else {
            LockState::Listing
        };
        let op = Op::GetChildren {
            path: self.dir.clone(),
        };
        let _ = self.send(ctx, client, op, false);
    }

    /// Deletes our node. Returns `Released` at once when there is nothing to delete (the
    /// session that held it expired); otherwise `Released` follows from `on_event`.
    #[must_use]
    pub fn release<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: &mut Client,
    ) -> Option<LockEvent> {
        self.state = LockState::Releasing;
        self.list_due = false;
        let Some(node) = self.node.clone() else {
            self.state = LockState::Idle;
            return Some(LockEvent::Released);
        };
        // Busy or not connected: the release goes out on the next Connected event.
        let _ = client.request(
            ctx,
            Op::Delete {
                path: node,
                version: -1,
            },
            false,
        );
        None
    }

    /// Feeds one client event; returns what it meant for the lock.
    pub fn on_event<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: &mut Client,
        event: &Event,
    ) -> Option<LockEvent> {
        match event {
            Event::Expired => {
                let was_active = self.state != LockState::Idle;
                self.state = LockState::Idle;
                self.node = None;
                return was_active.then_some(LockEvent::Lost);
            }
            Event::Connected { .. } => match self.state {
                LockState::Recovering => self.list(ctx, client, true),
                LockState::Releasing if !client.is_busy() => return self.release(ctx, client),
                _ => {}
            },
            Event::Watch(watch) => {
                if let LockState::Watching(pred) = &self.state {
                    if watch.path == *pred && watch.kind == WatchKind::NodeDeleted {
                        self.list(ctx, client, false);
                    }
                }
            }
            Event::Response { op, result } => {
                let outcome = self.on_response(ctx, client, op, result);
                if std::mem::take(&mut self.list_due)
                    && !client.is_busy()
                    && matches!(self.state, LockState::Watching(_) | LockState::Listing)
                {
                    self.list(ctx, client, false);
                }
                return outcome;
            }
            Event::Disconnected => {}
        }
        None
    }

    fn on_response<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: &mut Client,
        op: &Op,
        result: &Result<Reply, ZkError>,
    ) -> Option<LockEvent> {
        if result == &Err(ZkError::ConnectionLoss) {
            if self.state != LockState::Releasing && self.state != LockState::Held {
                self.state = LockState::Recovering;
            }
            return None;
        }
        match (&self.state, op, result) {
            (LockState::Creating, Op::Create { .. }, Ok(Reply::Created(path))) => {
                self.node = Some(path.clone());
                self.list(ctx, client, false);
            }
            (LockState::Creating, Op::Create { .. }, Err(ZkError::NoNode)) => {
                self.state = LockState::CreatingDir;
                let op = Op::Create {
                    path: self.dir.clone(),
                    data: Vec::new(),
                    mode: CreateMode::Persistent,
                };
                let _ = self.send(ctx, client, op, false);
            }
            (LockState::CreatingDir, Op::Create { .. }, Ok(_) | Err(ZkError::NodeExists)) => {
                let _ = self.create(ctx, client);
            }
            (
                LockState::Listing | LockState::Recovering,
                Op::GetChildren { .. },
                Ok(Reply::Children(children)),
            ) => {
                return self.on_children(ctx, client, children.clone());
            }
            (LockState::Watching(_), Op::Exists { .. }, Ok(Reply::NoStat)) => {
                self.list(ctx, client, false);
            }
            (LockState::DeletingStray, Op::Delete { .. }, Ok(_) | Err(ZkError::NoNode)) => {
                self.list(ctx, client, false);
            }
            (LockState::Releasing, Op::Delete { .. }, Ok(_) | Err(ZkError::NoNode)) => {
                self.node = None;
                self.state = LockState::Idle;
                return Some(LockEvent::Released);
            }
            // Any other refusal (SessionMoved, ...) while contending: find out where we
            // stand from the children, as after a ConnectionLoss.
            (state, _, Err(_)) if !matches!(state, LockState::Held | LockState::Releasing) => {
                self.list(ctx, client, true);
            }
            _ => {}
        }
        None
    }

    fn on_children<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: &mut Client,
        children: Vec<String>,
    ) -> Option<LockEvent> {
        let prefix = self.prefix(client);
        let own_name = prefix[self.dir.len() + 1..].to_string();
        if self.state == LockState::Recovering {
            self.node = children
                .iter()
                .find(|c| c.starts_with(&own_name))
                .map(|c| format!("{}/{c}", self.dir));
            if self.node.is_none() {
                let _ = self.create(ctx, client);
                return None;
            }
        }
        let node = self.node.clone()?;
        let mine = &node[self.dir.len() + 1..];
        let mut contenders: Vec<&String> = children
            .iter()
            .filter(|c| sequence_of(c).is_some())
            .collect();
        contenders.sort_by_key(|c| sequence_of(c));
        // A create retried after a ConnectionLoss can leave a second node of ours. It must
        // go at once: a contender behind it would wait on it while we wait on that
        // contender, a deadlock that lasts as long as our session.
        let stray = contenders
            .iter()
            .find(|c| c.starts_with(&own_name) && c.as_str() != mine);
        if let Some(stray) = stray {
            self.state = LockState::DeletingStray;
            let op = Op::Delete {
                path: format!("{}/{stray}", self.dir),
                version: -1,
            };
            let _ = self.send(ctx, client, op, false);
            return None;
        }
        let Some(position) = contenders.iter().position(|c| c.as_str() == mine) else {
            // Our node is gone: the session must have expired under us.
            self.state = LockState::Idle;
            self.node = None;
            return Some(LockEvent::Lost);
        };
        if position == 0 {
            self.state = LockState::Held;
            let token = sequence_of(mine).expect("contenders are sequential");
            return Some(LockEvent::Acquired { token });
        }
        let predecessor = format!("{}/{}", self.dir, contenders[position - 1]);
        self.state = LockState::Watching(predecessor.clone());
        let _ = self.send(ctx, client, Op::Exists { path: predecessor }, true);
        None
    }
}

/// Registers one provider under a directory and keeps discovering the others.
#[derive(Clone)]
pub struct Registration {
    dir: String,
    /// This provider's node name in `dir`.
    name: String,
    steps: VecDeque<Op>,
    registered: bool,
    providers: Vec<String>,
    /// Counts the listings taken: a caller compares it to notice a new one.
    listings: u64,
}

impl Registration {
    /// Under `/services/<interface>/providers`, named by `address`.
    pub fn new(interface: &str, address: &str) -> Self {
        Self::at(&format!("/services/{interface}/providers"), address)
    }

    /// Under directory `dir` (created with its parents), named `name`.
    pub fn at(dir: &str, name: &str) -> Self {
        Self {
            dir: dir.to_string(),
            name: name.to_string(),
            steps: VecDeque::new(),
            registered: false,
            providers: Vec::new(),
            listings: 0,
        }
    }

    pub fn providers_dir(&self) -> String {
        self.dir.clone()
    }

    /// How many listings arrived so far.
    pub fn listings(&self) -> u64 {
        self.listings
    }

    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// The providers seen by the latest discovery.
    pub fn providers(&self) -> &[String] {
        &self.providers
    }

    /// (Re-)registers: creates the persistent parents, then the ephemeral provider node.
    pub fn register<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, client: &mut Client) {
        self.registered = false;
        let dir = self.providers_dir();
        let mut path = String::new();
        self.steps.clear();
        for part in dir.trim_start_matches('/').split('/') {
            path.push('/');
            path.push_str(part);
            self.steps.push_back(Op::Create {
                path: path.clone(),
                data: Vec::new(),
                mode: CreateMode::Persistent,
            });
        }
        self.steps.push_back(Op::Create {
            path: format!("{dir}/{}", self.name),
            data: self.name.as_bytes().to_vec(),
            mode: CreateMode::Ephemeral,
        });
        self.next(ctx, client);
    }

    /// Lists the providers and watches for changes.
    pub fn discover<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, client: &mut Client) {
        if !client.is_busy() {
            let op = Op::GetChildren {
                path: self.providers_dir(),
            };
            let _ = client.request(ctx, op, true);
        }
    }

    fn next<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, client: &mut Client) {
        if let Some(op) = self.steps.front().cloned() {
            if !client.is_busy() {
                let _ = client.request(ctx, op, false);
            }
        }
    }

    /// Feeds one client event; true when the provider list changed or should be re-read.
    pub fn on_event<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: &mut Client,
        event: &Event,
    ) -> bool {
        match event {
            Event::Response {
                op: Op::Create { .. },
                result,
            } => match result {
                Ok(_) | Err(ZkError::NodeExists) => {
                    self.steps.pop_front();
                    if self.steps.is_empty() {
                        self.registered = true;
                        return true;
                    }
                    self.next(ctx, client);
                }
                // The create may or may not have happened; NodeExists on retry covers it.
                Err(_) => {}
            },
            Event::Response {
                op: Op::GetChildren { .. },
                result: Ok(Reply::Children(children)),
            } => {
                self.providers = children.clone();
                self.listings += 1;
            }
            Event::Connected { .. } => self.next(ctx, client),
            Event::Watch(watch) => return watch.path == self.providers_dir(),
            _ => {}
        }
        false
    }
}

/// A registry session of a node's own, shared by everything in the node that uses the
/// registry: it announces the node in a directory (an ephemeral entry, registered again
/// after a session expires) and watches any number of directories (listed with a watch,
/// again on every change and every new connection). One request is in flight at a time;
/// what failed (a registration cut short by a lost connection, a listing of a directory
/// nobody has created yet, which sets no watch) is retried on the client's tick.
#[derive(Clone)]
pub struct Directory {
    client: Client,
    announce: Option<Announce>,
    watched: Vec<Watched>,
    /// Listings taken, over all watched directories.
    listings: u64,
}

#[derive(Clone)]
struct Announce {
    dir: String,
    name: String,
    /// The creates still to make: the persistent parents, then the ephemeral entry.
    steps: VecDeque<Op>,
    registered: bool,
    /// A create failed: wait for the tick.
    failed: bool,
}

#[derive(Clone)]
struct Watched {
    dir: String,
    children: Vec<String>,
    /// Needs listing (a watch fired, a new connection).
    stale: bool,
    /// The last listing failed: retry on the tick.
    failed: bool,
    listed: bool,
}

impl Directory {
    /// A session that neither announces nor watches yet.
    pub fn new(config: ClientConfig) -> Self {
        Self {
            client: Client::new(config),
            announce: None,
            watched: Vec::new(),
            listings: 0,
        }
    }

    /// Announces `name` in `dir`.
    pub fn announcing(config: ClientConfig, dir: &str, name: &str) -> Self {
        let mut directory = Self::new(config);
        directory.announce(dir, name);
        directory
    }

    /// Watches `dir`.
    pub fn watching(config: ClientConfig, dir: &str) -> Self {
        let mut directory = Self::new(config);
        directory.watch(dir);
        directory
    }

    /// Announces `name` in `dir` from now on (before `start`, or the next registration).
    pub fn announce(&mut self, dir: &str, name: &str) {
        self.announce = Some(Announce {
            dir: dir.to_string(),
            name: name.to_string(),
            steps: VecDeque::new(),
            registered: false,
            failed: false,
        });
    }

    /// Watches `dir` too.
    pub fn watch(&mut self, dir: &str) {
        if !self.watched.iter().any(|w| w.dir == dir) {
            self.watched.push(Watched {
                dir: dir.to_string(),
                children: Vec::new(),
                stale: true,
                failed: false,
                listed: false,
            });
        }
    }

    pub fn start<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.client.start(ctx);
    }

    /// The latest listing of the first watched directory, as the registry answered it.
    pub fn listing(&self) -> &[String] {
        self.watched.first().map_or(&[], |w| &w.children)
    }

    /// The latest listing of `dir` (empty if it is not watched or not listed yet).
    pub fn listing_of(&self, dir: &str) -> &[String] {
        self.watched
            .iter()
            .find(|w| w.dir == dir)
            .map_or(&[], |w| &w.children)
    }

    /// How many listings arrived so far (a new one may name the same children).
    pub fn listings(&self) -> u64 {
        self.listings
    }

    pub fn is_registered(&self) -> bool {
        self.announce.as_ref().is_some_and(|a| a.registered)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn handle<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, events: Vec<Event>) {
        for event in events {
            match event {
                Event::Expired => {
                    self.client.new_session(ctx);
                    if let Some(announce) = &mut self.announce {
                        announce.registered = false;
                        announce.steps.clear();
                    }
                    self.watched.iter_mut().for_each(|w| w.stale = true);
                }
                // A new connection: the watches of the old one may have missed changes.
                Event::Connected { .. } => self.watched.iter_mut().for_each(|w| w.stale = true),
                Event::Response {
                    op: Op::Create { .. },
                    result,
                } => {
                    if let Some(announce) = &mut self.announce {
                        match result {
                            Ok(_) | Err(ZkError::NodeExists) => {
                                announce.steps.pop_front();
                                announce.registered = announce.steps.is_empty();
                            }
                            // It may or may not have happened; NodeExists on retry covers it.
                            Err(_) => announce.failed = true,
                        }
                    }
                }
                Event::Response {
                    op: Op::GetChildren { path },
                    result,
                } => {
                    if let Some(watched) = self.watched.iter_mut().find(|w| w.dir == path) {
                        match result {
                            Ok(Reply::Children(children)) => {
                                watched.children = children;
                                watched.listed = true;
                                self.listings += 1;
                            }
                            _ => watched.failed = true,
                        }
                    }
                }
                Event::Watch(watch) => {
                    if let Some(watched) = self.watched.iter_mut().find(|w| w.dir == watch.path) {
                        watched.stale = true;
                    }
                }
                _ => {}
            }
        }
        self.pump(ctx);
    }

    /// Announces `name` in `dir` now that the node is ready (a session already running
    /// registers at once if it is free).
    pub fn announce_now<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, dir: &str, name: &str) {
        self.announce(dir, name);
        self.pump(ctx);
    }

    /// Sends the next request, if the session is free: the registration first, then a
    /// stale listing.
    fn pump<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        if !self.client.is_connected() || self.client.is_busy() {
            return;
        }
        if let Some(announce) = &mut self.announce {
            if !announce.registered {
                if announce.failed {
                    return;
                }
                if announce.steps.is_empty() {
                    announce.steps = create_steps(&announce.dir, &announce.name);
                }
                let op = announce.steps.front().cloned().expect("steps to take");
                let _ = self.client.request(ctx, op, false);
                return;
            }
        }
        if let Some(watched) = self.watched.iter_mut().find(|w| w.stale && !w.failed) {
            watched.stale = false;
            let op = Op::GetChildren {
                path: watched.dir.clone(),
            };
            let _ = self.client.request(ctx, op, true);
        }
    }

    /// Takes `msg` if it is the registry client's.
    pub fn take_message<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        msg: H::Msg,
    ) -> Result<(), H::Msg> {
        let events = self.client.take_message(ctx, from, msg)?;
        self.handle(ctx, events);
        Ok(())
    }

    /// Takes `timer` if it is the registry client's; on its tick, retries what failed.
    pub fn take_timer<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        id: TimerId,
        timer: H::Timer,
    ) -> Result<(), H::Timer> {
        let tick = Wraps::<client_lib::Timer>::part(&timer) == Some(&client_lib::Timer::Tick);
        let events = self.client.take_timer(ctx, id, timer)?;
        if tick {
            if let Some(announce) = &mut self.announce {
                announce.failed = false;
            }
            for watched in &mut self.watched {
                watched.stale |= watched.failed || !watched.listed;
                watched.failed = false;
            }
        }
        self.handle(ctx, events);
        Ok(())
    }

    pub fn describe(&self) -> String {
        let listed: Vec<String> = self
            .watched
            .iter()
            .map(|w| format!("{} {:?}", w.dir, w.children))
            .collect();
        format!(
            "registry session={:#x} state={:?} registered={} listed=[{}]",
            self.client.session(),
            self.client.state(),
            self.is_registered(),
            listed.join("; ")
        )
    }
}

/// The creates that register `name` in `dir`: the persistent parents, then the
/// ephemeral entry.
fn create_steps(dir: &str, name: &str) -> VecDeque<Op> {
    let mut steps = VecDeque::new();
    let mut path = String::new();
    for part in dir.trim_start_matches('/').split('/') {
        path.push('/');
        path.push_str(part);
        steps.push_back(Op::Create {
            path: path.clone(),
            data: Vec::new(),
            mode: CreateMode::Persistent,
        });
    }
    steps.push_back(Op::Create {
        path: format!("{dir}/{name}"),
        data: name.as_bytes().to_vec(),
        mode: CreateMode::Ephemeral,
    });
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fencing_token_is_the_sequential_suffix() {
        assert_eq!(sequence_of("1a-lock-0000000042"), Some(42));
        assert_eq!(sequence_of("lock"), None);
        assert_eq!(sequence_of("x-lock-00000000ab"), None);
    }
}
