//! The event record of a run: its streaming canonical hash and, optionally, the events.
//!
//! Every event feeds faultline-hash64 (see `hash`) with three words: `time_ns`,
//! `kind | node << 8 | peer << 40` (peer's low 24 bits; `NO_PEER` when there is none) and
//! `extra` (message id, timer tag or drop reason), then, for sends, notes and faults,
//! the payload bytes: a message's postcard encoding, a note's or fault's UTF-8 text.
//! Retention (for replay, `--trace` and the browser) is optional and bounded by
//! `retain_max`; past it the record is marked truncated but the hash goes on.
//! This module never decides anything about a run; it only writes down what happened.

use serde::{Deserialize, Serialize};

use crate::hash::Hash64;
use crate::node::NodeId;

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
    Observe,
    Finding,
}

impl EventKind {
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
            EventKind::Observe => "observe",
            EventKind::Finding => "finding",
        }
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
    /// Message id for send/deliver/drop, timer tag for timers, else 0.
    #[serde(default)]
    pub extra: u64,
    #[serde(default)]
    pub detail: String,
}

impl TraceEvent {
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
        format!(
            "#{:<7} {seconds:>4}.{micros:06}s  n{}{peer}  {:<8} {}",
            self.index,
            self.node,
            self.kind.as_str(),
            self.detail
        )
    }
}

#[derive(Clone, Debug)]
pub struct Trace {
    hasher: Hash64,
    events: u64,
    retain: bool,
    retain_max: u32,
    retained: Vec<TraceEvent>,
    truncated: bool,
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
        }
    }

    /// Whether callers should build `detail` strings (only worth it when retaining).
    #[inline]
    pub fn wants_detail(&self) -> bool {
        self.retain && !self.truncated
    }

    /// Records one event. `payload` goes into the hash; `detail` is built only when the
    /// event is retained, so a hashing-only run never formats anything.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        time_ns: u64,
        kind: EventKind,
        node: NodeId,
        peer: Option<NodeId>,
        extra: u64,
        payload: &[u8],
        detail: impl FnOnce() -> String,
    ) -> u64 {
        let peer_word = peer.unwrap_or(NO_PEER);
        debug_assert!(peer_word <= NO_PEER, "peer ids fit 24 bits");
        self.hasher.word(time_ns);
        self.hasher
            .word(kind as u64 | (node as u64) << 8 | (peer_word as u64) << 40);
        self.hasher.word(extra);
        if !payload.is_empty() {
            self.hasher.bytes(payload);
        }
        let index = self.events;
        self.events += 1;
        if self.wants_detail() {
            if self.retained.len() as u64 >= self.retain_max as u64 {
                self.truncated = true;
            } else {
                let detail = detail();
                self.retained.push(TraceEvent {
                    index,
                    time_ns,
                    kind,
                    node,
                    peer,
                    extra,
                    detail,
                });
            }
        }
        index
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record_two(trace: &mut Trace, second_time_ns: u64) {
        trace.record(5, EventKind::Send, 0, Some(1), 0, b"ping", || "Ping".into());
        trace.record(
            second_time_ns,
            EventKind::Deliver,
            1,
            Some(0),
            0,
            &[],
            || "Ping".into(),
        );
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
    fn retention_is_bounded_and_says_so() {
        let mut trace = Trace::new(true, 1);
        record_two(&mut trace, 10);
        assert_eq!(trace.retained().len(), 1);
        assert!(trace.truncated());
        assert_eq!(trace.events(), 2);
    }
}
