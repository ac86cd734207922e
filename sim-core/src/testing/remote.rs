//! A remote end of the connections of a node under test, played segment by segment: it
//! builds the segments another node's endpoint would send, so a harness test can speak
//! frames to a node that runs on connections. It never runs an endpoint, keeps no
//! retransmission state and checks nothing the node sends: the test reads that in the
//! harness's text (`send 2 Ack { .. } [#1 seq 3 ack 1]`).

use std::collections::BTreeMap;

use crate::conn::{Boot, Route, Segment, Seq};
use crate::node::NodeId;

/// Node `id`'s side: its one connection to the node under test (which it opens) and
/// its answers to the connections the node under test opens to it.
#[derive(Clone, Debug)]
pub struct Remote {
    id: NodeId,
    /// This node's boot id, and the node under test's as this node knows it.
    boot: Boot,
    to_boot: Boot,
    /// The number of this node's connection to the node under test.
    number: u32,
    /// The next data sequence number on it.
    seq: Seq,
    /// The next data sequence number this node sends on each connection the node under
    /// test opened to it.
    answer_seq: BTreeMap<u32, Seq>,
}

impl Remote {
    /// Node `id` in its first life, talking to a node under test in its first life.
    pub fn new(id: NodeId) -> Self {
        Self {
            id,
            boot: 1,
            to_boot: 1,
            number: 1,
            seq: 1,
            answer_seq: BTreeMap::new(),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Opens this node's connection to the node under test.
    pub fn syn<F>(&self) -> Segment<F> {
        Segment::Syn {
            number: self.number,
            boot: self.boot,
        }
    }

    /// The next frame on this node's connection (after `syn`).
    pub fn frame<F>(&mut self, frame: F) -> Segment<F> {
        let seq = self.seq;
        self.seq += 1;
        Segment::Data {
            route: self.route(),
            seq,
            ack: 1,
            frame,
        }
    }

    /// Accepts the connection the node under test opened to this node: `number` is the
    /// one its `Syn` shows (`send 2 Syn [#2]`).
    pub fn accept<F>(&self, number: u32) -> Segment<F> {
        Segment::SynAck {
            number,
            boot: self.boot,
            to_boot: self.to_boot,
        }
    }

    /// The next frame this node sends back on connection `number` of the node under
    /// test (after `accept`): a server's answers to a client that connected to it.
    pub fn answer<F>(&mut self, number: u32, frame: F) -> Segment<F> {
        let seq = self.answer_seq.entry(number).or_insert(1);
        let segment = Segment::Data {
            route: Route {
                opener: false,
                number,
                from_boot: self.boot,
                to_boot: self.to_boot,
            },
            seq: *seq,
            ack: 1,
            frame,
        };
        *seq += 1;
        segment
    }

    /// Acknowledges every frame before `ack` on connection `number` of the node under
    /// test.
    pub fn ack<F>(&self, number: u32, ack: Seq) -> Segment<F> {
        let route = Route {
            opener: false,
            number,
            from_boot: self.boot,
            to_boot: self.to_boot,
        };
        Segment::Ack { route, ack }
    }

    fn route(&self) -> Route {
        Route {
            opener: true,
            number: self.number,
            from_boot: self.boot,
            to_boot: self.to_boot,
        }
    }
}
