//! The broker as scenarios run it: node kinds, parameters, the whole-scenario check and
//! the builder of the broker, its publishers and consumers, and the invariants.

use std::rc::Rc;

use super::apps::{Consumer, Publisher, QueueSpec, Workload};
use super::discovery::{Announced, Discovering, DiscoveryHost};
use super::server::BrokerParams;
use super::{invariants, Broker, ExchangeKind};
use crate::conn::ConnParams;
use crate::node::{Node, NodeId};
use crate::params::{count, duration, flag, list, text, ParamSpec, Params, MS};
use crate::proto::registry;
use crate::proto::spec::{KindSpec, Layout, Part, ProtocolSpec};

pub const KINDS: &[KindSpec] = &[
    KindSpec {
        name: "broker",
        doc: "the broker: exchanges, queues, bindings, persistence",
        components: &["broker"],
    },
    KindSpec {
        name: "publisher",
        doc: "publishes messages, with confirms when asked",
        components: &["broker"],
    },
    KindSpec {
        name: "consumer",
        doc: "consumes one queue, acking or rejecting",
        components: &["broker"],
    },
];

pub const PARAMS: &[ParamSpec] = &[
    duration(
        "heartbeat",
        "connection heartbeat interval; two silent ones close it",
        100 * MS,
    ),
    duration(
        "sync_interval",
        "the broker's group commit: how often it syncs its log",
        2 * MS,
    ),
    text(
        "exchange",
        "the exchange publishers use; \"\" is the default exchange",
        "work",
        &[],
    ),
    text(
        "exchange_type",
        "direct, topic or fanout",
        "direct",
        &["direct", "topic", "fanout"],
    ),
    flag(
        "durable",
        "exchanges and queues survive a broker restart",
        true,
    ),
    flag(
        "persistent",
        "messages are persistent (delivery mode 2)",
        true,
    ),
    flag(
        "mandatory",
        "unroutable messages come back to the publisher",
        false,
    ),
    flag("confirms", "publishers use publisher confirms", true),
    list("routing_keys", "routing keys publishers cycle through", &[]),
    count(
        "messages",
        "messages each publisher publishes",
        0,
        100_000,
        100,
    ),
    duration(
        "publish_interval",
        "time between a publisher's bursts",
        10 * MS,
    ),
    count("burst", "messages per burst", 0, 10_000, 1),
    list(
        "queues",
        "queue specs, consumer i uses queue i mod len: `name <- key, key ; options`",
        &["work"],
    ),
    count(
        "prefetch",
        "unacked deliveries per consumer (0: unlimited)",
        0,
        10_000,
        10,
    ),
    flag("auto_ack", "consumers use automatic acknowledgement", false),
    duration(
        "process_time",
        "how long a consumer works on one message",
        5 * MS,
    ),
    count(
        "reject_every",
        "consumers reject every n-th message without requeue (0: never)",
        0,
        1_000_000,
        0,
    ),
    flag(
        "discovery",
        "the broker registers in the registry and clients find it there (needs \
         `registry.server` nodes)",
        false,
    ),
];

pub const fn spec<H: DiscoveryHost>() -> ProtocolSpec<H> {
    ProtocolSpec {
        name: "broker",
        description: "a RabbitMQ-style broker with publishers and consumers",
        kinds: KINDS,
        params: PARAMS,
        check,
        build: build::<H>,
    }
}

fn check(layout: &Layout) -> Result<(), (&'static str, String)> {
    let brokers = layout.count("broker");
    if brokers != 1 {
        return Err((
            "nodes",
            format!("a broker scenario needs exactly one broker node, found {brokers}"),
        ));
    }
    let specs = layout.params.list("queues");
    for spec in specs {
        QueueSpec::parse(spec).map_err(|message| ("params", message))?;
    }
    if specs.is_empty() && layout.count("consumer") > 0 {
        return Err((
            "params",
            "consumers need at least one entry in `queues`".to_string(),
        ));
    }
    if layout.params.flag("discovery") && registry::spec::client_config(layout).is_none() {
        return Err((
            "params",
            "`discovery` finds the broker through the registry: add registry servers \
             ([[nodes]] kind = \"registry.server\")"
                .to_string(),
        ));
    }
    Ok(())
}

