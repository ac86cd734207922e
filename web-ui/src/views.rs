//! What the page draws, computed from a session at its cursor: the topology (a petgraph
//! graph of who talked to whom, laid out in rings), the space-time diagram (one lane per
//! node, an arrow per message), the filtered event log and the CAP series. Plain Rust, so
//! native tests cover it; `app` only turns these values into SVG, HTML and a chart.
//!
//! Display only: floating point here positions pixels and never reaches a run.

use std::collections::BTreeMap;

use petgraph::graphmap::UnGraphMap;
use sim_core::engine::NodeView;
use sim_core::node::NodeId;
use sim_core::proto::rpc::spans::{self, Kind, Span};
use sim_core::trace::{EventKind, TraceEvent};

/// Messages drawn at most in the space-time diagram (the latest ones).
pub const ARROWS_MAX: usize = 600;
/// Lines the event log shows at most (the latest matching ones): twenty are in view and
/// the rest a scroll away; every line is laid out again at each move of the cursor, and
/// 300 were a sixth of a jump. Clicking a line moves the cursor there, so older lines
/// are a click away.
pub const LOG_LINES_MAX: usize = 120;

#[derive(Clone, Debug, PartialEq)]
pub struct TopoNode {
    pub id: NodeId,
    pub kind: String,
    pub role: String,
    pub status: &'static str,
    /// Its side of the partition (all 0 when the network is whole).
    pub side: u32,
    /// Position in the unit square.
    pub x: f64,
    pub y: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TopoLink {
    pub a: NodeId,
    pub b: NodeId,
    /// Messages exchanged so far, both ways.
    pub messages: u32,
    /// The two ends are on different sides of a partition.
    pub cut: bool,
    /// The scenario gives the link (either way) a loss probability.
    pub lossy: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    pub nodes: Vec<TopoNode>,
    pub links: Vec<TopoLink>,
}

/// The nodes in rings (the scenario's first kind inside, the others around it) and a
/// link for every pair that has exchanged messages; `lossy(a, b)` tells whether the
/// scenario loses messages from a to b.
pub fn topology(
    nodes: &[NodeView],
    sides: &[u32],
    link_counts: &[((NodeId, NodeId), u32)],
    lossy: impl Fn(NodeId, NodeId) -> bool,
) -> Topology {
    let mut graph: UnGraphMap<NodeId, u32> = UnGraphMap::new();
    for node in nodes {
        graph.add_node(node.id);
    }
    for ((a, b), count) in link_counts {
        graph.add_edge(*a, *b, *count);
    }
    let inner_kind = nodes.first().map(|n| n.kind.clone()).unwrap_or_default();
    let inner: Vec<&NodeView> = nodes.iter().filter(|n| n.kind == inner_kind).collect();
    let outer: Vec<&NodeView> = nodes.iter().filter(|n| n.kind != inner_kind).collect();
    let mut placed = Vec::with_capacity(nodes.len());
    for (ring, radius) in [(&inner, 0.22), (&outer, 0.42)] {
        let count = ring.len().max(1) as f64;
        for (index, node) in ring.iter().enumerate() {
            // Start at the top and go clockwise; offset the outer ring half a step.
            let offset = if radius > 0.3 { 0.5 } else { 0.0 };
            let angle = std::f64::consts::TAU * (index as f64 + offset) / count
                - std::f64::consts::FRAC_PI_2;
            let (x, y) = if ring.len() == 1 && radius < 0.3 {
                (0.5, 0.5)
            } else {
                (0.5 + radius * angle.cos(), 0.5 + radius * angle.sin())
            };
            placed.push(TopoNode {
                id: node.id,
                kind: node.kind.clone(),
                role: node.role.clone(),
                status: node.status,
                side: sides.get(node.id as usize).copied().unwrap_or(0),
                x,
                y,
            });
        }
    }
    placed.sort_by_key(|node| node.id);
    let side = |id: NodeId| sides.get(id as usize).copied().unwrap_or(0);
    let mut links: Vec<TopoLink> = graph
        .all_edges()
        .map(|(a, b, messages)| TopoLink {
            a: a.min(b),
            b: a.max(b),
            messages: *messages,
            cut: side(a) != side(b),
            lossy: lossy(a, b) || lossy(b, a),
        })
        .collect();
    links.sort_by_key(|link| (link.a, link.b));
    Topology {
        nodes: placed,
        links,
    }
}

/// One message: sent, then delivered, dropped, or still in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrow {
    pub from: NodeId,
    pub to: NodeId,
    pub sent_ns: u64,
    pub arrived_ns: Option<u64>,
    pub dropped: bool,
    /// Why a dropped message was dropped (loss, partition, crashed...).
    pub drop_reason: String,
    pub detail: String,
    /// The send's trace index, for the log and the inspector.
    pub index: u64,
}

