//! The event record of a run: its streaming canonical hash and, optionally, the events.
//!
//! Every event feeds faultline-hash64 (see `hash`) with three words: `time_ns`,
//! `kind | node << 8 | peer << 40` (peer's low 24 bits; `NO_PEER` when there is none)
//! and `id << 2 | reason` (the message id for sends, deliveries and drops with the drop
//! reason's code, the timer id for timers, else 0), then, for sends, timers, notes,
//! annotations, history events and faults, one payload: a message's or timer's canonical
//! bytes (`canon`), or a text's UTF-8 bytes.
//!
//! Retained events (for replay, `--trace` and the browser) are structured: message and
//! timer ids, drop reasons and each event's cause (the event whose handler made it) are
//! fields of their own, so no reader ever parses `detail`. Retention is optional and
//! bounded by `retain_max`; past it the record is marked truncated but the hash goes on.
//! This module never decides anything about a run; it only writes down what happened.

use serde::{Deserialize, Serialize};

use crate::hash::Hash64;
use crate::ids::{MsgId, NodeId, TimerId};
use crate::net::DropReason;

pub const NO_PEER: u32 = 0x00ff_ffff;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    Start,
    Send,
    Deliver,
    Drop,
    Timer,
    Crash,
    Restart,
    Pause,
    Resume,
    Fault,
    Note,
    Annotate,
    Observe,
    History,
    Finding,
}

impl EventKind {
    pub const ALL: [EventKind; 15] = [
        EventKind::Start,
        EventKind::Send,
        EventKind::Deliver,
        EventKind::Drop,
        EventKind::Timer,
        EventKind::Crash,
        EventKind::Restart,
        EventKind::Pause,
        EventKind::Resume,
        EventKind::Fault,
        EventKind::Note,
        EventKind::Annotate,
        EventKind::Observe,
        EventKind::History,
        EventKind::Finding,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Start => "start",
            EventKind::Send => "send",
            EventKind::Deliver => "deliver",
            EventKind::Drop => "drop",
            EventKind::Timer => "timer",
            EventKind::Crash => "crash",
            EventKind::Restart => "restart",
            EventKind::Pause => "pause",
            EventKind::Resume => "resume",
            EventKind::Fault => "fault",
            EventKind::Note => "note",
            EventKind::Annotate => "annotate",
            EventKind::Observe => "observe",
            EventKind::History => "history",
            EventKind::Finding => "finding",
        }
    }

    /// Whether `id` is a message id for this kind of event.
    fn carries_message(self) -> bool {
        matches!(self, EventKind::Send | EventKind::Deliver | EventKind::Drop)
    }
}

/// What the engine knows of an event when it records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rec {
    pub time_ns: u64,
    pub kind: EventKind,
    pub node: NodeId,
    pub peer: Option<NodeId>,
    /// The message id (send, deliver, drop) or timer id (timer); else 0.
    pub id: u64,
    pub reason: Option<DropReason>,
    /// The trace index of the event whose handler made this one.
    pub cause: Option<u64>,
}

impl Rec {
    pub fn new(time_ns: u64, kind: EventKind, node: NodeId) -> Self {
        Self {
            time_ns,
            kind,
            node,
            peer: None,
            id: 0,
            reason: None,
            cause: None,
        }
    }

    pub fn peer(mut self, peer: NodeId) -> Self {
        self.peer = Some(peer);
        self
    }

    pub fn id(mut self, id: u64) -> Self {
        self.id = id;
        self
    }

    pub fn reason(mut self, reason: DropReason) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn cause(mut self, cause: Option<u64>) -> Self {
        self.cause = cause;
        self
    }
}

/// One retained event, as `--trace` writes it (one JSON object per line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// Position in the run, from 0.
    pub index: u64,
    pub time_ns: u64,
    pub kind: EventKind,
    pub node: NodeId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<NodeId>,
    /// The message's id: a send, its deliveries and its drops share it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg: Option<MsgId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer: Option<TimerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DropReason>,
    /// The index of the event whose handler caused this one (a delivery, a timer, a
    /// start); for a timer, the event whose handler set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<u64>,
    /// A short name: the message's or timer's variant, an annotation's key, a fault's
    /// kind, an invariant's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    #[serde(default)]
    pub detail: String,
}

impl TraceEvent {
    /// What happened, as a log line shows it: an annotation's `key=value`, a finding's
    /// `invariant: message`, a nemesis fault marked as such, else the detail.
    pub fn text(&self) -> String {
        match self.kind {
            EventKind::Annotate => format!("{}={}", self.label, self.detail),
            EventKind::Finding => format!("{}: {}", self.label, self.detail),
            _ if self.label == "nemesis" => format!("{}  (nemesis)", self.detail),
            _ => self.detail.clone(),
        }
    }

