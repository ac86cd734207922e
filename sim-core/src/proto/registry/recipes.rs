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

/// A registry session of a node's own that announces the node in a directory or
/// watches one: the client library and a `Registration`. It registers (again after a
/// session expires) or lists the directory with a watch (again on every change), and
/// retries on the client's tick what failed: a registration cut short by a lost
/// connection, or a listing of a directory nobody has created yet (a `NoNode` listing
/// sets no watch, so nothing else would wake it).
pub struct Directory {
    client: Client,
    registration: Registration,
    announce: bool,
}

impl Directory {
    /// Announces `name` in `dir`.
    pub fn announcing(config: ClientConfig, dir: &str, name: &str) -> Self {
        Self {
            client: Client::new(config),
            registration: Registration::at(dir, name),
            announce: true,
        }
    }

    /// Watches `dir`.
    pub fn watching(config: ClientConfig, dir: &str) -> Self {
        Self {
            client: Client::new(config),
            registration: Registration::at(dir, ""),
            announce: false,
        }
    }

    pub fn start<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.client.start(ctx);
    }

    /// The latest listing of the directory, as the registry answered it.
    pub fn listing(&self) -> &[String] {
        self.registration.providers()
    }

    /// How many listings arrived so far (a new one may name the same children).
    pub fn listings(&self) -> u64 {
        self.registration.listings()
    }

    pub fn is_registered(&self) -> bool {
        self.registration.is_registered()
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn handle<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, events: Vec<Event>) {
        for event in events {
            if event == Event::Expired {
                self.client.new_session(ctx);
                continue;
            }
            let connected = matches!(event, Event::Connected { .. });
            let changed = self.registration.on_event(ctx, &mut self.client, &event);
            if self.client.is_busy() {
                continue;
            }
            if connected && self.announce && !self.registration.is_registered() {
                self.registration.register(ctx, &mut self.client);
            } else if connected || changed {
                self.registration.discover(ctx, &mut self.client);
            }
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
        self.handle(ctx, events);
        if !tick || !self.client.is_connected() || self.client.is_busy() {
            return Ok(());
        }
        if self.announce && !self.registration.is_registered() {
            self.registration.register(ctx, &mut self.client);
        } else if !self.announce && self.listing().is_empty() {
            self.registration.discover(ctx, &mut self.client);
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        format!(
            "registry session={:#x} state={:?} registered={} listed={:?}",
            self.client.session(),
            self.client.state(),
            self.registration.is_registered(),
            self.registration.providers()
        )
    }
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
