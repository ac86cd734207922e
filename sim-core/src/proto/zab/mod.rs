//! ZAB, the ZooKeeper Atomic Broadcast: the registry's replication.
//!
//! A `Peer` is one server's replication core, generic over the `StateMachine` it
//! replicates. It follows ZooKeeper's implementation of ZAB 1.0 (`QuorumPeer`,
//! `FastLeaderElection`, `Leader`, `Follower`, `LearnerHandler`):
//! - fast leader election (`election.rs`): votes ordered by (epoch, last zxid, server
//!   id), rounds (logical clocks), notifications to every peer, a quorum of agreeing
//!   votes and a short finalize wait, and peers outside the election answering with the
//!   leader they follow;
//! - discovery: followers send FOLLOWERINFO with their accepted epoch, the leader picks
//!   an epoch above every one it heard from a quorum, followers persist it
//!   (`acceptedEpoch`) and answer ACKEPOCH with their history's end; a follower ahead of
//!   the leader makes it give up;
//! - synchronisation: DIFF, TRUNC or SNAP from the leader's log, then NEWLEADER; a
//!   follower persists what it received (and `currentEpoch`) before acknowledging it; a
//!   quorum of those acks establishes the leader, which commits its whole history;
//! - broadcast: proposals with zxid = epoch << 32 | counter, acks from a quorum, commits
//!   in zxid order; followers forward writes to the leader;
//! - failure handling: a tick drives heartbeats; a leader that has not heard from a
//!   quorum within `sync_limit` ticks steps down, a follower that has not heard from its
//!   leader goes back to election, and a restart recovers from the snapshot and log.
//!
//! Deviations, documented: one message carries the sync and NEWLEADER; the commit of a
//! `sync` request goes through a quorum round (ZooKeeper's leader answers it at once),
//! which makes sync-then-read linearizable; a follower that sees a gap in the leader's
//! stream (a message lost to a partition) re-enters election and resynchronises, where
//! ZooKeeper's TCP connection would break; DIFF is only sent when the follower's last
//! zxid is in the leader's log, SNAP otherwise (ZooKeeper's TRUNC+DIFF for divergent
//! histories is replaced by SNAP).

pub mod bugs;
pub mod election;
pub mod invariants;
mod peer;
mod storage;

pub use peer::{Peer, PeerState, SERVERS_MAX};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

use crate::conn;
use crate::node::{NodeId, Proto, Wraps};
use crate::proto::spec::{ComponentSpec, Mark};

pub const COMPONENT: ComponentSpec = ComponentSpec {
    name: "zab",
    description: "ZooKeeper Atomic Broadcast: election, discovery, sync, broadcast",
    invariants: &[invariants::ONE_LEADER_PER_EPOCH, invariants::AGREEMENT],
    gauges: &[],
    bugs: bugs::BUGS,
    marks: MARKS,
};

const MARKS: &[Mark] = &[
    Mark {
        name: "zab.sync-diff",
        doc: "a follower caught up from the leader's log (a non-empty DIFF)",
        hint: "crash or partition a follower while clients write (nemesis crash, partition)",
    },
    Mark {
        name: "zab.sync-trunc",
        doc: "a follower truncated proposals the new leader never committed (TRUNC)",
        hint: "crash or cut off a leader mid-write (registry-power-loss, nemesis crash)",
    },
    Mark {
        name: "zab.sync-snap",
        doc: "a follower too far behind got a snapshot (SNAP)",
        hint: "a long outage of one server with a small log_retain (params)",
    },
    Mark {
        name: "zab.second-newleader",
        doc: "a follower got a NEWLEADER while already synchronising, and elected again",
        hint: "duplication and reordering with leader crashes (network duplicate, nemesis crash)",
    },
    Mark {
        name: "zab.follower-gives-up",
        doc: "a serving follower heard nothing for sync_limit ticks and elected again",
        hint: "pause or cut off the leader (nemesis pause, partition-one-way)",
    },
    Mark {
        name: "zab.leader-drops-follower",
        doc: "a leader dropped a follower slow to sync or to acknowledge",
        hint: "pause a follower longer than sync_limit (nemesis pause, fault_max)",
    },
    Mark {
        name: "zab.leader-steps-down",
        doc: "a leader lost its quorum and stepped down",
        hint: "cut the leader off with a minority (nemesis partition)",
    },
    Mark {
        name: "zab.recovered-from-disk",
        doc: "a server restarted with an epoch on disk and recovered from it",
        hint: "crash servers (nemesis crash)",
    },
];

