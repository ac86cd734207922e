//! The engine: virtual clock, the event queue ordered by (time, sequence number), the run
//! loop, seeded random streams, and stepping one event at a time.
//!
//! The engine knows nothing about any protocol. It calls `Node` handlers, drains the
//! intents they recorded on `Ctx` in the order they were made (`handler.rs`), asks `net`
//! for each message's fate, applies `fault`s (`faults.rs`), feeds the `trace`, and hands
//! observations and history to the invariants. Every random draw comes from a ChaCha8
//! stream seeded by the run seed and a fixed stream id, so adding a node never
//! reshuffles the others.
//!
//! Rules users can rely on:
//! - Events at the same virtual time run in the order they were scheduled; one handler's
//!   sends and timers are scheduled in the order it made them.
//! - A crashed node loses its memory, its pending timers and every message in flight to
//!   it (also messages sent before a restart and arriving after it).
//! - A paused node keeps its messages and timers; they run, in order, when it resumes. A
//!   node that crashes while paused loses them.
//! - At the end of the fault phase the engine heals everything (partitions healed, paused
//!   nodes resumed, crashed nodes restarted) and a quiet phase follows, after which the
//!   invariants' liveness checks run.

mod clock;
mod faults;
mod handler;
mod queue;

use std::panic::{catch_unwind, AssertUnwindSafe};

use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::bugs::BugSet;
use crate::check::{Finding, HistoryEvent};
use crate::chunked::Chunked;
use crate::disk::Disk;
use crate::fault::{Fault, Nemesis, NemesisConfig, ScheduledFault};
use crate::invariant::Invariant;
use crate::net::{LinkModel, Net};
use crate::node::{Ids, Intent, LiveTimer, MsgId, Node, NodeId, Proto, TimerId};
use crate::trace::{text_payload, EventKind, Rec, Trace, TraceMark};

use clock::Clock;
use queue::{EventQueue, QUEUE_SLOTS_MAX};

/// Hard bounds on every run; scenarios may lower them, never exceed these.
pub const NODES_MAX: u32 = 100_000;
pub const EVENTS_MAX: u64 = 1_000_000_000;
pub const QUEUE_MAX: u32 = 10_000_000;
pub const FINDINGS_MAX: u32 = 64;
/// Metric samples kept per run; later samples are not recorded (the run says so).
pub const METRIC_SAMPLES_MAX: u32 = 1_000_000;
/// Events held for one paused node before the run stops with a limit finding.
pub const HELD_EVENTS_MAX: u32 = 1_000_000;
/// Nemesis faults a run records (for its report and for shrinking); a run that injects
/// more says so with a limit finding rather than keep a schedule it cannot replay.
pub const INJECTED_MAX: usize = 100_000;

pub use crate::rng::stream;
use crate::rng::{STREAM_DISK_BASE, STREAM_NEMESIS};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub events_max: u64,
    pub queue_max: u32,
    /// Events kept for replay and display (the hash covers all of them regardless).
    pub trace_events_max: u32,
    pub history_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            events_max: 50_000_000,
            queue_max: 1_000_000,
            trace_events_max: 1_000_000,
            history_max: 1_000_000,
        }
    }
}

/// Everything a run needs besides its nodes and invariants; built from a scenario.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub scenario: String,
    pub seed: u64,
    /// The kind of each node, in id order.
    pub kinds: Vec<String>,
    pub link: LinkModel,
    pub links: Vec<(NodeId, NodeId, LinkModel)>,
    pub faults: Vec<ScheduledFault>,
    pub nemesis: Option<NemesisConfig>,
    pub fault_phase_ns: u64,
    pub quiet_ns: u64,
    pub limits: Limits,
    pub bugs: BugSet,
    pub retain_trace: bool,
}

