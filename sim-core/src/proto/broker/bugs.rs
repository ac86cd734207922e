//! The broker's planted bugs; each has a test that a swarm of its scenario catches it.

use crate::bugs::BugInfo;

pub const CONFIRM_BEFORE_SYNC: &str = "broker.confirm-before-sync";
pub const REQUEUE_DROPS_UNACKED: &str = "broker.requeue-drops-unacked";
pub const ROUTE_DUPLICATES: &str = "broker.route-duplicates";

pub const BUGS: &[BugInfo] = &[
    BugInfo {
        name: CONFIRM_BEFORE_SYNC,
        protocol: "broker",
        description: "the broker confirms a persistent message before syncing it to disk, so a \
                      crash loses messages the publisher was told are safe",
        scenario: "broker-crash-durable",
    },
    BugInfo {
        name: REQUEUE_DROPS_UNACKED,
        protocol: "broker",
        description: "when a consumer's connection dies, its unacked messages are dropped \
                      instead of requeued, so work in progress vanishes",
        scenario: "broker-consumer-crash",
    },
    BugInfo {
        name: ROUTE_DUPLICATES,
        protocol: "broker",
        description: "a topic exchange delivers a message once per matching binding instead of \
                      once per queue",
        scenario: "broker-topics",
    },
];
