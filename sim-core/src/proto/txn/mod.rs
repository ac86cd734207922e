//! Distributed transactions, two ways, so a run can set them side by side under the same
//! faults:
//!
//! - **The bank (CP)**: XA two-phase commit. A coordinator (`coordinator`, the
//!   transaction manager) runs transfers between accounts spread over shards (`shard`,
//!   one resource manager each) for bank clients (`bank`). Presumed abort: the
//!   coordinator logs its commit decision after every vote is yes and before phase two,
//!   and never logs an abort. Prepared branches keep their locks until the outcome, even
//!   across crashes: that is the blocking window, and the shards report it. A periodic
//!   recovery pass re-drives logged decisions and rolls back orphans (Narayana's
//!   `XARecoveryModule`).
//! - **The shop (AP)**: an order service that commits locally and publishes through a
//!   transactional outbox to the broker, and a warehouse that consumes idempotently
//!   (`shop`). It keeps serving through a partition and converges after.
//!
//! Semantics follow Narayana (`BasicAction`, `XAResourceRecord`, `XARecoveryModule`);
//! deviations are listed in the README. Checkers in `invariants`, planted bugs in `bugs`,
//! the scenario side in `spec`. Nothing here reaches past `Ctx`.

pub mod bank;
pub mod bugs;
pub mod coordinator;
pub mod invariants;
pub mod pacer;
pub mod shard;
pub mod shop;
pub mod spec;
pub mod xa;

use serde::Serialize;

use crate::conn;
use crate::node::{Proto, Wraps};
use crate::proto::spec::{ComponentSpec, Mark};
use xa::{Amount, Gtrid, Heuristic, ShardIndex, Xid};

pub use xa::Frame;

/// The coordinator and the shards: XA itself.
pub const XA_COMPONENT: ComponentSpec = ComponentSpec {
    name: "xa",
    description: "XA two-phase commit: a transaction manager and resource managers with logs \
                  and recovery",
    invariants: &[invariants::ATOMIC, invariants::RESOLVED],
    gauges: &[invariants::BLOCKING],
    bugs: bugs::XA_BUGS,
    marks: &[
        Mark {
            name: "xa.decision-redriven",
            doc: "recovery sent phase two again for a logged commit decision",
            hint: "crash the coordinator between its decision and phase two (nemesis crash)",
        },
        Mark {
            name: "xa.orphan-rolled-back",
            doc: "recovery rolled back a prepared branch no log entry decided",
            hint: "crash the coordinator during prepare (nemesis crash)",
        },
        Mark {
            name: "xa.heuristic-decision",
            doc: "a shard decided a branch left in doubt on its own",
            hint: "heuristic_after above 0 and cut the coordinator off (params, nemesis partition)",
        },
        Mark {
            name: "xa.heuristic-found-by-recovery",
            doc: "recovery found a shard's heuristic outcome and reported it",
            hint: "heuristic_after above 0 and coordinator outages (params, nemesis crash)",
        },
        Mark {
            name: "xa.one-phase-outcome-unknown",
            doc: "a one-phase commit's shard became unreachable: a heuristic hazard",
            hint: "single-shard transfers and shard crashes (nemesis crash)",
        },
        Mark {
            name: "xa.reaper-rolled-back",
            doc: "the transaction reaper rolled back a transaction still active at its timeout",
            hint: "pause shards during the work phase (nemesis pause)",
        },
    ],
};

/// The bank on top of XA: its money must add up.
pub const BANK_COMPONENT: ComponentSpec = ComponentSpec {
    name: "bank",
    description: "transfers between accounts on several shards, read in Jepsen's bank format",
    invariants: &[invariants::CONSERVATION],
    gauges: &[],
    bugs: &[],
    marks: &[],
};

/// What a node of the bank needs of its host's types.
pub trait Host: conn::Host<Frame> + Proto<Obs: Wraps<Obs>, Timer: Wraps<Timer>> {}
impl<P: conn::Host<Frame> + Proto<Obs: Wraps<Obs>, Timer: Wraps<Timer>>> Host for P {}

/// The bank's timers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Timer {
    /// The coordinator's transaction timeout (the reaper): rolls back a transaction
    /// still active.
    TxTimeout(Gtrid),
    /// The coordinator's recovery pass: the first scan, or the second after the backoff.
    Recovery { second: bool },
    /// A shard's branch timeout: an active branch is rolled back.
    BranchTimeout(Xid),
    /// A shard gives up waiting for the outcome of a prepared branch and decides alone.
    Heuristic(Xid),
    /// A shard samples how long its oldest prepared branch has been in doubt (the
    /// `in_doubt_ms` metric), while it has one.
    InDoubtSample,
    /// A bank client's next operation.
    Next,
    /// A bank client stops waiting for request `req`.
    Deadline(u64),
}

/// What the bank's nodes report to the checkers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Obs {
    /// The coordinator decided: commit (logged; `participants` are the branches that
    /// voted to commit) or abort (never logged).
    Decided {
        gtrid: Gtrid,
        commit: bool,
        participants: Vec<ShardIndex>,
    },
    /// The coordinator reported a heuristic outcome (to its client, or from recovery).
    Reported { gtrid: Gtrid, heuristic: Heuristic },
    /// A shard locked accounts for a branch.
    Locked { xid: Xid },
    /// A shard prepared a branch (durably).
    Prepared { xid: Xid },
    /// A shard completed a branch: committed (its writes applied, `delta` the change
    /// in the shard's total) or rolled back; `heuristic` when it decided alone.
    Applied {
        xid: Xid,
        commit: bool,
        heuristic: bool,
        delta: Amount,
    },
    /// A shard released a branch's locks: held that long, in doubt (prepared) that long.
    Released {
        xid: Xid,
        held_ns: u64,
        in_doubt_ns: u64,
    },
    /// A shard's locked accounts and prepared branches, when they change.
    Holding { locks: u32, prepared: u32 },
}
