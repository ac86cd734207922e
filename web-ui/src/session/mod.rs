//! One run as the page shows it: computed in slices so the browser stays responsive, then
//! explored with a cursor (play, pause, step, scrub) that can go anywhere in the run.
//!
//! A session runs the scenario exactly as `faultline run NAME --seed N --bug B --fault F`
//! does (same options, same engine), which is why the trace hash it shows matches the
//! CLI's. The first pass keeps the trace (the event log the page shows), marks where
//! each engine step ended, and snapshots the run every `interval` events. Then the
//! cursor's run stands at the cursor: moving forward steps it; moving back (or far
//! ahead) restores the nearest checkpoint before the target and steps at most one
//! interval, which determinism makes exact. It never touches the DOM.

use std::sync::atomic::{AtomicU64, Ordering};

use sim_core::bugs::BugSet;
use sim_core::check::Finding;
use sim_core::engine::{MetricSample, NodeView, Run};
use sim_core::fault::{Fault, ScheduledFault};
use sim_core::ids::NodeId;
use sim_core::scenario::{self, RunOptions, Scenario};
use sim_core::trace::TraceEvent;
use sim_core::units::format_duration;

use crate::index::Index;

mod checkpoints;
use crate::query::{parse_query, to_query, Request, FAULTS_MAX};
use checkpoints::Checkpoints;

/// Engine steps per slice (one queued event each, which may record several trace
/// events, each formatted for display): a few milliseconds of work in the size-optimised
/// wasm build, short enough that the page never feels frozen, long enough that timer
/// overhead stays small.
pub const STEPS_PER_SLICE: u64 = 5_000;

/// Checkpoints kept at most: when the first pass would take more, the interval doubles
/// and every other checkpoint goes, so memory is at most this many copies of the run's
/// state, and a seek steps at most `interval` events.
pub const CHECKPOINTS_MAX: usize = 192;
/// The starting checkpoint interval, in trace events: a few milliseconds of stepping
/// without formatting in the wasm build.
pub const CHECKPOINT_INTERVAL_MIN: u64 = 4_096;
/// How far before its target a step back's replay leaves a trail snapshot: the most the
/// steps back that follow replay (under a millisecond natively; copying the snapshot's
/// state is the larger part of such a step).
const TRAIL_STRIDE: u64 = 1_024;
/// Trail snapshots kept at most, on top of the checkpoints (memory: this many more
/// copies of the run's state).
const TRAIL_MAX: usize = 8;
/// Arrangements of partition sides the first pass notes at most (see `arrangements`).
pub const ARRANGEMENTS_MAX: usize = 16;

/// The engine step the page is running (its number), or `u64::MAX` between steps. A
/// panic inside a step aborts the wasm instance; the panic hook reads this to reload the
/// page with `panic_step=` so the run stops before that step (see `query`).
pub static STEPPING: AtomicU64 = AtomicU64::new(u64::MAX);

/// Runs one engine step of `run`, or ends the run there if `panic` says that step
/// panics; false once the run has ended.
fn step_run(run: &mut dyn Run, panic: Option<&(u64, String)>) -> bool {
    match panic {
        Some((step, message)) if run.steps() == *step && !run.is_finished() => {
            run.panic_next_step(message.clone());
            false
        }
        _ => {
            STEPPING.store(run.steps(), Ordering::Relaxed);
            let more = run.step();
            STEPPING.store(u64::MAX, Ordering::Relaxed);
            more
        }
    }
}

/// Where a run stands, for the progress line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub now_ns: u64,
    pub end_ns: u64,
    pub events: u64,
    pub finished: bool,
}

/// What the first, complete pass of a run found: what the CLI prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub trace_hash: String,
    pub events: u64,
    pub end_ns: u64,
    pub findings: Vec<Finding>,
}

