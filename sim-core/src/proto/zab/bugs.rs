//! ZAB's planted bugs: each a plausible slip in a real implementation.

use super::invariants::{AGREEMENT, ONE_LEADER_PER_EPOCH};
use crate::bugs::BugInfo;

pub const ACK_BEFORE_PERSIST: &str = "zab.ack-before-persist";
pub const VOTE_IGNORES_EPOCH: &str = "zab.vote-ignores-epoch";
pub const COMMIT_WITHOUT_QUORUM: &str = "zab.commit-without-quorum";
pub const DISCOVERY_WITHOUT_QUORUM: &str = "zab.discovery-without-quorum";

pub const BUGS: &[BugInfo] = &[
    BugInfo {
        name: ACK_BEFORE_PERSIST,
        protocol: "zab",
        description: "a follower acks proposals and NEWLEADER before syncing its log to disk",
        scenario: "registry-power-loss",
        // What its user sees: the registry loses writes it acknowledged (named, not
        // imported: ZAB sits below the registry that hosts it).
        caught_by: "registry.acked-durable",
    },
    BugInfo {
        name: VOTE_IGNORES_EPOCH,
        protocol: "zab",
        description: "election (and the leader's check that no follower is ahead) compares \
                      zxid counters only, ignoring the epoch",
        scenario: "registry-crashes",
        caught_by: AGREEMENT,
    },
    BugInfo {
        name: COMMIT_WITHOUT_QUORUM,
        protocol: "zab",
        description: "the leader commits a proposal as soon as it has logged it, without \
                      waiting for a quorum of acks",
        scenario: "registry-partition-minority",
        caught_by: AGREEMENT,
    },
    BugInfo {
        name: DISCOVERY_WITHOUT_QUORUM,
        protocol: "zab",
        description: "a new leader chooses and establishes its epoch without waiting for a \
                      quorum of followers, so two servers that both won a racing election \
                      lead the same epoch",
        scenario: "registry-election-race",
        caught_by: ONE_LEADER_PER_EPOCH,
    },
];
