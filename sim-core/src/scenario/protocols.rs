//! The protocol registry: what each protocol's scenarios may say (node kinds, parameters,
//! invariants) and how a validated scenario becomes a running `Sim`.
//!
//! This is the one place that names both the engine and the protocols; the engine itself
//! never does.

use crate::check::Invariant;
use crate::engine::{Factory, Run, Sim, SimConfig};
use crate::node::{Node, NodeId};
use crate::proto::{broadcast, ping_pong};

use super::Scenario;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Count {
        min: u64,
        max: u64,
        default: u64,
    },
    Duration {
        min_ns: u64,
        max_ns: u64,
        default_ns: u64,
    },
}

impl ParamKind {
    pub fn default(self) -> u64 {
        match self {
            ParamKind::Count { default, .. } => default,
            ParamKind::Duration { default_ns, .. } => default_ns,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub doc: &'static str,
    pub kind: ParamKind,
}

pub struct ProtocolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub kinds: &'static [&'static str],
    pub params: &'static [ParamSpec],
    pub invariants: &'static [&'static str],
    /// Checks that need the whole scenario (node kinds that must pair up...).
    pub check: fn(&Scenario) -> Result<(), String>,
    pub build: fn(&Scenario, SimConfig) -> Box<dyn Run>,
}

pub const PROTOCOLS: &[ProtocolSpec] = &[PING_PONG, BROADCAST];

pub fn protocol(name: &str) -> Option<&'static ProtocolSpec> {
    PROTOCOLS.iter().find(|spec| spec.name == name)
}

const MS: u64 = 1_000_000;

const PING_PONG: ProtocolSpec = ProtocolSpec {
    name: "ping-pong",
    description: "clients ping their servers, one message in flight per pair",
    kinds: &["client", "server"],
    params: &[
        ParamSpec {
            name: "messages",
            doc: "one-way messages per pair (a round is a ping and a pong)",
            kind: ParamKind::Count {
                min: 2,
                max: 1_000_000_000,
                default: 1_000,
            },
        },
        ParamSpec {
            name: "timeout",
            doc: "a client re-sends its ping after this long without a pong; 0 never",
            kind: ParamKind::Duration {
                min_ns: 0,
                max_ns: 3_600_000 * MS,
                default_ns: 0,
            },
        },
    ],
    invariants: &["ping-pong.order", "ping-pong.progress"],
    check: check_ping_pong,
    build: build_ping_pong,
};

fn check_ping_pong(scenario: &Scenario) -> Result<(), String> {
    let kinds = scenario.kinds();
    let clients = kinds.iter().filter(|k| *k == "client").count();
    let servers = kinds.len() - clients;
    if clients != servers || clients == 0 {
        return Err(format!(
            "ping-pong pairs client i with server i: it needs as many servers as clients \
             (found {clients} clients and {servers} servers)"
        ));
    }
    Ok(())
}

fn build_ping_pong(scenario: &Scenario, config: SimConfig) -> Box<dyn Run> {
    let params = ping_pong::Params {
        messages: scenario.param("messages"),
        timeout_ns: scenario.param("timeout"),
    };
    Box::new(ping_pong_sim(config, params, |name| scenario.checks(name)))
}

/// A ping-pong run straight from an engine configuration (also the benchmark's entry).
pub fn ping_pong_sim(
    config: SimConfig,
    params: ping_pong::Params,
    checks: impl Fn(&str) -> bool,
) -> Sim<ping_pong::PingPong> {
    use ping_pong::{invariants, Client, PingPong, Server};
    let clients: Vec<NodeId> = (0..config.kinds.len() as NodeId)
        .filter(|id| config.kinds[*id as usize] == "client")
        .collect();
    let servers: Vec<NodeId> = (0..config.kinds.len() as NodeId)
        .filter(|id| config.kinds[*id as usize] == "server")
        .collect();
    assert_eq!(clients.len(), servers.len(), "validated by check_ping_pong");
    // server_of[id] is the server of client `id`: a table, so building 10,000 nodes
    // stays linear.
    let mut server_of = vec![NodeId::MAX; config.kinds.len()];
    for (client, server) in clients.iter().zip(&servers) {
        server_of[*client as usize] = *server;
    }
    let factory: Factory<PingPong> = Box::new(move |id, kind| -> Box<dyn Node<PingPong>> {
        match kind {
            "client" => Box::new(Client::new(server_of[id as usize], params)),
            _ => Box::new(Server::new()),
        }
    });
    let mut checkers: Vec<Box<dyn Invariant<PingPong>>> = Vec::new();
    if checks("ping-pong.order") {
        checkers.push(Box::new(invariants::Order::default()));
    }
    if checks("ping-pong.progress") {
        checkers.push(Box::new(invariants::Progress::new(clients)));
    }
    Sim::new(config, factory, checkers)
}

const BROADCAST: ProtocolSpec = ProtocolSpec {
    name: "broadcast",
    description: "reliable broadcast with acks, retransmission and persistence",
    kinds: &["peer"],
    params: &[
        ParamSpec {
            name: "messages",
            doc: "messages each peer broadcasts",
            kind: ParamKind::Count {
                min: 0,
                max: broadcast::MESSAGES_MAX as u64,
                default: 10,
            },
        },
        ParamSpec {
            name: "interval",
            doc: "time between one peer's broadcasts",
            kind: ParamKind::Duration {
                min_ns: MS / 1_000,
                max_ns: 3_600_000 * MS,
                default_ns: 100 * MS,
            },
        },
        ParamSpec {
            name: "retransmit",
            doc: "time between retransmissions of unacked messages",
            kind: ParamKind::Duration {
                min_ns: MS / 1_000,
                max_ns: 3_600_000 * MS,
                default_ns: 50 * MS,
            },
        },
    ],
    invariants: &["broadcast.integrity", "broadcast.agreement"],
    check: |_| Ok(()),
    build: build_broadcast,
};

fn build_broadcast(scenario: &Scenario, config: SimConfig) -> Box<dyn Run> {
    use broadcast::{invariants, Broadcast, Peer};
    let params = broadcast::Params {
        messages: scenario.param("messages") as u32,
        interval_ns: scenario.param("interval"),
        retransmit_ns: scenario.param("retransmit"),
    };
    let factory: Factory<Broadcast> =
        Box::new(move |_, _| -> Box<dyn Node<Broadcast>> { Box::new(Peer::new(params)) });
    let mut checkers: Vec<Box<dyn Invariant<Broadcast>>> = Vec::new();
    if scenario.checks("broadcast.integrity") {
        checkers.push(Box::new(invariants::Integrity::default()));
    }
    if scenario.checks("broadcast.agreement") {
        checkers.push(Box::new(invariants::Agreement::default()));
    }
    Box::new(Sim::new(config, factory, checkers))
}