/// What a node hosting a ZAB peer replicating `S` needs of its host's types: ZAB's
/// messages travel over connections (`conn`), as ZooKeeper's quorum traffic runs over TCP.
pub trait Host<S: StateMachine>:
    conn::Host<Msg<S::Txn, S>> + Proto<Obs: Wraps<Obs>, Timer: Wraps<Timer>>
{
}
impl<
        S: StateMachine,
        P: conn::Host<Msg<S::Txn, S>> + Proto<Obs: Wraps<Obs>, Timer: Wraps<Timer>>,
    > Host<S> for P
{
}

/// ZAB's timers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Timer {
    /// Heartbeats, election resends and failure detection.
    Tick,
    /// An election's quorum agrees: decide unless a better vote comes first.
    Finalize,
}

/// A transaction id: `epoch << 32 | counter`. Zero is the empty history.
pub type Zxid = u64;

pub fn zxid(epoch: u32, counter: u32) -> Zxid {
    (epoch as u64) << 32 | counter as u64
}

pub fn epoch_of(zxid: Zxid) -> u32 {
    (zxid >> 32) as u32
}

pub fn counter_of(zxid: Zxid) -> u32 {
    zxid as u32
}

/// "0x100000002" style, as ZooKeeper logs zxids.
pub fn show_zxid(zxid: Zxid) -> String {
    format!("{:#x}", zxid)
}

/// What ZAB replicates. `apply` must be a deterministic function of the state and the
/// transaction: every server applies the same committed sequence and must reach the
/// same state and outputs.
pub trait StateMachine:
    Clone + Debug + Default + Serialize + DeserializeOwned + PartialEq + 'static
{
    type Txn: Clone + Debug + Serialize + DeserializeOwned + PartialEq + 'static;
    type Output: Clone + Debug;
    fn apply(&mut self, zxid: Zxid, txn: &Self::Txn) -> Self::Output;
}

/// Timing and sizing of one ensemble, shared by its servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The servers' node ids; a quorum is a strict majority of them.
    pub servers: Vec<NodeId>,
    /// One tick: heartbeats, election resends and failure detection run on it.
    pub tick_ns: u64,
    /// Ticks a leader waits for a quorum during discovery and sync.
    pub init_limit_ticks: u32,
    /// Ticks of silence after which a follower leaves its leader, and a leader that has
    /// not heard from a quorum steps down.
    pub sync_limit_ticks: u32,
    /// How long an election waits for a better vote once a quorum agrees.
    pub finalize_ns: u64,
    /// Take a snapshot after this many applied transactions.
    pub snapshot_every: u32,
    /// Committed entries kept in the log behind a snapshot, so lagging followers get a
    /// DIFF rather than a SNAP.
    pub log_retain: u32,
}

impl Config {
    pub fn quorum(&self) -> usize {
        self.servers.len() / 2 + 1
    }
}

/// A server's vote in leader election.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub leader: NodeId,
    /// The proposed leader's last logged zxid.
    pub zxid: Zxid,
    /// The proposed leader's current epoch.
    pub epoch: u32,
}

/// How a follower catches up with its new leader.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Sync<T, S> {
    /// Append these entries after the follower's last zxid.
    Diff(Vec<(Zxid, T)>),
    /// Drop every entry after this zxid.
    Trunc(Zxid),
    /// Replace everything: the leader's applied state at `zxid` (with the running digest
    /// there) and its log after it.
    Snap {
        zxid: Zxid,
        digest: u64,
        state: Box<S>,
        entries: Vec<(Zxid, T)>,
    },
}

