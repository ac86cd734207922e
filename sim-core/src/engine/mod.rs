//! The engine: virtual clock, the event queue ordered by (time, sequence number), the run
//! loop, seeded random streams, and stepping one event at a time.
//!
//! The engine knows nothing about any protocol. It calls `Node` handlers, drains the
//! intents they recorded on `Ctx`, asks `net` for each message's fate, applies `fault`s,
//! feeds the `trace`, and hands observations to the invariants. Every random draw comes
//! from a ChaCha8 stream seeded by the run seed and a fixed stream id, so adding a node
//! never reshuffles the others.
//!
//! Rules users can rely on:
//! - Events at the same virtual time run in the order they were scheduled.
//! - A crashed node loses its memory, its pending timers and every message in flight to
//!   it (also messages sent before a restart and arriving after it).
//! - A paused node keeps its messages and timers; they run, in order, when it resumes.
//! - At the end of the fault phase the engine heals everything (partitions healed, paused
//!   nodes resumed, crashed nodes restarted) and a quiet phase follows, after which the
//!   invariants' liveness checks run.

mod queue;

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::bugs::BugSet;
use crate::check::{EndState, Finding, HistoryEvent, Invariant};
use crate::disk::Disk;
use crate::fault::{Fault, Nemesis, NemesisConfig, ScheduledFault};
use crate::net::{DropReason, Fate, LinkModel, Net};
use crate::node::{Ctx, Effects, Node, NodeId, Proto, TimerId};
use crate::trace::{EventKind, Trace};

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

/// Random stream ids: nodes use their id; subsystems live above `u32::MAX`.
const STREAM_DISK_BASE: u64 = 1 << 32;
const STREAM_NET: u64 = 2 << 32;
const STREAM_NEMESIS: u64 = (2 << 32) + 1;

/// A random stream derived from the run seed; the same (seed, stream) always gives the
/// same numbers on every target.
pub fn stream(seed: u64, stream_id: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream_id);
    rng
}

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

/// Builds a node of a kind; called at boot and at every restart.
pub type Factory<P> = Box<dyn Fn(NodeId, &str) -> Box<dyn Node<P>>>;

enum Event<M> {
    Start {
        node: NodeId,
    },
    Deliver {
        from: NodeId,
        to: NodeId,
        incarnation: u32,
        msg_id: u64,
        msg: M,
    },
    Timer {
        node: NodeId,
        incarnation: u32,
        timer: TimerId,
        tag: u64,
    },
    /// Boxed: faults are rare and large, messages are many and small.
    Fault(Box<Fault>),
    Nemesis,
    FaultPhaseEnd,
    End,
}

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

/// A node's local clock: `anchor_local + (now - anchor_ns) * (1e6 + drift_ppm) / 1e6`.
#[derive(Clone, Copy, Debug, Default)]
struct Clock {
    anchor_ns: u64,
    anchor_local_ns: u64,
    drift_ppm: i32,
}

impl Clock {
    fn local_ns(&self, now_ns: u64) -> u64 {
        if self.drift_ppm == 0 && self.anchor_ns == self.anchor_local_ns {
            return now_ns;
        }
        let elapsed = (now_ns - self.anchor_ns) as i128;
        let scaled = elapsed * (1_000_000 + self.drift_ppm as i128) / 1_000_000;
        (self.anchor_local_ns as i128 + scaled).max(0) as u64
    }

    /// Real nanoseconds until this clock has advanced `local_delay_ns`.
    fn real_delay_ns(&self, local_delay_ns: u64) -> u64 {
        if self.drift_ppm == 0 {
            return local_delay_ns;
        }
        let rate = (1_000_000 + self.drift_ppm as i128) as u128;
        (local_delay_ns as u128 * 1_000_000).div_ceil(rate) as u64
    }
}

