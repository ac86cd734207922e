//! The protocol registry: what each protocol's scenarios may say (node kinds, parameters,
//! invariants) and how a validated scenario becomes a running `Sim`.
//!
//! This is the one place that names both the engine and the protocols; the engine itself
//! never does.

use crate::check::Invariant;
use crate::engine::{Factory, Run, Sim, SimConfig};
use crate::node::{Node, NodeId};
use crate::proto::{broadcast, broker, ping_pong, registry, zab};

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
    Flag {
        default: bool,
    },
    /// A string; one of `choices` unless that is empty.
    Text {
        default: &'static str,
        choices: &'static [&'static str],
    },
    List {
        default: &'static [&'static str],
    },
}

/// A parameter's value as the scenario gives it (or its default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamValue {
    Number(u64),
    Text(String),
    List(Vec<String>),
}

impl ParamKind {
    pub fn default_value(self) -> ParamValue {
        match self {
            ParamKind::Count { default, .. } => ParamValue::Number(default),
            ParamKind::Duration { default_ns, .. } => ParamValue::Number(default_ns),
            ParamKind::Flag { default } => ParamValue::Number(default as u64),
            ParamKind::Text { default, .. } => ParamValue::Text(default.to_string()),
            ParamKind::List { default } => {
                ParamValue::List(default.iter().map(|s| s.to_string()).collect())
            }
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
    /// Checks that need the whole scenario (node kinds that must pair up...); an error
    /// names the root key it is about (`nodes` or `params`) for its location.
    pub check: fn(&Scenario) -> Result<(), (&'static str, String)>,
    pub build: fn(&Scenario, SimConfig) -> Box<dyn Run>,
}

pub const PROTOCOLS: &[ProtocolSpec] = &[PING_PONG, BROADCAST, BROKER, REGISTRY];

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

fn check_ping_pong(scenario: &Scenario) -> Result<(), (&'static str, String)> {
    let kinds = scenario.kinds();
    let clients = kinds.iter().filter(|k| *k == "client").count();
    let servers = kinds.len() - clients;
    if clients != servers || clients == 0 {
        let message = format!(
            "ping-pong pairs client i with server i: it needs as many servers as clients \
             (found {clients} clients and {servers} servers)"
        );
        return Err(("nodes", message));
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

/// A ping-pong cluster for benchmarks: `pairs` clients, then `pairs` servers, on links of
/// `latency`; no faults and no deadline (the run ends when its queue drains), limits sized
/// for the messages it will exchange. `faultline bench` and the criterion benches share it.
pub fn ping_pong_bench(
    pairs: u32,
    messages_per_pair: u64,
    latency: crate::net::Latency,
) -> Sim<ping_pong::PingPong> {
    assert!(pairs > 0 && messages_per_pair >= 2);
    let mut kinds = vec!["client".to_string(); pairs as usize];
    kinds.extend(vec!["server".to_string(); pairs as usize]);
    let messages = messages_per_pair * pairs as u64;
    let config = SimConfig {
        scenario: "bench-ping-pong".into(),
        seed: 1,
        kinds,
        link: crate::net::LinkModel {
            latency,
            ..Default::default()
        },
        links: Vec::new(),
        faults: Vec::new(),
        nemesis: None,
        fault_phase_ns: 1 << 62,
        quiet_ns: 0,
        limits: crate::engine::Limits {
            events_max: messages * 4 + 10_000,
            ..Default::default()
        },
        bugs: Default::default(),
        retain_trace: false,
    };
    let params = ping_pong::Params {
        messages: messages_per_pair,
        timeout_ns: 0,
    };
    ping_pong_sim(config, params, |_| true)
}

/// A ping-pong run straight from an engine configuration.
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

const fn duration(name: &'static str, doc: &'static str, default_ns: u64) -> ParamSpec {
    let kind = ParamKind::Duration {
        min_ns: 1_000,
        max_ns: 3_600_000 * MS,
        default_ns,
    };
    ParamSpec { name, doc, kind }
}

const fn flag(name: &'static str, doc: &'static str, default: bool) -> ParamSpec {
    ParamSpec {
        name,
        doc,
        kind: ParamKind::Flag { default },
    }
}

const fn count(name: &'static str, doc: &'static str, max: u64, default: u64) -> ParamSpec {
    ParamSpec {
        name,
        doc,
        kind: ParamKind::Count {
            min: 0,
            max,
            default,
        },
    }
}

const BROKER: ProtocolSpec = ProtocolSpec {
    name: "broker",
    description: "a RabbitMQ-style broker with publishers and consumers",
    kinds: &["broker", "publisher", "consumer"],
    params: &[
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
        ParamSpec {
            name: "exchange",
            doc: "the exchange publishers use; \"\" is the default exchange",
            kind: ParamKind::Text {
                default: "work",
                choices: &[],
            },
        },
        ParamSpec {
            name: "exchange_type",
            doc: "direct, topic or fanout",
            kind: ParamKind::Text {
                default: "direct",
                choices: &["direct", "topic", "fanout"],
            },
        },
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
        ParamSpec {
            name: "routing_keys",
            doc: "routing keys publishers cycle through",
            kind: ParamKind::List { default: &[] },
        },
        count(
            "messages",
            "messages each publisher publishes",
            100_000,
            100,
        ),
        duration(
            "publish_interval",
            "time between a publisher's bursts",
            10 * MS,
        ),
        count("burst", "messages per burst", 10_000, 1),
        ParamSpec {
            name: "queues",
            doc: "queue specs, consumer i uses queue i mod len: `name <- key, key ; options`",
            kind: ParamKind::List { default: &["work"] },
        },
        count(
            "prefetch",
            "unacked deliveries per consumer (0: unlimited)",
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
            1_000_000,
            0,
        ),
    ],
    invariants: &[
        "broker.confirmed-durable",
        "broker.at-least-once",
        "broker.queue-order",
        "broker.no-duplicates",
    ],
    check: check_broker,
    build: build_broker,
};

fn check_broker(scenario: &Scenario) -> Result<(), (&'static str, String)> {
    let kinds = scenario.kinds();
    let brokers = kinds.iter().filter(|k| *k == "broker").count();
    if brokers != 1 {
        return Err((
            "nodes",
            format!("a broker scenario needs exactly one broker node, found {brokers}"),
        ));
    }
    for spec in scenario.param_list("queues") {
        broker::apps::QueueSpec::parse(&spec).map_err(|message| ("params", message))?;
    }
    if scenario.param_list("queues").is_empty() && kinds.iter().any(|k| k == "consumer") {
        return Err((
            "params",
            "consumers need at least one entry in `queues`".to_string(),
        ));
    }
    Ok(())
}

fn build_broker(scenario: &Scenario, config: SimConfig) -> Box<dyn Run> {
    use broker::apps::{Consumer, Publisher, QueueSpec};
    use broker::{invariants, Broker, BrokerProto};
    let broker_id = config
        .kinds
        .iter()
        .position(|k| k == "broker")
        .expect("checked") as NodeId;
    let queues: Vec<QueueSpec> = broker_queues(scenario);
    let workload = broker_workload(scenario, broker_id, queues.clone());
    let params = broker::server::BrokerParams {
        heartbeat_ns: workload.heartbeat_ns,
        sync_interval_ns: scenario.param("sync_interval"),
    };
    // consumer_index[id]: which queue spec consumer `id` uses (round robin over specs).
    let mut consumer_index = vec![0usize; config.kinds.len()];
    let mut next = 0;
    for (id, kind) in config.kinds.iter().enumerate() {
        if kind == "consumer" {
            consumer_index[id] = next % queues.len().max(1);
            next += 1;
        }
    }
    let factory: Factory<BrokerProto> = Box::new(move |id, kind| -> Box<dyn Node<BrokerProto>> {
        match kind {
            "broker" => Box::new(Broker::new(params)),
            "publisher" => Box::new(Publisher::new(workload.clone())),
            _ => Box::new(Consumer::new(
                workload.clone(),
                queues[consumer_index[id as usize]].clone(),
            )),
        }
    });
    let mut checkers: Vec<Box<dyn Invariant<BrokerProto>>> = Vec::new();
    if scenario.checks("broker.confirmed-durable") {
        checkers.push(Box::new(invariants::ConfirmedDurable::new()));
    }
    if scenario.checks("broker.at-least-once") {
        checkers.push(Box::new(invariants::AtLeastOnce::new(broker_id)));
    }
    if scenario.checks("broker.queue-order") {
        checkers.push(Box::new(invariants::QueueOrder::default()));
    }
    if scenario.checks("broker.no-duplicates") {
        checkers.push(Box::new(invariants::NoDuplicates::default()));
    }
    Box::new(Sim::new(config, factory, checkers))
}

fn broker_queues(scenario: &Scenario) -> Vec<broker::apps::QueueSpec> {
    let specs = scenario.param_list("queues");
    specs
        .iter()
        .map(|spec| broker::apps::QueueSpec::parse(spec).expect("checked"))
        .collect()
}

/// The traffic every client of a broker scenario shares, from its parameters.
fn broker_workload(
    scenario: &Scenario,
    broker_id: NodeId,
    queues: Vec<broker::apps::QueueSpec>,
) -> broker::apps::Workload {
    use broker::ExchangeKind;
    let exchange_kind = match scenario.param_text("exchange_type").as_str() {
        "topic" => ExchangeKind::Topic,
        "fanout" => ExchangeKind::Fanout,
        _ => ExchangeKind::Direct,
    };
    broker::apps::Workload {
        broker: broker_id,
        heartbeat_ns: scenario.param("heartbeat"),
        exchange: scenario.param_text("exchange"),
        exchange_kind,
        durable: scenario.param_flag("durable"),
        persistent: scenario.param_flag("persistent"),
        mandatory: scenario.param_flag("mandatory"),
        confirms: scenario.param_flag("confirms"),
        routing_keys: scenario.param_list("routing_keys"),
        messages: scenario.param("messages") as u32,
        publish_interval_ns: scenario.param("publish_interval"),
        burst: scenario.param("burst").max(1) as u32,
        queues,
        prefetch: scenario.param("prefetch") as u32,
        auto_ack: scenario.param_flag("auto_ack"),
        process_ns: scenario.param("process_time"),
        reject_every: scenario.param("reject_every") as u32,
    }
}

const REGISTRY: ProtocolSpec = ProtocolSpec {
    name: "registry",
    description:
        "a ZooKeeper-style registry replicated with ZAB, with clients, lockers and providers",
    kinds: &["server", "client", "locker", "resource", "provider"],
    params: &[
        duration(
            "tick",
            "ZAB's tick: heartbeats, election resends, failure detection",
            20 * MS,
        ),
        ParamSpec {
            name: "init_limit",
            doc: "ticks a new leader waits for a quorum to sync",
            kind: ParamKind::Count {
                min: 1,
                max: 1_000,
                default: 10,
            },
        },
        ParamSpec {
            name: "sync_limit",
            doc: "ticks of silence before a follower or leader gives up on the other",
            kind: ParamKind::Count {
                min: 1,
                max: 1_000,
                default: 5,
            },
        },
        duration("session_timeout", "client session timeout", 400 * MS),
        flag(
            "read_only",
            "servers cut off from the quorum serve reads (readonlymode.enabled)",
            false,
        ),
        flag(
            "linearizable_reads",
            "clients sync before every read; the history must be linearizable",
            false,
        ),
        count("keys", "keys the kv clients use", 1_000, 3),
        count(
            "ops",
            "operations per kv client, rounds per locker",
            100_000,
            100,
        ),
        duration("think", "time between one client's operations", 20 * MS),
        duration(
            "hold",
            "how long a locker works while holding the lock",
            30 * MS,
        ),
        ParamSpec {
            name: "snapshot_every",
            doc: "applied transactions between snapshots",
            kind: ParamKind::Count {
                min: 1,
                max: 1_000_000,
                default: 100,
            },
        },
        count(
            "log_retain",
            "committed log entries kept behind a snapshot",
            1_000_000,
            50,
        ),
        ParamSpec {
            name: "interface",
            doc: "the service interface providers register",
            kind: ParamKind::Text {
                default: "com.example.Greeter",
                choices: &[],
            },
        },
        duration(
            "stall",
            "a live client that completes nothing for this long is stuck",
            3_000 * MS,
        ),
    ],
    invariants: &[
        "zab.one-leader-per-epoch",
        "zab.agreement",
        "registry.acked-durable",
        "registry.ephemerals",
        "registry.linearizable",
        "registry.staleness",
        "lock.fenced",
        "registry.progress",
    ],
    check: check_registry,
    build: build_registry,
};

fn check_registry(scenario: &Scenario) -> Result<(), (&'static str, String)> {
    let kinds = scenario.kinds();
    let servers = kinds.iter().filter(|k| *k == "server").count();
    if servers == 0 || servers > 9 {
        return Err((
            "nodes",
            format!("a registry ensemble has 1 to 9 servers, found {servers}"),
        ));
    }
    let resources = kinds.iter().filter(|k| *k == "resource").count();
    let lockers = kinds.iter().filter(|k| *k == "locker").count();
    if lockers > 0 && resources != 1 {
        return Err((
            "nodes",
            format!("lockers write to exactly one resource node, found {resources}"),
        ));
    }
    Ok(())
}

fn build_registry(scenario: &Scenario, config: SimConfig) -> Box<dyn Run> {
    use registry::apps::{KvClient, Locker, Provider, Resource, Workload};
    use registry::client::ClientConfig;
    use registry::server::{Server, ServerParams};
    use registry::{invariants, RegistryProto};
    let ids_of = |kind: &str| -> Vec<NodeId> {
        (0..config.kinds.len() as NodeId)
            .filter(|id| config.kinds[*id as usize] == kind)
            .collect()
    };
    let servers = ids_of("server");
    let tick_ns = scenario.param("tick");
    let zab_config = zab::Config {
        servers: servers.clone(),
        tick_ns,
        init_limit_ticks: scenario.param("init_limit") as u32,
        sync_limit_ticks: scenario.param("sync_limit") as u32,
        finalize_ns: tick_ns / 2,
        snapshot_every: scenario.param("snapshot_every") as u32,
        log_retain: scenario.param("log_retain") as u32,
    };
    let server_params = ServerParams {
        zab: zab_config.clone(),
        read_only: scenario.param_flag("read_only"),
        read_only_after_ticks: zab_config.sync_limit_ticks as u64 * 2,
    };
    let session_timeout_ns = scenario.param("session_timeout");
    let workload = Workload {
        client: ClientConfig {
            servers: servers.clone(),
            session_timeout_ns,
            read_only: scenario.param_flag("read_only"),
        },
        linearizable_reads: scenario.param_flag("linearizable_reads"),
        keys: scenario.param("keys") as u32,
        ops: scenario.param("ops") as u32,
        think_ns: scenario.param("think"),
        hold_ns: scenario.param("hold"),
        resource: ids_of("resource").first().copied(),
        interface: scenario.param_text("interface"),
    };
    let history_max = config.limits.history_max as usize;
    let factory: Factory<RegistryProto> =
        Box::new(move |id, kind| -> Box<dyn Node<RegistryProto>> {
            match kind {
                "server" => Box::new(Server::new(id, server_params.clone())),
                "client" => Box::new(KvClient::new(id, workload.clone())),
                "locker" => Box::new(Locker::new(workload.clone())),
                "resource" => Box::new(Resource::default()),
                _ => Box::new(Provider::new(id, workload.clone())),
            }
        });
    // A session closes within its timeout plus a few elections after its client dies.
    let expiry_bound_ns = session_timeout_ns
        + tick_ns * (zab_config.init_limit_ticks as u64 + zab_config.sync_limit_ticks as u64) * 4;
    let mut checkers: Vec<Box<dyn Invariant<RegistryProto>>> = Vec::new();
    let wanted = |name: &str| scenario.checks(name);
    if wanted("zab.one-leader-per-epoch") {
        checkers.push(Box::new(invariants::OneLeaderPerEpoch::default()));
    }
    if wanted("zab.agreement") {
        checkers.push(Box::new(invariants::Agreement::default()));
    }
    if wanted("registry.acked-durable") {
        checkers.push(Box::new(invariants::AckedDurable::default()));
    }
    if wanted("registry.ephemerals") {
        checkers.push(Box::new(invariants::Ephemerals::new(expiry_bound_ns)));
    }
    // Only reads that sync first are promised to be linearizable.
    if wanted("registry.linearizable") && scenario.param_flag("linearizable_reads") {
        checkers.push(Box::new(invariants::Linearizable::new(history_max)));
    }
    if wanted("registry.staleness") {
        checkers.push(Box::new(invariants::Staleness::default()));
    }
    if wanted("lock.fenced") {
        checkers.push(Box::new(invariants::Fenced::default()));
    }
    if wanted("registry.progress") {
        checkers.push(Box::new(invariants::Progress::new(
            servers,
            scenario.param("stall"),
        )));
    }
    Box::new(Sim::new(config, factory, checkers))
}
