//! The engine's documented rules, one test each, driven by a protocol written the way a
//! user would write one: a single file, a struct per node, `Ctx` for everything.
//!
//! The probe protocol: every node records what it receives and when its timers fire; a
//! node's script says what it does at given local times (send, arm or cancel a timer,
//! record history, annotate, observe).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde::Serialize;
use sim_core::check::{HistoryEvent, OpFunction, OpType};
use sim_core::engine::{run_to_end, Limits, Run, Sim, SimConfig, FINDINGS_MAX};
use sim_core::fault::{Fault, ScheduledFault};
use sim_core::invariant::Invariant;
use sim_core::net::{Latency, LinkModel};
use sim_core::node::TIMERS_PER_NODE_MAX;
use sim_core::trace::{EventKind, TraceEvent};
use sim_core::{Ctx, Node, NodeId, Proto, TimerId};

#[derive(Clone)]
struct Probe;

impl Proto for Probe {
    type Msg = Msg;
    type Obs = u32;
    type Timer = ProbeTimer;
}

#[derive(Clone, Debug, PartialEq, Serialize)]
enum Msg {
    Hello(u32),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
enum ProbeTimer {
    /// Run the actions of script entry `n`.
    Step(u32),
    /// A timer the script armed, named by a number.
    Named(u32),
}

#[derive(Clone, Debug)]
enum Action {
    Send(NodeId, u32),
    /// Arm `Named(n)` after this many milliseconds.
    Arm(u32, u64),
    CancelById(u32),
    CancelByValue(u32),
    History,
    Annotate,
    Observe(u32),
    /// Arm this many timers at once (a timer leak).
    Flood(u32),
}

const MS: u64 = 1_000_000;

/// What every node saw, shared with the test (a run is single-threaded).
type Log = Rc<RefCell<Vec<String>>>;

/// (local time in ms, actions) per node.
type Script = Vec<(u64, Vec<Action>)>;

#[derive(Clone)]
struct ProbeNode {
    script: Script,
    log: Log,
    armed: BTreeMap<u32, TimerId>,
}

impl ProbeNode {
    fn act(&mut self, ctx: &mut Ctx<'_, Probe>, action: Action) {
        match action {
            Action::Send(to, n) => {
                let id = ctx.send(to, Msg::Hello(n));
                self.log
                    .borrow_mut()
                    .push(format!("{} sent {n} as #{id}", ctx.id()));
            }
            Action::Arm(name, delay_ms) => {
                let id = ctx.set_timer(delay_ms * MS, ProbeTimer::Named(name));
                self.armed.insert(name, id);
            }
            Action::CancelById(name) => {
                let id = self.armed[&name];
                let pending = ctx.cancel_timer(id);
                self.log
                    .borrow_mut()
                    .push(format!("cancel {name}: {pending}"));
            }
            Action::CancelByValue(name) => {
                let count = ctx.cancel_timers(ProbeTimer::Named(name));
                self.log
                    .borrow_mut()
                    .push(format!("cancelled {count} of {name}"));
            }
            Action::History => {
                let event = HistoryEvent::new(1, OpType::Invoke, OpFunction::Write, 5.into());
                ctx.history(event);
            }
            Action::Annotate => ctx.annotate("probe.step", "annotated"),
            Action::Observe(n) => ctx.observe(n),
            Action::Flood(count) => {
                for _ in 0..count {
                    ctx.set_timer(1_000 * MS, ProbeTimer::Named(0));
                }
            }
        }
    }
}

impl Node<Probe> for ProbeNode {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Probe>) {
        let line = format!(
            "start {} at {} (monotonic {})",
            ctx.id(),
            ctx.now_ns() / MS,
            ctx.monotonic_ns() / MS
        );
        self.log.borrow_mut().push(line);
        for (index, (at_ms, _)) in self.script.iter().enumerate() {
            ctx.set_timer(at_ms * MS, ProbeTimer::Step(index as u32));
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Probe>, from: NodeId, msg: Msg) {
        let Msg::Hello(n) = msg;
        let id = ctx.message_id().expect("a delivery has a message id");
        let line = format!(
            "{} got {n} from {from} at {} as #{id}",
            ctx.id(),
            ctx.now_ns() / MS
        );
        self.log.borrow_mut().push(line);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Probe>, _id: TimerId, timer: ProbeTimer) {
        match timer {
            ProbeTimer::Step(index) => {
                for action in self.script[index as usize].1.clone() {
                    self.act(ctx, action);
                }
            }
            ProbeTimer::Named(name) => {
                let line = format!("{} timer {name} at {}", ctx.id(), ctx.now_ns() / MS);
                self.log.borrow_mut().push(line);
            }
        }
    }
}

/// An invariant that fails at the first observation it sees.
#[derive(Clone)]
struct FailsOnObservation(&'static str);

impl Invariant<Probe> for FailsOnObservation {
    fn name(&self) -> &'static str {
        self.0
    }

    fn on_observation(&mut self, _: u64, _: NodeId, obs: &u32) -> Result<(), String> {
        Err(format!("saw {obs}"))
    }
}

struct Setup {
    scripts: Vec<Script>,
    faults: Vec<(u64, Fault)>,
    link: LinkModel,
    limits: Limits,
    invariants: Vec<Box<dyn Invariant<Probe>>>,
}

impl Setup {
    /// Three nodes on a fixed 10 ms network; node 0 follows `script`.
    fn new(script: Script) -> Self {
        Self {
            scripts: vec![script],
            faults: Vec::new(),
            link: LinkModel {
                latency: Latency::Fixed { ns: 10 * MS },
                ..LinkModel::default()
            },
            limits: Limits::default(),
            invariants: Vec::new(),
        }
    }

