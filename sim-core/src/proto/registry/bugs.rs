//! The registry's planted bugs (ZAB's own are in `proto::zab::bugs`).

use crate::bugs::BugInfo;

pub const STALE_READ_AS_LINEARIZABLE: &str = "registry.stale-read-as-linearizable";
pub const NO_FENCING: &str = "lock.no-fencing";

pub const BUGS: &[BugInfo] = &[
    BugInfo {
        name: STALE_READ_AS_LINEARIZABLE,
        protocol: "registry",
        description: "a server answers sync at once instead of catching up with the leader, \
                      so sync-then-read can return stale data where linearizable reads were promised",
        scenario: "registry-partition-minority",
    },
    BugInfo {
        name: NO_FENCING,
        protocol: "registry",
        description: "the lock's resource accepts writes without checking the fencing token, \
                      so a paused holder whose session expired still writes",
        scenario: "registry-lock-pause",
    },
];
