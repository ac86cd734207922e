//! ZAB's planted bugs: each a plausible slip in a real implementation.

use crate::bugs::BugInfo;

pub const ACK_BEFORE_PERSIST: &str = "zab.ack-before-persist";
pub const VOTE_IGNORES_EPOCH: &str = "zab.vote-ignores-epoch";
pub const COMMIT_WITHOUT_QUORUM: &str = "zab.commit-without-quorum";

pub const BUGS: &[BugInfo] = &[
    BugInfo {
        name: ACK_BEFORE_PERSIST,
        protocol: "registry",
        description: "a follower acks proposals and NEWLEADER before syncing its log to disk",
        scenario: "registry-power-loss",
    },
    BugInfo {
        name: VOTE_IGNORES_EPOCH,
        protocol: "registry",
        description: "election (and the leader's check that no follower is ahead) compares \
                      zxid counters only, ignoring the epoch",
        scenario: "registry-crashes",
    },
    BugInfo {
        name: COMMIT_WITHOUT_QUORUM,
        protocol: "registry",
        description: "the leader commits a proposal as soon as it has logged it, without \
                      waiting for a quorum of acks",
        scenario: "registry-partition-minority",
    },
];
