//! Ping-pong as scenarios run it: its node kinds, parameters and builder, and the
//! cluster the benchmarks time.

use super::{invariants, Client, Host, Params, PingPong, Server};
use crate::engine::{Limits, Sim, SimConfig};
use crate::net::{Latency, LinkModel};
use crate::node::{Node, NodeId};
use crate::params::{count, ParamKind, ParamSpec, MS};
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
];

pub const fn spec<H: Host>() -> ProtocolSpec<H> {
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

fn build<H: Host>(layout: &Layout) -> Part<H> {
    let params = Params {
        messages: layout.params.number("messages"),
        timeout_ns: layout.params.number("timeout"),
    };
    let clients = layout.ids_of("client");
    let servers = layout.ids_of("server");
    let mut part = Part::default();
    add_nodes(&mut part, layout.node_count(), &clients, &servers, params);
    part.check(layout, invariants::Order::default());
    part.check(layout, invariants::Progress::new(clients));
    part
}

/// Client `clients[i]` pings server `servers[i]`.
fn add_nodes<H: Host>(
    part: &mut Part<H>,
    node_count: u32,
    clients: &[NodeId],
    servers: &[NodeId],
    params: Params,
) {
    assert_eq!(clients.len(), servers.len(), "validated by check");
    // server_of[id] is the server of client `id`: a table, so building 10,000 nodes
    // stays linear.
    let mut server_of = vec![NodeId::MAX; node_count as usize];
    for (client, server) in clients.iter().zip(servers) {
        server_of[*client as usize] = *server;
    }
    part.node("client", move |id| -> Box<dyn Node<H>> {
        Box::new(Client::new(server_of[id as usize], params))
    });
    part.node("server", |_| -> Box<dyn Node<H>> {
        Box::new(Server::new())
    });
}

/// A ping-pong cluster for benchmarks, run as its own protocol: `pairs` clients, then
/// `pairs` servers, on links of `latency`; no faults and no deadline (the run ends when
/// its queue drains), limits sized for the messages it will exchange. `faultline bench`
/// and the criterion benches share it.
pub fn bench(pairs: u32, messages_per_pair: u64, latency: Latency) -> Sim<PingPong> {
    assert!(pairs > 0 && messages_per_pair >= 2);
    let mut kinds = vec!["client".to_string(); pairs as usize];
    kinds.extend(vec!["server".to_string(); pairs as usize]);
    let clients: Vec<NodeId> = (0..pairs).collect();
    let servers: Vec<NodeId> = (pairs..2 * pairs).collect();
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
    let params = Params {
        messages: messages_per_pair,
        timeout_ns: 0,
    };
    let mut part: Part<PingPong> = Part::default();
    add_nodes(&mut part, 2 * pairs, &clients, &servers, params);
    let (client, server) = (part.factories[0].1.clone(), part.factories[1].1.clone());
    let factory = Box::new(move |id: NodeId, kind: &str| match kind {
        "client" => client(id),
        _ => server(id),
    });
    let invariants: Vec<Box<dyn crate::invariant::Invariant<PingPong>>> = vec![
        Box::new(invariants::Order::default()),
        Box::new(invariants::Progress::new(clients)),
    ];
    Sim::new(config, factory, invariants)
}
