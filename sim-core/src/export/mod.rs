//! A run's retained trace in the formats of viewers people already know: Chrome's
//! trace-event JSON, which ui.perfetto.dev and chrome://tracing open (`perfetto.rs`), and
//! a ShiViz log with vector clocks, which ShiViz draws as a space-time diagram
//! (`shiviz.rs`). Both are pure functions from trace events to text: this module never
//! performs I/O and never runs anything; the CLI writes what it returns.

mod perfetto;
mod shiviz;

pub use perfetto::perfetto;
pub use shiviz::{shiviz, SHIVIZ_REGEX};

/// `text` safe inside an XML or HTML element or a double-quoted attribute: for the SVG
/// and HTML that the CLI's report and the browser write from a run's own text.
pub fn xml_escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_plain_text_alone_and_quotes_markup() {
        assert!(matches!(
            xml_escape("node 3"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            xml_escape(r#"a<b & "c">"#),
            "a&lt;b &amp; &quot;c&quot;&gt;"
        );
    }
}
