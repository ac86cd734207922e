//! Ping-pong's planted bugs, one per invariant, so each checker is shown to fire, and
//! one that panics a node (the engine's `panic` finding).

use super::invariants::{ORDER, PROGRESS};
use crate::bugs::BugInfo;
use crate::engine::PANIC;

pub const ACCEPT_ANY_PONG: &str = "ping-pong.accept-any-pong";
pub const NO_RETRANSMIT: &str = "ping-pong.no-retransmit";
pub const ASSERT_CURRENT_ROUND: &str = "ping-pong.assert-current-round";

pub const BUGS: &[BugInfo] = &[
    BugInfo {
        name: ACCEPT_ANY_PONG,
        protocol: "ping-pong",
        description: "a client takes any pong for the current round's, so a duplicated or \
                      late pong moves it on out of order",
        scenario: "ping-pong-lossy",
        caught_by: ORDER,
    },
    BugInfo {
        name: NO_RETRANSMIT,
        protocol: "ping-pong",
        description: "a client never retransmits its ping, so one lost message stalls its \
                      pair for good",
        scenario: "ping-pong-lossy",
        caught_by: PROGRESS,
    },
    BugInfo {
        name: ASSERT_CURRENT_ROUND,
        protocol: "ping-pong",
        description: "a client asserts that every pong answers its current round, so a \
                      duplicated or late pong panics it (an assertion that holds only on a \
                      perfect network)",
        scenario: "ping-pong-lossy",
        caught_by: PANIC,
    },
];