pub struct Session {
    request: Request,
    scenario: Scenario,
    seed: u64,
    /// The cursor's run: during the first pass, the first pass itself.
    run: Box<dyn Run>,
    /// The finished first pass, which holds the retained trace the page shows.
    first: Option<Box<dyn Run>>,
    /// Snapshots of the first pass, each at the first step that reached its cursor.
    checkpoints: Checkpoints<Box<dyn Run>>,
    /// Snapshots that steps back leave behind, by cursor, all after the checkpoint at
    /// `trail_from` and before the next (at most `TRAIL_MAX`): holding the left arrow
    /// then replays at most `TRAIL_STRIDE` events a step, not a whole interval.
    trail: std::collections::BTreeMap<u64, Box<dyn Run>>,
    trail_from: u64,
    /// Bit `k` set: some engine step ended with exactly `k` trace events recorded, so
    /// the cursor can stand there (one step may record several events).
    boundaries: Vec<u64>,
    /// Whether the cursor's run stands right after the first step that reached its
    /// cursor: the state a position names. Steps that record nothing (a cancelled timer,
    /// the end) move the run on without moving the cursor.
    canonical: bool,
    /// The log's sends, outages and spans, indexed as the first pass records them.
    index: Index,
    /// The first pass's metric samples so far, in one piece for the charts (the run
    /// keeps them in chunks that its checkpoints share).
    metrics: Vec<MetricSample>,
    /// Set once the first pass reached the end.
    summary: Option<Summary>,
    /// The CAP chart's rows for the whole run, once the first pass is done: every render
    /// sizes the canvas by them, and counting them builds the whole chart's series.
    chart_rows: std::cell::OnceCell<u32>,
    /// Where to put the cursor once the first pass is done (`event=` in the URL).
    open_at: Option<u64>,
    /// The arrangements of partition sides the first pass went through, in the order it
    /// met them (at most `ARRANGEMENTS_MAX`): what the CAP chart draws ahead of the
    /// cursor, as each arrangement is an image of its own.
    arrangements: Vec<Vec<u32>>,
    /// The first pass's milestones (faults, findings) seen so far: sides change only at
    /// a fault, so the sides are looked at only when this grows.
    milestones_seen: usize,
}

