//! The two large drawings' geometry and text: the space-time diagram's lanes and overlay
//! as SVG text, which the page hands to the browser whole (a million-event run's window
//! holds a hundred lanes, and diffing them node by node in the virtual DOM took most of
//! a jump's render), and the topology's node positions, colours and links (strokes for
//! a canvas, `link_strokes`). Plain Rust with native tests; it never reads a session,
//! only the `views` computed from one, and never handles an event (the page listens
//! once on the drawing's container and reads the `data-` attributes written here).

use std::fmt::Write;

use sim_core::node::NodeId;
use sim_core::trace::EventKind;
use sim_core::units::format_duration;

use sim_core::export::xml_escape as escape;

use crate::views::{Marker, SpaceTime, TopoNode, Topology};

/// Colours of partition sides: each node of the topology is ringed with its side.
const SIDE_COLOURS: [&str; 4] = ["#2563eb", "#dc2626", "#16a34a", "#9333ea"];

pub fn side_colour(side: u32) -> &'static str {
    SIDE_COLOURS[side as usize % SIDE_COLOURS.len()]
}

/// Events a space-time diagram marks: the first difference between two runs (its time
/// and number) and the events that led to it.
#[derive(Default)]
pub struct Highlight {
    pub at: Option<(u64, u64)>,
    pub causes: Vec<u64>,
}

/// A node's fill: its status, else its role.
pub fn node_colour(node: &TopoNode) -> &'static str {
    match (node.status, node.role.as_str()) {
        ("down", _) => "#111827",
        ("paused", _) => "#f59e0b",
        (_, "leader") => "#eab308",
        (_, "follower") => "#3b82f6",
        (_, "looking") => "#f97316",
        (_, "read-only") => "#a855f7",
        _ => "#9ca3af",
    }
}

/// The topology's side in pixels.
pub const TOPOLOGY_SIZE: f64 = 420.0;

/// Where node `id` of `topology` sits, in pixels.
pub fn node_position(topology: &Topology, id: NodeId) -> (f64, f64) {
    let node = &topology.nodes[id as usize];
    (node.x * TOPOLOGY_SIZE, node.y * TOPOLOGY_SIZE)
}

/// How a topology link is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    Plain,
    Lossy,
    /// Partitioned at the cursor.
    Cut,
}

/// One topology link as a line for the links' canvas, under the nodes (which the page
/// draws as elements: their labels are text, laid out once).
#[derive(Clone, Debug, PartialEq)]
pub struct LinkStroke {
    pub a: NodeId,
    pub b: NodeId,
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
    /// 1 + log10(messages), in half steps: a run's counts change at every event, the
    /// widths seldom.
    pub width: f64,
    pub kind: LinkKind,
}

impl crate::arrows::Segment for LinkStroke {
    fn ends(&self) -> ((f64, f64), (f64, f64)) {
        ((self.x1, self.y1), (self.x2, self.y2))
    }
}

/// The topology's links, a line each. On a canvas, not as SVG: 485 lines of a
/// hundred-node run made anew at every move cost the browser their parsing, styling,
/// layout and rasterising (the tooltips are made on hover, `link_text`).
pub fn link_strokes(topology: &Topology) -> Vec<LinkStroke> {
    topology
        .links
        .iter()
        .map(|l| {
            let ((x1, y1), (x2, y2)) = (node_position(topology, l.a), node_position(topology, l.b));
            LinkStroke {
                a: l.a,
                b: l.b,
                x1,
                y1,
                x2,
                y2,
                width: 1.0 + (f64::from(l.messages).log10().max(0.0) * 2.0).floor() / 2.0,
                kind: match (l.cut, l.lossy) {
                    (true, _) => LinkKind::Cut,
                    (_, true) => LinkKind::Lossy,
                    _ => LinkKind::Plain,
                },
            }
        })
        .collect()
}

/// What the tooltip of the link between `a` and `b` says, if there is one.
pub fn link_text(topology: &Topology, a: NodeId, b: NodeId) -> Option<String> {
    let l = topology.links.iter().find(|l| (l.a, l.b) == (a, b))?;
    Some(format!(
        "{} ↔ {}: {} messages{}{}; click to cut this link",
        l.a,
        l.b,
        l.messages,
        if l.cut { " (partitioned)" } else { "" },
        if l.lossy { " (lossy)" } else { "" },
    ))
}

/// Where the space-time diagram puts things.
pub const WIDTH: f64 = 1100.0;
const LEFT: f64 = 90.0;
const LANE: f64 = 26.0;

pub fn diagram_height(lanes: usize) -> f64 {
    30.0 + LANE * lanes as f64
}

/// Where node `node`'s lane runs, top to bottom.
pub fn lane_y(node: NodeId) -> f64 {
    20.0 + LANE * f64::from(node)
}

