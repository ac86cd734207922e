//! Broadcast's planted bugs. Each one is switched on with `--bug NAME` or a scenario's
//! `bugs = [...]`, and a test proves a swarm of the `broadcast` scenario catches it.

use super::invariants::{AGREEMENT, INTEGRITY};
use crate::bugs::BugInfo;

pub const ACK_BEFORE_PERSIST: &str = "broadcast.ack-before-persist";
pub const NO_RETRANSMIT: &str = "broadcast.no-retransmit";
pub const DELIVER_BEFORE_SYNC: &str = "broadcast.deliver-before-sync";

pub const BUGS: &[BugInfo] = &[
    BugInfo {
        name: ACK_BEFORE_PERSIST,
        protocol: "broadcast",
        description: "a peer acks a message on receipt and persists it later, so a crash in \
                      between loses a message every sender believes delivered",
        scenario: "broadcast",
        caught_by: AGREEMENT,
    },
    BugInfo {
        name: NO_RETRANSMIT,
        protocol: "broadcast",
        description: "peers send each message once and never retransmit, so a message lost \
                      to a partition or a crash never reaches some peers",
        scenario: "broadcast",
        caught_by: AGREEMENT,
    },
    BugInfo {
        name: DELIVER_BEFORE_SYNC,
        protocol: "broadcast",
        description: "a peer delivers a message once it is appended to its log but before the \
                      log is synced, so a crash makes it forget a delivered message",
        scenario: "broadcast",
        caught_by: INTEGRITY,
    },
];