/// Messages between servers. Leader-to-follower messages carry the leader's epoch, so a
/// follower ignores a deposed leader.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Msg<T, S> {
    Notification {
        vote: Vote,
        round: u64,
        state: PeerState,
    },
    FollowerInfo {
        accepted_epoch: u32,
    },
    LeaderInfo {
        epoch: u32,
    },
    AckEpoch {
        current_epoch: u32,
        last_zxid: Zxid,
    },
    NewLeader {
        epoch: u32,
        sync: Sync<T, S>,
    },
    AckNewLeader {
        epoch: u32,
        last_zxid: Zxid,
    },
    UpToDate {
        epoch: u32,
        committed: Zxid,
    },
    Proposal {
        epoch: u32,
        zxid: Zxid,
        txn: T,
    },
    Ack {
        zxid: Zxid,
    },
    Commit {
        epoch: u32,
        zxid: Zxid,
    },
    Ping {
        epoch: u32,
        committed: Zxid,
    },
    Pong,
    /// A follower hands a client's write to its leader.
    Forward {
        txn: T,
    },
}

impl<T, S> Msg<T, S> {
    /// ZooKeeper's name for the packet, for notes.
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Notification { .. } => "NOTIFICATION",
            Msg::FollowerInfo { .. } => "FOLLOWERINFO",
            Msg::LeaderInfo { .. } => "LEADERINFO",
            Msg::AckEpoch { .. } => "ACKEPOCH",
            Msg::NewLeader { .. } => "NEWLEADER",
            Msg::AckNewLeader { .. } => "ACK of NEWLEADER",
            Msg::UpToDate { .. } => "UPTODATE",
            Msg::Proposal { .. } => "PROPOSAL",
            Msg::Ack { .. } => "ACK",
            Msg::Commit { .. } => "COMMIT",
            Msg::Ping { .. } => "PING",
            Msg::Pong => "PONG",
            Msg::Forward { .. } => "REQUEST",
        }
    }
}

/// What a server reports to the invariant checkers and displays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Obs {
    /// The server's role changed.
    Role { state: PeerState, epoch: u32 },
    /// The server entered broadcast under `leader` in `epoch` and may serve clients.
    Serving { leader: NodeId, epoch: u32 },
    /// A leader heard a quorum acknowledge `epoch` in discovery: at most one server may,
    /// per epoch. (Two may choose the same epoch; a follower acks it to one of them.)
    EpochEstablished { epoch: u32 },
    /// A committed transaction was applied; `digest` covers the whole sequence so far.
    Applied { zxid: Zxid, digest: u64 },
    /// The applied state was replaced (restart from disk, or a SNAP from the leader).
    Loaded { zxid: Zxid, digest: u64 },
    /// A TRUNC cut the log back to `to` while `applied` had already been committed here.
    Truncated { to: Zxid, applied: Zxid },
}

/// The running digest of a committed sequence, one step further.
pub fn chain_digest<T: Serialize>(digest: u64, zxid: Zxid, txn: &T) -> u64 {
    let mut hasher = crate::hash::Hash64::new();
    hasher.word(digest);
    hasher.word(zxid);
    hasher.bytes(&postcard::to_allocvec(txn).expect("transactions serialise"));
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxids_put_the_epoch_in_the_high_bits() {
        let z = zxid(3, 7);
        assert_eq!(z, 0x3_0000_0007);
        assert_eq!(epoch_of(z), 3);
        assert_eq!(counter_of(z), 7);
        assert!(zxid(2, u32::MAX) < zxid(3, 0));
        assert_eq!(show_zxid(z), "0x300000007");
    }

    #[test]
    fn a_quorum_is_a_strict_majority() {
        let config = |n: u32| Config {
            servers: (0..n).collect(),
            tick_ns: 1,
            init_limit_ticks: 1,
            sync_limit_ticks: 1,
            finalize_ns: 1,
            snapshot_every: 1,
            log_retain: 1,
        };
        assert_eq!(config(3).quorum(), 2);
        assert_eq!(config(4).quorum(), 3);
        assert_eq!(config(5).quorum(), 3);
    }
}