    fn faults(mut self, faults: Vec<(u64, Fault)>) -> Self {
        self.faults = faults;
        self
    }

    fn sim(self) -> (Sim<Probe>, Log) {
        let log: Log = Rc::default();
        let node_log = log.clone();
        let mut config = SimConfig::new("engine-rules", 7, vec!["probe".into(); 3]);
        config.link = self.link;
        config.faults = self
            .faults
            .into_iter()
            .map(|(at_ns, fault)| ScheduledFault { at_ns, fault })
            .collect();
        config.limits = self.limits;
        config.retain_trace = true;
        let scripts = self.scripts;
        let factory = std::rc::Rc::new(move |id: NodeId, _: &str| -> Box<dyn Node<Probe>> {
            Box::new(ProbeNode {
                script: scripts.get(id as usize).cloned().unwrap_or_default(),
                log: node_log.clone(),
                armed: BTreeMap::new(),
            })
        });
        (Sim::new(config, factory, self.invariants), log)
    }

    fn run(self) -> (Vec<String>, Sim<Probe>) {
        let (mut sim, log) = self.sim();
        let report = run_to_end(&mut sim);
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        let lines = log.borrow().clone();
        (lines, sim)
    }
}

fn received(log: &[String]) -> Vec<String> {
    log.iter()
        .filter(|line| line.contains(" got "))
        .map(|line| line.split(" as #").next().unwrap_or_default().to_string())
        .collect()
}

fn fired(log: &[String]) -> Vec<&String> {
    log.iter().filter(|line| line.contains(" timer ")).collect()
}

fn events_of(sim: &Sim<Probe>, kind: EventKind) -> Vec<TraceEvent> {
    sim.trace()
        .retained()
        .iter()
        .filter(|e| e.kind == kind)
        .cloned()
        .collect()
}

fn send_at(ms: u64, to: NodeId, n: u32) -> (u64, Vec<Action>) {
    (ms, vec![Action::Send(to, n)])
}

#[test]
fn a_message_arrives_after_its_link_latency() {
    let (log, _) = Setup::new(vec![send_at(5, 1, 1)]).run();
    assert_eq!(received(&log), ["1 got 1 from 0 at 15"]);
}

#[test]
fn with_fixed_latency_a_link_is_fifo() {
    let script = vec![send_at(5, 1, 1), send_at(5, 1, 2), send_at(6, 1, 3)];
    let (log, _) = Setup::new(script).run();
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
    let script = vec![send_at(5, 1, 1), send_at(20, 1, 2)];
    let (log, sim) = Setup::new(script).faults(faults).run();
    assert_eq!(
        received(&log),
        ["1 got 2 from 0 at 30"],
        "1 was in flight across the crash"
    );
    assert!(
        log.iter().any(|line| line.starts_with("start 1 at 12")),
        "the restart boots a fresh node"
    );
    let drops = events_of(&sim, EventKind::Drop);
    assert_eq!(drops.len(), 1);
    assert_eq!(drops[0].reason, Some(sim_core::net::DropReason::Crashed));
}

#[test]
fn a_paused_node_gets_its_messages_in_order_when_it_resumes() {
    let faults = vec![
        (MS, Fault::Pause { node: 1 }),
        (40 * MS, Fault::Resume { node: 1 }),
    ];
    let (log, _) = Setup::new(vec![send_at(5, 1, 1), send_at(6, 1, 2)])
        .faults(faults)
        .run();
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
    let script = vec![send_at(5, 1, 1), send_at(20, 2, 2), send_at(40, 1, 3)];
    let (log, _) = Setup::new(script).faults(faults).run();
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
    let (log, _) = Setup::new(vec![send_at(5, 1, 1), send_at(5, 2, 2)])
        .faults(faults)
        .run();
    assert_eq!(received(&log), ["2 got 2 from 0 at 15"]);
}

#[test]
fn a_duplicated_message_is_delivered_twice_with_one_id() {
    let mut setup = Setup::new(vec![send_at(5, 1, 1)]);
    setup.link.duplicate_ppm = 1_000_000;
    let (log, sim) = setup.run();
    let got: Vec<&String> = log.iter().filter(|line| line.contains(" got ")).collect();
    assert_eq!(got.len(), 2, "{log:?}");
    let ids: Vec<&str> = got
        .iter()
        .map(|l| l.split(" as ").nth(1).unwrap())
        .collect();
    assert_eq!(ids[0], ids[1], "both copies carry the send's id");
    let delivers = events_of(&sim, EventKind::Deliver);
    assert_eq!(delivers.len(), 2);
    assert_eq!(delivers[0].msg, delivers[1].msg);
}

#[test]
fn clock_skew_offsets_the_local_clock_and_drift_changes_its_rate() {
    // Node 1's clock jumps 100 ms ahead at 1 ms and then runs twice as fast.
    let skew = Fault::ClockSkew {
        node: 1,
        offset_ns: 100 * MS as i64,
        drift_ppm: 1_000_000,
    };
    let (log, _) = Setup::new(vec![send_at(5, 1, 1)])
        .faults(vec![(MS, skew)])
        .run();
    // Arrives at 15 ms real: 1 + 100 + (15 - 1) * 2 = 129 ms local.
    assert_eq!(received(&log), ["1 got 1 from 0 at 129"]);
}

#[test]
fn the_monotonic_clock_ignores_offsets_but_follows_drift() {
    let faults = vec![
        (
            MS,
            Fault::ClockSkew {
                node: 1,
                offset_ns: 2_000 * MS as i64,
                drift_ppm: 1_000_000,
            },
        ),
        (3 * MS, Fault::Crash { node: 1 }),
        (5 * MS, Fault::Restart { node: 1 }),
    ];
    let (log, _) = Setup::new(Vec::new()).faults(faults).run();
    // At 5 ms real: wall = 1 + 2000 + 4 * 2 = 2009; monotonic = 1 + 4 * 2 = 9.
    assert!(
        log.contains(&"start 1 at 2009 (monotonic 9)".to_string()),
        "{log:?}"
    );
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
    let (log, _) = Setup::new(vec![send_at(20, 1, 1)]).faults(faults).run();
    assert!(
        log.iter().any(|l| l.starts_with("start 0 at 5 ")),
        "{log:?}"
    );
    assert_eq!(
        received(&log),
        ["1 got 1 from 0 at 23"],
        "timer at 13 ms plus 10 ms latency"
    );
}

#[test]
fn a_cancelled_timer_never_fires() {
    let script = vec![
        (1, vec![Action::Arm(1, 10), Action::Arm(2, 10)]),
        (5, vec![Action::CancelById(1)]),
        (20, vec![Action::CancelById(1)]),
    ];
    let (log, _) = Setup::new(script).run();
    assert_eq!(fired(&log), ["0 timer 2 at 11"]);
    assert!(log.contains(&"cancel 1: true".to_string()));
    assert!(
        log.contains(&"cancel 1: false".to_string()),
        "cancelling twice is a no-op"
    );
}

#[test]
fn cancelling_by_value_cancels_every_pending_timer_equal_to_it() {
    let script = vec![
        (
            1,
            vec![Action::Arm(1, 10), Action::Arm(1, 20), Action::Arm(2, 10)],
        ),
        (5, vec![Action::CancelByValue(1)]),
    ];
    let (log, _) = Setup::new(script).run();
    assert!(log.contains(&"cancelled 2 of 1".to_string()), "{log:?}");
    assert_eq!(fired(&log), ["0 timer 2 at 11"]);
}

#[test]
fn a_crash_cancels_every_timer_and_a_restart_starts_afresh() {
    let faults = vec![
        (20 * MS, Fault::Crash { node: 0 }),
        (30 * MS, Fault::Restart { node: 0 }),
    ];
    let script = vec![(1, vec![Action::Arm(1, 40)])];
    let (log, sim) = Setup::new(script).faults(faults).run();
    // The first incarnation's timer (due at 41 ms) dies with it; the restarted node runs
    // its script again and arms a new one, due at 30 + 1 + 40 = 71 ms.
    assert_eq!(fired(&log), ["0 timer 1 at 71"]);
    let named: Vec<TraceEvent> = events_of(&sim, EventKind::Timer)
        .into_iter()
        .filter(|e| e.label == "Named")
        .collect();
    assert_eq!(named.len(), 1, "the dead timer is not in the trace");
}

#[test]
fn a_timer_due_while_paused_fires_at_resume() {
    let faults = vec![
        (5 * MS, Fault::Pause { node: 0 }),
        (30 * MS, Fault::Resume { node: 0 }),
    ];
    let script = vec![(1, vec![Action::Arm(1, 10)])];
    let (log, _) = Setup::new(script).faults(faults).run();
    assert_eq!(fired(&log), ["0 timer 1 at 30"]);
}

#[test]
fn a_crash_while_paused_drops_held_timers_and_messages() {
    let faults = vec![
        (5 * MS, Fault::Pause { node: 1 }),
        (30 * MS, Fault::Crash { node: 1 }),
        (40 * MS, Fault::Restart { node: 1 }),
    ];
    // Node 1 arms a timer due at 11 ms (held while paused); node 0 sends it a message
    // arriving at 16 ms (held too). Both must die with the crash.
    let mut setup = Setup::new(vec![send_at(6, 1, 1)]).faults(faults);
    setup.scripts.push(vec![(1, vec![Action::Arm(9, 10)])]);
    let (log, sim) = setup.run();
    assert!(received(&log).is_empty(), "{log:?}");
    // The restarted node arms its timer again, due at 40 + 1 + 10 = 51 ms; the held one
    // (due at 11 ms) never fires.
    assert_eq!(fired(&log), ["1 timer 9 at 51"]);
    let drops = events_of(&sim, EventKind::Drop);
    assert_eq!(drops.len(), 1, "the held message is dropped at the crash");
    assert_eq!(drops[0].time_ns, 30 * MS);
}

#[test]
fn the_fault_phase_ends_by_restarting_crashed_nodes() {
    let (log, sim) = Setup::new(vec![])
        .faults(vec![(5 * MS, Fault::Crash { node: 2 })])
        .run();
    assert!(
        log.iter().any(|l| l.starts_with("start 2 at 1000")),
        "{log:?}"
    );
    assert!(sim.nodes().iter().all(|node| node.status == "up"));
}

#[test]
fn a_send_returns_the_id_its_delivery_carries_and_handlers_name_their_cause() {
    let script = vec![(
        5,
        vec![Action::Send(1, 1), Action::Annotate, Action::Send(2, 2)],
    )];
    let (log, sim) = Setup::new(script).run();
    assert!(log.contains(&"0 sent 1 as #0".to_string()), "{log:?}");
    assert!(log.contains(&"1 got 1 from 0 at 15 as #0".to_string()));
    let events = sim.trace().retained();
    let step = events
        .iter()
        .find(|e| e.kind == EventKind::Timer && e.label == "Step")
        .expect("the step timer fired");
    let start = events
        .iter()
        .find(|e| e.kind == EventKind::Start && e.node == 0)
        .expect("node 0 started");
    assert_eq!(
        step.cause,
        Some(start.index),
        "a timer's cause is who set it"
    );
    // One handler's intents keep their order in the trace.
    let made: Vec<(EventKind, Option<u64>)> = events
        .iter()
        .filter(|e| e.cause == Some(step.index))
        .map(|e| (e.kind, e.msg))
        .collect();
    assert_eq!(
        made,
        [
            (EventKind::Send, Some(0)),
            (EventKind::Annotate, None),
            (EventKind::Send, Some(1))
        ]
    );
    let annotation = events
        .iter()
        .find(|e| e.kind == EventKind::Annotate)
        .unwrap();
    assert_eq!(
        (annotation.label.as_str(), annotation.detail.as_str()),
        ("probe.step", "annotated")
    );
}

#[test]
fn history_is_recorded_once_stamped_and_traced() {
    let script = vec![(5, vec![Action::History])];
    let (mut sim, _) = Setup::new(script).sim();
    run_to_end(&mut sim);
    assert_eq!(sim.history().len(), 1);
    assert_eq!(sim.history().get(0).and_then(|e| e.time), Some(5 * MS));
    assert_eq!(events_of(&sim, EventKind::History).len(), 1);
}

#[test]
fn the_same_inputs_give_the_same_trace_hash() {
    let script = vec![send_at(5, 1, 1), send_at(6, 2, 2)];
    let crash_at = |ms: u64| vec![(ms * MS, Fault::Crash { node: 1 })];
    let (_, a) = Setup::new(script.clone()).faults(crash_at(7)).run();
    let (_, b) = Setup::new(script.clone()).faults(crash_at(7)).run();
    let (_, c) = Setup::new(script).faults(crash_at(8)).run();
    assert_eq!(a.trace().hash(), b.trace().hash());
    assert_ne!(a.trace().hash(), c.trace().hash());
}

#[derive(Clone)]
struct Panicker;

impl Node<Probe> for Panicker {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Probe>) {
        ctx.set_timer(3 * MS, ProbeTimer::Named(0));
        ctx.send(0, Msg::Hello(0));
    }
    fn on_message(&mut self, _: &mut Ctx<'_, Probe>, _: NodeId, _: Msg) {}
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Probe>, _: TimerId, _: ProbeTimer) {
        ctx.send(0, Msg::Hello(1));
        panic!("node invariant broken");
    }
}

