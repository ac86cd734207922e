//! ZooKeeper's client-visible rules, one test each, checked against a 3-server ensemble
//! through the real client library. Scripted clients run one step whenever they are
//! connected and idle, and log every event the library hands them; the tests read the
//! logs like a ZooKeeper user reads callbacks.

use std::cell::RefCell;
use std::rc::Rc;

use sim_core::conn::{self, ConnParams, Segment};
use sim_core::engine::{run_to_end, Limits, Run, Sim, SimConfig};
use sim_core::fault::{Fault, ScheduledFault};
use sim_core::net::{Latency, LinkModel};
use sim_core::proto::registry::client::{Client, ClientConfig, Event};
use sim_core::proto::registry::server::{Server, ServerParams};
use sim_core::proto::registry::state::{Registry, Txn};
use sim_core::proto::registry::tree::CreateMode;
use sim_core::proto::registry::{self, client, Op, Reply};
use sim_core::proto::zab;
use sim_core::{host_enum, Ctx, Node, NodeId, Proto, TimerId, Wraps};

const MS: u64 = 1_000_000;
const STEP_NS: u64 = 10 * MS;

/// The test's own host: the registry's and ZAB's types and the scripts' one timer,
/// wrapped as a user's own protocol would wrap them.
#[derive(Clone)]
struct Rules;

impl Proto for Rules {
    type Msg = RulesMsg;
    type Obs = RulesObs;
    type Timer = RulesTimer;
}

/// A script's next step is due.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
struct NextStep;

host_enum! {
    #[derive(Clone, PartialEq, serde::Serialize)]
    enum RulesMsg {
        Zab(Segment<zab::Msg<Txn, Registry>>),
        Registry(Segment<registry::Msg>),
        Lock(registry::LockMsg),
    }
}

host_enum! {
    #[derive(Clone, PartialEq)]
    enum RulesObs {
        Zab(zab::Obs),
        Registry(registry::Obs),
    }
}

host_enum! {
    #[derive(Clone, PartialEq, serde::Serialize)]
    enum RulesTimer {
        Zab(zab::Timer),
        ZabLink(conn::Timer<zab::Msg<Txn, Registry>>),
        Registry(registry::Timer),
        Client(client::Timer),
        Conn(conn::Timer<registry::Msg>),
        Step(NextStep),
    }
}
const SERVERS: [NodeId; 3] = [0, 1, 2];

#[derive(Clone, Debug)]
enum Step {
    Call(Op, bool),
    /// Idles until this many milliseconds of virtual time have passed.
    Until(u64),
}

type Log = Rc<RefCell<Vec<String>>>;

#[derive(Clone)]
struct Script {
    client: Client,
    steps: Vec<Step>,
    next: usize,
    log: Log,
}

impl Script {
    fn record(&mut self, ctx: &mut Ctx<'_, Rules>, events: Vec<Event>) {
        for event in events {
            let line = match &event {
                Event::Connected { read_only } => format!("connected read_only={read_only}"),
                Event::Disconnected => "disconnected".to_string(),
                Event::Expired => "expired".to_string(),
                Event::Response { op, result } => format!("{} -> {}", show_op(op), show(result)),
                Event::Watch(watch) => format!("watch {:?} {}", watch.kind, watch.path),
            };
            self.log.borrow_mut().push(format!("{} {line}", ctx.id()));
        }
    }

    fn run_step(&mut self, ctx: &mut Ctx<'_, Rules>) {
        ctx.set_timer(STEP_NS, NextStep);
        if !self.client.is_connected() || self.client.is_busy() {
            return;
        }
        match self.steps.get(self.next).cloned() {
            Some(Step::Call(op, watch)) => {
                self.next += 1;
                self.client.request(ctx, op, watch).expect("connected");
            }
            Some(Step::Until(ms)) if ctx.now_ns() >= ms * MS => self.next += 1,
            _ => {}
        }
    }
}

fn show_op(op: &Op) -> String {
    match op {
        Op::Create { path, .. } => format!("create {path}"),
        Op::Delete { path, .. } => format!("delete {path}"),
        Op::SetData { path, .. } => format!("set {path}"),
        Op::GetData { path } => format!("get {path}"),
        Op::Exists { path } => format!("exists {path}"),
        Op::GetChildren { path } => format!("children {path}"),
        Op::Sync => "sync".to_string(),
    }
}