impl SimConfig {
    /// A configuration with no faults, default limits and a one-millisecond network: a
    /// start for tests and benchmarks, which change what they need.
    pub fn new(scenario: &str, seed: u64, kinds: Vec<String>) -> Self {
        Self {
            scenario: scenario.to_string(),
            seed,
            kinds,
            link: LinkModel::default(),
            links: Vec::new(),
            faults: Vec::new(),
            nemesis: None,
            fault_phase_ns: 1_000_000_000,
            quiet_ns: 0,
            limits: Limits::default(),
            bugs: BugSet::default(),
            retain_trace: false,
        }
    }
}

/// Builds a node of a kind; called at boot and at every restart.
/// Shared (`Rc`), so a snapshot of a run can restart nodes too.
pub type Factory<P> = std::rc::Rc<dyn Fn(NodeId, &str) -> Box<dyn Node<P>>>;

#[derive(Clone)]
enum Event<M> {
    Start {
        node: NodeId,
    },
    Deliver {
        from: NodeId,
        to: NodeId,
        incarnation: u32,
        msg_id: MsgId,
        msg: M,
    },
    Timer {
        node: NodeId,
        incarnation: u32,
        timer: TimerId,
    },
    /// Boxed: faults are rare and large, messages are many and small.
    Fault(Box<Fault>),
    Nemesis,
    FaultPhaseEnd,
    End,
}

#[derive(Clone)]
struct Queued<M> {
    time_ns: u64,
    seq: u64,
    event: Event<M>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Up,
    Down,
    Paused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Up => "up",
            Status::Down => "down",
            Status::Paused => "paused",
        }
    }
}

#[derive(Clone)]
struct Slot<P: Proto> {
    node: Option<Box<dyn Node<P>>>,
    status: Status,
    incarnation: u32,
    /// Boxed, like `disk`: cold data kept out of the slot keeps the slots dense in cache.
    rng: Box<ChaCha8Rng>,
    disk: Box<Disk>,
    clock: Clock,
    /// Pending timers in id order; a timer event whose id is not here was cancelled.
    timers: Vec<LiveTimer<P::Timer>>,
    held: Vec<Queued<P::Msg>>,
}

/// One sample of a metric: what node `node` reported at `time_ns`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MetricSample {
    pub time_ns: u64,
    pub node: NodeId,
    /// Mostly a fixed name: borrowed, so copying a run's samples (a checkpoint holds
    /// tens of thousands) allocates nothing for them.
    pub name: std::borrow::Cow<'static, str>,
    pub value: u64,
}

/// What one node looks like from outside, for displays and inspectors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeView {
    pub id: NodeId,
    pub kind: String,
    pub status: &'static str,
    pub role: String,
    pub state: String,
}

/// The outcome of a run, as `faultline run --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub scenario: String,
    pub seed: u64,
    pub trace_hash: String,
    pub events: u64,
    pub sim_time_ns: u64,
    pub findings: Vec<Finding>,
    /// Counts the invariants report besides violations (see `Invariant::stats`).
    pub stats: std::collections::BTreeMap<String, u64>,
    /// Every fault the nemesis injected, in `--fault` spelling and in order: the
    /// schedule that replaces the nemesis when the run is replayed or shrunk.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nemesis_faults: Vec<String>,
    /// The rare-path marks the run reached, with how often (see `Ctx::sometimes`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub marks: std::collections::BTreeMap<String, u64>,
}

