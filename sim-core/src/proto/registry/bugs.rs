//! The registry's planted bugs (ZAB's own are in `proto::zab::bugs`).

use super::invariants::{EPHEMERALS, FENCED, LINEARIZABLE, PROGRESS, SINGLE_SYSTEM_IMAGE};
use crate::bugs::BugInfo;

pub const STALE_READ_AS_LINEARIZABLE: &str = "registry.stale-read-as-linearizable";
pub const NO_FENCING: &str = "lock.no-fencing";
pub const SESSIONS_NEVER_EXPIRE: &str = "registry.sessions-never-expire";
pub const WATCHES_LOST_ON_RECONNECT: &str = "registry.watches-lost-on-reconnect";
pub const CONNECT_TO_THE_PAST: &str = "registry.connect-to-the-past";

pub const BUGS: &[BugInfo] = &[
    BugInfo {
        name: STALE_READ_AS_LINEARIZABLE,
        protocol: "registry",
        description: "a server answers sync at once instead of catching up with the leader, \
                      so sync-then-read can return stale data where linearizable reads were promised",
        scenario: "registry-partition-minority",
        caught_by: LINEARIZABLE,
    },
    BugInfo {
        name: SESSIONS_NEVER_EXPIRE,
        protocol: "registry",
        description: "the leader never expires a silent session, so a crashed client's \
                      ephemeral nodes (its service registration, its lock) linger for good",
        scenario: "registry-session-expiry",
        caught_by: EPHEMERALS,
    },
    BugInfo {
        name: WATCHES_LOST_ON_RECONNECT,
        protocol: "registry",
        description: "a client that reconnects with its session does not set its watches \
                      again, so a lock waiter never hears its predecessor go and waits forever",
        scenario: "registry-lock",
        caught_by: PROGRESS,
    },
    BugInfo {
        name: CONNECT_TO_THE_PAST,
        protocol: "registry",
        description: "a server accepts a client that has seen a later state than its own \
                      (ZooKeeper refuses it), so a client that moves to a lagging or \
                      read-only server reads the past",
        scenario: "registry-read-only-churn",
        caught_by: SINGLE_SYSTEM_IMAGE,
    },
];

pub const LOCK_BUGS: &[BugInfo] = &[BugInfo {
    name: NO_FENCING,
    protocol: "lock",
    description: "the lock's resource accepts writes without checking the fencing token, \
                      so a paused holder whose session expired still writes",
    scenario: "registry-lock-pause",
    caught_by: FENCED,
}];