fn show(result: &Result<Reply, sim_core::proto::registry::tree::ZkError>) -> String {
    match result {
        Ok(Reply::Created(path)) => format!("created {path}"),
        Ok(Reply::Data(data, stat)) => {
            format!("data {} v{}", String::from_utf8_lossy(data), stat.version)
        }
        Ok(Reply::Stat(stat)) => format!("stat v{}", stat.version),
        Ok(Reply::NoStat) => "no node".to_string(),
        Ok(Reply::Children(children)) => format!("children {children:?}"),
        Ok(Reply::Done) => "ok".to_string(),
        Err(error) => format!("error {error:?}"),
    }
}

impl Node<Rules> for Script {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Rules>) {
        self.client.start(ctx);
        ctx.set_timer(STEP_NS, NextStep);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Rules>, from: NodeId, msg: RulesMsg) {
        if let Ok(events) = self.client.take_message(ctx, from, msg) {
            self.record(ctx, events);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Rules>, id: TimerId, timer: RulesTimer) {
        match self.client.take_timer(ctx, id, timer) {
            Ok(events) => self.record(ctx, events),
            Err(timer) => {
                debug_assert!(Wraps::<NextStep>::into_part(timer).is_ok());
                self.run_step(ctx);
            }
        }
    }
}

/// One script per client. `servers_of[i]` lists the servers client i may use;
/// `read_only` switches on read-only mode for servers and clients alike.
struct Setup {
    scripts: Vec<Vec<Step>>,
    servers_of: Vec<Vec<NodeId>>,
    faults: Vec<(u64, Fault)>,
    read_only: bool,
    duration_ms: u64,
    /// What every client asks for.
    session_timeout_ms: u64,
}

/// Nodes 0-2 are servers; nodes 3.. run the scripts. Returns the client log.
fn run(setup: Setup) -> Vec<String> {
    let log: Log = Rc::default();
    let node_log = log.clone();
    let mut kinds = vec!["server".to_string(); SERVERS.len()];
    kinds.extend(setup.scripts.iter().map(|_| "script".to_string()));
    let config = SimConfig {
        scenario: "registry-rules".into(),
        seed: 1,
        kinds,
        link: LinkModel {
            latency: Latency::Fixed { ns: MS },
            fifo: true,
            ..LinkModel::default()
        },
        links: Vec::new(),
        faults: setup
            .faults
            .into_iter()
            .map(|(at_ms, fault)| ScheduledFault {
                at_ns: at_ms * MS,
                fault,
            })
            .collect(),
        nemesis: None,
        fault_phase_ns: setup.duration_ms * MS,
        quiet_ns: 0,
        limits: Limits::default(),
        bugs: Default::default(),
        retain_trace: false,
    };
    let params = ServerParams {
        zab: zab::Config {
            servers: SERVERS.to_vec(),
            tick_ns: 20 * MS,
            init_limit_ticks: 10,
            sync_limit_ticks: 5,
            finalize_ns: 10 * MS,
            snapshot_every: 100,
            log_retain: 50,
        },
        read_only: setup.read_only,
        read_only_after_ticks: 10,
        conn: ConnParams::default(),
    };
    let (scripts, servers_of, read_only) = (setup.scripts, setup.servers_of, setup.read_only);
    let session_timeout_ns = setup.session_timeout_ms * MS;
    let factory = std::rc::Rc::new(move |id: NodeId, kind: &str| -> Box<dyn Node<Rules>> {
        if kind == "server" {
            return Box::new(Server::new(id, params.clone()));
        }
        let index = id as usize - SERVERS.len();
        let config = ClientConfig {
            servers: servers_of[index].clone(),
            session_timeout_ns,
            read_only,
            conn: ConnParams::default(),
        };
        Box::new(Script {
            client: Client::new(config),
            steps: scripts[index].clone(),
            next: 0,
            log: node_log.clone(),
        })
    });
    let mut sim: Box<dyn Run> = Box::new(Sim::new(config, factory, Vec::new()));
    let report = run_to_end(sim.as_mut());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let lines = log.borrow().clone();
    lines
}

