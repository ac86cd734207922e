//! The engine's documented rules, one test each, driven by a protocol written the way a
//! user would write one: a single file, a struct per node, `Ctx` for everything.
//!
//! The probe protocol: every node records what it receives and when its timers fire, and
//! a scripted "sender" node sends what the test asks at the times the test asks.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use sim_core::engine::{run_to_end, Limits, Run, Sim, SimConfig};
use sim_core::fault::{Fault, ScheduledFault};
use sim_core::net::{Latency, LinkModel};
use sim_core::{Ctx, Node, NodeId, Proto, TimerId};

struct Probe;

impl Proto for Probe {
    type Msg = Msg;
    type Obs = ();
}

#[derive(Clone, Debug, Serialize)]
enum Msg {
    Hello(u32),
}

const MS: u64 = 1_000_000;

/// What every node saw, shared with the test (a run is single-threaded).
type Log = Rc<RefCell<Vec<String>>>;

struct ProbeNode {
    /// (local delay, destination, payload) sends scheduled by timers at start.
    script: Vec<(u64, NodeId, u32)>,
    log: Log,
}

impl Node<Probe> for ProbeNode {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Probe>) {
        self.log
            .borrow_mut()
            .push(format!("start {} at {}", ctx.id(), ctx.now_ns() / MS));
        for (index, (delay_ns, _, _)) in self.script.iter().enumerate() {
            ctx.set_timer(*delay_ns, index as u64);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Probe>, from: NodeId, msg: Msg) {
        let Msg::Hello(n) = msg;
        let line = format!("{} got {n} from {from} at {}", ctx.id(), ctx.now_ns() / MS);
        self.log.borrow_mut().push(line);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Probe>, _timer: TimerId, tag: u64) {
        let (_, to, n) = self.script[tag as usize];
        ctx.send(to, Msg::Hello(n));
    }
}

/// Node 0 follows `script`; nodes 1 and 2 only listen. Latency is a fixed 10 ms.
fn run(script: Vec<(u64, NodeId, u32)>, faults: Vec<(u64, Fault)>) -> (Vec<String>, Box<dyn Run>) {
    let log: Log = Rc::default();
    let node_log = log.clone();
    let config = SimConfig {
        scenario: "engine-rules".into(),
        seed: 7,
        kinds: vec!["probe".into(); 3],
        link: LinkModel {
            latency: Latency::Fixed { ns: 10 * MS },
            ..LinkModel::default()
        },
        links: Vec::new(),
        faults: faults
            .into_iter()
            .map(|(at_ns, fault)| ScheduledFault { at_ns, fault })
            .collect(),
        nemesis: None,
        fault_phase_ns: 1_000 * MS,
        quiet_ns: 0,
        limits: Limits::default(),
        bugs: Default::default(),
        retain_trace: true,
    };
    let factory = Box::new(move |id: NodeId, _: &str| -> Box<dyn Node<Probe>> {
        let script = if id == 0 { script.clone() } else { Vec::new() };
        Box::new(ProbeNode {
            script,
            log: node_log.clone(),
        })
    });
    let mut sim: Box<dyn Run> = Box::new(Sim::new(config, factory, Vec::new()));
    let report = run_to_end(sim.as_mut());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let lines = log.borrow().clone();
    (lines, sim)
}

fn received(log: &[String]) -> Vec<&String> {
    log.iter().filter(|line| line.contains(" got ")).collect()
}

#[test]
fn a_message_arrives_after_its_link_latency() {
    let (log, _) = run(vec![(5 * MS, 1, 1)], vec![]);
    assert_eq!(received(&log), ["1 got 1 from 0 at 15"]);
}

#[test]
fn with_fixed_latency_a_link_is_fifo() {
    let (log, _) = run(vec![(5 * MS, 1, 1), (5 * MS, 1, 2), (6 * MS, 1, 3)], vec![]);
    assert_eq!(
        received(&log),
        [
            "1 got 1 from 0 at 15",
            "1 got 2 from 0 at 15",
            "1 got 3 from 0 at 16"
        ]
    );
}

#[test]
fn messages_in_flight_to_a_crashed_node_are_lost_even_after_it_restarts() {
    let faults = vec![
        (10 * MS, Fault::Crash { node: 1 }),
        (12 * MS, Fault::Restart { node: 1 }),
    ];
    let (log, sim) = run(vec![(5 * MS, 1, 1), (20 * MS, 1, 2)], faults);
    assert_eq!(
        received(&log),
        ["1 got 2 from 0 at 30"],
        "1 was in flight across the crash"
    );
    assert!(
        log.contains(&"start 1 at 12".to_string()),
        "the restart boots a fresh node"
    );
    let drops = sim
        .trace()
        .retained()
        .iter()
        .filter(|e| e.detail.starts_with("crashed"))
        .count();
    assert_eq!(drops, 1, "the lost message is in the trace with its reason");
}

#[test]
fn a_paused_node_gets_its_messages_in_order_when_it_resumes() {
    let faults = vec![
        (MS, Fault::Pause { node: 1 }),
        (40 * MS, Fault::Resume { node: 1 }),
    ];
    let (log, _) = run(vec![(5 * MS, 1, 1), (6 * MS, 1, 2)], faults);
    assert_eq!(
        received(&log),
        ["1 got 1 from 0 at 40", "1 got 2 from 0 at 40"]
    );
}

