//! The registry as scenarios run it: node kinds, parameters, the whole-scenario check
//! and the builder of servers, workloads and invariants.

use super::apps::{KvClient, Locker, Provider, Resource, Workload};
use super::client::ClientConfig;
use super::server::{Server, ServerParams};
use super::{invariants, Host};
use crate::node::Node;
use crate::params::{count, duration, flag, text, ParamSpec, MS};
use crate::proto::spec::{KindSpec, Layout, Part, ProtocolSpec};
use crate::proto::zab;

pub const KINDS: &[KindSpec] = &[
    KindSpec {
        name: "server",
        doc: "a registry server: one member of the ZAB ensemble",
        components: &["zab", "registry"],
    },
    KindSpec {
        name: "client",
        doc: "reads, writes and compare-and-sets keys, writing a Jepsen history",
        components: &["registry"],
    },
    KindSpec {
        name: "locker",
        doc: "takes the lock and writes a critical section to the resource",
        components: &["registry", "lock"],
    },
    KindSpec {
        name: "resource",
        doc: "the storage lockers write to; it checks their fencing tokens",
        components: &["lock"],
    },
    KindSpec {
        name: "provider",
        doc: "registers a service and keeps discovering the other providers",
        components: &["registry"],
    },
];

pub const PARAMS: &[ParamSpec] = &[
    duration(
        "tick",
        "ZAB's tick: heartbeats, election resends, failure detection",
        20 * MS,
    ),
    count(
        "init_limit",
        "ticks a new leader waits for a quorum to sync",
        1,
        1_000,
        10,
    ),
    count(
        "sync_limit",
        "ticks of silence before a follower or leader gives up on the other",
        1,
        1_000,
        5,
    ),
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
    count("keys", "keys the kv clients use", 0, 1_000, 3),
    count(
        "ops",
        "operations per kv client, rounds per locker",
        0,
        100_000,
        100,
    ),
    duration("think", "time between one client's operations", 20 * MS),
    duration(
        "hold",
        "how long a locker works while holding the lock",
        30 * MS,
    ),
    count(
        "snapshot_every",
        "applied transactions between snapshots",
        1,
        1_000_000,
        100,
    ),
    count(
        "log_retain",
        "committed log entries kept behind a snapshot",
        0,
        1_000_000,
        50,
    ),
    text(
        "interface",
        "the service interface providers register",
        "com.example.Greeter",
        &[],
    ),
    duration(
        "stall",
        "a live client that completes nothing for this long is stuck",
        3_000 * MS,
    ),
];

pub const fn spec<H: Host>() -> ProtocolSpec<H> {
    ProtocolSpec {
        name: "registry",
        description:
            "a ZooKeeper-style registry replicated with ZAB, with clients, lockers and providers",
        kinds: KINDS,
        params: PARAMS,
        check,
        build: build::<H>,
    }
}

fn check(layout: &Layout) -> Result<(), (&'static str, String)> {
    let servers = layout.count("server");
    if servers == 0 || servers > zab::SERVERS_MAX {
        return Err((
            "nodes",
            format!(
                "a registry ensemble has 1 to {} servers, found {servers}",
                zab::SERVERS_MAX
            ),
        ));
    }
    let resources = layout.count("resource");
    if layout.count("locker") > 0 && resources != 1 {
        return Err((
            "nodes",
            format!("lockers write to exactly one resource node, found {resources}"),
        ));
    }
    Ok(())
}

/// The ensemble's ZAB configuration from the scenario's parameters.
pub fn zab_config(layout: &Layout) -> zab::Config {
    let tick_ns = layout.params.number("tick");
    zab::Config {
        servers: layout.ids_of("server"),
        tick_ns,
        init_limit_ticks: layout.params.number("init_limit") as u32,
        sync_limit_ticks: layout.params.number("sync_limit") as u32,
        finalize_ns: tick_ns / 2,
        snapshot_every: layout.params.number("snapshot_every") as u32,
        log_retain: layout.params.number("log_retain") as u32,
    }
}

/// How a registry client of this scenario connects, whichever protocol's node it runs
/// in (a broker that announces itself is one); `None` without registry servers.
pub fn client_config(layout: &Layout) -> Option<ClientConfig> {
    let params = layout.params_of("registry")?;
    let servers = layout.ids_of_in("registry", "server");
    if servers.is_empty() {
        return None;
    }
    Some(ClientConfig {
        servers,
        session_timeout_ns: params.number("session_timeout"),
        read_only: params.flag("read_only"),
        conn: layout.conn,
    })
}

fn build<H: Host>(layout: &Layout) -> Part<H> {
    let params = layout.params;
    let zab_config = zab_config(layout);
    let server_params = ServerParams {
        zab: zab_config.clone(),
        read_only: params.flag("read_only"),
        read_only_after_ticks: zab_config.sync_limit_ticks as u64 * 2,
        conn: layout.conn,
    };
    let session_timeout_ns = params.number("session_timeout");
    let workload = Workload {
        client: client_config(layout).expect("checked: a registry has servers"),
        linearizable_reads: params.flag("linearizable_reads"),
        keys: params.number("keys") as u32,
        ops: params.number("ops") as u32,
        think_ns: params.number("think"),
        hold_ns: params.number("hold"),
        resource: layout.ids_of("resource").first().copied(),
        interface: params.text("interface").to_string(),
    };
    let mut part = Part::default();
    part.node("server", move |id| -> Box<dyn Node<H>> {
        Box::new(Server::new(id, server_params.clone()))
    });
    let kv = workload.clone();
    part.node("client", move |id| -> Box<dyn Node<H>> {
        Box::new(KvClient::new(id, kv.clone()))
    });
    let locker = workload.clone();
    part.node("locker", move |_| -> Box<dyn Node<H>> {
        Box::new(Locker::new(locker.clone()))
    });
    part.node("resource", |_| -> Box<dyn Node<H>> {
        Box::new(Resource::default())
    });
    part.node("provider", move |id| -> Box<dyn Node<H>> {
        Box::new(Provider::new(id, workload.clone()))
    });
    add_invariants(&mut part, layout, &zab_config, session_timeout_ns);
    part
}

fn add_invariants<H: Host>(
    part: &mut Part<H>,
    layout: &Layout,
    zab_config: &zab::Config,
    session_timeout_ns: u64,
) {
    // A session closes within its timeout plus a few elections after its client dies.
    let election_ticks = zab_config.init_limit_ticks as u64 + zab_config.sync_limit_ticks as u64;
    let expiry_bound_ns = session_timeout_ns + zab_config.tick_ns * election_ticks * 4;
    let clients = layout.ids_of("client");
    let mut workers = clients.clone();
    workers.extend(layout.ids_of("locker"));
    workers.extend(layout.ids_of("provider"));
    part.check(layout, zab::invariants::OneLeaderPerEpoch::default());
    part.check(layout, zab::invariants::Agreement::default());
    part.check(layout, invariants::AckedDurable::default());
    part.check(layout, invariants::Ephemerals::new(expiry_bound_ns));
    // Only reads that sync first are promised to be linearizable.
    if layout.params.flag("linearizable_reads") {
        let history_max = layout.limits.history_max as usize;
        part.check(layout, invariants::Linearizable::new(clients, history_max));
    }
    part.check(layout, invariants::SingleSystemImage::default());
    part.check(layout, invariants::Staleness::default());
    if !layout.ids_of("resource").is_empty() {
        part.check(layout, invariants::Fenced::default());
    }
    part.check(
        layout,
        invariants::Progress::new(
            zab_config.servers.clone(),
            workers,
            layout.params.number("stall"),
        ),
    );
}