    /// One line of the event log `faultline replay` prints.
    pub fn render(&self) -> String {
        let seconds = self.time_ns / 1_000_000_000;
        let micros = (self.time_ns % 1_000_000_000) / 1_000;
        let peer = match (self.kind, self.peer) {
            (EventKind::Send, Some(p)) => format!(" -> {p}"),
            (EventKind::Deliver | EventKind::Drop, Some(p)) => format!(" <- {p}"),
            (_, Some(p)) => format!(" ({p})"),
            (_, None) => String::new(),
        };
        let reason = match self.reason {
            Some(reason) => format!("{} ", reason.as_str()),
            None => String::new(),
        };
        let text = self.text();
        format!(
            "#{:<7} {seconds:>4}.{micros:06}s  n{}{peer}  {:<8} {reason}{text}",
            self.index,
            self.node,
            self.kind.as_str(),
        )
    }
}

/// The leading name of a `Debug` rendering: `Proposal` of `Proposal { epoch: 1 }`.
pub fn label_of(detail: &str) -> String {
    detail
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[derive(Clone, Debug)]
pub struct Trace {
    hasher: Hash64,
    events: u64,
    retain: bool,
    retain_max: u32,
    retained: Vec<TraceEvent>,
    truncated: bool,
    /// Faults, crashes, restarts, pauses, resumes and findings, kept even when the trace
    /// is not retained (the first `MILESTONES_MAX`): a run's timeline.
    milestones: Vec<TraceEvent>,
}

/// A trace's position (`Trace::mark`): a few words, taken at every engine step.
#[derive(Clone, Copy, Debug)]
pub struct TraceMark {
    hasher: Hash64,
    events: u64,
    retained: usize,
    milestones: usize,
    truncated: bool,
}

/// Milestones a trace keeps at most.
pub const MILESTONES_MAX: usize = 1_000;

fn is_milestone(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Crash
            | EventKind::Restart
            | EventKind::Pause
            | EventKind::Resume
            | EventKind::Fault
            | EventKind::Finding
    )
}

impl Trace {
    pub fn new(retain: bool, retain_max: u32) -> Self {
        Self {
            hasher: Hash64::new(),
            events: 0,
            retain,
            retain_max,
            retained: Vec::new(),
            truncated: false,
            milestones: Vec::new(),
        }
    }

    /// A copy that hashes and counts on from here but retains no events (milestones
    /// stay): what a run snapshot carries, so a checkpoint costs the run's state, not
    /// its history.
    pub fn without_retained(&self) -> Self {
        Self {
            hasher: self.hasher,
            events: self.events,
            retain: false,
            retain_max: self.retain_max,
            retained: Vec::new(),
            truncated: self.truncated,
            milestones: self.milestones.clone(),
        }
    }

    /// Where the trace stands, to `rewind` to (see `Run::end_with_panic`).
    #[inline]
    pub fn mark(&self) -> TraceMark {
        TraceMark {
            hasher: self.hasher,
            events: self.events,
            retained: self.retained.len(),
            milestones: self.milestones.len(),
            truncated: self.truncated,
        }
    }

    /// Forgets everything recorded since `mark`, as if it never happened.
    pub fn rewind(&mut self, mark: TraceMark) {
        assert!(mark.events <= self.events, "a mark from this trace's past");
        self.hasher = mark.hasher;
        self.events = mark.events;
        self.retained.truncate(mark.retained);
        self.milestones.truncate(mark.milestones);
        self.truncated = mark.truncated;
    }

    /// Whether callers should build `detail` strings (only worth it when retaining).
    #[inline]
    pub fn wants_detail(&self) -> bool {
        self.retain && !self.truncated
    }

    /// Records one event and returns its index. `payload` feeds the hash (see the module
    /// doc); `detail` (label and text) is built only when the event is retained, so a
    /// hashing-only run never formats anything.
    #[inline]
    pub fn record(
        &mut self,
        rec: Rec,
        payload: impl FnOnce(&mut Hash64),
        detail: impl FnOnce() -> (String, String),
    ) -> u64 {
        let peer_word = rec.peer.unwrap_or(NO_PEER);
        debug_assert!(peer_word <= NO_PEER, "peer ids fit 24 bits");
        debug_assert!(rec.id < 1 << 62, "ids fit 62 bits");
        let reason = rec.reason.map_or(0, DropReason::code);
        self.hasher.word(rec.time_ns);
        self.hasher
            .word(rec.kind as u64 | (rec.node as u64) << 8 | (peer_word as u64) << 40);
        self.hasher.word(rec.id << 2 | reason);
        payload(&mut self.hasher);
        let index = self.events;
        self.events += 1;
        let milestone = is_milestone(rec.kind) && self.milestones.len() < MILESTONES_MAX;
        if self.wants_detail() || milestone {
            self.retain_event(index, rec, detail, milestone);
        }
        index
    }