/// A crash, restart, pause, resume or fault, drawn across its lane (faults: all lanes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub node: Option<NodeId>,
    pub time_ns: u64,
    pub kind: EventKind,
    pub detail: String,
}

/// A stretch of a node's lane when it was down or paused, clipped to the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outage {
    pub node: NodeId,
    pub start_ns: u64,
    pub end_ns: u64,
    /// `down` (crashed) or `paused`.
    pub status: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceTime {
    pub start_ns: u64,
    pub end_ns: u64,
    pub arrows: Vec<Arrow>,
    pub markers: Vec<Marker>,
    pub outages: Vec<Outage>,
}

/// The messages and faults of the last `window_ns` before `now_ns`; `outage_events`
/// are the run's crashes, restarts, pauses and resumes so far (an outage may have begun
/// long before the window).
pub fn space_time<'a>(
    events: &[TraceEvent],
    now_ns: u64,
    window_ns: u64,
    outage_events: impl IntoIterator<Item = &'a TraceEvent>,
) -> SpaceTime {
    let start_ns = now_ns.saturating_sub(window_ns);
    let first = events.partition_point(|e| e.time_ns < start_ns);
    let mut arrows: Vec<Arrow> = Vec::new();
    let mut by_id: BTreeMap<u64, usize> = BTreeMap::new();
    let mut markers = Vec::new();
    for event in &events[first..] {
        match event.kind {
            EventKind::Send => {
                let Some(to) = event.peer else { continue };
                let Some(msg) = event.msg else { continue };
                by_id.insert(msg, arrows.len());
                arrows.push(Arrow {
                    from: event.node,
                    to,
                    sent_ns: event.time_ns,
                    arrived_ns: None,
                    dropped: false,
                    drop_reason: String::new(),
                    detail: event.detail.clone(),
                    index: event.index,
                });
            }
            EventKind::Deliver => {
                if let Some(&at) = event.msg.and_then(|msg| by_id.get(&msg)) {
                    let arrow = &mut arrows[at];
                    arrow.arrived_ns.get_or_insert(event.time_ns);
                }
            }
            EventKind::Drop => {
                if let Some(&at) = event.msg.and_then(|msg| by_id.get(&msg)) {
                    let arrow = &mut arrows[at];
                    arrow.dropped = true;
                    arrow.arrived_ns = Some(event.time_ns);
                    arrow.drop_reason = event.reason.map_or("", |r| r.as_str()).to_string();
                }
            }
            EventKind::Crash | EventKind::Restart | EventKind::Pause | EventKind::Resume => {
                markers.push(Marker {
                    node: Some(event.node),
                    time_ns: event.time_ns,
                    kind: event.kind,
                    detail: event.detail.clone(),
                });
            }
            EventKind::Fault | EventKind::Finding => markers.push(Marker {
                node: None,
                time_ns: event.time_ns,
                kind: event.kind,
                detail: event.detail.clone(),
            }),
            _ => {}
        }
    }
    if arrows.len() > ARROWS_MAX {
        arrows.drain(..arrows.len() - ARROWS_MAX);
    }
    let end_ns = now_ns.max(start_ns + 1);
    SpaceTime {
        start_ns,
        end_ns,
        arrows,
        markers,
        outages: outages(outage_events, start_ns, end_ns),
    }
}

