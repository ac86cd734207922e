//! Ping-pong as scenarios run it: its node kinds, parameters and builder, and the
//! cluster the benchmarks time.

use super::over_conn::{ConnClient, ConnHost, ConnServer, PingPongOverConn};
use super::{invariants, Client, Host, Params, PingPong, Server};
use crate::conn::ConnParams;
use crate::engine::{Limits, Sim, SimConfig};
use crate::net::{Latency, LinkModel};
use crate::node::{Node, NodeId};
use crate::params::{count, flag, ParamKind, ParamSpec, MS};
use crate::proto::spec::{KindSpec, Layout, Part, ProtocolSpec};

pub const KINDS: &[KindSpec] = &[
    KindSpec {
        name: "client",
        doc: "pings its server (client i pairs with server i)",
        components: &["ping-pong"],
    },
    KindSpec {
        name: "server",
        doc: "answers every ping with a pong",
        components: &["ping-pong"],
    },
];

pub const PARAMS: &[ParamSpec] = &[
    count(
        "messages",
        "one-way messages per pair (a round is a ping and a pong)",
        2,
        1_000_000_000,
        1_000,
    ),
    ParamSpec {
        name: "timeout",
        doc: "a client re-sends its ping after this long without a pong; 0 never",
        kind: ParamKind::Duration {
            min_ns: 0,
            max_ns: 3_600_000 * MS,
            default_ns: 0,
        },
    },
    flag(
        "connections",
        "pings and pongs travel over connections, which retransmit instead of the client",
        false,
    ),
];

pub const fn spec<H: Host + ConnHost>() -> ProtocolSpec<H> {
    ProtocolSpec {
        name: "ping-pong",
        description: "clients ping their servers, one message in flight per pair",
        kinds: KINDS,
        params: PARAMS,
        check,
        build: build::<H>,
    }
}

fn check(layout: &Layout) -> Result<(), (&'static str, String)> {
    let clients = layout.count("client");
    let servers = layout.count("server");
    if clients != servers || clients == 0 {
        let message = format!(
            "ping-pong pairs client i with server i: it needs as many servers as clients \
             (found {clients} clients and {servers} servers)"
        );
        return Err(("nodes", message));
    }
    Ok(())
}

fn build<H: Host + ConnHost>(layout: &Layout) -> Part<H> {
    let params = Params {
        messages: layout.params.number("messages"),
        timeout_ns: layout.params.number("timeout"),
    };
    let clients = layout.ids_of("client");
    let servers = layout.ids_of("server");
    let mut part = Part::default();
    let server_of = pairs_table(layout.node_count(), &clients, &servers);
    if layout.params.flag("connections") {
        add_conn_nodes(&mut part, server_of, params, layout.conn);
    } else {
        add_nodes(&mut part, server_of, params);
    }
    part.check(layout, invariants::Order::default());
    part.check(layout, invariants::Progress::new(clients));
    part
}

/// `server_of[id]` is the server of client `id` (client `clients[i]` pings server
/// `servers[i]`): a table, so building 10,000 nodes stays linear.
fn pairs_table(node_count: u32, clients: &[NodeId], servers: &[NodeId]) -> Vec<NodeId> {
    assert_eq!(clients.len(), servers.len(), "validated by check");
    let mut server_of = vec![NodeId::MAX; node_count as usize];
    for (client, server) in clients.iter().zip(servers) {
        server_of[*client as usize] = *server;
    }
    server_of
}

fn add_nodes<H: Host>(part: &mut Part<H>, server_of: Vec<NodeId>, params: Params) {
    part.node("client", move |id| -> Box<dyn Node<H>> {
        Box::new(Client::new(server_of[id as usize], params))
    });
    part.node("server", |_| -> Box<dyn Node<H>> {
        Box::new(Server::new())
    });
}

fn add_conn_nodes<H: ConnHost>(
    part: &mut Part<H>,
    server_of: Vec<NodeId>,
    params: Params,
    conn: ConnParams,
) {
    part.node("client", move |id| -> Box<dyn Node<H>> {
        Box::new(ConnClient::new(server_of[id as usize], params, conn))
    });
    part.node("server", move |_| -> Box<dyn Node<H>> {
        Box::new(ConnServer::new(conn))
    });
}

/// The benchmark cluster's configuration: `pairs` clients, then `pairs` servers, on
/// links of `latency`; no faults and no deadline (the run ends when its queue drains),
/// limits sized for the messages it will exchange.
fn bench_config(pairs: u32, messages_per_pair: u64, latency: Latency) -> SimConfig {
    assert!(pairs > 0 && messages_per_pair >= 2);
    let mut kinds = vec!["client".to_string(); pairs as usize];
    kinds.extend(vec!["server".to_string(); pairs as usize]);
    let messages = messages_per_pair * pairs as u64;
    let mut config = SimConfig::new("bench-ping-pong", 1, kinds);
    config.link = LinkModel {
        latency,
        ..Default::default()
    };
    config.fault_phase_ns = 1 << 62;
    config.limits = Limits {
        events_max: messages * 4 + 10_000,
        ..Default::default()
    };
    config
}

/// Builds the benchmark's `Sim` from a part holding the client and server factories.
fn bench_sim<P: crate::node::Proto<Obs: crate::node::Wraps<super::Obs>>>(
    config: SimConfig,
    part: Part<P>,
    clients: Vec<NodeId>,
) -> Sim<P> {
    let (client, server) = (part.factories[0].1.clone(), part.factories[1].1.clone());
    let factory = std::rc::Rc::new(move |id: NodeId, kind: &str| match kind {
        "client" => client(id),
        _ => server(id),
    });
    let invariants: Vec<Box<dyn crate::invariant::Invariant<P>>> = vec![
        Box::new(invariants::Order::default()),
        Box::new(invariants::Progress::new(clients)),
    ];
    Sim::new(config, factory, invariants)
}

fn bench_params(messages_per_pair: u64) -> Params {
    Params {
        messages: messages_per_pair,
        timeout_ns: 0,
    }
}

/// A ping-pong cluster for benchmarks, run as its own protocol on raw datagrams.
/// `faultline bench` and the criterion benches share it.
pub fn bench(pairs: u32, messages_per_pair: u64, latency: Latency) -> Sim<PingPong> {
    let config = bench_config(pairs, messages_per_pair, latency);
    let clients: Vec<NodeId> = (0..pairs).collect();
    let servers: Vec<NodeId> = (pairs..2 * pairs).collect();
    let mut part: Part<PingPong> = Part::default();
    let server_of = pairs_table(2 * pairs, &clients, &servers);
    add_nodes(&mut part, server_of, bench_params(messages_per_pair));
    bench_sim(config, part, clients)
}

/// The same cluster with every ping and pong over a connection (`conn` with its default
/// parameters): what a connection costs per delivered message.
pub fn bench_over_conn(
    pairs: u32,
    messages_per_pair: u64,
    latency: Latency,
) -> Sim<PingPongOverConn> {
    let mut config = bench_config(pairs, messages_per_pair, latency);
    // Every message brings its connection's timer events along: room for them.
    config.limits.events_max *= 2;
    let clients: Vec<NodeId> = (0..pairs).collect();
    let servers: Vec<NodeId> = (pairs..2 * pairs).collect();
    let mut part: Part<PingPongOverConn> = Part::default();
    let server_of = pairs_table(2 * pairs, &clients, &servers);
    let params = bench_params(messages_per_pair);
    add_conn_nodes(&mut part, server_of, params, ConnParams::default());
    bench_sim(config, part, clients)
}