    #[cold]
    fn retain_event(
        &mut self,
        index: u64,
        rec: Rec,
        detail: impl FnOnce() -> (String, String),
        milestone: bool,
    ) {
        let retain = self.wants_detail();
        if retain && self.retained.len() as u64 >= self.retain_max as u64 {
            self.truncated = true;
            if !milestone {
                return;
            }
        }
        let (label, detail) = detail();
        let event = TraceEvent {
            index,
            time_ns: rec.time_ns,
            kind: rec.kind,
            node: rec.node,
            peer: rec.peer,
            msg: rec.kind.carries_message().then_some(rec.id),
            timer: (rec.kind == EventKind::Timer).then_some(rec.id),
            reason: rec.reason,
            cause: rec.cause,
            label,
            detail,
        };
        if milestone {
            self.milestones.push(event.clone());
        }
        if retain && !self.truncated {
            self.retained.push(event);
        }
    }

    /// The run's faults and findings so far, in order (see `MILESTONES_MAX`).
    pub fn milestones(&self) -> &[TraceEvent] {
        &self.milestones
    }

    pub fn hash(&self) -> u64 {
        self.hasher.finish()
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn retained(&self) -> &[TraceEvent] {
        &self.retained
    }

    /// True when retention hit `retain_max` and later events were hashed but not kept.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

/// Feeds a text's bytes into the hash as one payload.
pub fn text_payload(text: &str) -> impl FnOnce(&mut Hash64) + '_ {
    move |hash: &mut Hash64| {
        let mut payload = hash.payload();
        payload.write(text.as_bytes());
        payload.finish();
    }
}

/// No payload.
pub fn no_payload(_: &mut Hash64) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_two(trace: &mut Trace, second_time_ns: u64) {
        let send = Rec::new(5, EventKind::Send, 0).peer(1).id(7);
        trace.record(send, text_payload("ping"), || {
            ("Ping".into(), "Ping".into())
        });
        let deliver = Rec::new(second_time_ns, EventKind::Deliver, 1)
            .peer(0)
            .id(7)
            .cause(Some(0));
        trace.record(deliver, no_payload, || ("Ping".into(), "Ping".into()));
    }

    #[test]
    fn the_hash_covers_time_kind_and_payload() {
        let mut a = Trace::new(false, 0);
        let mut b = Trace::new(false, 0);
        record_two(&mut a, 10);
        record_two(&mut b, 11);
        assert_ne!(a.hash(), b.hash());
        let mut c = Trace::new(true, 10);
        record_two(&mut c, 10);
        assert_eq!(a.hash(), c.hash(), "retention never changes the hash");
    }

    #[test]
    fn retained_events_carry_structured_fields() {
        let mut trace = Trace::new(true, 10);
        record_two(&mut trace, 10);
        let drop = Rec::new(12, EventKind::Drop, 1)
            .peer(0)
            .id(8)
            .reason(DropReason::Loss);
        trace.record(drop, no_payload, || ("Ping".into(), "Ping".into()));
        let events = trace.retained();
        assert_eq!(events[0].msg, Some(7));
        assert_eq!(events[1].msg, Some(7));
        assert_eq!(events[1].cause, Some(0));
        assert_eq!(events[2].reason, Some(DropReason::Loss));
        assert_eq!(events[2].msg, Some(8));
        assert_eq!(events[0].timer, None);
        let line = serde_json::to_string(&events[2]).unwrap();
        assert!(line.contains(r#""reason":"loss""#), "{line}");
        let back: TraceEvent = serde_json::from_str(&line).unwrap();
        assert_eq!(&back, &events[2]);
    }

    #[test]
    fn a_drop_reason_changes_the_hash() {
        let mut a = Trace::new(false, 0);
        let mut b = Trace::new(false, 0);
        let drop = Rec::new(1, EventKind::Drop, 0).peer(1).id(3);
        a.record(drop.reason(DropReason::Loss), no_payload, Default::default);
        b.record(
            drop.reason(DropReason::Partition),
            no_payload,
            Default::default,
        );
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn retention_is_bounded_and_says_so() {
        let mut trace = Trace::new(true, 1);
        record_two(&mut trace, 10);
        assert_eq!(trace.retained().len(), 1);
        assert!(trace.truncated());
        assert_eq!(trace.events(), 2);
    }

    #[test]
    fn labels_are_the_leading_name() {
        assert_eq!(label_of("Proposal { epoch: 1 }"), "Proposal");
        assert_eq!(label_of("Tick"), "Tick");
        assert_eq!(label_of("(1, 2)"), "");
    }
}
