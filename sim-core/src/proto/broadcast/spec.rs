//! Broadcast as scenarios run it: its one node kind, parameters and builder.

use super::{invariants, Host, Params, Peer, MESSAGES_MAX};
use crate::node::Node;
use crate::params::{count, ParamKind, ParamSpec, MS};
use crate::proto::spec::{KindSpec, Layout, Part, ProtocolSpec};

pub const KINDS: &[KindSpec] = &[KindSpec {
    name: "peer",
    doc: "broadcasts its own messages and relays everyone's",
    components: &["broadcast"],
}];

const fn short_duration(name: &'static str, doc: &'static str, default_ns: u64) -> ParamSpec {
    ParamSpec {
        name,
        doc,
        kind: ParamKind::Duration {
            min_ns: MS / 1_000,
            max_ns: 3_600_000 * MS,
            default_ns,
        },
    }
}

pub const PARAMS: &[ParamSpec] = &[
    count(
        "messages",
        "messages each peer broadcasts",
        0,
        MESSAGES_MAX as u64,
        10,
    ),
    short_duration("interval", "time between one peer's broadcasts", 100 * MS),
    short_duration(
        "retransmit",
        "time between retransmissions of unacked messages",
        50 * MS,
    ),
];

pub const fn spec<H: Host>() -> ProtocolSpec<H> {
    ProtocolSpec {
        name: "broadcast",
        description: "reliable broadcast with acks, retransmission and persistence",
        kinds: KINDS,
        params: PARAMS,
        check: |_| Ok(()),
        build: build::<H>,
    }
}

fn build<H: Host>(layout: &Layout) -> Part<H> {
    let params = Params {
        messages: layout.params.number("messages") as u32,
        interval_ns: layout.params.number("interval"),
        retransmit_ns: layout.params.number("retransmit"),
    };
    let peers = layout.ids_of("peer");
    let mut part = Part::default();
    part.node("peer", move |_| -> Box<dyn Node<H>> {
        Box::new(Peer::new(params, peers.clone()))
    });
    part.check(layout, invariants::Integrity::default());
    part.check(layout, invariants::Agreement::default());
    part
}