/// When each node was down or paused, from every crash, restart, pause and resume so
/// far (one may have begun before the window), clipped to `start_ns..end_ns`.
fn outages<'a>(
    events: impl IntoIterator<Item = &'a TraceEvent>,
    start_ns: u64,
    end_ns: u64,
) -> Vec<Outage> {
    let mut open: BTreeMap<(NodeId, &'static str), u64> = BTreeMap::new();
    let mut closed = Vec::new();
    for event in events {
        let (status, begins) = match event.kind {
            EventKind::Crash => ("down", true),
            EventKind::Restart => ("down", false),
            EventKind::Pause => ("paused", true),
            EventKind::Resume => ("paused", false),
            _ => continue,
        };
        let key = (event.node, status);
        if begins {
            open.entry(key).or_insert(event.time_ns);
        } else if let Some(began) = open.remove(&key) {
            closed.push((key, began, event.time_ns));
        }
    }
    closed.extend(open.into_iter().map(|(key, began)| (key, began, end_ns)));
    let mut outages: Vec<Outage> = closed
        .into_iter()
        .filter(|(_, began, ended)| *ended >= start_ns && *began <= end_ns)
        .map(|((node, status), began, ended)| Outage {
            node,
            start_ns: began.max(start_ns),
            end_ns: ended.min(end_ns),
            status,
        })
        .collect();
    outages.sort_by_key(|o| (o.node, o.start_ns));
    outages
}

/// What the event log shows: kinds switched off, a node, a text to find.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub hidden: Vec<EventKind>,
    pub node: Option<NodeId>,
    pub text: String,
}

/// The latest `LOG_LINES_MAX` events that pass the filter, oldest first.
pub fn log_lines<'a>(events: &'a [TraceEvent], filter: &LogFilter) -> Vec<&'a TraceEvent> {
    let text = filter.text.to_lowercase();
    let mut lines: Vec<&TraceEvent> = events
        .iter()
        .rev()
        .filter(|e| !filter.hidden.contains(&e.kind))
        .filter(|e| filter.node.is_none_or(|n| e.node == n || e.peer == Some(n)))
        .filter(|e| text.is_empty() || e.detail.to_lowercase().contains(&text))
        .take(LOG_LINES_MAX)
        .collect();
    lines.reverse();
    lines
}

/// Latest calls the RPC panel lists at most.
pub const TRACES_MAX: usize = 12;

/// The RPC panel: how much each provider served, and the latest calls' traces.
#[derive(Clone, Debug, PartialEq)]
pub struct Rpc {
    /// (node, the service it serves, requests served, of which failed), by node.
    pub load: Vec<(NodeId, String, u64, u64)>,
    /// The latest root calls, newest first.
    pub traces: Vec<TraceRow>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TraceRow {
    pub trace_id: u64,
    pub name: String,
    pub caller: NodeId,
    pub start_ns: u64,
    /// `ok`, the failure's kind, or None while in flight.
    pub outcome: Option<String>,
    pub spans: usize,
}

/// One line of a span tree: a call's client side, then its server side below it, then
/// the calls the server made, further in.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeRow {
    pub depth: usize,
    pub span: Span,
}

/// The RPC panel from the trace's span annotations (`span.cs`...); None for runs
/// without RPC calls.
pub fn rpc<'a>(events: impl IntoIterator<Item = &'a TraceEvent>) -> Option<Rpc> {
    let spans = spans::collect(events);
    if spans.is_empty() {
        return None;
    }
    let mut load: BTreeMap<NodeId, (String, u64, u64)> = BTreeMap::new();
    for span in spans
        .iter()
        .filter(|s| s.kind == Kind::Server && s.end_ns.is_some())
    {
        let entry = load
            .entry(span.node)
            .or_insert_with(|| (span.local.clone(), 0, 0));
        entry.1 += 1;
        entry.2 += (span.outcome.as_deref() != Some("ok")) as u64;
    }
    let mut per_trace: BTreeMap<u64, usize> = BTreeMap::new();
    for span in &spans {
        *per_trace.entry(span.trace_id).or_insert(0) += 1;
    }
    let traces = spans
        .iter()
        .rev()
        .filter(|s| s.kind == Kind::Client && s.parent_id.is_none())
        .take(TRACES_MAX)
        .map(|s| TraceRow {
            trace_id: s.trace_id,
            name: s.name.clone(),
            caller: s.node,
            start_ns: s.start_ns,
            outcome: s.outcome.clone(),
            spans: per_trace[&s.trace_id],
        })
        .collect();
    Some(Rpc {
        load: load
            .into_iter()
            .map(|(node, (service, served, failed))| (node, service, served, failed))
            .collect(),
        traces,
    })
}