fn build<H: DiscoveryHost>(layout: &Layout) -> Part<H> {
    let broker_id = layout.ids_of("broker")[0];
    let queues: Vec<QueueSpec> = layout
        .params
        .list("queues")
        .iter()
        .map(|spec| QueueSpec::parse(spec).expect("checked"))
        .collect();
    let mut workload = workload(layout.params, broker_id, queues.clone());
    workload.conn = layout.conn;
    let params = BrokerParams {
        heartbeat_ns: workload.heartbeat_ns,
        sync_interval_ns: layout.params.number("sync_interval"),
        conn: layout.conn,
    };
    // consumer_index[id]: which queue spec consumer `id` uses (round robin over specs).
    let mut consumer_index = vec![0usize; layout.node_count() as usize];
    for (next, id) in layout.ids_of("consumer").into_iter().enumerate() {
        consumer_index[id as usize] = next % queues.len().max(1);
    }
    let publishing = workload.clone();
    let publisher: Rc<dyn Fn(NodeId, NodeId) -> Box<dyn Node<H>>> = Rc::new(move |_, broker| {
        let workload = Workload {
            broker,
            ..publishing.clone()
        };
        Box::new(Publisher::new(workload))
    });
    let consumer: Rc<dyn Fn(NodeId, NodeId) -> Box<dyn Node<H>>> = Rc::new(move |id, broker| {
        let queue = queues[consumer_index[id as usize]].clone();
        let workload = Workload {
            broker,
            ..workload.clone()
        };
        Box::new(Consumer::new(workload, queue))
    });
    let mut part = Part::default();
    let registry =
        registry::spec::client_config(layout).filter(|_| layout.params.flag("discovery"));
    match registry {
        None => {
            part.node("broker", move |_| -> Box<dyn Node<H>> {
                Box::new(Broker::new(params))
            });
            part.node("publisher", move |id| publisher(id, broker_id));
            part.node("consumer", move |id| consumer(id, broker_id));
        }
        Some(config) => {
            let announcing = config.clone();
            part.node("broker", move |id| -> Box<dyn Node<H>> {
                let broker = Box::new(Broker::new(params));
                Box::new(Announced::new(id, broker, announcing.clone()))
            });
            let discovering = config.clone();
            part.node("publisher", move |id| -> Box<dyn Node<H>> {
                let build = publisher.clone();
                let build = Rc::new(move |broker| build(id, broker));
                Box::new(Discovering::new(discovering.clone(), build))
            });
            part.node("consumer", move |id| -> Box<dyn Node<H>> {
                let build = consumer.clone();
                let build = Rc::new(move |broker| build(id, broker));
                Box::new(Discovering::new(config.clone(), build))
            });
        }
    }
    part.check(layout, invariants::ConfirmedDurable::new());
    // A queue idle this long at the end is not working off a backlog: a second covers
    // connection retransmission backoff under loss, ten copies' processing a slow consumer.
    let drain_window_ns = 1_000_000_000 + layout.params.number("process_time").saturating_mul(10);
    part.check(
        layout,
        invariants::AtLeastOnce::new(broker_id, drain_window_ns),
    );
    part.check(layout, invariants::QueueOrder::default());
    part.check(layout, invariants::NoDuplicates::default());
    part.check(layout, invariants::ConfirmsAgree::default());
    part.check(
        layout,
        invariants::Progress::new(layout.ids_of("publisher")),
    );
    part
}

/// The traffic every client of a broker scenario shares, from its parameters.
fn workload(params: &Params, broker: NodeId, queues: Vec<QueueSpec>) -> Workload {
    let exchange_kind = match params.text("exchange_type") {
        "topic" => ExchangeKind::Topic,
        "fanout" => ExchangeKind::Fanout,
        _ => ExchangeKind::Direct,
    };
    Workload {
        broker,
        heartbeat_ns: params.number("heartbeat"),
        exchange: params.text("exchange").to_string(),
        exchange_kind,
        durable: params.flag("durable"),
        persistent: params.flag("persistent"),
        mandatory: params.flag("mandatory"),
        confirms: params.flag("confirms"),
        routing_keys: params.list("routing_keys").to_vec(),
        messages: params.number("messages") as u32,
        publish_interval_ns: params.number("publish_interval"),
        burst: params.number("burst").max(1) as u32,
        queues,
        prefetch: params.number("prefetch") as u32,
        auto_ack: params.flag("auto_ack"),
        process_ns: params.number("process_time"),
        reject_every: params.number("reject_every") as u32,
        conn: ConnParams::default(),
    }
}
