//! The broker's planted bugs; each has a test that a swarm of its scenario catches it.

use super::invariants::{
    AT_LEAST_ONCE, CONFIRMED_DURABLE, CONFIRMS_AGREE, NO_DUPLICATES, PROGRESS, QUEUE_ORDER,
};
use crate::bugs::BugInfo;

pub const CONFIRM_BEFORE_SYNC: &str = "broker.confirm-before-sync";
pub const REQUEUE_DROPS_UNACKED: &str = "broker.requeue-drops-unacked";
pub const ROUTE_DUPLICATES: &str = "broker.route-duplicates";
pub const LIFO_DISPATCH: &str = "broker.lifo-dispatch";
pub const PUBLISH_BEFORE_SETUP: &str = "broker.publish-before-setup";
pub const SILENT_REFUSAL: &str = "broker.silent-refusal";

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
    BugInfo {
        name: PUBLISH_BEFORE_SETUP,
        protocol: "broker",
        description: "the client library publishes while its declares, binds and \
                      confirm.select are still unanswered, and numbers confirms from the \
                      call, so the broker's confirms and nacks land on the wrong messages",
        scenario: "broker-reject-publish",
        caught_by: CONFIRMS_AGREE,
    },
    BugInfo {
        name: SILENT_REFUSAL,
        protocol: "broker",
        description: "a full reject-publish queue drops a publish without nacking it, so \
                      its publisher waits for an answer that never comes",
        scenario: "broker-reject-publish",
        caught_by: PROGRESS,
    },
];