/// The span tree of trace `trace_id`, depth first in time order.
pub fn span_tree<'a>(
    events: impl IntoIterator<Item = &'a TraceEvent>,
    trace_id: u64,
) -> Vec<TreeRow> {
    let spans: Vec<Span> = spans::collect(events)
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .collect();
    let mut rows = Vec::new();
    let roots: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == Kind::Client && s.parent_id.is_none())
        .collect();
    for root in roots {
        add_subtree(&spans, root, 0, &mut rows);
    }
    rows
}

/// `client` and below it its server side and the calls that server made.
fn add_subtree(spans: &[Span], client: &Span, depth: usize, rows: &mut Vec<TreeRow>) {
    // Bounded by the trace: a span id appears once per side.
    if rows.len() >= spans.len() {
        return;
    }
    rows.push(TreeRow {
        depth,
        span: client.clone(),
    });
    let server = spans
        .iter()
        .find(|s| s.kind == Kind::Server && s.span_id == client.span_id);
    if let Some(server) = server {
        rows.push(TreeRow {
            depth: depth + 1,
            span: server.clone(),
        });
    }
    for child in spans
        .iter()
        .filter(|s| s.kind == Kind::Client && s.parent_id == Some(client.span_id))
    {
        add_subtree(spans, child, depth + 2, rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        index: u64,
        time_ns: u64,
        kind: EventKind,
        node: NodeId,
        peer: Option<NodeId>,
        extra: u64,
    ) -> TraceEvent {
        TraceEvent {
            index,
            time_ns,
            kind,
            node,
            peer,
            msg: matches!(kind, EventKind::Send | EventKind::Deliver | EventKind::Drop)
                .then_some(extra),
            timer: None,
            reason: None,
            cause: None,
            label: String::new(),
            detail: format!("{kind:?} {index}"),
        }
    }

    fn view(id: NodeId, kind: &str) -> NodeView {
        NodeView {
            id,
            kind: kind.into(),
            status: "up",
            role: String::new(),
            state: String::new(),
        }
    }

    #[test]
    fn links_are_the_pairs_that_talked_and_cut_across_sides() {
        let nodes = [view(0, "server"), view(1, "server"), view(2, "client")];
        let events = [
            event(0, 1, EventKind::Send, 0, Some(1), 1),
            event(1, 2, EventKind::Send, 1, Some(0), 2),
            event(2, 3, EventKind::Send, 2, Some(0), 3),
        ];
        let lossy = |from: NodeId, to: NodeId| from == 2 && to == 0;
        let mut index = crate::index::Index::default();
        index.extend(&events);
        let topology = topology(&nodes, &[0, 1, 0], &index.link_counts(3), lossy);
        let link = |a, b, messages, cut, lossy| TopoLink {
            a,
            b,
            messages,
            cut,
            lossy,
        };
        assert_eq!(
            topology.links,
            [link(0, 1, 2, true, false), link(0, 2, 1, false, true)]
        );
        for node in &topology.nodes {
            assert!((0.0..=1.0).contains(&node.x) && (0.0..=1.0).contains(&node.y));
        }
        let distance = |n: &TopoNode| ((n.x - 0.5).powi(2) + (n.y - 0.5).powi(2)).sqrt();
        assert!(
            distance(&topology.nodes[0]) < distance(&topology.nodes[2]),
            "servers inside"
        );
    }

    #[test]
    fn arrows_pair_sends_with_deliveries_and_drops() {
        let events = [
            event(0, 10, EventKind::Send, 0, Some(1), 7),
            event(1, 12, EventKind::Send, 1, Some(0), 8),
            event(2, 15, EventKind::Deliver, 1, Some(0), 7),
            TraceEvent {
                reason: Some(sim_core::net::DropReason::Partition),
                ..event(3, 16, EventKind::Drop, 0, Some(1), 8)
            },
            event(4, 17, EventKind::Send, 0, Some(1), 9),
            event(5, 18, EventKind::Crash, 1, None, 0),
        ];
        let diagram = space_time(&events, 20, 100, &events);
        assert_eq!(diagram.arrows.len(), 3);
        assert_eq!(diagram.arrows[0].arrived_ns, Some(15));
        assert!(!diagram.arrows[0].dropped);
        assert!(diagram.arrows[1].dropped);
        assert_eq!(diagram.arrows[1].drop_reason, "partition");
        assert_eq!(diagram.arrows[2].arrived_ns, None, "still in flight");
        assert_eq!(diagram.markers.len(), 1);
        assert_eq!(diagram.markers[0].node, Some(1));
        let down = Outage {
            node: 1,
            start_ns: 18,
            end_ns: 20,
            status: "down",
        };
        assert_eq!(diagram.outages, [down], "down from the crash to the cursor");
        let late = space_time(&events, 20, 5, &events);
        assert_eq!(late.start_ns, 15);
        assert_eq!(late.arrows.len(), 1, "only sends inside the window");
        let mut restarted = events.to_vec();
        restarted.push(event(6, 19, EventKind::Restart, 1, None, 0));
        let after = space_time(&restarted, 30, 5, &restarted);
        assert!(
            after.outages.is_empty(),
            "an outage before the window is not drawn"
        );
        assert_eq!(
            space_time(&restarted, 20, 100, &restarted).outages[0].end_ns,
            19
        );
    }

    #[test]
    fn the_log_filters_by_kind_node_and_text() {
        let events = [
            event(0, 1, EventKind::Send, 0, Some(1), 1),
            event(1, 2, EventKind::Timer, 2, None, 0),
            event(2, 3, EventKind::Deliver, 1, Some(0), 1),
        ];
        let all = log_lines(&events, &LogFilter::default());
        assert_eq!(all.len(), 3);
        let no_timers = LogFilter {
            hidden: vec![EventKind::Timer],
            ..LogFilter::default()
        };
        assert_eq!(log_lines(&events, &no_timers).len(), 2);
        let node_two = LogFilter {
            node: Some(2),
            ..LogFilter::default()
        };
        assert_eq!(log_lines(&events, &node_two)[0].index, 1);
        let text = LogFilter {
            text: "DELIVER".into(),
            ..LogFilter::default()
        };
        assert_eq!(log_lines(&events, &text)[0].index, 2);
    }

    fn annotate(time_ns: u64, node: NodeId, label: &str, detail: String) -> TraceEvent {
        TraceEvent {
            index: 0,
            time_ns,
            kind: EventKind::Annotate,
            node,
            peer: None,
            msg: None,
            timer: None,
            reason: None,
            cause: None,
            label: label.into(),
            detail,
        }
    }

    #[test]
    fn the_rpc_panel_counts_served_calls_and_builds_the_span_tree() {
        use sim_core::proto::rpc::spans::{
            end_text, start_text, SpanContext, CLIENT_RECEIVE, CLIENT_SEND, SERVER_RECEIVE,
            SERVER_SEND,
        };
        let root = SpanContext {
            trace_id: 7,
            span_id: 1,
            parent_id: None,
        };
        let nested = SpanContext {
            trace_id: 7,
            span_id: 2,
            parent_id: Some(1),
        };
        let events = vec![
            annotate(
                0,
                8,
                CLIENT_SEND,
                start_text(&root, "client", "orders.place", 6),
            ),
            annotate(
                1,
                6,
                SERVER_RECEIVE,
                start_text(&root, "orders", "orders.place", 8),
            ),
            annotate(
                2,
                6,
                CLIENT_SEND,
                start_text(&nested, "orders", "inventory.reserve", 3),
            ),
            annotate(
                3,
                3,
                SERVER_RECEIVE,
                start_text(&nested, "inventory", "inventory.reserve", 6),
            ),
            annotate(4, 3, SERVER_SEND, end_text(&nested, None)),
            annotate(5, 6, CLIENT_RECEIVE, end_text(&nested, None)),
            annotate(6, 6, SERVER_SEND, end_text(&root, None)),
        ];
        let panel = rpc(&events).expect("spans");
        assert_eq!(
            panel.load,
            vec![
                (3, "inventory".to_string(), 1, 0),
                (6, "orders".to_string(), 1, 0)
            ]
        );
        assert_eq!(panel.traces.len(), 1);
        assert_eq!(
            (panel.traces[0].spans, panel.traces[0].outcome.clone()),
            (4, None),
            "the root is in flight"
        );
        let tree = span_tree(&events, 7);
        let shape: Vec<(usize, NodeId)> = tree.iter().map(|r| (r.depth, r.span.node)).collect();
        assert_eq!(shape, vec![(0, 8), (1, 6), (2, 6), (3, 3)]);
        assert!(rpc(&events[..0]).is_none());
    }
}