struct Slot<P: Proto> {
    kind: String,
    node: Option<Box<dyn Node<P>>>,
    status: Status,
    incarnation: u32,
    /// Boxed, like `disk`: cold data kept out of the slot keeps the slots dense in cache.
    rng: Box<ChaCha8Rng>,
    disk: Box<Disk>,
    clock: Clock,
    held: Vec<Queued<P::Msg>>,
}

/// One sample of a metric: what node `node` reported at `time_ns`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MetricSample {
    pub time_ns: u64,
    pub node: NodeId,
    pub name: String,
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
}

/// A run with its protocol types erased, so the CLI and the browser drive any scenario.
pub trait Run {
    /// Runs one event; false once the run has ended.
    fn step(&mut self) -> bool;
    fn is_finished(&self) -> bool;
    fn now_ns(&self) -> u64;
    fn end_ns(&self) -> u64;
    fn trace(&self) -> &Trace;
    fn history(&self) -> &[HistoryEvent];
    fn findings(&self) -> &[Finding];
    /// The run's metric samples in time order (see `Ctx::metric`).
    fn metrics(&self) -> &[MetricSample];
    fn nodes(&self) -> Vec<NodeView>;
    /// Partition side of each node; all equal when the network is whole.
    fn sides(&self) -> Vec<u32>;
    /// Ends the run with a finding because a node panicked (see `run_to_end`).
    fn end_with_panic(&mut self, message: String);
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

/// Runs to the end; a panic inside a node becomes a finding rather than a crash.
pub fn run_to_end(run: &mut dyn Run) -> RunReport {
    let result = catch_unwind(AssertUnwindSafe(|| while run.step() {}));
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

/// One simulated cluster of protocol `P`.
pub struct Sim<P: Proto> {
    config: SimConfig,
    now_ns: u64,
    seq_next: u64,
    msg_id_next: u64,
    queue: EventQueue<Event<P::Msg>>,
    slots: Vec<Slot<P>>,
    factory: Factory<P>,
    invariants: Vec<Box<dyn Invariant<P>>>,
    invariant_failed: Vec<bool>,
    findings: Vec<Finding>,
    history: Vec<HistoryEvent>,
    metrics: Vec<MetricSample>,
    effects: Effects<P>,
    live_timers: BTreeSet<TimerId>,
    net: Net,
    nemesis: Option<Nemesis>,
    trace: Trace,
    scratch: Vec<u8>,
    finished: bool,
}

impl<P: Proto> Sim<P> {
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
        let mut net = Net::new(node_count, config.link, stream(seed, STREAM_NET));
        for (from, to, model) in &config.links {
            net.set_link(*from, *to, *model);
        }
        let slots = (0..node_count)
            .map(|id| Slot {
                kind: config.kinds[id as usize].clone(),
                node: Some(factory(id, &config.kinds[id as usize])),
                status: Status::Up,
                incarnation: 0,
                rng: Box::new(stream(seed, id as u64)),
                disk: Box::new(Disk::new(stream(seed, STREAM_DISK_BASE + id as u64))),
                clock: Clock::default(),
                held: Vec::new(),
            })
            .collect();
        let nemesis = config
            .nemesis
            .clone()
            .map(|nemesis| Nemesis::new(nemesis, node_count, stream(seed, STREAM_NEMESIS)));
        let trace = Trace::new(config.retain_trace, config.limits.trace_events_max);
        let invariant_failed = vec![false; invariants.len()];
        let mut sim = Self {
            config,
            now_ns: 0,
            seq_next: 0,
            msg_id_next: 0,
            queue: EventQueue::default(),
            slots,
            factory,
            invariants,
            invariant_failed,
            findings: Vec::new(),
            history: Vec::new(),
            metrics: Vec::new(),
            effects: Effects::default(),
            live_timers: BTreeSet::new(),
            net,
            nemesis,
            trace,
            scratch: Vec::new(),
            finished: false,
        };
        sim.schedule_initial_events();
        sim
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
            if !self.finished {
                let message = format!("more than {} events pending", self.config.limits.queue_max);
                self.add_finding("limit.queue", message);
                self.finished = true;
            }
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
        let bytes = message.as_bytes().to_vec();
        let event = self
            .trace
            .record(self.now_ns, EventKind::Finding, 0, None, 0, &bytes, || {
                format!("{invariant}: {message}")
            });
        self.findings.push(Finding {
            invariant: invariant.to_string(),
            time_ns: self.now_ns,
            message,
            event,
        });
    }

    fn run_one(&mut self, queued: Queued<P::Msg>) {
        match queued.event {
            Event::Start { node } => {
                self.trace
                    .record(self.now_ns, EventKind::Start, node, None, 0, &[], || {
                        format!("boot {}", self.slots[node as usize].kind)
                    });
                self.call(node, |node, ctx| node.on_start(ctx));
            }
            Event::Deliver {
                from,
                to,
                incarnation,
                msg_id,
                msg,
            } => self.deliver(
                from,
                to,
                incarnation,
                msg_id,
                msg,
                queued.seq,
                queued.time_ns,
            ),
            Event::Timer {
                node,
                incarnation,
                timer,
                tag,
            } => self.fire_timer(node, incarnation, timer, tag, queued.time_ns, queued.seq),
            Event::Fault(fault) => self.apply_fault(*fault),
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
                    self.apply_fault(fault);
                }
                self.push(self.now_ns + delay_ns, Event::Nemesis);
            }
            Event::FaultPhaseEnd => self.heal_all(),
            Event::End => self.finish(),
        }
    }

    /// A timer comes due: skipped if cancelled or from a crashed incarnation, held while
    /// its node is paused, otherwise handed to the node.
    fn fire_timer(
        &mut self,
        node: NodeId,
        incarnation: u32,
        timer: TimerId,
        tag: u64,
        time_ns: u64,
        seq: u64,
    ) {
        let slot = &mut self.slots[node as usize];
        if slot.incarnation != incarnation || !self.live_timers.contains(&timer) {
            self.live_timers.remove(&timer);
            return; // Cancelled, or it belonged to a crashed incarnation.
        }
        if slot.status == Status::Paused {
            let event = Event::Timer {
                node,
                incarnation,
                timer,
                tag,
            };
            self.hold(
                node,
                Queued {
                    time_ns,
                    seq,
                    event,
                },
            );
            return;
        }
        self.live_timers.remove(&timer);
        self.trace
            .record(self.now_ns, EventKind::Timer, node, None, tag, &[], || {
                format!("timer {timer} tag {tag}")
            });
        self.call(node, |node, ctx| node.on_timer(ctx, timer, tag));
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        from: NodeId,
        to: NodeId,
        incarnation: u32,
        msg_id: u64,
        msg: P::Msg,
        seq: u64,
        time_ns: u64,
    ) {
        let slot = &self.slots[to as usize];
        let paused = slot.status == Status::Paused;
        let fate = if slot.status == Status::Down || slot.incarnation != incarnation {
            Some(DropReason::Crashed)
        } else if self.net.is_cut(from, to) {
            Some(DropReason::Partition)
        } else {
            None
        };
        if let Some(reason) = fate {
            self.record_drop(to, from, msg_id, reason, &msg);
            return;
        }
        if paused {
            let event = Event::Deliver {
                from,
                to,
                incarnation,
                msg_id,
                msg,
            };
            self.hold(
                to,
                Queued {
                    time_ns,
                    seq,
                    event,
                },
            );
            return;
        }
        let wants_detail = self.trace.wants_detail();
        let detail = if wants_detail {
            format!("{msg:?}")
        } else {
            String::new()
        };
        self.trace.record(
            self.now_ns,
            EventKind::Deliver,
            to,
            Some(from),
            msg_id,
            &[],
            || detail,
        );
        self.call(to, |node, ctx| node.on_message(ctx, from, msg));
    }

    fn record_drop(
        &mut self,
        node: NodeId,
        peer: NodeId,
        msg_id: u64,
        reason: DropReason,
        msg: &P::Msg,
    ) {
        let extra = msg_id << 2 | reason.code();
        self.trace.record(
            self.now_ns,
            EventKind::Drop,
            node,
            Some(peer),
            extra,
            &[],
            || format!("{} {msg:?}", reason.as_str()),
        );
    }

    fn hold(&mut self, node: NodeId, queued: Queued<P::Msg>) {
        let slot = &mut self.slots[node as usize];
        if slot.held.len() as u32 >= HELD_EVENTS_MAX {
            self.add_finding(
                "limit.held",
                format!("node {node} paused with too many events"),
            );
            self.finished = true;
            return;
        }
        slot.held.push(queued);
    }

    /// Runs one handler of `node` and drains what it recorded.
    fn call(&mut self, id: NodeId, handler: impl FnOnce(&mut dyn Node<P>, &mut Ctx<'_, P>)) {
        debug_assert!(self.effects.is_drained());
        let node_count = self.slots.len() as u32;
        let slot = &mut self.slots[id as usize];
        assert_eq!(slot.status, Status::Up, "only running nodes handle events");
        let mut node = slot.node.take().expect("a running node has its state");
        let local_ns = slot.clock.local_ns(self.now_ns);
        let mut ctx = Ctx {
            id,
            node_count,
            local_ns,
            effects: &mut self.effects,
            rng: &mut slot.rng,
            disk: &mut slot.disk,
            bugs: &self.config.bugs,
        };
        handler(node.as_mut(), &mut ctx);
        self.slots[id as usize].node = Some(node);
        self.drain_effects(id);
    }

    fn drain_effects(&mut self, id: NodeId) {
        let mut sends = std::mem::take(&mut self.effects.sends);
        for (to, msg) in sends.drain(..) {
            self.send(id, to, msg);
        }
        self.effects.sends = sends;
        let clock = self.slots[id as usize].clock;
        let incarnation = self.slots[id as usize].incarnation;
        if !self.effects.timers_set.is_empty() {
            let mut timers = std::mem::take(&mut self.effects.timers_set);
            for (timer, local_delay_ns, tag) in timers.drain(..) {
                self.live_timers.insert(timer);
                let time_ns = self
                    .now_ns
                    .saturating_add(clock.real_delay_ns(local_delay_ns));
                self.push(
                    time_ns,
                    Event::Timer {
                        node: id,
                        incarnation,
                        timer,
                        tag,
                    },
                );
            }
            self.effects.timers_set = timers;
        }
        for timer in self.effects.timers_cancelled.drain(..) {
            self.live_timers.remove(&timer);
        }
        if !self.effects.observations.is_empty() {
            self.drain_observations(id);
        }
        if !self.effects.notes.is_empty() {
            for text in std::mem::take(&mut self.effects.notes) {
                let bytes = text.as_bytes();
                self.trace
                    .record(self.now_ns, EventKind::Note, id, None, 0, bytes, || {
                        text.clone()
                    });
            }
        }
        if !self.effects.history.is_empty() {
            self.drain_history();
        }
        let mut metrics = std::mem::take(&mut self.effects.metrics);
        for (name, value) in metrics.drain(..) {
            self.record_metric(id, name, value);
        }
        self.effects.metrics = metrics; // Keep the allocation for the next handler.
    }

    /// Keeps one metric sample at the current time, up to `METRIC_SAMPLES_MAX`.
    fn record_metric(&mut self, node: NodeId, name: String, value: u64) {
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

    fn drain_history(&mut self) {
        for mut event in std::mem::take(&mut self.effects.history) {
            if self.history.len() as u32 >= self.config.limits.history_max {
                let message = format!("history outgrew {} events", self.config.limits.history_max);
                self.add_finding("limit.history", message);
                self.finished = true;
                break;
            }
            event.time = Some(self.now_ns);
            self.history.push(event);
        }
    }

    fn drain_observations(&mut self, id: NodeId) {
        let mut observations = std::mem::take(&mut self.effects.observations);
        for obs in &observations {
            self.trace
                .record(self.now_ns, EventKind::Observe, id, None, 0, &[], || {
                    format!("{obs:?}")
                });
            for index in 0..self.invariants.len() {
                if self.invariant_failed[index] {
                    continue;
                }
                if let Err(message) = self.invariants[index].on_observation(self.now_ns, id, obs) {
                    self.invariant_failed[index] = true;
                    let name = self.invariants[index].name();
                    self.add_finding(name, message);
                }
            }
        }
        let mut samples = Vec::new();
        for invariant in &mut self.invariants {
            invariant.take_samples(&mut samples);
        }
        for (node, name, value) in samples {
            self.record_metric(node, name.to_string(), value);
        }
        observations.clear();
        self.effects.observations = observations; // Keep the allocation for the next call.
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: P::Msg) {
        let msg_id = self.msg_id_next;
        self.msg_id_next += 1;
        let mut payload = std::mem::take(&mut self.scratch);
        payload.clear();
        let payload = postcard::to_extend(&msg, payload).expect("messages serialise");
        self.trace.record(
            self.now_ns,
            EventKind::Send,
            from,
            Some(to),
            msg_id,
            &payload,
            || format!("{msg:?}"),
        );
        self.scratch = payload;
        match self.net.fate(from, to, self.now_ns) {
            Fate::Drop(reason) => self.record_drop(to, from, msg_id, reason, &msg),
            Fate::Deliver {
                delay_ns,
                duplicate_delay_ns,
            } => {
                let incarnation = self.slots[to as usize].incarnation;
                if let Some(duplicate_ns) = duplicate_delay_ns {
                    let copy = Event::Deliver {
                        from,
                        to,
                        incarnation,
                        msg_id,
                        msg: msg.clone(),
                    };
                    self.push(self.now_ns + duplicate_ns, copy);
                }
                let event = Event::Deliver {
                    from,
                    to,
                    incarnation,
                    msg_id,
                    msg,
                };
                self.push(self.now_ns + delay_ns, event);
            }
        }
    }

    fn apply_fault(&mut self, fault: Fault) {
        match fault {
            Fault::Crash { node } => self.crash(node),
            Fault::Restart { node } => self.restart(node),
            Fault::Pause { node } => {
                if self.slots[node as usize].status == Status::Up {
                    self.slots[node as usize].status = Status::Paused;
                    self.trace.record(
                        self.now_ns,
                        EventKind::Pause,
                        node,
                        None,
                        0,
                        &[],
                        String::new,
                    );
                }
            }
            Fault::Resume { node } => self.resume(node),
            other => {
                let text = other.describe();
                let node = other.nodes().first().copied().unwrap_or(0);
                match &other {
                    Fault::Partition { groups } => self.net.partition(groups),
                    Fault::PartitionOneWay { from, to } => self.net.cut_one_way(from, to),
                    Fault::Heal => self.net.heal(),
                    Fault::ClockSkew {
                        node,
                        offset_ns,
                        drift_ppm,
                    } => {
                        let slot = &mut self.slots[*node as usize];
                        let local = slot.clock.local_ns(self.now_ns) as i128;
                        let skewed = if *offset_ns == 0 && *drift_ppm == 0 {
                            self.now_ns as i128 // Undo: back to true time.
                        } else {
                            local + *offset_ns as i128
                        };
                        slot.clock = Clock {
                            anchor_ns: self.now_ns,
                            anchor_local_ns: skewed.max(0) as u64,
                            drift_ppm: *drift_ppm,
                        };
                    }
                    Fault::DiskFault { node, faults } => {
                        self.slots[*node as usize].disk.set_faults(*faults)
                    }
                    _ => unreachable!("node faults are handled above"),
                }
                self.trace.record(
                    self.now_ns,
                    EventKind::Fault,
                    node,
                    None,
                    0,
                    text.as_bytes(),
                    || text.clone(),
                );
            }
        }
    }

    fn crash(&mut self, node: NodeId) {
        let slot = &mut self.slots[node as usize];
        if slot.status == Status::Down {
            return;
        }
        slot.status = Status::Down;
        slot.node = None;
        slot.incarnation += 1;
        slot.disk.crash();
        let held = std::mem::take(&mut slot.held);
        self.trace.record(
            self.now_ns,
            EventKind::Crash,
            node,
            None,
            0,
            &[],
            String::new,
        );
        for queued in held {
            if let Event::Deliver {
                from, msg_id, msg, ..
            } = queued.event
            {
                self.record_drop(node, from, msg_id, DropReason::Crashed, &msg);
            }
        }
        for invariant in &mut self.invariants {
            invariant.on_crash(node);
        }
    }

    fn restart(&mut self, node: NodeId) {
        let slot = &mut self.slots[node as usize];
        if slot.status != Status::Down {
            return;
        }
        slot.node = Some((self.factory)(node, &slot.kind));
        slot.status = Status::Up;
        self.trace.record(
            self.now_ns,
            EventKind::Restart,
            node,
            None,
            0,
            &[],
            String::new,
        );
        self.call(node, |node, ctx| node.on_start(ctx));
    }

    fn resume(&mut self, node: NodeId) {
        let slot = &mut self.slots[node as usize];
        if slot.status != Status::Paused {
            return;
        }
        slot.status = Status::Up;
        let held = std::mem::take(&mut slot.held);
        self.trace.record(
            self.now_ns,
            EventKind::Resume,
            node,
            None,
            0,
            &[],
            String::new,
        );
        for queued in held {
            self.push(self.now_ns, queued.event);
        }
    }

    fn heal_all(&mut self) {
        let text = "fault phase over: heal all, resume paused, restart crashed";
        self.trace.record(
            self.now_ns,
            EventKind::Fault,
            0,
            None,
            0,
            text.as_bytes(),
            || text.into(),
        );
        self.net.heal();
        for node in 0..self.slots.len() as NodeId {
            match self.slots[node as usize].status {
                Status::Paused => self.resume(node),
                Status::Down => self.restart(node),
                Status::Up => {}
            }
        }
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        let end = EndState {
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
        let Some((time_ns, seq, event)) = self.queue.pop() else {
            self.finish();
            return false;
        };
        let queued = Queued {
            time_ns,
            seq,
            event,
        };
        debug_assert!(queued.time_ns >= self.now_ns, "time never runs backwards");
        self.now_ns = queued.time_ns;
        if self.trace.events() >= self.config.limits.events_max {
            let message = format!("more than {} events", self.config.limits.events_max);
            self.add_finding("limit.events", message);
            self.finished = true;
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

    fn history(&self) -> &[HistoryEvent] {
        &self.history
    }

    fn findings(&self) -> &[Finding] {
        &self.findings
    }

    fn metrics(&self) -> &[MetricSample] {
        &self.metrics
    }

    fn nodes(&self) -> Vec<NodeView> {
        let mut views = Vec::with_capacity(self.slots.len());
        for (id, slot) in self.slots.iter().enumerate() {
            let (role, state) = match &slot.node {
                Some(node) => (node.role(), node.inspect()),
                None => (String::new(), String::new()),
            };
            views.push(NodeView {
                id: id as NodeId,
                kind: slot.kind.clone(),
                status: slot.status.as_str(),
                role,
                state,
            });
        }
        views
    }

    fn sides(&self) -> Vec<u32> {
        self.net.sides().to_vec()
    }

    fn end_with_panic(&mut self, message: String) {
        self.add_finding("panic", message);
        self.finished = true;
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
        }
    }
}
