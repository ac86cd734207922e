//! The broker's planted bugs; each has a test that a swarm of its scenario catches it.

use super::invariants::{AT_LEAST_ONCE, CONFIRMED_DURABLE, NO_DUPLICATES, QUEUE_ORDER};
use crate::bugs::BugInfo;

pub const CONFIRM_BEFORE_SYNC: &str = "broker.confirm-before-sync";
pub const REQUEUE_DROPS_UNACKED: &str = "broker.requeue-drops-unacked";
pub const ROUTE_DUPLICATES: &str = "broker.route-duplicates";
pub const LIFO_DISPATCH: &str = "broker.lifo-dispatch";

pub const BUGS: &[BugInfo] = &[
    BugInfo {
        name: CONFIRM_BEFORE_SYNC,
        protocol: "broker",
        description: "the broker confirms a persistent message before syncing it to disk, so a \
                      crash loses messages the publisher was told are safe",
        scenario: "broker-crash-durable",
        caught_by: CONFIRMED_DURABLE,
    },
    BugInfo {
        name: REQUEUE_DROPS_UNACKED,
        protocol: "broker",
        description: "when a consumer's connection dies, its unacked messages are dropped \
                      instead of requeued, so work in progress vanishes",
        scenario: "broker-consumer-crash",
        caught_by: AT_LEAST_ONCE,
    },
    BugInfo {
        name: ROUTE_DUPLICATES,
        protocol: "broker",
        description: "a topic exchange delivers a message once per matching binding instead of \
                      once per queue",
        scenario: "broker-topics",
        caught_by: NO_DUPLICATES,
    },
    BugInfo {
        name: LIFO_DISPATCH,
        protocol: "broker",
        description: "a queue hands its newest ready message to a consumer first, so a backlog \
                      drains out of order although nothing was requeued",
        scenario: "broker-peak-shaving",
        caught_by: QUEUE_ORDER,
    },
];