/// A run with its protocol types erased, so the CLI and the browser drive any scenario.
pub trait Run {
    /// Runs one event; false once the run has ended.
    fn step(&mut self) -> bool;
    fn is_finished(&self) -> bool;
    fn now_ns(&self) -> u64;
    fn end_ns(&self) -> u64;
    fn trace(&self) -> &Trace;
    fn history(&self) -> &Chunked<HistoryEvent>;
    fn findings(&self) -> &[Finding];
    /// The run's metric samples in time order (see `Ctx::metric`).
    fn metrics(&self) -> &Chunked<MetricSample>;
    fn nodes(&self) -> Vec<NodeView>;
    /// `nodes()` with every `state` empty but `inspect`'s: what a page of many nodes
    /// draws every frame, where only the inspected node's state is shown and building a
    /// hundred nodes' states would cost most of the frame.
    fn nodes_inspecting(&self, inspect: Option<NodeId>) -> Vec<NodeView>;
    /// The faults the nemesis injected so far, in order.
    fn injected(&self) -> &[ScheduledFault];
    /// Partition side of each node; all equal when the network is whole.
    fn sides(&self) -> Vec<u32>;
    /// Ends the run with a `panic` finding because a node panicked during the last step
    /// (see `run_to_end`); what that step recorded before it panicked is forgotten.
    fn end_with_panic(&mut self, message: String);
    /// Steps so far that ran an event: the panicking step's number, for the browser.
    fn steps(&self) -> u64;
    /// Ends the run as if its next step panicked with `message`, without running it:
    /// what the browser does, where a panic aborts and cannot be caught. The run and
    /// its hash are then the ones `end_with_panic` gives after that step.
    fn panic_next_step(&mut self, message: String);
    /// A copy of the run as it stands that runs on exactly as this one would: the same
    /// events, findings and trace hash. It retains no trace events of its own (the trace
    /// so far stays here), so a checkpoint costs the run's state, not its history.
    fn snapshot(&self) -> Box<dyn Run>;
    fn report(&self) -> RunReport;

    /// Runs at most `events` more events; false once the run has ended.
    fn run_for(&mut self, events: u64) -> bool {
        for _ in 0..events {
            if !self.step() {
                return false;
            }
        }
        !self.is_finished()
    }
}

/// The finding a node's panic becomes.
pub const PANIC: &str = "panic";

