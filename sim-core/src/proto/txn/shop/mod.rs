//! The shop: the eventually consistent alternative to the bank (AP).
//!
//! An order service (`orders`) commits each order locally, in one synced record that is
//! both the order row and its outbox row (a transactional outbox), and answers its
//! client at once; a relay in the same node publishes outbox rows to the broker with
//! publisher confirms and deletes a row only once its message is confirmed, so a
//! message is published at least once. The warehouse (`warehouse`) consumes them with
//! manual acks and applies each order once: it remembers the orders it applied, in the
//! same synced record as the effect, before it acks (an idempotent consumer). During a
//! partition the order service keeps serving and the warehouse falls behind; after it
//! heals, the warehouse catches up: the state converges.
//!
//! This module never blocks an order on anything remote: that is the point.

pub mod client;
pub mod invariants;
pub mod orders;
pub mod spec;
pub mod warehouse;

use serde::Serialize;

use crate::conn;
use crate::node::{Proto, Wraps};
use crate::proto::broker;
use crate::proto::spec::{ComponentSpec, Mark};

pub const COMPONENT: ComponentSpec = ComponentSpec {
    name: "shop",
    description: "an order service with a transactional outbox and an idempotent warehouse",
    invariants: &[
        invariants::PUBLISHED,
        invariants::NO_DUPLICATES,
        invariants::CONVERGED,
    ],
    gauges: &[],
    bugs: super::bugs::SHOP_BUGS,
    marks: &[
        Mark {
            name: "shop.publish-unconfirmed-goes-again",
            doc: "the relay's unconfirmed publishes were lost with its connection; the rows stay",
            hint: "crash the broker while the relay publishes (nemesis crash)",
        },
        Mark {
            name: "shop.redelivery-ignored",
            doc: "the warehouse acked an order it had applied before and did nothing else",
            hint: "crash the warehouse before its acks reach the broker (nemesis crash)",
        },
    ],
};

/// An order's id: the order service's node and its count of orders, so ids never repeat.
pub type OrderId = u64;

/// What a node of the shop needs of its host: shop frames and a broker client, both over
/// connections.
pub trait Host:
    conn::Host<Frame> + broker::Host + Proto<Obs: Wraps<Obs>, Timer: Wraps<Timer>>
{
}
impl<P: conn::Host<Frame> + broker::Host + Proto<Obs: Wraps<Obs>, Timer: Wraps<Timer>>> Host for P {}

/// Client to order service and back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Frame {
    Place { req: u64, item: u32, qty: u32 },
    Placed { req: u64, order: OrderId },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Timer {
    /// The outbox relay's turn.
    Relay,
    /// A shop client's next order.
    Next,
    /// A shop client stops waiting for request `req`.
    Deadline(u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Obs {
    /// The order service committed an order (durably) and answered its client.
    Committed { order: OrderId, item: u32, qty: u32 },
    /// The broker confirmed an order's message: it is published.
    Published { order: OrderId },
    /// The warehouse applied an order (durably, unless a bug says otherwise).
    Applied { order: OrderId, item: u32, qty: u32 },
    /// The warehouse recognised a redelivery of an order it applied and only acked it.
    Redelivered { order: OrderId },
    /// The warehouse's stock of every item, after a change or a restart.
    Stock { levels: Vec<i64> },
}

/// The broker message of an order: the item and the quantity in one `u64` body.
pub fn body(item: u32, qty: u32) -> u64 {
    (item as u64) << 32 | qty as u64
}

pub fn unbody(body: u64) -> (u32, u32) {
    ((body >> 32) as u32, body as u32)
}

/// Where orders travel: one durable direct exchange and one durable queue.
pub const EXCHANGE: &str = "shop";
pub const QUEUE: &str = "orders";
