//! The event log as a human reads it on a terminal or in a report: aligned columns, each
//! node named with its role (`n3 client`), and values written as their systems write them
//! (ZooKeeper's zxids in hex, as findings already show them). Display only: the trace
//! file keeps the engine's own text.

use sim_core::trace::{EventKind, TraceEvent};

/// Width of the "who" column: `n12 provider -> n3 server` fits.
const WHO_WIDTH: usize = 26;

/// The short role of node `node`: the last part of its kind (`registry.server` ->
/// `server`).
fn role(kinds: &[String], node: u32) -> &str {
    kinds
        .get(node as usize)
        .map_or("?", |kind| kind.rsplit('.').next().unwrap_or(kind))
}

/// One line of the log.
pub fn line(event: &TraceEvent, kinds: &[String]) -> String {
    let seconds = event.time_ns / 1_000_000_000;
    let micros = (event.time_ns % 1_000_000_000) / 1_000;
    let me = format!("n{} {}", event.node, role(kinds, event.node));
    // Faults name what they touch in their text (groups, the node skewed); findings are
    // the checkers'. Neither is node 0's doing, where the engine files them.
    let who = match (event.kind, event.peer) {
        (EventKind::Fault, _) => "cluster".to_string(),
        (EventKind::Finding, _) => "checker".to_string(),
        (EventKind::Send, Some(p)) => format!("{me} -> n{p} {}", role(kinds, p)),
        (EventKind::Deliver | EventKind::Drop, Some(p)) => {
            format!("{me} <- n{p} {}", role(kinds, p))
        }
        (_, Some(p)) => format!("{me} (n{p})"),
        (_, None) => me,
    };
    let reason = event
        .reason
        .map_or(String::new(), |r| format!("{} ", r.as_str()));
    let text = event.text();
    format!(
        "#{:<7} {seconds:>4}.{micros:06}s  {who:<WHO_WIDTH$} {:<8} {reason}{}",
        event.index,
        event.kind.as_str(),
        hex_zxids(&text)
    )
}

/// Writes every `…zxid: N` (zxid, czxid, last_zxid...) in hex, as ZooKeeper prints zxids.
pub fn hex_zxids(text: &str) -> String {
    const KEY: &str = "zxid: ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (before, after) = rest.split_at(at + KEY.len());
        out.push_str(before);
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match after[..digits].parse::<u64>() {
            Ok(zxid) if digits > 0 => out.push_str(&format!("{zxid:#x}")),
            _ => out.push_str(&after[..digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxids_read_as_zookeeper_writes_them() {
        assert_eq!(
            hex_zxids("Response { xid: 54, zxid: 4294967409, czxid: 4294967316, version: 19 }"),
            "Response { xid: 54, zxid: 0x100000071, czxid: 0x100000014, version: 19 }"
        );
        assert_eq!(hex_zxids("zxid: "), "zxid: ");
        assert_eq!(hex_zxids("no numbers here"), "no numbers here");
    }

    #[test]
    fn faults_and_findings_are_not_filed_under_node_0() {
        let kinds = vec!["registry.server".to_string()];
        let mut event = TraceEvent {
            index: 9,
            time_ns: 0,
            kind: EventKind::Fault,
            node: 0,
            peer: None,
            msg: None,
            timer: None,
            reason: None,
            cause: None,
            label: "partition".into(),
            detail: "partition:1,2".into(),
        };
        assert!(line(&event, &kinds).contains("  cluster "));
        assert!(!line(&event, &kinds).contains("nemesis"));
        event.label = "nemesis".into();
        assert!(line(&event, &kinds).ends_with("partition:1,2  (nemesis)"));
        event.kind = EventKind::Finding;
        assert!(line(&event, &kinds).contains("  checker "));
    }

    #[test]
    fn a_line_names_both_ends_with_their_roles_in_aligned_columns() {
        let kinds = vec!["registry.server".to_string(), "registry.client".to_string()];
        let event = TraceEvent {
            index: 7,
            time_ns: 1_500_000,
            kind: EventKind::Send,
            node: 0,
            peer: Some(1),
            msg: Some(3),
            timer: None,
            reason: None,
            cause: None,
            label: "Response".into(),
            detail: "Response { zxid: 4294967297 }".into(),
        };
        let line = line(&event, &kinds);
        assert_eq!(
            line,
            "#7          0.001500s  n0 server -> n1 client     send     Response { zxid: 0x100000001 }"
        );
    }
}