/// Where virtual time `t_ns` falls across `diagram`'s window, left to right.
pub fn time_x(diagram: &SpaceTime, t_ns: u64) -> f64 {
    let span = (diagram.end_ns - diagram.start_ns).max(1) as f64;
    LEFT + (WIDTH - LEFT - 10.0) * (t_ns.saturating_sub(diagram.start_ns)) as f64 / span
}

/// The space-time diagram's lanes, a line per node of `lanes` (id and kind): drawn apart
/// from what moves (`space_time`, laid over them) so that a move of the cursor leaves
/// these hundred lines and labels as they are, unlaid-out and unpainted again.
pub fn lanes(lanes: &[(NodeId, &str)]) -> String {
    let height = diagram_height(lanes.len());
    let mut out = String::with_capacity(120 * lanes.len() + 200);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        r#"<svg class="space-time lanes" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">"#
    );
    for (id, kind) in lanes {
        let y = lane_y(*id);
        let _ = write!(
            out,
            r#"<g class="lane"><line x1="{LEFT}" x2="{}" y1="{y}" y2="{y}"></line><text x="4" y="{}">{id} {}</text></g>"#,
            WIDTH - 10.0,
            y + 4.0,
            escape(kind)
        );
    }
    out.push_str("</svg>");
    out
}

/// The few things that move in the space-time diagram of `lane_count` lanes, drawn over
/// `lanes` and the arrows (`arrows`, on a canvas): outages, markers, the highlighted
/// difference and a time axis.
pub fn space_time(diagram: &SpaceTime, lane_count: usize, highlight: &Highlight) -> String {
    let height = diagram_height(lane_count);
    let x_of = |t: u64| time_x(diagram, t);
    let y_of = lane_y;
    let mut out = String::with_capacity(120 * diagram.arrows.len() + 2_000);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        r#"<svg class="space-time moving" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">"#
    );
    for o in &diagram.outages {
        let y = y_of(o.node);
        let _ = write!(
            out,
            r#"<line class="outage {}" x1="{:.1}" x2="{:.1}" y1="{y}" y2="{y}"><title>node {} {} from {} to {}</title></line>"#,
            o.status,
            x_of(o.start_ns),
            x_of(o.end_ns),
            o.node,
            o.status,
            format_duration(o.start_ns),
            format_duration(o.end_ns)
        );
    }
    for marker in &diagram.markers {
        marker_svg(&mut out, marker, x_of(marker.time_ns), y_of, height);
    }
    if let Some((time_ns, index)) = highlight
        .at
        .filter(|(t, _)| *t >= diagram.start_ns && *t <= diagram.end_ns)
    {
        let x = x_of(time_ns);
        // Left of the line near the right edge, so the label stays in view.
        let (class, text_x) = if x > WIDTH * 0.7 {
            (r#" class="end""#, x - 4.0)
        } else {
            ("", x + 4.0)
        };
        let _ = write!(
            out,
            r#"<g class="mark differ" data-testid="differ-mark"><line x1="{x:.1}" x2="{x:.1}" y1="8" y2="{}"></line><text{class} x="{text_x:.1}" y="10">first difference #{index}</text></g>"#,
            height - 14.0
        );
    }
    // A time axis with five ticks: the window's virtual time, left to right.
    for tick in 0..=4u64 {
        let t = diagram.start_ns + (diagram.end_ns - diagram.start_ns) * tick / 4;
        let x = x_of(t);
        let class = match tick {
            0 => "axis",
            4 => "axis end",
            _ => "axis middle",
        };
        let _ = write!(
            out,
            r#"<g class="tick"><line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}"></line><text class="{class}" x="{x:.1}" y="{}">{}</text></g>"#,
            height - 22.0,
            height - 16.0,
            height - 4.0,
            format_duration(t)
        );
    }
    let _ = write!(
        out,
        r#"<text class="axis caption" x="4" y="{}">virtual time →</text></svg>"#,
        height - 4.0
    );
    out
}

