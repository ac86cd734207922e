//! The X/Open XA vocabulary the coordinator and the shards speak: transaction and branch
//! ids, the operations a branch runs, votes, return codes, and the frames that carry
//! them over connections (as JDBC's XA calls travel over a database connection).
//!
//! This module only names things; it never decides an outcome.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::node::NodeId;

/// An account's number: account `i` is `a{i}` in histories and lives on shard
/// `i % shards`.
pub type Account = u32;
/// A shard's index among the bank's shards (one resource manager each).
pub type ShardIndex = u32;
/// Money, in whole units. Signed: a branch's effect on its shard may be negative.
pub type Amount = i64;

/// A global transaction id: its coordinator, that coordinator's boot, and a counter, so
/// a restarted coordinator never reuses one (Narayana's `Uid` holds a host, a process and
/// a time for the same reason). The coordinator's node id plays XA's node name: a
/// coordinator recovers only its own branches (`xaRecoveryNodes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Gtrid {
    pub tm: NodeId,
    pub boot: u32,
    pub seq: u32,
}

impl fmt::Display for Gtrid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx{}.{}.{}", self.tm, self.boot, self.seq)
    }
}

/// One transaction branch: the global id and the shard it runs on (XA's `bqual`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Xid {
    pub gtrid: Gtrid,
    pub branch: ShardIndex,
}

impl fmt::Display for Xid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/b{}", self.gtrid, self.branch)
    }
}

/// What a branch does on its shard between `xa_start` and `xa_end`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Takes `amount` from `account`; refused (XA_RBINTEGRITY) if that would make it
    /// negative, as a `CHECK (balance >= 0)` constraint would.
    Debit {
        account: Account,
        amount: Amount,
    },
    Credit {
        account: Account,
        amount: Amount,
    },
    /// Reads every account of the shard under shared locks.
    ReadAll,
}

/// XA return codes, the subset this bank meets (`xa.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum XaCode {
    /// XA_RBROLLBACK: rolled back for an unspecified reason.
    RbRollback,
    /// XA_RBCOMMFAIL: rolled back because the connection to the coordinator failed.
    RbCommFail,
    /// XA_RBDEADLOCK: a lock was not available (locks are taken with NOWAIT).
    RbDeadlock,
    /// XA_RBINTEGRITY: a constraint would be violated (a balance would go negative).
    RbIntegrity,
    /// XA_RBTIMEOUT: the branch stayed active past its timeout.
    RbTimeout,
    /// XA_HEURCOM: the branch was committed heuristically.
    HeurCom,
    /// XA_HEURRB: the branch was rolled back heuristically.
    HeurRb,
    /// XA_HEURMIX: partly committed, partly rolled back, heuristically.
    HeurMix,
    /// XA_HEURHAZ: the branch may have been completed heuristically.
    HeurHaz,
    /// XAER_NOTA: the resource manager does not know the branch.
    NotA,
    /// XAER_DUPID: the branch already exists.
    DupId,
    /// XAER_RMFAIL: the resource manager is unreachable (the connection broke).
    RmFail,
    /// XAER_PROTO: a call out of order (commit of an active branch in two phases).
    Proto,
    /// The coordinator refused to begin: too many transactions in flight.
    Busy,
}

impl XaCode {
    /// The XA_RB* codes: the branch is rolled back and the resource manager forgot it.
    pub fn is_rollback(self) -> bool {
        matches!(
            self,
            XaCode::RbRollback
                | XaCode::RbCommFail
                | XaCode::RbDeadlock
                | XaCode::RbIntegrity
                | XaCode::RbTimeout
        )
    }
}

/// A branch's answer to `xa_prepare`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Vote {
    /// XA_OK: prepared; the branch and its locks survive anything until the outcome.
    Commit,
    /// XA_RDONLY: the branch wrote nothing; it is finished and needs no phase two.
    ReadOnly,
    Rollback(XaCode),
}

/// How a shard holds a branch it lists in `xa_recover`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InDoubt {
    Prepared,
    /// Completed heuristically (committed when true); remembered until `xa_forget`.
    Heuristic {
        committed: bool,
    },
}

/// What the coordinator tells its client, as JTA's `commit()` would: it returns, or
/// throws `RollbackException`, or `HeuristicMixedException` (mixed and hazard).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Answer {
    Committed,
    /// Every account's balance on every shard, for a read.
    Balances(Vec<(Account, Amount)>),
    RolledBack(XaCode),
    /// A heuristic outcome: some branches may differ from the decision.
    Heuristic(Heuristic),
    /// The outcome is unknown (a one-phase commit whose connection broke).
    Unknown,
}

/// Heuristic outcomes, as Narayana's `TwoPhaseOutcome` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Heuristic {
    Commit,
    Rollback,
    Mixed,
    Hazard,
}

/// One request of a recovery scan, so answers to an older scan are told apart.
pub type Scan = u64;

/// The bank's frames: client to coordinator and back, coordinator to shard and back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Frame {
    Transfer {
        req: u64,
        from: Account,
        to: Account,
        amount: Amount,
    },
    ReadAll {
        req: u64,
    },
    Answer {
        req: u64,
        answer: Answer,
    },
    /// `xa_start`, the branch's operations, `xa_end(TMSUCCESS)`; `timeout_ns` is the
    /// branch timeout (`XAResource.setTransactionTimeout`).
    Work {
        xid: Xid,
        ops: Vec<Op>,
        timeout_ns: u64,
    },
    /// The branch's result: the balances it read, or why it rolled back.
    Worked {
        xid: Xid,
        result: Result<Vec<(Account, Amount)>, XaCode>,
    },
    Prepare {
        xid: Xid,
    },
    Voted {
        xid: Xid,
        vote: Vote,
    },
    Commit {
        xid: Xid,
        one_phase: bool,
    },
    Rollback {
        xid: Xid,
    },
    Forget {
        xid: Xid,
    },
    /// The answer to `Commit`, `Rollback` or `Forget`.
    Completed {
        xid: Xid,
        call: Call,
        result: Result<(), XaCode>,
    },
    Recover {
        scan: Scan,
    },
    Recovered {
        scan: Scan,
        branches: Vec<(Xid, InDoubt)>,
    },
}

/// Which phase-two call a `Completed` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Call {
    Commit,
    OnePhase,
    Rollback,
    Forget,
}

/// `a{i}`: an account's name in histories.
pub fn account_name(account: Account) -> String {
    format!("a{account}")
}

/// The shard account `account` lives on.
pub fn shard_of(account: Account, shards: u32) -> ShardIndex {
    debug_assert!(shards > 0);
    account % shards
}
