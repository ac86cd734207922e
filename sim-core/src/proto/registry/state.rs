//! What ZAB replicates for the registry: the znode tree and the session table. Both
//! change only by applying committed transactions, identically on every server.
//!
//! As in ZooKeeper, a transaction's outcome (a created path, or an error such as
//! NodeExists) is decided by applying it to the committed state, so every server computes
//! the same answer and whichever one the client talks to can reply.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::tree::{CreateMode, DataTree, ZkError};
use super::Reply;
use crate::node::NodeId;
use crate::proto::zab::{StateMachine, Zxid};

/// Where a transaction came from, so the server that took the request can answer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub server: NodeId,
    pub client: NodeId,
    pub session: u64,
    pub xid: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    /// The new session's id is this transaction's zxid.
    CreateSession {
        timeout_ns: u64,
    },
    CloseSession {
        session: u64,
    },
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
    /// Changes nothing: its commit tells the server it has caught up (see `Op::Sync`).
    Sync,
    /// A request the leader refused; changes nothing, answers `error` (ZooKeeper's
    /// error transaction).
    Refused {
        error: ZkError,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    pub origin: Origin,
    pub op: TxnOp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub client: NodeId,
    pub timeout_ns: u64,
}

/// The replicated state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    pub tree: DataTree,
    pub sessions: BTreeMap<u64, SessionInfo>,
}

/// What applying a transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub result: Result<Reply, ZkError>,
    /// Ephemeral paths a session close removed (their watches fire).
    pub removed: Vec<String>,
}

/// The most sessions the ensemble holds; more `CreateSession`s fail.
pub const SESSIONS_MAX: usize = 10_000;

impl StateMachine for Registry {
    type Txn = Txn;
    type Output = Outcome;

    fn apply(&mut self, zxid: Zxid, txn: &Txn) -> Outcome {
        self.tree.set_zxid(zxid as i64);
        let session = txn.origin.session;
        let needs_session = !matches!(txn.op, TxnOp::CreateSession { .. } | TxnOp::Sync);
        if needs_session && session != 0 && !self.sessions.contains_key(&session) {
            return Outcome {
                result: Err(ZkError::SessionExpired),
                removed: Vec::new(),
            };
        }
        let mut removed = Vec::new();
        let result = match &txn.op {
            TxnOp::CreateSession { timeout_ns } => {
                if self.sessions.len() >= SESSIONS_MAX {
                    Err(ZkError::BadArguments)
                } else {
                    let info = SessionInfo {
                        client: txn.origin.client,
                        timeout_ns: *timeout_ns,
                    };
                    self.sessions.insert(zxid, info);
                    Ok(Reply::Done)
                }
            }
            TxnOp::CloseSession { session } => {
                removed = self.tree.ephemerals(*session);
                self.tree.close_session(*session);
                self.sessions.remove(session);
                Ok(Reply::Done)
            }
            TxnOp::Create { path, data, mode } => self
                .tree
                .create(path, data, *mode, session)
                .map(Reply::Created),
            TxnOp::Delete { path, version } => {
                self.tree.delete(path, *version).map(|()| Reply::Done)
            }
            TxnOp::SetData {
                path,
                data,
                version,
            } => self.tree.set_data(path, data, *version).map(Reply::Stat),
            TxnOp::Sync => Ok(Reply::Done),
            TxnOp::Refused { error } => Err(*error),
        };
        Outcome { result, removed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(session: u64, op: TxnOp) -> Txn {
        Txn {
            origin: Origin {
                server: 0,
                client: 9,
                session,
                xid: 1,
            },
            op,
        }
    }

    #[test]
    fn a_session_is_named_by_its_zxid_and_its_close_removes_its_ephemerals() {
        let mut registry = Registry::default();
        let open = registry.apply(
            0x1_0000_0001,
            &txn(0, TxnOp::CreateSession { timeout_ns: 5 }),
        );
        assert_eq!(open.result, Ok(Reply::Done));
        let session = 0x1_0000_0001;
        assert_eq!(registry.sessions[&session].client, 9);
        let create = TxnOp::Create {
            path: "/e".into(),
            data: vec![],
            mode: CreateMode::Ephemeral,
        };
        let created = registry.apply(0x1_0000_0002, &txn(session, create));
        assert_eq!(created.result, Ok(Reply::Created("/e".into())));
        let stat = registry.tree.exists("/e").unwrap().unwrap();
        assert_eq!(
            stat.czxid, 0x1_0000_0002,
            "creates are stamped with their zxid"
        );
        let closed = registry.apply(
            0x1_0000_0003,
            &txn(session, TxnOp::CloseSession { session }),
        );
        assert_eq!(closed.removed, vec!["/e".to_string()]);
        assert_eq!(registry.tree.exists("/e"), Ok(None));
        let late = registry.apply(0x1_0000_0004, &txn(session, TxnOp::Sync));
        assert_eq!(late.result, Ok(Reply::Done), "sync needs no session");
        let write = TxnOp::SetData {
            path: "/".into(),
            data: vec![],
            version: -1,
        };
        let refused = registry.apply(0x1_0000_0005, &txn(session, write));
        assert_eq!(refused.result, Err(ZkError::SessionExpired));
    }
}
