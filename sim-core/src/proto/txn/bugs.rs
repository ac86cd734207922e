//! The planted bugs of XA and of the shop. Each is switched on with `--bug NAME` or a
//! scenario's `bugs = [...]`, and the bug-zoo test proves its invariant catches it.

use super::invariants::{ATOMIC, CONSERVATION, RESOLVED};
use super::shop::invariants::{CONVERGED, NO_DUPLICATES, PUBLISHED};
use crate::bugs::BugInfo;

pub const NO_LOG_BEFORE_PHASE_TWO: &str = "xa.no-log-before-phase-two";
pub const VOTE_BEFORE_PERSIST: &str = "xa.vote-before-persist";
pub const PRESUME_COMMIT: &str = "xa.presume-commit";
pub const NO_PERIODIC_RECOVERY: &str = "xa.no-periodic-recovery";

pub const DELETE_BEFORE_PUBLISH: &str = "shop.delete-before-publish";
pub const NOT_IDEMPOTENT: &str = "shop.not-idempotent";
pub const ACK_BEFORE_APPLY: &str = "shop.ack-before-apply";

pub const XA_BUGS: &[BugInfo] = &[
    BugInfo {
        name: NO_LOG_BEFORE_PHASE_TWO,
        protocol: "xa",
        description: "the coordinator sends phase two without logging its commit decision, \
                      so a restart presumes abort and rolls back the branches that had not \
                      committed yet",
        scenario: "bank-coordinator-crash",
        caught_by: ATOMIC,
    },
    BugInfo {
        name: VOTE_BEFORE_PERSIST,
        protocol: "xa",
        description: "a shard votes yes without logging its prepared branch, so a crash \
                      forgets a branch the coordinator then commits: money appears or vanishes",
        scenario: "bank-shard-crash",
        caught_by: CONSERVATION,
    },
    BugInfo {
        name: PRESUME_COMMIT,
        protocol: "xa",
        description: "the coordinator logs its abort decisions but presumes commit, so a \
                      prepared branch left without a record after a coordinator crash is \
                      committed while its siblings were rolled back",
        scenario: "bank-coordinator-crash",
        caught_by: ATOMIC,
    },
    BugInfo {
        name: NO_PERIODIC_RECOVERY,
        protocol: "xa",
        description: "the coordinator re-drives its log only when it starts and never scans \
                      the shards, so a commit lost with its connection leaves a branch in \
                      doubt, its locks held, for good",
        scenario: "bank-partition",
        caught_by: RESOLVED,
    },
];

pub const SHOP_BUGS: &[BugInfo] = &[
    BugInfo {
        name: DELETE_BEFORE_PUBLISH,
        protocol: "shop",
        description: "the outbox relay deletes a row before the broker confirms its message, \
                      so a message lost with a broker crash or a broken connection is never \
                      published",
        scenario: "shop-broker-crash",
        caught_by: PUBLISHED,
    },
    BugInfo {
        name: NOT_IDEMPOTENT,
        protocol: "shop",
        description: "the warehouse applies every delivery without checking whether it \
                      applied that order before, so a redelivery reserves stock twice",
        scenario: "shop-broker-crash",
        caught_by: NO_DUPLICATES,
    },
    BugInfo {
        name: ACK_BEFORE_APPLY,
        protocol: "shop",
        description: "the warehouse acks a delivery before its effect is durable, so a crash \
                      in between loses an order the broker will never deliver again",
        scenario: "shop-warehouse-crash",
        caught_by: CONVERGED,
    },
];