impl Session {
    /// Builds the run the URL query asks for, or says in a sentence why it cannot.
    pub fn open(search: &str) -> Result<Session, String> {
        let request = parse_query(search)?;
        if let Some(text) = &request.toml {
            let parsed = scenario::parse("address.toml", text).map_err(|errors| {
                let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                format!(
                    "the scenario in the address does not parse: {}",
                    lines.join("; ")
                )
            })?;
            return Self::start(parsed, request);
        }
        let name = request
            .scenario
            .clone()
            .unwrap_or_else(|| scenario::DEFAULT_SCENARIO.to_string());
        let Some(text) = scenario::builtin(&name) else {
            return Err(unknown_scenario_message(&name));
        };
        let parsed = scenario::parse(&format!("{name}.toml"), text).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            format!(
                "built-in scenario `{name}` does not parse: {}",
                lines.join("; ")
            )
        })?;
        Self::start(parsed, request)
    }

    /// Builds a run of a scenario pasted into the page; errors are the CLI's, located.
    pub fn open_text(text: &str, seed: Option<u64>) -> Result<Session, String> {
        let parsed = scenario::parse("pasted.toml", text).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            lines.join("\n")
        })?;
        // The address carries the file itself, so a pasted run can be shared too.
        let request = Request {
            seed,
            toml: Some(scenario::to_toml(&parsed)),
            ..Request::default()
        };
        Self::start(parsed, request)
    }

    fn start(parsed: Scenario, request: Request) -> Result<Session, String> {
        let mut bugs = BugSet::default();
        for name in &request.bugs {
            sim_core::catalogue::enable_bug(&mut bugs, name)?;
        }
        let options = RunOptions {
            seed: request.seed,
            bugs,
            retain_trace: true,
            extra_faults: request.faults.clone(),
        };
        parsed
            .check_options(&options)
            .map_err(|problems| problems.join("; "))?;
        let seed = request.seed.unwrap_or(parsed.seed);
        let run = parsed.build(&options);
        let checkpoints =
            Checkpoints::new(run.snapshot(), CHECKPOINT_INTERVAL_MIN, CHECKPOINTS_MAX);
        let mut session = Session {
            open_at: request.event,
            request,
            scenario: parsed,
            seed,
            run,
            first: None,
            checkpoints,
            trail: std::collections::BTreeMap::new(),
            trail_from: 0,
            boundaries: Vec::new(),
            canonical: true,
            index: Index::default(),
            metrics: Vec::new(),
            summary: None,
            chart_rows: std::cell::OnceCell::new(),
            arrangements: Vec::new(),
            milestones_seen: 0,
        };
        session.note_arrangement();
        session.mark_boundary(0);
        Ok(session)
    }

    fn mark_boundary(&mut self, cursor: u64) {
        let (word, bit) = ((cursor / 64) as usize, cursor % 64);
        if self.boundaries.len() <= word {
            self.boundaries.resize(word + 1, 0);
        }
        self.boundaries[word] |= 1 << bit;
    }

    /// The last step boundary at or before `cursor`.
    fn boundary_at_or_before(&self, cursor: u64) -> u64 {
        let mut at = cursor.min(self.boundaries.len() as u64 * 64 - 1);
        loop {
            let word = self.boundaries[(at / 64) as usize] & (u64::MAX >> (63 - at % 64));
            if word != 0 {
                return at - at % 64 + 63 - u64::from(word.leading_zeros());
            }
            // Boundary 0 is always marked, so the walk ends.
            at = at - at % 64 - 1;
        }
    }

    /// The first step boundary at or after `cursor`, which must not pass the last one.
    fn boundary_at_or_after(&self, cursor: u64) -> u64 {
        let mut word_index = (cursor / 64) as usize;
        let mut word = self.boundaries[word_index] & (u64::MAX << (cursor % 64));
        while word == 0 {
            word_index += 1;
            word = self.boundaries[word_index];
        }
        word_index as u64 * 64 + u64::from(word.trailing_zeros())
    }

    /// Notes the first pass's sides, if new and there is room.
    fn note_arrangement(&mut self) {
        self.milestones_seen = self.run.trace().milestones().len();
        if self.arrangements.len() < ARRANGEMENTS_MAX {
            let sides = self.run.sides();
            if !self.arrangements.contains(&sides) {
                self.arrangements.push(sides);
            }
        }
    }

    /// The arrangements of partition sides the first pass went through, in order: the
    /// whole run's, once it is done.
    pub fn arrangements(&self) -> &[Vec<u32>] {
        &self.arrangements
    }

    /// Takes a checkpoint of the first pass if one is due.
    fn maybe_checkpoint(&mut self) {
        let cursor = self.run.trace().events();
        if self.checkpoints.due(cursor) && !self.run.is_finished() {
            self.checkpoints.push(cursor, self.run.snapshot());
        }
    }

    /// Puts the cursor's run exactly at step boundary `target`: from the nearest
    /// checkpoint or trail snapshot at or before it, or from where it stands if that is
    /// nearer. `leave_trail`: a replay longer than `TRAIL_STRIDE` leaves a snapshot that
    /// far before `target`, for the next steps back.
    fn restore(&mut self, target: u64, leave_trail: bool) {
        debug_assert!(self.boundary_at_or_before(target) == target);
        let here = self.cursor();
        let behind = here > target || (here == target && !self.canonical);
        let (at, checkpoint) = self.checkpoints.at_or_before(target);
        if at != self.trail_from {
            self.trail.clear();
            self.trail_from = at;
        }
        let trail = self.trail.range(..=target).next_back();
        let base = trail.map_or(at, |(cursor, _)| *cursor);
        if behind || base > here {
            self.run = match trail {
                Some((_, snapshot)) => snapshot.snapshot(),
                None => checkpoint.snapshot(),
            };
        }
        let mark = target.saturating_sub(TRAIL_STRIDE);
        let mut leave = leave_trail && self.cursor() < mark;
        while self.cursor() < target {
            let before = self.cursor();
            if !step_run(self.run.as_mut(), self.request.panic.as_ref()) {
                break;
            }
            // Only right after a step that reached its cursor, as checkpoints are taken.
            if leave && self.cursor() > before && self.cursor() >= mark {
                if self.trail.len() == TRAIL_MAX {
                    self.trail.pop_last(); // The farthest ahead: steps back go the other way.
                }
                self.trail.insert(self.cursor(), self.run.snapshot());
                leave = false;
            }
        }
        self.canonical = true;
        debug_assert_eq!(self.cursor(), target, "step boundaries are where steps end");
    }

    /// Runs one slice of the first pass; true while it has more to do. When it ends,
    /// the cursor moves to the event the URL asked for, if any.
    pub fn advance(&mut self) -> bool {
        if self.summary.is_some() {
            return false;
        }
        let now_before_ns = self.run.now_ns();
        let mut more = true;
        for _ in 0..STEPS_PER_SLICE {
            more = step_run(self.run.as_mut(), self.request.panic.as_ref());
            let cursor = self.run.trace().events();
            self.mark_boundary(cursor);
            if self.run.trace().milestones().len() != self.milestones_seen {
                self.note_arrangement();
            }
            if !more {
                break;
            }
            self.maybe_checkpoint();
        }
        self.index.extend(self.run.trace().retained());
        let seen = self.metrics.len();
        self.metrics
            .extend(self.run.metrics().iter_from(seen).cloned());
        assert!(
            self.run.now_ns() >= now_before_ns,
            "virtual time never runs backwards"
        );
        assert!(
            more || self.run.is_finished(),
            "a run stops only by finishing"
        );
        if !more {
            let report = self.run.report();
            self.summary = Some(Summary {
                trace_hash: report.trace_hash,
                events: report.events,
                end_ns: self.run.now_ns(),
                findings: report.findings,
            });
            // The first pass keeps the log; the cursor moves a copy that formats nothing.
            let at_end = self.run.snapshot();
            self.first = Some(std::mem::replace(&mut self.run, at_end));
            self.canonical = false;
            if let Some(event) = self.open_at.take() {
                self.seek(event);
            }
        }
        more
    }

    /// Moves the cursor to just after trace event `event` (clamped to the run): to the
    /// end of the step that recorded it.
    pub fn seek(&mut self, event: u64) {
        let end = self
            .summary
            .as_ref()
            .expect("seek after the first pass")
            .events;
        if event.saturating_add(1) > end {
            // Past the last event: the very end, after the steps that record nothing.
            let first = self.first.as_ref().expect("the first pass is kept");
            self.run = first.snapshot();
            self.canonical = false;
            return;
        }
        let target = self.boundary_at_or_after(event + 1);
        self.restore(target, false);
        debug_assert!(self.cursor() > event || self.cursor() == end);
    }

    /// Moves the cursor to the last event at or before virtual time `time_ns` (to the
    /// start if none): how a compared run follows this one's cursor.
    pub fn seek_time(&mut self, time_ns: u64) {
        let events = self.log().partition_point(|e| e.time_ns <= time_ns) as u64;
        match events {
            0 => self.restore(0, false),
            n => self.seek(n - 1),
        }
    }

    /// The request this session was opened with (its `diff`, say).
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// One engine step forward; false at the end.
    pub fn step(&mut self) -> bool {
        let before = self.cursor();
        let more = step_run(self.run.as_mut(), self.request.panic.as_ref());
        self.canonical = self.cursor() > before;
        more
    }

    /// One engine step back: to where the step that reached the cursor began.
    pub fn step_back(&mut self) {
        let target = self.cursor();
        if target == 0 {
            return;
        }
        let before = self.boundary_at_or_before(target - 1);
        self.restore(before, true);
        debug_assert!(self.cursor() < target);
    }

    /// Trace events so far: the cursor's position.
    pub fn cursor(&self) -> u64 {
        self.run.trace().events()
    }

    pub fn at_end(&self) -> bool {
        self.run.is_finished()
    }

    /// The address of this run with `fault` injected at the cursor's time, opened there;
    /// or why it cannot be injected.
    pub fn inject(&self, faults: &[Fault]) -> Result<String, String> {
        let at_ns = self.run.now_ns();
        if at_ns >= self.scenario.duration_ns {
            return Err(format!(
                "faults can be injected during the fault phase only (0..{}); scrub back first",
                format_duration(self.scenario.duration_ns)
            ));
        }
        let mut request = self.request_here();
        if request.faults.len() + faults.len() > FAULTS_MAX {
            return Err(format!("at most {FAULTS_MAX} injected faults"));
        }
        for fault in faults {
            request.faults.push(ScheduledFault {
                at_ns,
                fault: fault.clone(),
            });
        }
        request.event = Some(self.cursor());
        Ok(to_query(&request))
    }

    /// The address of this run as it stands (scenario, seed, bugs, faults).
    pub fn request_here(&self) -> Request {
        Request {
            scenario: Some(self.scenario.name.clone()),
            toml: self.request.toml.clone(),
            seed: Some(self.seed),
            bugs: self.request.bugs.clone(),
            faults: self.request.faults.clone(),
            event: None,
            // Another run (a fault, a seed) panics elsewhere or not at all: it finds out.
            panic: None,
            diff: self.request.diff.clone(),
        }
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn injected(&self) -> &[ScheduledFault] {
        &self.request.faults
    }

    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }

    pub fn progress(&self) -> Progress {
        Progress {
            now_ns: self.run.now_ns(),
            end_ns: self.run.end_ns(),
            events: self.run.trace().events(),
            finished: self.summary.is_some(),
        }
    }

    /// The final trace hash, once the first pass has finished.
    pub fn trace_hash(&self) -> Option<String> {
        self.summary.as_ref().map(|s| s.trace_hash.clone())
    }

    pub fn nodes(&self) -> Vec<NodeView> {
        self.run.nodes()
    }

    /// The nodes with only `inspect`'s state: what the page draws every frame.
    pub fn nodes_inspecting(&self, inspect: Option<NodeId>) -> Vec<NodeView> {
        self.run.nodes_inspecting(inspect)
    }

    pub fn sides(&self) -> Vec<u32> {
        self.run.sides()
    }

    /// Events up to the cursor (as many as the scenario's trace limit keeps).
    pub fn events(&self) -> &[TraceEvent] {
        match &self.first {
            Some(first) => {
                let all = first.trace().retained();
                &all[..all.len().min(self.cursor() as usize)]
            }
            None => self.run.trace().retained(),
        }
    }

    /// Messages sent between each pair of nodes up to the cursor.
    pub fn link_counts(&self) -> Vec<((NodeId, NodeId), u32)> {
        self.index.link_counts(self.cursor())
    }

    /// Crashes, restarts, pauses and resumes up to the cursor.
    pub fn outage_events(&self) -> impl Iterator<Item = &TraceEvent> {
        self.index.outage_events(self.log(), self.cursor())
    }

    /// RPC span annotations up to the cursor.
    pub fn span_events(&self) -> impl Iterator<Item = &TraceEvent> {
        self.index.span_events(self.log(), self.cursor())
    }

    pub fn has_spans(&self) -> bool {
        self.index.has_spans()
    }

    /// Every retained event of the run, past the cursor too: the first pass's log, or
    /// what it has recorded so far (for the index, seeking by time, comparing runs).
    pub fn log(&self) -> &[TraceEvent] {
        self.first.as_ref().unwrap_or(&self.run).trace().retained()
    }

    /// How many checkpoints the session holds and their interval.
    #[cfg(test)]
    fn checkpoints(&self) -> (usize, u64) {
        (self.checkpoints.len(), self.checkpoints.interval())
    }

    /// The metric samples up to the cursor: the first ones of the first pass's, as
    /// many as the cursor's run has (the two are one run, replayed).
    pub fn metrics(&self) -> &[MetricSample] {
        let upto = self.run.metrics().len();
        debug_assert_eq!(
            self.metrics.get(upto.wrapping_sub(1)),
            self.run.metrics().last(),
            "the cursor's run replays the first pass"
        );
        &self.metrics[..upto]
    }

    /// The CAP chart's rows of the finished run, counted by `count` the first time.
    pub fn chart_rows(&self, count: impl FnOnce() -> u32) -> u32 {
        match self.summary {
            Some(_) => *self.chart_rows.get_or_init(count),
            None => count(),
        }
    }

    /// The whole run's metric samples once the first pass has finished (past the
    /// cursor too), else those up to the cursor.
    pub fn metrics_all(&self) -> &[MetricSample] {
        &self.metrics
    }

    /// Findings of the whole run (the first pass), else those up to the cursor.
    pub fn findings(&self) -> &[Finding] {
        match &self.summary {
            Some(summary) => &summary.findings,
            None => self.run.findings(),
        }
    }
}

/// "unknown scenario `x`; built-in: a, b (did you mean `a`?)"
fn unknown_scenario_message(name: &str) -> String {
    let known = scenario::builtin_names();
    let mut message = format!("unknown scenario `{name}`; built-in: {}", known.join(", "));
    if let Some(close) = sim_core::bugs::closest(name, &known) {
        message.push_str(&format!(" (did you mean `{close}`?)"));
    }
    message
}

#[cfg(test)]
mod tests;
