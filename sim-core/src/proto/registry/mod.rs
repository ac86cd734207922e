//! The ZooKeeper-style registry: a 3- or 5-server ensemble replicated with ZAB
//! (`proto::zab`), its client library and the recipes and workloads built on it.
//!
//! - `tree`: the znode tree (DataTree, DESIGN.md's library contract).
//! - `state`: what ZAB replicates: the tree and the session table, changed only by
//!   committed transactions (`Txn`).
//! - `server`: a registry server: client connections, reads served from its own
//!   committed state, writes forwarded through ZAB, one-shot watches, sessions kept by
//!   the leader, and read-only mode (`readonlymode.enabled`).
//! - `client`: the client library: connects to any server, fails over, pings, and tells
//!   ConnectionLoss (outcome unknown, session alive) from SessionExpired.
//! - `recipes`: the lock (ephemeral-sequential, each waiter watching its predecessor,
//!   with a fencing token) and service registration (`/services/<interface>/providers`).
//! - `apps`: the workloads scenarios run: a register/kv client writing a Jepsen history,
//!   lockers with a fenced resource, providers that register and discover.
//! - `invariants`, `bugs`: what runs are checked for, and the planted bugs.
//!
//! Semantics follow Apache ZooKeeper; deviations: session ids are the zxid of the
//! transaction that created them; sync is a quorum round (see `proto::zab`); a read-only
//! server keeps a reconnecting client's session id rather than handing out a local one;
//! no ACLs, multi-ops, quotas or observers.

pub mod apps;
pub mod bugs;
pub mod client;
pub mod invariants;
pub mod recipes;
pub mod server;
pub mod spec;
pub mod state;
pub mod tree;

use serde::{Deserialize, Serialize};

use crate::conn;
use crate::node::{NodeId, Proto, Wraps};
use crate::proto::spec::{ComponentSpec, Mark};
use crate::proto::zab::{self, Zxid};
use state::Registry;
use tree::{CreateMode, Stat, ZkError};

pub const COMPONENT: ComponentSpec = ComponentSpec {
    name: "registry",
    description: "the znode tree, sessions and watches served by an ensemble, and its clients",
    invariants: &[
        invariants::ACKED_DURABLE,
        invariants::EPHEMERALS,
        invariants::LINEARIZABLE,
        invariants::SINGLE_SYSTEM_IMAGE,
        invariants::PROGRESS,
    ],
    gauges: &[invariants::STALENESS],
    bugs: bugs::BUGS,
    marks: &[
        Mark {
            name: "registry.session-expired",
            doc: "the leader expired a silent session (closing it by a transaction)",
            hint: "crash or pause a client longer than session_timeout (nemesis crash, pause)",
        },
        Mark {
            name: "registry.client-sees-expiry",
            doc: "a client reconnected to learn its session had expired",
            hint: "pause a client longer than session_timeout, then resume it (nemesis pause)",
        },
        Mark {
            name: "registry.refused-client-from-the-future",
            doc: "a server refused a client that had seen a later state than its own",
            hint: "partition a lagging server while clients move (nemesis partition)",
        },
        Mark {
            name: "registry.read-only-session",
            doc: "a cut-off server accepted a read-only session",
            hint: "read_only = true and partitions (nemesis partition)",
        },
        Mark {
            name: "registry.write-refused-read-only",
            doc: "a read-only server refused a write with NotReadOnly",
            hint: "read_only = true and partitions during writes (nemesis partition)",
        },
        Mark {
            name: "registry.watches-set-again",
            doc: "a client that lost its connection set its watches again on another server",
            hint: "crash or cut off the server a watching client uses (nemesis crash, partition)",
        },
    ],
};

/// The lock recipe: a fencing token guards the resource its holders write to.
pub const LOCK_COMPONENT: ComponentSpec = ComponentSpec {
    name: "lock",
    description: "the lock recipe and the fenced resource its holders write to",
    invariants: &[invariants::FENCED],
    gauges: &[],
    bugs: bugs::LOCK_BUGS,
    marks: &[
        Mark {
            name: "lock.stale-token",
            doc: "the resource saw a write with an older fencing token than one it accepted",
            hint: "pause a lock holder past its session timeout (nemesis pause)",
        },
        Mark {
            name: "lock.recovering-after-reconnect",
            doc: "a contender lost its connection mid-create and looked for its own node",
            hint: "crash the server a locker uses (nemesis crash)",
        },
    ],
};

/// What a node hosting the registry client library needs of its host's types: client
/// sessions (and the servers' own messages) travel over connections (`conn`), as
/// ZooKeeper's run over TCP.
pub trait ClientHost:
    conn::Host<Msg> + Proto<Obs: Wraps<Obs>, Timer: Wraps<client::Timer>>
{
}
impl<P: conn::Host<Msg> + Proto<Obs: Wraps<Obs>, Timer: Wraps<client::Timer>>> ClientHost for P {}

