//! A run's retained trace in the formats of viewers people already know: Chrome's
//! trace-event JSON, which ui.perfetto.dev and chrome://tracing open (`perfetto.rs`), and
//! a ShiViz log with vector clocks, which ShiViz draws as a space-time diagram
//! (`shiviz.rs`). Both are pure functions from trace events to text: this module never
//! performs I/O and never runs anything; the CLI writes what it returns.

mod perfetto;
mod shiviz;

pub use perfetto::perfetto;
pub use shiviz::{shiviz, SHIVIZ_REGEX};

use std::collections::BTreeMap;

use crate::node::MsgId;
use crate::trace::{EventKind, TraceEvent};

/// How many copies of each message the trace shows arriving or dropped (a duplicated
/// message has two): what lets an exporter pair each send with each of its arrivals.
fn fates(events: &[TraceEvent]) -> BTreeMap<MsgId, u32> {
    let mut fates = BTreeMap::new();
    for event in events {
        if let (EventKind::Deliver | EventKind::Drop, Some(msg)) = (event.kind, event.msg) {
            *fates.entry(msg).or_insert(0) += 1;
        }
    }
    fates
}

/// `n3 server`: a node's id and the kind the scenario gave it, unqualified.
fn node_name(node: u32, kinds: &[String]) -> String {
    let kind = kinds.get(node as usize).map_or("", |kind| {
        kind.rsplit_once('.').map_or(kind.as_str(), |(_, k)| k)
    });
    format!("n{node} {kind}")
}