#[test]
fn a_panic_inside_a_node_is_a_finding_not_a_crash() {
    let mut config = SimConfig::new("panic", 1, vec!["panicker".into()]);
    config.fault_phase_ns = 10 * MS;
    let factory =
        std::rc::Rc::new(|_: NodeId, _: &str| -> Box<dyn Node<Probe>> { Box::new(Panicker) });
    let mut sim = Sim::new(config, factory, Vec::new());
    let report = run_to_end(&mut sim);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].invariant, "panic");
    assert_eq!(report.findings[0].message, "node invariant broken");
    assert_eq!(report.findings[0].time_ns, 3 * MS);
}

/// The browser cannot catch a panic: it reloads and stops before the panicking step
/// (`panic_next_step`). The CLI catches it and forgets what the step recorded first.
/// Both must end with the same run, hash included.
#[test]
fn stopping_before_the_panicking_step_gives_the_run_catching_the_panic_gives() {
    let build = || {
        let mut config = SimConfig::new("panic", 1, vec!["panicker".into()]);
        config.fault_phase_ns = 10 * MS;
        let factory =
            std::rc::Rc::new(|_: NodeId, _: &str| -> Box<dyn Node<Probe>> { Box::new(Panicker) });
        Sim::new(config, factory, Vec::new())
    };
    let mut caught = build();
    let report = run_to_end(&mut caught);
    let panicking_step = caught.steps() - 1;
    let mut stopped = build();
    while stopped.steps() < panicking_step {
        assert!(stopped.step(), "the run reaches the panicking step");
    }
    stopped.panic_next_step("node invariant broken".to_string());
    assert_eq!(stopped.report(), report);
    assert!(stopped.is_finished() && !stopped.step());
}