/// What a node hosting a registry server or a registry workload needs of its host's
/// types: the client's, ZAB's, the lock's messages and the registry's own timers.
pub trait Host:
    ClientHost + zab::Host<Registry> + Proto<Msg: Wraps<LockMsg>, Timer: Wraps<Timer>>
{
}
impl<P: ClientHost + zab::Host<Registry> + Proto<Msg: Wraps<LockMsg>, Timer: Wraps<Timer>>> Host
    for P
{
}

/// The timers of registry servers and workloads (the client library has its own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Timer {
    /// A server's tick: session deadlines, touches, read-only mode.
    ServerTick,
    /// A workload's next operation or round.
    Next,
    /// A locker's critical section: the next step of its work.
    Work { step: u32 },
}

/// A client request, as ZooKeeper's client API names them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Create {
        path: String,
        data: Vec<u8>,
        mode: CreateMode,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    GetData {
        path: String,
    },
    Exists {
        path: String,
    },
    GetChildren {
        path: String,
    },
    /// Brings the serving server up to date with the leader before later reads.
    Sync,
}

impl Op {
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Op::GetData { .. } | Op::Exists { .. } | Op::GetChildren { .. }
        )
    }

    pub fn path(&self) -> &str {
        match self {
            Op::Create { path, .. }
            | Op::Delete { path, .. }
            | Op::SetData { path, .. }
            | Op::GetData { path }
            | Op::Exists { path }
            | Op::GetChildren { path } => path,
            Op::Sync => "/",
        }
    }
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Created(String),
    Stat(Stat),
    /// `exists` on a missing node.
    NoStat,
    Data(Vec<u8>, Stat),
    Children(Vec<String>),
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchKind {
    NodeCreated,
    NodeDeleted,
    NodeDataChanged,
    NodeChildrenChanged,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvent {
    pub kind: WatchKind,
    pub path: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    /// Follower to leader, every tick: sessions its clients kept alive.
    Touch {
        sessions: Vec<u64>,
    },
    /// Follower to leader: is this reconnecting session still alive?
    Revalidate {
        session: u64,
        client: NodeId,
    },
    Revalidated {
        session: u64,
        client: NodeId,
        valid: bool,
    },
    /// Client to server.
    Connect {
        session: u64,
        timeout_ns: u64,
        read_only: bool,
        last_zxid: Zxid,
    },
    Request {
        session: u64,
        xid: u64,
        op: Op,
        watch: bool,
    },
    /// Keeps the session alive while the client is idle.
    Ping {
        session: u64,
    },
    /// After a reconnect: the watches to set again, fired at once for changes the
    /// client missed after `last_zxid`.
    SetWatches {
        session: u64,
        last_zxid: Zxid,
        data: Vec<String>,
        exist: Vec<String>,
        child: Vec<String>,
    },
    /// Server to client.
    Connected {
        session: u64,
        timeout_ns: u64,
        read_only: bool,
    },
    /// The server closed the connection; `expired` when the session is gone.
    Closed {
        expired: bool,
    },
    Response {
        xid: u64,
        zxid: Zxid,
        result: Result<Reply, ZkError>,
    },
    Watch(WatchEvent),
    Pong,
}

/// Between a locker and the fenced resource it writes to: datagrams, each write retried
/// by the locker until acknowledged (the resource is a storage service, not ZooKeeper).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LockMsg {
    /// Locker to the fenced resource: one write of a critical section.
    ResourceWrite {
        token: u64,
        step: u32,
    },
    ResourceAck {
        step: u32,
        accepted: bool,
    },
}

/// What registry nodes report to the checkers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Obs {
    /// A server applied a committed transaction that changed `paths` (for staleness).
    Changed {
        zxid: Zxid,
        paths: Vec<String>,
    },
    /// A server answered a read of `path` from its state at `zxid`.
    Read {
        client: NodeId,
        path: String,
        zxid: Zxid,
    },
    /// A server served `path`'s children from its state at `zxid`.
    Children {
        path: String,
        zxid: Zxid,
        children: Vec<String>,
    },
    /// A committed session change: created (with its client) or closed.
    SessionOpened {
        session: u64,
        client: NodeId,
        zxid: Zxid,
    },
    SessionClosed {
        session: u64,
        zxid: Zxid,
    },
    /// A committed ephemeral create: `path` belongs to `session`.
    EphemeralCreated {
        path: String,
        session: u64,
    },
    /// A server acknowledged a client's write committed at `zxid`.
    Acked {
        zxid: Zxid,
    },
    /// The fenced resource accepted or refused a write.
    ResourceWrite {
        client: NodeId,
        token: u64,
        accepted: bool,
    },
    /// A workload client finished everything it had to do.
    Finished,
    /// A client got an answer from the server's state at `zxid` (ZooKeeper's
    /// `lastZxid` moves with these).
    Seen {
        zxid: Zxid,
    },
}