#[test]
fn a_partition_drops_messages_on_the_wire_and_heal_restores_the_link() {
    let faults = vec![
        (
            12 * MS,
            Fault::Partition {
                groups: vec![vec![0], vec![1, 2]],
            },
        ),
        (30 * MS, Fault::Heal),
    ];
    let (log, _) = run(
        vec![(5 * MS, 1, 1), (20 * MS, 2, 2), (40 * MS, 1, 3)],
        faults,
    );
    assert_eq!(
        received(&log),
        ["1 got 3 from 0 at 50"],
        "1 was on the wire, 2 sent into the cut"
    );
}

#[test]
fn a_one_way_partition_cuts_one_direction_only() {
    let faults = vec![(
        MS,
        Fault::PartitionOneWay {
            from: vec![0],
            to: vec![1],
        },
    )];
    let (log, _) = run(vec![(5 * MS, 1, 1), (5 * MS, 2, 2)], faults);
    assert_eq!(received(&log), ["2 got 2 from 0 at 15"]);
}

#[test]
fn clock_skew_offsets_the_local_clock_and_drift_changes_its_rate() {
    // Node 1's clock jumps 100 ms ahead at 1 ms and then runs twice as fast.
    let skew = Fault::ClockSkew {
        node: 1,
        offset_ns: 100 * MS as i64,
        drift_ppm: 1_000_000,
    };
    let (log, _) = run(vec![(5 * MS, 1, 1)], vec![(MS, skew)]);
    // Arrives at 15 ms real: 1 + 100 + (15 - 1) * 2 = 129 ms local.
    assert_eq!(received(&log), ["1 got 1 from 0 at 129"]);
}

#[test]
fn timers_run_on_the_local_clock() {
    // Node 0's clock runs twice as fast from 1 ms; it restarts at 3 ms (local 5 ms) and
    // sets its 20 ms timer, which fires after 10 ms of real time.
    let faults = vec![
        (
            MS,
            Fault::ClockSkew {
                node: 0,
                offset_ns: 0,
                drift_ppm: 1_000_000,
            },
        ),
        (2 * MS, Fault::Crash { node: 0 }),
        (3 * MS, Fault::Restart { node: 0 }),
    ];
    let (log, _) = run(vec![(20 * MS, 1, 1)], faults);
    assert!(log.contains(&"start 0 at 5".to_string()), "{log:?}");
    assert_eq!(
        received(&log),
        ["1 got 1 from 0 at 23"],
        "timer at 13 ms plus 10 ms latency"
    );
}

#[test]
fn the_fault_phase_ends_by_restarting_crashed_nodes() {
    let (log, sim) = run(vec![], vec![(5 * MS, Fault::Crash { node: 2 })]);
    assert!(log.contains(&"start 2 at 1000".to_string()), "{log:?}");
    assert!(sim.nodes().iter().all(|node| node.status == "up"));
}

#[test]
fn the_same_inputs_give_the_same_trace_hash() {
    let script = vec![(5 * MS, 1, 1), (6 * MS, 2, 2)];
    let (_, a) = run(script.clone(), vec![(7 * MS, Fault::Crash { node: 1 })]);
    let (_, b) = run(script.clone(), vec![(7 * MS, Fault::Crash { node: 1 })]);
    let (_, c) = run(script, vec![(8 * MS, Fault::Crash { node: 1 })]);
    assert_eq!(a.trace().hash(), b.trace().hash());
    assert_ne!(a.trace().hash(), c.trace().hash());
}

struct Panicker;

impl Node<Probe> for Panicker {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Probe>) {
        ctx.set_timer(3 * MS, 0);
    }
    fn on_message(&mut self, _: &mut Ctx<'_, Probe>, _: NodeId, _: Msg) {}
    fn on_timer(&mut self, _: &mut Ctx<'_, Probe>, _: TimerId, _: u64) {
        panic!("node invariant broken");
    }
}

#[test]
fn a_panic_inside_a_node_is_a_finding_not_a_crash() {
    let config = SimConfig {
        scenario: "panic".into(),
        seed: 1,
        kinds: vec!["panicker".into()],
        link: LinkModel::default(),
        links: Vec::new(),
        faults: Vec::new(),
        nemesis: None,
        fault_phase_ns: 10 * MS,
        quiet_ns: 0,
        limits: Limits::default(),
        bugs: Default::default(),
        retain_trace: false,
    };
    let factory = Box::new(|_: NodeId, _: &str| -> Box<dyn Node<Probe>> { Box::new(Panicker) });
    let mut sim = Sim::new(config, factory, Vec::new());
    let report = run_to_end(&mut sim);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].invariant, "panic");
    assert_eq!(report.findings[0].message, "node invariant broken");
    assert_eq!(report.findings[0].time_ns, 3 * MS);
}

#[test]
fn the_event_limit_ends_a_run_with_a_finding() {
    let config = SimConfig {
        scenario: "limit".into(),
        seed: 1,
        kinds: vec!["probe".into(); 3],
        link: LinkModel::default(),
        links: Vec::new(),
        faults: Vec::new(),
        nemesis: None,
        fault_phase_ns: 1_000 * MS,
        quiet_ns: 0,
        limits: Limits {
            events_max: 2,
            ..Limits::default()
        },
        bugs: Default::default(),
        retain_trace: false,
    };
    let factory = Box::new(|_: NodeId, _: &str| -> Box<dyn Node<Probe>> {
        Box::new(ProbeNode {
            script: Vec::new(),
            log: Rc::default(),
        })
    });
    let mut sim = Sim::new(config, factory, Vec::new());
    let report = run_to_end(&mut sim);
    assert_eq!(report.findings[0].invariant, "limit.events");
    assert_eq!(report.events, 3, "two events and the finding itself");
}