fn findings_of(setup: Setup) -> (Vec<String>, Sim<Probe>) {
    let (mut sim, _) = setup.sim();
    let report = run_to_end(&mut sim);
    let names = report
        .findings
        .iter()
        .map(|f| f.invariant.clone())
        .collect();
    (names, sim)
}

#[test]
fn the_event_limit_ends_a_run_with_a_finding() {
    let mut setup = Setup::new(Vec::new());
    setup.limits.events_max = 2;
    let (findings, sim) = findings_of(setup);
    assert_eq!(findings, ["limit.events"]);
    assert_eq!(sim.trace().events(), 3, "two events and the finding itself");
}

#[test]
fn the_queue_limit_ends_a_run_with_a_finding() {
    let mut setup = Setup::new(vec![(1, vec![Action::Flood(100)])]);
    setup.limits.queue_max = 50;
    let (findings, _) = findings_of(setup);
    assert_eq!(findings, ["limit.queue"]);
}

#[test]
fn the_history_limit_ends_a_run_with_a_finding() {
    let script = (1..=5).map(|ms| (ms, vec![Action::History])).collect();
    let mut setup = Setup::new(script);
    setup.limits.history_max = 3;
    let (findings, sim) = findings_of(setup);
    assert_eq!(findings, ["limit.history"]);
    assert_eq!(sim.history().len(), 3);
}

