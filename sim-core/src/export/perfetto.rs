//! Chrome's trace-event JSON (the "JSON Object Format"), which ui.perfetto.dev and
//! chrome://tracing open: one track (thread) per node plus a `cluster` track; every
//! handler event (boot, send, delivery, timer) a zero-length slice; every message a
//! flow from its send to each arrival (a duplicated message gets a flow per copy); drops,
//! crashes, restarts, pauses and notes instants on their node's track; partitions, heals
//! and findings global instants. Times are microseconds with nanosecond fractions.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::node_name;
use crate::node::MsgId;
use crate::trace::{EventKind, TraceEvent};

const PID: u32 = 1;
/// The `cluster` track: faults and findings that belong to no node.
const CLUSTER_TID: u32 = 0;
/// Flow ids per message: a message arrives at most this often (a copy and a duplicate).
const COPIES_MAX: u64 = 4;

fn tid(node: u32) -> u32 {
    node + 1
}

fn ts(time_ns: u64) -> f64 {
    // Exact for runs shorter than 2^53 ns (104 days).
    time_ns as f64 / 1_000.0
}

/// The trace events of a run as a Chrome trace-event JSON object. `kinds` names each
/// node's kind (in id order); `title` names the run (scenario and seed).
pub fn perfetto(events: &[TraceEvent], kinds: &[String], title: &str) -> String {
    let mut out: Vec<Value> = Vec::with_capacity(events.len() * 2 + kinds.len() * 2 + 4);
    out.push(
        json!({"ph": "M", "name": "process_name", "pid": PID, "tid": CLUSTER_TID,
        "args": {"name": format!("faultline {title}")}}),
    );
    out.push(
        json!({"ph": "M", "name": "thread_name", "pid": PID, "tid": CLUSTER_TID,
        "args": {"name": "cluster"}}),
    );
    for node in 0..kinds.len() as u32 {
        out.push(
            json!({"ph": "M", "name": "thread_name", "pid": PID, "tid": tid(node),
            "args": {"name": node_name(node, kinds)}}),
        );
        out.push(json!({"ph": "M", "name": "thread_sort_index", "pid": PID,
            "tid": tid(node), "args": {"sort_index": tid(node)}}));
    }
    let mut deliveries: BTreeMap<MsgId, u64> = BTreeMap::new();
    for event in events {
        if let (EventKind::Deliver, Some(msg)) = (event.kind, event.msg) {
            *deliveries.entry(msg).or_insert(0) += 1;
        }
    }
    let mut arrived: BTreeMap<MsgId, u64> = BTreeMap::new();
    for event in events {
        let at = ts(event.time_ns);
        let thread = tid(event.node);
        let args = json!({"event": event.index, "detail": event.detail});
        match event.kind {
            EventKind::Start | EventKind::Timer => {
                let name = match event.kind {
                    EventKind::Start => format!("boot {}", event.label),
                    _ => format!("timer {}", event.label),
                };
                out.push(json!({"ph": "X", "name": name, "cat": event.kind.as_str(),
                    "pid": PID, "tid": thread, "ts": at, "dur": 0, "args": args}));
            }
            EventKind::Send => {
                let name = format!("send {}", event.label);
                out.push(json!({"ph": "X", "name": name, "cat": "send", "pid": PID,
                    "tid": thread, "ts": at, "dur": 0, "args": args}));
                if let Some(msg) = event.msg {
                    let copies = deliveries.get(&msg).copied().unwrap_or(0);
                    debug_assert!(copies <= COPIES_MAX);
                    for copy in 0..copies.min(COPIES_MAX) {
                        out.push(json!({"ph": "s", "name": event.label, "cat": "msg",
                            "id": msg * COPIES_MAX + copy, "pid": PID, "tid": thread,
                            "ts": at}));
                    }
                }
            }
            EventKind::Deliver => {
                let name = format!("deliver {}", event.label);
                out.push(
                    json!({"ph": "X", "name": name, "cat": "deliver", "pid": PID,
                    "tid": thread, "ts": at, "dur": 0, "args": args}),
                );
                if let Some(msg) = event.msg {
                    let copy = arrived.entry(msg).or_insert(0);
                    if *copy < COPIES_MAX {
                        out.push(json!({"ph": "f", "bp": "e", "name": event.label,
                            "cat": "msg", "id": msg * COPIES_MAX + *copy, "pid": PID,
                            "tid": thread, "ts": at}));
                    }
                    *copy += 1;
                }
            }
            EventKind::Drop => {
                let reason = event.reason.map_or("", |r| r.as_str());
                let name = format!("drop ({reason}) {}", event.label);
                out.push(json!({"ph": "i", "s": "t", "name": name, "cat": "drop",
                    "pid": PID, "tid": thread, "ts": at, "args": args}));
            }
            EventKind::Crash | EventKind::Restart | EventKind::Pause | EventKind::Resume => {
                let name = if event.detail.is_empty() {
                    event.kind.as_str().to_string()
                } else {
                    event.detail.clone()
                };
                out.push(json!({"ph": "i", "s": "t", "name": name, "cat": "fault",
                    "pid": PID, "tid": thread, "ts": at, "args": args}));
            }
            EventKind::Fault => {
                out.push(
                    json!({"ph": "i", "s": "g", "name": event.detail, "cat": "fault",
                    "pid": PID, "tid": CLUSTER_TID, "ts": at, "args": args}),
                );
            }
            EventKind::Finding => {
                let name = format!("finding {}", event.label);
                out.push(json!({"ph": "i", "s": "g", "name": name, "cat": "finding",
                    "pid": PID, "tid": CLUSTER_TID, "ts": at, "args": args}));
            }
            EventKind::Note | EventKind::Annotate => {
                let name = match event.kind {
                    EventKind::Note => event.detail.clone(),
                    _ => format!("{}={}", event.label, event.detail),
                };
                out.push(json!({"ph": "i", "s": "t", "name": name, "cat": "note",
                    "pid": PID, "tid": thread, "ts": at}));
            }
            // Observations and history events are for checkers; the viewer shows the
            // handler that made them.
            _ => {}
        }
    }
    let document = json!({"traceEvents": out, "displayTimeUnit": "ns",
        "otherData": {"generator": "faultline", "run": title}});
    serde_json::to_string(&document).expect("JSON values serialise")
}