fn marker_svg(
    out: &mut String,
    marker: &Marker,
    x: f64,
    y_of: impl Fn(NodeId) -> f64,
    height: f64,
) {
    let (class, label) = match marker.kind {
        EventKind::Crash => ("mark crash", "✕ crash"),
        EventKind::Restart => ("mark restart", "↻ restart"),
        EventKind::Pause => ("mark pause", "⏸ pause"),
        EventKind::Resume => ("mark resume", "▶ resume"),
        EventKind::Finding => ("mark finding", "⚠ finding"),
        _ => ("mark fault", "⚡"),
    };
    let detail = escape(&marker.detail);
    let title = format!("{label} at {}: {detail}", format_duration(marker.time_ns));
    // Writing to a String cannot fail.
    let _ = match marker.node {
        Some(node) => write!(
            out,
            r#"<g class="{class}"><rect x="{:.1}" y="{}" width="4" height="20"></rect><text x="{:.1}" y="{}">{label}</text><title>{title}</title></g>"#,
            x - 2.0,
            y_of(node) - 10.0,
            x + 4.0,
            y_of(node) - 8.0,
        ),
        None => write!(
            out,
            r#"<g class="{class}"><line x1="{x:.1}" x2="{x:.1}" y1="8" y2="{}"></line><text x="{:.1}" y="10">{label} {detail}</text><title>{title}</title></g>"#,
            height - 14.0,
            x + 3.0,
        ),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::{Outage, TopoLink};

    #[test]
    fn the_space_time_diagram_draws_each_lane_and_outage_once() {
        let diagram = SpaceTime {
            markers: vec![Marker {
                node: None,
                time_ns: 400,
                kind: EventKind::Fault,
                detail: "partition <0> | <1 2>".to_string(),
            }],
            outages: vec![Outage {
                node: 2,
                start_ns: 200,
                end_ns: 900,
                status: "down",
            }],
            ..crate::arrows::tests::three_arrows()
        };
        let highlight = Highlight {
            at: Some((100, 8)),
            causes: vec![7],
        };
        let drawn = lanes(&[(0, "server"), (1, "server"), (2, "client<x>")]);
        assert_eq!(drawn.matches("<g class=\"lane\">").count(), 3);
        assert!(drawn.contains("2 client&lt;x&gt;"), "{drawn}");
        assert!(drawn.contains(r#"height="108""#), "{drawn}");
        let svg = space_time(&diagram, 3, &highlight);
        assert!(svg.starts_with("<svg class=\"space-time moving\"") && svg.ends_with("</svg>"));
        assert!(
            svg.contains(r#"height="108""#) && !svg.contains("lane"),
            "{svg}"
        );
        assert!(!svg.contains("msg"), "arrows go on the canvas: {svg}");
        assert_eq!(svg.matches("class=\"outage down\"").count(), 1);
        assert!(svg.contains("partition &lt;0&gt; | &lt;1 2&gt;"), "{svg}");
        assert!(!svg.contains("<0>"), "user text is escaped: {svg}");
        assert_eq!(svg.matches("data-testid=\"differ-mark\"").count(), 1);
        assert_eq!(svg.matches("<g class=\"tick\">").count(), 5);
        // A difference outside the window: no mark.
        let elsewhere = Highlight {
            at: Some((5_000, 99)),
            causes: Vec::new(),
        };
        let svg = space_time(&diagram, 3, &elsewhere);
        assert!(!svg.contains("differ-mark"));
    }

    #[test]
    fn the_topology_links_know_their_ends_width_and_kind() {
        let node = |id: NodeId, status: &'static str| TopoNode {
            id,
            kind: "server".to_string(),
            role: "leader".to_string(),
            status,
            side: 0,
            x: 0.5,
            y: 0.25,
        };
        let drawn = Topology {
            nodes: vec![node(0, "up"), node(1, "down")],
            links: vec![TopoLink {
                a: 0,
                b: 1,
                messages: 100,
                cut: true,
                lossy: false,
            }],
        };
        let lines = link_strokes(&drawn);
        assert_eq!(
            (lines[0].a, lines[0].b, lines[0].kind),
            (0, 1, LinkKind::Cut)
        );
        // Both nodes sit at (210, 105): a point-long line, found by the pointer there.
        assert_eq!((lines[0].x1, lines[0].y2), (210.0, 105.0));
        assert_eq!(
            crate::arrows::at(&lines, 212.0, 106.0).map(|l| (l.a, l.b)),
            Some((0, 1))
        );
        assert_eq!(crate::arrows::at(&lines, 230.0, 106.0), None);
        // 100 messages: 1 + log10(100); 99 stays on the half step below.
        assert_eq!(lines[0].width, 3.0);
        let mut fewer = drawn.clone();
        fewer.links[0].messages = 99;
        fewer.links[0].cut = false;
        fewer.links[0].lossy = true;
        let fewer = link_strokes(&fewer);
        assert_eq!((fewer[0].width, fewer[0].kind), (2.5, LinkKind::Lossy));
        assert_eq!(
            link_text(&drawn, 0, 1).as_deref(),
            Some("0 ↔ 1: 100 messages (partitioned); click to cut this link")
        );
        assert_eq!(link_text(&drawn, 1, 0), None);
        assert_eq!(node_colour(&drawn.nodes[0]), "#eab308");
        assert_eq!(
            node_colour(&drawn.nodes[1]),
            "#111827",
            "a crashed node is black"
        );
    }
}