#[test]
fn a_timer_leak_ends_a_run_with_a_finding() {
    let setup = Setup::new(vec![(1, vec![Action::Flood(TIMERS_PER_NODE_MAX + 1)])]);
    let (findings, _) = findings_of(setup);
    assert_eq!(findings, ["limit.timers"]);
}

#[test]
fn trace_retention_is_bounded_but_the_hash_covers_everything() {
    let script = vec![send_at(5, 1, 1), send_at(6, 1, 2), send_at(7, 1, 3)];
    let (_, full) = Setup::new(script.clone()).run();
    let mut capped = Setup::new(script);
    capped.limits.trace_events_max = 4;
    let (_, capped) = capped.run();
    assert!(capped.trace().truncated());
    assert_eq!(capped.trace().retained().len(), 4);
    assert_eq!(capped.trace().events(), full.trace().events());
    assert_eq!(capped.trace().hash(), full.trace().hash());
}

#[test]
fn findings_are_capped_and_each_invariant_reports_once() {
    let script = vec![(1, vec![Action::Observe(1), Action::Observe(2)])];
    let mut setup = Setup::new(script);
    for _ in 0..FINDINGS_MAX + 10 {
        setup
            .invariants
            .push(Box::new(FailsOnObservation("probe.fails")));
    }
    let (findings, _) = findings_of(setup);
    assert_eq!(findings.len(), FINDINGS_MAX as usize);
}