thread_local! {
    static SIMULATING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is inside `run_to_end`, where a panic is a node's (a finding)
/// rather than the program's: a binary's panic hook stays quiet only then.
pub fn simulating() -> bool {
    SIMULATING.with(|flag| flag.get())
}

/// Runs to the end; a panic inside a node becomes a finding rather than a crash.
pub fn run_to_end(run: &mut dyn Run) -> RunReport {
    let outer = SIMULATING.with(|flag| flag.replace(true));
    let result = catch_unwind(AssertUnwindSafe(|| while run.step() {}));
    SIMULATING.with(|flag| flag.set(outer));
    if let Err(payload) = result {
        let message = if let Some(text) = payload.downcast_ref::<&str>() {
            (*text).to_string()
        } else if let Some(text) = payload.downcast_ref::<String>() {
            text.clone()
        } else {
            "a node panicked with a non-text payload".to_string()
        };
        run.end_with_panic(message);
    }
    run.report()
}

/// One simulated cluster whose nodes speak `P`.
pub struct Sim<P: Proto> {
    config: SimConfig,
    now_ns: u64,
    seq_next: u64,
    ids: Ids,
    queue: EventQueue<Event<P::Msg>>,
    slots: Vec<Slot<P>>,
    factory: Factory<P>,
    invariants: Vec<Box<dyn Invariant<P>>>,
    invariant_failed: Vec<bool>,
    findings: Vec<Finding>,
    /// Chunked: a copy of the run (a checkpoint) shares the samples it has in common.
    history: Chunked<HistoryEvent>,
    metrics: Chunked<MetricSample>,
    /// The intents of the handler being run; kept between handlers for its allocation.
    intents: Vec<Intent<P>>,
    samples: Vec<(NodeId, &'static str, u64)>,
    net: Net,
    nemesis: Option<Nemesis>,
    /// What the nemesis injected (at most `INJECTED_MAX`).
    injected: Vec<ScheduledFault>,
    /// How often each rare-path mark was reached (`Ctx::sometimes`); names are static,
    /// so the map is bounded by the marks the code declares.
    marks: std::collections::BTreeMap<&'static str, u64>,
    trace: Trace,
    /// Steps that ran an event (`Run::steps`).
    steps: u64,
    /// The trace and findings as the current step found them: a step that panics is
    /// forgotten back to here, so the CLI (which catches the panic) and the browser
    /// (which cannot, and stops before the step) end with the same run.
    step_mark: (TraceMark, usize),
    finished: bool,
}

impl<P: Proto> Sim<P> {
    /// Every node's view, with its `inspect()` state where `inspected(id)`.
    fn node_views(&self, inspected: impl Fn(NodeId) -> bool) -> Vec<NodeView> {
        let mut views = Vec::with_capacity(self.slots.len());
        for (id, slot) in self.slots.iter().enumerate() {
            let (role, state) = match &slot.node {
                Some(node) if inspected(id as NodeId) => (node.role(), node.inspect()),
                Some(node) => (node.role(), String::new()),
                None => (String::new(), String::new()),
            };
            views.push(NodeView {
                id: id as NodeId,
                kind: self.config.kinds[id].clone(),
                status: slot.status.as_str(),
                role,
                state,
            });
        }
        views
    }

    pub fn new(
        config: SimConfig,
        factory: Factory<P>,
        invariants: Vec<Box<dyn Invariant<P>>>,
    ) -> Self {
        let node_count = config.kinds.len() as u32;
        assert!(node_count > 0, "a run needs at least one node");
        assert!(node_count <= NODES_MAX);
        assert!(config.limits.events_max <= EVENTS_MAX);
        assert!(config.limits.queue_max <= QUEUE_MAX);
        const _: () = assert!(QUEUE_MAX < QUEUE_SLOTS_MAX);
        let seed = config.seed;
        let mut net = Net::new(node_count, config.link, seed);
        for (from, to, model) in &config.links {
            net.set_link(*from, *to, *model);
        }
        let slots = (0..node_count)
            .map(|id| Slot {
                node: Some(factory(id, &config.kinds[id as usize])),
                status: Status::Up,
                incarnation: 0,
                rng: Box::new(stream(seed, id as u64)),
                disk: Box::new(Disk::new(stream(seed, STREAM_DISK_BASE + id as u64))),
                clock: Clock::default(),
                timers: Vec::new(),
                held: Vec::new(),
            })
            .collect();
        let nemesis = config
            .nemesis
            .clone()
            .map(|nemesis| Nemesis::new(nemesis, &config.kinds, stream(seed, STREAM_NEMESIS)));
        let trace = Trace::new(config.retain_trace, config.limits.trace_events_max);
        let invariant_failed = vec![false; invariants.len()];
        let mut sim = Self {
            config,
            now_ns: 0,
            seq_next: 0,
            ids: Ids {
                msg_next: 0,
                timer_next: 1,
            },
            queue: EventQueue::default(),
            slots,
            factory,
            invariants,
            invariant_failed,
            findings: Vec::new(),
            history: Chunked::default(),
            metrics: Chunked::default(),
            intents: Vec::new(),
            samples: Vec::new(),
            net,
            nemesis,
            injected: Vec::new(),
            marks: std::collections::BTreeMap::new(),
            step_mark: (trace.mark(), 0),
            trace,
            steps: 0,
            finished: false,
        };
        sim.schedule_initial_events();
        sim
    }

    /// See `Run::snapshot`. A struct literal, so a field added to `Sim` cannot be
    /// forgotten here.
    fn copy(&self) -> Self {
        debug_assert!(self.intents.is_empty(), "snapshots are taken between steps");
        Self {
            config: self.config.clone(),
            now_ns: self.now_ns,
            seq_next: self.seq_next,
            ids: self.ids,
            queue: self.queue.clone(),
            slots: self.slots.clone(),
            factory: self.factory.clone(),
            invariants: self.invariants.clone(),
            invariant_failed: self.invariant_failed.clone(),
            findings: self.findings.clone(),
            history: self.history.clone(),
            metrics: self.metrics.clone(),
            intents: Vec::new(),
            samples: self.samples.clone(),
            net: self.net.clone(),
            nemesis: self.nemesis.clone(),
            injected: self.injected.clone(),
            marks: self.marks.clone(),
            trace: self.trace.without_retained(),
            steps: self.steps,
            step_mark: self.step_mark,
            finished: self.finished,
        }
    }

    fn schedule_initial_events(&mut self) {
        for node in 0..self.slots.len() as NodeId {
            self.push(0, Event::Start { node });
        }
        let mut faults = self.config.faults.clone();
        faults.sort_by_key(|fault| fault.at_ns); // Stable: equal times keep file order.
        for fault in faults {
            self.push(fault.at_ns, Event::Fault(Box::new(fault.fault)));
        }
        if let Some(nemesis) = &mut self.nemesis {
            let first_ns = nemesis.first_delay_ns();
            self.push(first_ns, Event::Nemesis);
        }
        self.push(self.config.fault_phase_ns, Event::FaultPhaseEnd);
        self.push(self.end_ns(), Event::End);
    }

    fn push(&mut self, time_ns: u64, event: Event<P::Msg>) {
        debug_assert!(time_ns >= self.now_ns, "no event is scheduled in the past");
        if self.queue.len() as u64 >= self.config.limits.queue_max as u64 {
            let message = format!("more than {} events pending", self.config.limits.queue_max);
            self.stop_at_limit("limit.queue", message);
            return;
        }
        let seq = self.seq_next;
        self.seq_next += 1;
        self.queue.push(time_ns, seq, event);
    }

    fn add_finding(&mut self, invariant: &str, message: String) {
        if self.findings.len() as u32 >= FINDINGS_MAX {
            return;
        }
        let rec = Rec::new(self.now_ns, EventKind::Finding, 0);
        let event = self.trace.record(rec, text_payload(&message), || {
            (invariant.to_string(), message.clone())
        });
        self.findings.push(Finding {
            invariant: invariant.to_string(),
            time_ns: self.now_ns,
            message,
            event,
        });
    }

    /// A bound was reached: the run ends here with a finding naming it (once).
    fn stop_at_limit(&mut self, limit: &str, message: String) {
        if !self.finished {
            self.add_finding(limit, message);
            self.finished = true;
        }
    }

    fn run_one(&mut self, queued: Queued<P::Msg>) {
        match queued.event {
            Event::Start { node } => {
                let rec = Rec::new(self.now_ns, EventKind::Start, node);
                let kind = &self.config.kinds[node as usize];
                let event = self.trace.record(rec, text_payload(kind), || {
                    (kind.clone(), format!("boot {kind}"))
                });
                self.call(node, event, None, |node, ctx| node.on_start(ctx));
            }
            Event::Deliver {
                from,
                to,
                incarnation,
                msg_id,
                msg,
            } => {
                let deliver = handler::Delivery {
                    from,
                    to,
                    incarnation,
                    msg_id,
                };
                self.deliver(deliver, msg, queued.seq, queued.time_ns)
            }
            Event::Timer {
                node,
                incarnation,
                timer,
            } => self.fire_timer(node, incarnation, timer, queued.time_ns, queued.seq),
            Event::Fault(fault) => self.apply_fault(*fault, false),
            Event::Nemesis => {
                if self.now_ns >= self.config.fault_phase_ns {
                    return;
                }
                let nemesis = self
                    .nemesis
                    .as_mut()
                    .expect("nemesis events need a nemesis");
                let (faults, delay_ns) = nemesis.act();
                for fault in faults {
                    if self.injected.len() >= INJECTED_MAX {
                        let message = format!("the nemesis injected over {INJECTED_MAX} faults");
                        self.stop_at_limit("limit.nemesis", message);
                        return;
                    }
                    self.injected.push(ScheduledFault {
                        at_ns: self.now_ns,
                        fault: fault.clone(),
                    });
                    self.apply_fault(fault, true);
                }
                self.push(self.now_ns + delay_ns, Event::Nemesis);
            }
            Event::FaultPhaseEnd => self.heal_all(),
            Event::End => self.finish(),
        }
    }

    /// Keeps one metric sample at the current time, up to `METRIC_SAMPLES_MAX`.
    fn record_metric(&mut self, node: NodeId, name: std::borrow::Cow<'static, str>, value: u64) {
        if self.metrics.len() < METRIC_SAMPLES_MAX as usize {
            let time_ns = self.now_ns;
            self.metrics.push(MetricSample {
                time_ns,
                node,
                name,
                value,
            });
        }
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        let end = crate::invariant::EndState {
            time_ns: self.now_ns,
            up: self
                .slots
                .iter()
                .map(|slot| slot.status != Status::Down)
                .collect(),
        };
        for index in 0..self.invariants.len() {
            if self.invariant_failed[index] {
                continue;
            }
            if let Err(message) = self.invariants[index].at_end(&end) {
                self.invariant_failed[index] = true;
                let name = self.invariants[index].name();
                self.add_finding(name, message);
            }
        }
        self.finished = true;
    }
}

impl<P: Proto> Run for Sim<P> {
    fn step(&mut self) -> bool {
        if self.finished {
            return false;
        }
        self.step_mark = (self.trace.mark(), self.findings.len());
        let Some((time_ns, seq, event)) = self.queue.pop() else {
            self.finish();
            return false;
        };
        self.steps += 1;
        let queued = Queued {
            time_ns,
            seq,
            event,
        };
        debug_assert!(queued.time_ns >= self.now_ns, "time never runs backwards");
        self.now_ns = queued.time_ns;
        if self.trace.events() >= self.config.limits.events_max {
            let message = format!("more than {} events", self.config.limits.events_max);
            self.stop_at_limit("limit.events", message);
            return false;
        }
        self.run_one(queued);
        !self.finished
    }

    fn is_finished(&self) -> bool {
        self.finished
    }

    fn now_ns(&self) -> u64 {
        self.now_ns
    }

    fn end_ns(&self) -> u64 {
        self.config.fault_phase_ns + self.config.quiet_ns
    }

    fn trace(&self) -> &Trace {
        &self.trace
    }

    fn history(&self) -> &Chunked<HistoryEvent> {
        &self.history
    }

    fn findings(&self) -> &[Finding] {
        &self.findings
    }

    fn metrics(&self) -> &Chunked<MetricSample> {
        &self.metrics
    }

    fn nodes(&self) -> Vec<NodeView> {
        self.node_views(|_| true)
    }

    fn nodes_inspecting(&self, inspect: Option<NodeId>) -> Vec<NodeView> {
        self.node_views(|id| Some(id) == inspect)
    }

    fn injected(&self) -> &[ScheduledFault] {
        &self.injected
    }

    fn sides(&self) -> Vec<u32> {
        self.net.sides().to_vec()
    }

    fn snapshot(&self) -> Box<dyn Run> {
        Box::new(self.copy())
    }

    fn end_with_panic(&mut self, message: String) {
        // The panicking handler's intents were never drained; they died with it. What
        // the step recorded before it panicked goes too (see `step_mark`).
        self.intents.clear();
        let (trace, findings) = self.step_mark;
        self.trace.rewind(trace);
        self.findings.truncate(findings);
        self.add_finding(PANIC, message);
        self.finished = true;
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn panic_next_step(&mut self, message: String) {
        assert!(!self.finished, "a finished run has no next step");
        self.step_mark = (self.trace.mark(), self.findings.len());
        self.now_ns = self
            .queue
            .peek_time()
            .unwrap_or(self.now_ns)
            .max(self.now_ns);
        self.steps += 1;
        self.end_with_panic(message);
    }

    fn report(&self) -> RunReport {
        RunReport {
            scenario: self.config.scenario.clone(),
            seed: self.config.seed,
            trace_hash: crate::hash::to_hex(self.trace.hash()),
            events: self.trace.events(),
            sim_time_ns: self.now_ns,
            findings: self.findings.clone(),
            stats: self
                .invariants
                .iter()
                .flat_map(|invariant| invariant.stats())
                .collect(),
            nemesis_faults: self.injected.iter().map(ScheduledFault::spec).collect(),
            marks: self
                .marks
                .iter()
                .map(|(mark, count)| (mark.to_string(), *count))
                .collect(),
        }
    }
}