fn call(op: Op, watch: bool) -> Step {
    Step::Call(op, watch)
}

fn create(path: &str, data: &str, mode: CreateMode) -> Step {
    let op = Op::Create {
        path: path.into(),
        data: data.as_bytes().to_vec(),
        mode,
    };
    call(op, false)
}

fn set(path: &str, data: &str, version: i32) -> Step {
    let op = Op::SetData {
        path: path.into(),
        data: data.as_bytes().to_vec(),
        version,
    };
    call(op, false)
}

fn get(path: &str, watch: bool) -> Step {
    call(Op::GetData { path: path.into() }, watch)
}

fn exists(path: &str, watch: bool) -> Step {
    call(Op::Exists { path: path.into() }, watch)
}

fn every_client_on_all_servers(clients: usize) -> Vec<Vec<NodeId>> {
    vec![SERVERS.to_vec(); clients]
}

/// The lines of one client, without its node id.
fn of(log: &[String], node: NodeId) -> Vec<String> {
    let prefix = format!("{node} ");
    log.iter()
        .filter_map(|line| line.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

fn position(lines: &[String], wanted: &str) -> usize {
    lines
        .iter()
        .position(|line| line == wanted)
        .unwrap_or_else(|| panic!("no `{wanted}` in {lines:#?}"))
}

#[test]
fn a_watch_fires_before_the_client_sees_the_data_that_triggered_it() {
    // ZooKeeper Programmer's Guide: "a client will never see a change for which it has
    // set a watch until it first sees the watch event".
    let writer = vec![
        create("/w", "1", CreateMode::Persistent),
        Step::Until(300),
        set("/w", "2", -1),
    ];
    let reader = vec![
        Step::Until(200),
        get("/w", true),
        Step::Until(400),
        get("/w", false),
    ];
    let log = run(Setup {
        scripts: vec![writer, reader],
        servers_of: every_client_on_all_servers(2),
        faults: Vec::new(),
        read_only: false,
        duration_ms: 600,
        session_timeout_ms: 300,
    });
    let reader = of(&log, 4);
    assert!(
        reader.contains(&"get /w -> data 1 v0".to_string()),
        "{reader:#?}"
    );
    let fired = position(&reader, "watch NodeDataChanged /w");
    let new_data = position(&reader, "get /w -> data 2 v1");
    assert!(fired < new_data, "{reader:#?}");
    let fired_count = reader.iter().filter(|l| l.starts_with("watch")).count();
    assert_eq!(fired_count, 1, "one-shot: {reader:#?}");
}

#[test]
fn exists_on_a_missing_node_watches_for_its_creation() {
    let creator = vec![
        Step::Until(300),
        create("/later", "", CreateMode::Persistent),
    ];
    let watcher = vec![Step::Until(150), exists("/later", true)];
    let log = run(Setup {
        scripts: vec![creator, watcher],
        servers_of: every_client_on_all_servers(2),
        faults: Vec::new(),
        read_only: false,
        duration_ms: 600,
        session_timeout_ms: 300,
    });
    let watcher = of(&log, 4);
    let missing = position(&watcher, "exists /later -> no node");
    let created = position(&watcher, "watch NodeCreated /later");
    assert!(missing < created, "{watcher:#?}");
}

#[test]
fn set_data_with_a_stale_version_is_refused_with_bad_version() {
    let client = vec![
        create("/v", "a", CreateMode::Persistent),
        set("/v", "b", 0),
        set("/v", "c", 0),
        set("/v", "d", -1),
        get("/v", false),
    ];
    let log = run(Setup {
        scripts: vec![client],
        servers_of: every_client_on_all_servers(1),
        faults: Vec::new(),
        read_only: false,
        duration_ms: 500,
        session_timeout_ms: 300,
    });
    let lines = of(&log, 3);
    let answers: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains("->"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        answers,
        [
            "create /v -> created /v",
            "set /v -> stat v1",
            "set /v -> error BadVersion",
            "set /v -> stat v2",
            "get /v -> data d v2",
        ]
    );
}

#[test]
fn an_expired_session_takes_its_ephemeral_nodes_and_fires_their_watches() {
    let owner = vec![create("/e", "", CreateMode::Ephemeral)];
    let watcher = vec![
        Step::Until(200),
        exists("/e", true),
        Step::Until(1_200),
        exists("/e", false),
    ];
    let log = run(Setup {
        scripts: vec![owner, watcher],
        servers_of: every_client_on_all_servers(2),
        // The owner crashes at 300 ms and never returns.
        faults: vec![(300, Fault::Crash { node: 3 })],
        read_only: false,
        duration_ms: 1_400,
        session_timeout_ms: 300,
    });
    let watcher = of(&log, 4);
    let present = position(&watcher, "exists /e -> stat v0");
    let deleted = position(&watcher, "watch NodeDeleted /e");
    let gone = position(&watcher, "exists /e -> no node");
    assert!(present < deleted && deleted < gone, "{watcher:#?}");
}

#[test]
fn a_short_cut_is_delay_a_longer_one_loses_the_connection_and_a_long_one_expires_the_session() {
    // Client 3 is cut off from every server for 100 ms, less than its 200 ms read
    // timeout: the connection hides it. Client 4 is cut off for 600 ms, past its 300 ms
    // session. Both talk to server 1 only. Client 5 may use servers 0 and 1; server 0,
    // its first, is cut off from everyone for 600 ms: it moves to server 1 in time.
    let script = |path: &str| vec![Step::Until(200), create(path, "", CreateMode::Ephemeral)];
    let cut = |nodes: Vec<NodeId>, at_ms, heal_ms| {
        vec![
            (
                at_ms,
                Fault::Partition {
                    groups: vec![nodes],
                },
            ),
            (heal_ms, Fault::Heal),
        ]
    };
    let mut faults = cut(vec![3], 400, 500);
    faults.extend(cut(vec![4], 800, 1_400));
    faults.extend(cut(vec![0], 1_600, 2_200));
    let log = run(Setup {
        scripts: vec![script("/short"), script("/long"), script("/moved")],
        servers_of: vec![vec![1], vec![1], vec![0, 1]],
        faults,
        read_only: false,
        duration_ms: 2_600,
        session_timeout_ms: 300,
    });
    let short = of(&log, 3);
    assert_eq!(
        short,
        [
            "connected read_only=false",
            "create /short -> created /short"
        ]
    );
    let long = of(&log, 4);
    let lost = position(&long, "disconnected");
    let expired = position(&long, "expired");
    assert!(lost < expired, "{long:#?}");
    let moved = of(&log, 5);
    assert_eq!(
        moved,
        [
            "connected read_only=false",
            "create /moved -> created /moved",
            "disconnected",
            "connected read_only=false",
        ],
        "client 5 starts on server 0 with this seed"
    );
}

#[test]
fn a_read_only_server_answers_reads_and_refuses_writes() {
    let writer = vec![create("/ro", "1", CreateMode::Persistent)];
    let reader = vec![Step::Until(800), get("/ro", false), set("/ro", "2", -1)];
    // Server 0 and the reader are cut off from the others from 400 ms on.
    let faults = vec![(
        400,
        Fault::Partition {
            groups: vec![vec![0, 4]],
        },
    )];
    let log = run(Setup {
        scripts: vec![writer, reader],
        servers_of: vec![SERVERS.to_vec(), vec![0]],
        faults,
        read_only: true,
        duration_ms: 1_500,
        session_timeout_ms: 300,
    });
    let reader = of(&log, 4);
    let read_only = position(&reader, "connected read_only=true");
    let read = position(&reader, "get /ro -> data 1 v0");
    let refused = position(&reader, "set /ro -> error NotReadOnly");
    assert!(read_only < read && read < refused, "{reader:#?}");
}

#[test]
fn a_server_grants_session_timeouts_between_2_and_20_ticks() {
    use sim_core::proto::registry::server::negotiate_timeout;
    let tick = 20 * MS;
    assert_eq!(negotiate_timeout(MS, tick), 40 * MS);
    assert_eq!(negotiate_timeout(300 * MS, tick), 300 * MS);
    assert_eq!(negotiate_timeout(10_000 * MS, tick), 400 * MS);
    // End to end: a client that asks for 10 s gets 400 ms, so its ephemeral node is
    // gone well before 10 s after it crashes.
    let owner = vec![create("/e", "", CreateMode::Ephemeral)];
    let watcher = vec![
        Step::Until(450),
        exists("/e", false),
        Step::Until(1_700),
        exists("/e", false),
    ];
    let log = run(Setup {
        scripts: vec![owner, watcher],
        servers_of: every_client_on_all_servers(2),
        faults: vec![(500, Fault::Crash { node: 3 })],
        read_only: false,
        duration_ms: 1_900,
        session_timeout_ms: 10_000,
    });
    let watcher = of(&log, 4);
    assert_eq!(
        watcher
            .iter()
            .filter(|l| l.starts_with("exists"))
            .collect::<Vec<_>>(),
        ["exists /e -> stat v0", "exists /e -> no node"],
        "{log:#?}"
    );
}

#[test]
fn a_wall_clock_jump_on_the_servers_expires_no_session() {
    // Every server's clock jumps 2 s ahead at 500 ms (an NTP step): session deadlines
    // are on the monotonic clock, so the leader expires nobody.
    let script = |path: &str| {
        vec![
            create(path, "", CreateMode::Ephemeral),
            Step::Until(1_000),
            exists(path, false),
        ]
    };
    let jump = |node| {
        (
            500,
            Fault::ClockSkew {
                node,
                offset_ns: 2_000 * MS as i64,
                drift_ppm: 0,
            },
        )
    };
    let log = run(Setup {
        scripts: vec![script("/a"), script("/b")],
        servers_of: every_client_on_all_servers(2),
        faults: SERVERS.iter().map(|server| jump(*server)).collect(),
        read_only: false,
        duration_ms: 1_500,
        session_timeout_ms: 300,
    });
    assert!(!log.iter().any(|line| line.contains("expired")), "{log:#?}");
    for (client, path) in [(3, "/a"), (4, "/b")] {
        let lines = of(&log, client);
        assert!(
            lines.contains(&format!("exists {path} -> stat v0")),
            "{lines:#?}"
        );
    }
}

#[test]
fn a_delete_tells_a_client_watching_data_and_children_once() {
    let children = |path: &str| call(Op::GetChildren { path: path.into() }, true);
    let owner = vec![
        create("/d", "", CreateMode::Persistent),
        Step::Until(400),
        call(
            Op::Delete {
                path: "/d".into(),
                version: -1,
            },
            false,
        ),
    ];
    let watcher = vec![Step::Until(200), get("/d", true), children("/d")];
    let log = run(Setup {
        scripts: vec![owner, watcher],
        servers_of: every_client_on_all_servers(2),
        faults: Vec::new(),
        read_only: false,
        duration_ms: 800,
        session_timeout_ms: 300,
    });
    let watcher = of(&log, 4);
    let deleted = watcher
        .iter()
        .filter(|line| *line == "watch NodeDeleted /d")
        .count();
    assert_eq!(deleted, 1, "{watcher:#?}");
}

#[test]
fn with_no_latency_at_all_reconnects_back_off_and_the_run_ends() {
    // Every message arrives the instant it is sent: a client refused by servers that
    // are not serving yet must wait (a jittered, bounded backoff) before it tries the
    // next, or the run spins at t = 0 until its event limit.
    let text = r#"
        name = "zero-latency"
        description = "no latency anywhere"
        protocol = "registry"
        duration = "1s"
        quiet = "1s"

        [[nodes]]
        kind = "server"
        count = 3

        [[nodes]]
        kind = "client"
        count = 3

        [network]
        latency = { dist = "fixed", value = "0s" }

        [params]
        ops = 20
    "#;
    let scenario = sim_core::scenario::parse("zero-latency.toml", text).expect("valid");
    let options = sim_core::scenario::RunOptions {
        seed: Some(1),
        ..Default::default()
    };
    let mut run = scenario.build(&options);
    let report = run_to_end(run.as_mut());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.sim_time_ns, 2_000 * MS, "the run reached its end");
    assert!(report.events < 1_000_000, "{} events", report.events);
}
