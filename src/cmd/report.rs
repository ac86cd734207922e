//! `faultline run ... --report DIR`: the files a bug report needs, readable without a
//! browser build, as Jepsen and Maelstrom leave them behind: the summary, the event log
//! with its node legend, the client history, and a space-time diagram as SVG (one lane
//! per node, an arrow per message, faults and findings marked). It only writes files;
//! the run is made by `run`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use sim_core::scenario::Scenario;
use sim_core::trace::{EventKind, TraceEvent};
use sim_core::Run;

use crate::load;

/// Messages the diagram draws at most: those leading up to the first finding (or the end).
const ARROWS_MAX: usize = 1_500;

/// Writes the report's files into `dir` (created if missing; its parent must exist).
pub fn write(dir: &Path, scenario: &Scenario, run: &dyn Run, summary: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    load::write_whole(&dir.join("summary.txt"), summary.as_bytes())?;
    let kinds = scenario.qualified_kinds();
    let mut log = String::new();
    let legend: Vec<String> = kinds
        .iter()
        .enumerate()
        .map(|(id, kind)| format!("n{id} {kind}"))
        .collect();
    let _ = writeln!(log, "nodes: {}", legend.join(", "));
    for event in run.trace().retained() {
        let _ = writeln!(log, "{}", super::log::line(event, &kinds));
    }
    if run.trace().truncated() {
        let _ = writeln!(
            log,
            "(the trace kept its first {} events of {})",
            run.trace().retained().len(),
            run.trace().events()
        );
    }
    load::write_whole(&dir.join("events.log"), log.as_bytes())?;
    let history = super::run::json_lines(run.history().iter())?;
    load::write_whole(&dir.join("history.jsonl"), &history)?;
    let svg = space_time(run.trace().retained(), &kinds);
    load::write_whole(&dir.join("space-time.svg"), svg.as_bytes())?;
    Ok(())
}

/// The space-time diagram of the messages up to the first finding, as SVG.
pub fn space_time(events: &[TraceEvent], kinds: &[String]) -> String {
    let end = events
        .iter()
        .position(|e| e.kind == EventKind::Finding)
        .map_or(events.len(), |i| i + 1);
    let events = &events[..end];
    // Message id -> (send time, from, to), then where it ended.
    let mut sends: BTreeMap<u64, (u64, u32, u32)> = BTreeMap::new();
    let mut arrows: Vec<(u64, u32, u64, u32, bool)> = Vec::new();
    for event in events {
        match (event.kind, event.msg, event.peer) {
            (EventKind::Send, Some(msg), Some(to)) => {
                sends.insert(msg, (event.time_ns, event.node, to));
            }
            (EventKind::Deliver | EventKind::Drop, Some(msg), _) => {
                if let Some(&(sent, from, to)) = sends.get(&msg) {
                    arrows.push((sent, from, event.time_ns, to, event.kind == EventKind::Drop));
                }
            }
            _ => {}
        }
    }
    let first = arrows.len().saturating_sub(ARROWS_MAX);
    let arrows = &arrows[first..];
    let t0 = arrows.first().map_or(0, |a| a.0);
    let t1 = events.last().map_or(t0 + 1, |e| e.time_ns).max(t0 + 1);
    let (left, width, lane) = (150.0, 1000.0, 28.0);
    let height = 40.0 + lane * kinds.len() as f64;
    let x = |t: u64| left + (t.saturating_sub(t0)) as f64 * width / (t1 - t0) as f64;
    let y = |node: u32| 30.0 + lane * node as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="11">"#,
        left + width + 20.0
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="4" y="14">{} to {} virtual; {} messages (arrows), drops in red</text>"#,
        seconds(t0),
        seconds(t1),
        arrows.len()
    );
    for (id, kind) in kinds.iter().enumerate() {
        let y = y(id as u32);
        let _ = writeln!(svg, r##"<text x="4" y="{}">n{id} {kind}</text>"##, y + 4.0);
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#d1d5db"/>"##,
            left + width
        );
    }
    for &(sent, from, at, to, dropped) in arrows {
        let colour = if dropped { "#dc2626" } else { "#2563eb" };
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="0.8"/>"#,
            x(sent),
            y(from),
            x(at),
            y(to)
        );
    }
    for event in events.iter().filter(|e| e.time_ns >= t0) {
        let (colour, label) = match event.kind {
            EventKind::Crash => ("#111827", "crash"),
            EventKind::Restart => ("#16a34a", "restart"),
            EventKind::Pause => ("#f59e0b", "pause"),
            EventKind::Resume => ("#16a34a", "resume"),
            EventKind::Finding => ("#dc2626", "finding"),
            _ => continue,
        };
        let x = x(event.time_ns);
        if event.kind == EventKind::Finding {
            let _ = writeln!(
                svg,
                r#"<line x1="{x:.1}" y1="20" x2="{x:.1}" y2="{height}" stroke="{colour}" stroke-width="2"><title>{}</title></line>"#,
                sim_core::export::xml_escape(&format!("{}: {}", event.label, event.detail))
            );
        } else {
            let y = y(event.node);
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="4" height="14" fill="{colour}"><title>{label} n{}</title></rect>"#,
                x - 2.0,
                y - 7.0,
                event.node
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn seconds(ns: u64) -> String {
    crate::output::seconds(ns)
}
