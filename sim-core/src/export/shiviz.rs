//! A ShiViz log: the file ShiViz's "upload a log" reads, whose first line is the parsing
//! regular expression and second the (empty) delimiter of several executions, then one
//! line per event: the host (`n3`), its vector clock as JSON, and what happened. Each
//! node's boots, sends, deliveries, timers and node faults are events; a delivery merges
//! the clock its message was sent with, so the clocks respect happens-before and ShiViz
//! draws the messages as edges of a space-time diagram. Only messages in flight keep a
//! clock here, so memory follows the in-flight count, not the run's length.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::fates;
use crate::node::MsgId;
use crate::trace::{EventKind, TraceEvent};

/// The parsing expression on the log's first line (ShiViz's named groups).
pub const SHIVIZ_REGEX: &str = r"(?<host>\S+) (?<clock>\{[^}]*\}) (?<event>.*)";

/// A vector clock as ShiViz reads it: `{"n0":3,"n2":1}`, nodes with zero left out.
fn clock_json(clock: &[u64]) -> String {
    let mut text = String::from("{");
    for (node, time) in clock.iter().enumerate().filter(|(_, t)| **t > 0) {
        if text.len() > 1 {
            text.push(',');
        }
        let _ = write!(text, "\"n{node}\":{time}");
    }
    text.push('}');
    text
}

/// The trace events of a run as a ShiViz log; `node_count` sizes the clocks.
pub fn shiviz(events: &[TraceEvent], node_count: u32) -> String {
    let mut remaining = fates(events);
    let mut clocks: Vec<Vec<u64>> = vec![vec![0; node_count as usize]; node_count as usize];
    let mut in_flight: BTreeMap<MsgId, Vec<u64>> = BTreeMap::new();
    let mut out = String::new();
    out.push_str(SHIVIZ_REGEX);
    out.push_str("\n\n");
    for event in events {
        let node = event.node as usize;
        if node >= clocks.len() {
            continue;
        }
        let text = match event.kind {
            EventKind::Start => format!("boot {}", event.label),
            EventKind::Timer => format!("timer {}", event.label),
            EventKind::Send => format!("send {} to n{}", event.label, peer(event)),
            EventKind::Deliver => format!("deliver {} from n{}", event.label, peer(event)),
            EventKind::Crash | EventKind::Restart | EventKind::Pause | EventKind::Resume => {
                event.kind.as_str().to_string()
            }
            EventKind::Drop => {
                // Not an event of any node's; the sent clock is dropped with the message.
                forget(&mut remaining, &mut in_flight, event.msg);
                continue;
            }
            _ => continue,
        };
        if event.kind == EventKind::Deliver {
            if let Some(sent) = event.msg.and_then(|msg| in_flight.get(&msg)) {
                for (mine, theirs) in clocks[node].iter_mut().zip(sent) {
                    *mine = (*mine).max(*theirs);
                }
            }
            forget(&mut remaining, &mut in_flight, event.msg);
        }
        clocks[node][node] += 1;
        if event.kind == EventKind::Send {
            if let Some(msg) = event.msg.filter(|msg| remaining.contains_key(msg)) {
                in_flight.insert(msg, clocks[node].clone());
            }
        }
        let seconds = event.time_ns as f64 / 1e9;
        let _ = writeln!(
            out,
            "n{node} {} {seconds:.6}s {text} (#{})",
            clock_json(&clocks[node]),
            event.index
        );
    }
    out
}

fn peer(event: &TraceEvent) -> String {
    event.peer.map_or("?".to_string(), |peer| peer.to_string())
}

/// One copy of `msg` arrived or was dropped; its sent clock goes with the last copy.
fn forget(
    remaining: &mut BTreeMap<MsgId, u32>,
    in_flight: &mut BTreeMap<MsgId, Vec<u64>>,
    msg: Option<MsgId>,
) {
    let Some(msg) = msg else {
        return;
    };
    if let Some(left) = remaining.get_mut(&msg) {
        *left -= 1;
        if *left == 0 {
            remaining.remove(&msg);
            in_flight.remove(&msg);
        }
    }
}
