//! A ZAB server's durable state on its simulated disk: the two epochs, the latest
//! snapshot and the transaction log, as ZooKeeper keeps `acceptedEpoch`,
//! `currentEpoch`, `snapshot.*` and `log.*` files.
//!
//! Nothing here syncs on its own: callers decide when a write must be durable (before an
//! ack, before answering a leader), which is exactly where the planted bug
//! `zab.ack-before-persist` cuts a corner.

use serde::{Deserialize, Serialize};

use super::{StateMachine, Zxid};
use crate::disk::{frame_record, Disk};
use crate::node::NodeId;

const EPOCHS: &str = "zab/epochs";
const SNAPSHOT: &str = "zab/snapshot";
const LOG: &str = "zab/log";

#[derive(Serialize, Deserialize)]
struct Epochs {
    accepted: u32,
    /// The leader `accepted` was promised to: a server acks one epoch to one leader.
    accepted_leader: NodeId,
    current: u32,
}

#[derive(Serialize, Deserialize)]
pub struct Snapshot<S> {
    pub zxid: Zxid,
    pub digest: u64,
    /// The zxid just before the log's first entry (the last one compaction dropped).
    pub log_base: Zxid,
    pub state: S,
}

/// Everything a restarted server recovers.
pub struct Recovered<S: StateMachine> {
    pub accepted_epoch: u32,
    pub accepted_leader: NodeId,
    pub current_epoch: u32,
    pub snapshot: Snapshot<S>,
    pub log: Vec<(Zxid, S::Txn)>,
}

pub fn write_epochs(disk: &mut Disk, accepted: u32, accepted_leader: NodeId, current: u32) {
    let epochs = Epochs {
        accepted,
        accepted_leader,
        current,
    };
    disk.write(EPOCHS, &frame_record(&epochs));
}

pub fn append_entry<T: Serialize>(disk: &mut Disk, zxid: Zxid, txn: &T) {
    disk.append_record(LOG, &(zxid, txn));
}

/// Replaces the log with `entries` (after a TRUNC, a SNAP or a snapshot's compaction).
pub fn rewrite_log<T: Serialize>(disk: &mut Disk, entries: &[(Zxid, T)]) {
    let mut bytes = Vec::new();
    for (zxid, txn) in entries {
        bytes.extend_from_slice(&frame_record(&(zxid, txn)));
    }
    disk.write(LOG, &bytes);
}

pub fn write_snapshot<S: Serialize>(disk: &mut Disk, snapshot: &Snapshot<&S>) {
    disk.write(SNAPSHOT, &frame_record(snapshot));
}

/// Reads everything back after a crash. A torn log tail (a crash mid-append) is cut off;
/// entries before it are intact by their checksums.
pub fn recover<S: StateMachine>(disk: &mut Disk) -> Recovered<S> {
    let (epochs, _) = disk.read_records::<Epochs>(EPOCHS);
    let (accepted_epoch, accepted_leader, current_epoch) = epochs
        .last()
        .map(|e| (e.accepted, e.accepted_leader, e.current))
        .unwrap_or((0, NodeId::MAX, 0));
    let (snapshots, _) = disk.read_records::<Snapshot<S>>(SNAPSHOT);
    let snapshot = snapshots.into_iter().last().unwrap_or(Snapshot {
        zxid: 0,
        digest: 0,
        log_base: 0,
        state: S::default(),
    });
    disk.truncate_torn_records(LOG);
    let (log, torn) = disk.read_records::<(Zxid, S::Txn)>(LOG);
    assert!(!torn, "the torn tail was just cut off");
    Recovered {
        accepted_epoch,
        accepted_leader,
        current_epoch,
        snapshot,
        log,
    }
}
