//! The shop as scenarios run it: its broker, order services, warehouse and clients,
//! their parameters, and the invariants.

use super::client::{ShopClient, ShopClientConfig};
use super::orders::{Orders, OrdersConfig};
use super::warehouse::{Warehouse, WarehouseConfig};
use super::{invariants, Host};
use crate::node::Node;
use crate::params::{count, duration, ParamSpec, MS};
use crate::proto::broker::server::BrokerParams;
use crate::proto::broker::Broker;
use crate::proto::spec::{KindSpec, Layout, Part, ProtocolSpec};

pub const KINDS: &[KindSpec] = &[
    KindSpec {
        name: "broker",
        doc: "the message broker the outbox relay publishes to",
        components: &["broker"],
    },
    KindSpec {
        name: "orders",
        doc: "the order service: local commits with a transactional outbox and its relay",
        components: &["shop", "broker"],
    },
    KindSpec {
        name: "warehouse",
        doc: "consumes orders idempotently and reserves stock",
        components: &["shop", "broker"],
    },
    KindSpec {
        name: "client",
        doc: "places orders with an order service",
        components: &["shop"],
    },
];

pub const PARAMS: &[ParamSpec] = &[
    count("items", "items the shop sells", 1, 10_000, 4),
    count(
        "stock",
        "the warehouse's opening stock of each item",
        0,
        1_000_000_000,
        1_000,
    ),
    count(
        "qty_max",
        "the largest quantity one order asks for",
        1,
        1_000,
        3,
    ),
    count("ops", "orders each client places", 0, 100_000, 200),
    duration("think", "a client's pause between orders", 5 * MS),
    duration(
        "deadline",
        "how long a client waits for an answer before counting it refused",
        1_000 * MS,
    ),
    duration(
        "relay_interval",
        "time between the outbox relay's turns",
        10 * MS,
    ),
    duration(
        "heartbeat",
        "broker connection heartbeat interval; two silent ones close it",
        100 * MS,
    ),
    duration(
        "sync_interval",
        "the broker's group commit interval",
        2 * MS,
    ),
    count(
        "prefetch",
        "unacked deliveries the warehouse takes at once",
        1,
        10_000,
        20,
    ),
];

pub const fn spec<H: Host>() -> ProtocolSpec<H> {
    ProtocolSpec {
        name: "shop",
        description: "an order service with a transactional outbox to the broker (AP)",
        kinds: KINDS,
        params: PARAMS,
        check,
        build: build::<H>,
    }
}

fn check(layout: &Layout) -> Result<(), (&'static str, String)> {
    let (brokers, warehouses) = (layout.count("broker"), layout.count("warehouse"));
    if brokers != 1 || warehouses != 1 || layout.count("orders") == 0 {
        return Err((
            "nodes",
            format!(
                "a shop needs one `shop.broker`, one `shop.warehouse` and at least one \
                 `shop.orders` node; found {brokers} brokers and {warehouses} warehouses"
            ),
        ));
    }
    Ok(())
}

fn build<H: Host>(layout: &Layout) -> Part<H> {
    let p = layout.params;
    let broker = layout.ids_of("broker")[0];
    let warehouse = layout.ids_of("warehouse")[0];
    let orders = layout.ids_of("orders");
    let heartbeat_ns = p.number("heartbeat");
    let items = p.number("items") as u32;
    let stock = p.number("stock") as i64;
    let broker_params = BrokerParams {
        heartbeat_ns,
        sync_interval_ns: p.number("sync_interval"),
        conn: layout.conn,
    };
    let orders_cfg = OrdersConfig {
        broker,
        heartbeat_ns,
        relay_interval_ns: p.number("relay_interval"),
        conn: layout.conn,
    };
    let warehouse_cfg = WarehouseConfig {
        broker,
        heartbeat_ns,
        items,
        stock,
        prefetch: p.number("prefetch") as u32,
        conn: layout.conn,
    };
    let client_cfg = ShopClientConfig {
        orders: orders[0],
        items,
        qty_max: p.number("qty_max") as u32,
        ops: p.number("ops") as u32,
        think_ns: p.number("think"),
        deadline_ns: p.number("deadline"),
        conn: layout.conn,
    };
    let mut part = Part::default();
    part.node("broker", move |_| -> Box<dyn Node<H>> {
        Box::new(Broker::new(broker_params))
    });
    part.node("orders", move |_| -> Box<dyn Node<H>> {
        Box::new(Orders::new(orders_cfg.clone()))
    });
    part.node("warehouse", move |_| -> Box<dyn Node<H>> {
        Box::new(Warehouse::new(warehouse_cfg.clone()))
    });
    let clients = layout.ids_of("client");
    part.node("client", move |id| -> Box<dyn Node<H>> {
        let at = clients.iter().position(|c| *c == id).expect("a client");
        Box::new(ShopClient::new(ShopClientConfig {
            orders: orders[at % orders.len()],
            ..client_cfg.clone()
        }))
    });
    // After the faults stop: a broken connection noticed (the connection timeout, or two
    // silent heartbeats), a reconnect and the relay's next turn; then the warehouse's.
    let bound_ns = layout.conn.timeout_ns + 4 * heartbeat_ns + 2 * p.number("relay_interval");
    part.check(layout, invariants::Published::new(bound_ns));
    part.check(layout, invariants::NoDuplicates::default());
    part.check(
        layout,
        invariants::Converged::new(warehouse, items, stock, bound_ns),
    );
    part
}
