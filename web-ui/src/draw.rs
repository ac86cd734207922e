//! The page's HTML and SVG, drawn from a session and the `views` computed from it. Every
//! function here is a pure rendering of its arguments; the component in `app` owns the
//! state and turns clicks into `Msg`s.

use sim_core::check::Finding;
use sim_core::engine::{NodeView, PANIC};
use sim_core::fault::Fault;
use sim_core::node::NodeId;
use sim_core::proto::rpc::spans::Kind;
use sim_core::scenario::builtin_names;
use sim_core::trace::EventKind;
use sim_core::units::format_duration;
use wasm_bindgen::JsCast;
use yew::html::Scope;
use yew::prelude::*;

use crate::app::{App, Msg, SPEEDS, WINDOWS_MS};
use crate::canvas::{Canvases, Drawing};
use crate::diff::Difference;
use crate::session::Session;
use crate::views::{self, LogFilter, SpaceTime, Topology};

/// What the component adds to the session for one render.
pub struct PageState<'a> {
    pub playing: bool,
    pub speed: usize,
    pub window: usize,
    pub selected: Option<NodeId>,
    pub detail: Option<&'a str>,
    pub notice: Option<&'a str>,
    pub filter: &'a LogFilter,
    pub pasted: &'a str,
    pub chart: &'a NodeRef,
    /// The trace whose span tree the RPC panel shows.
    pub trace: Option<u64>,
    /// The compared run (`diff=`), and where the two first differ once both are done.
    pub other: Option<&'a Result<Session, String>>,
    pub difference: Option<&'a Option<Difference>>,
    /// Where this render's arrows go, painted once the page is patched.
    pub canvases: &'a Canvases,
}

pub use crate::svg::Highlight;

pub fn error_page(message: &str, pasted: &str, link: &Scope<App>) -> Html {
    let names = builtin_names().join(", ");
    html! {
        <section>
            <p>{ "status: " }<span data-testid="run-status">{ "error" }</span></p>
            <p class="error" data-testid="error">{ message }</p>
            <p>{ "Open this page as " }<code>{ "?scenario=NAME&seed=N" }</code>
               { format!("; built-in scenarios: {names}.") }</p>
            { paste_box(pasted, link) }
        </section>
    }
}

pub fn page(session: &Session, state: &PageState, link: &Scope<App>) -> Html {
    let nodes = session.nodes_inspecting(state.selected);
    let sides = session.sides();
    let events = session.events();
    let scenario = session.scenario();
    let lossy = |from: NodeId, to: NodeId| {
        let model = scenario
            .links
            .iter()
            .find(|(a, b, _)| *a == from && *b == to)
            .map_or(&scenario.link, |(_, _, model)| model);
        model.loss_ppm > 0
    };
    let topology = views::topology(&nodes, &sides, &session.link_counts(), lossy);
    let now_ns = session.progress().now_ns;
    let window_ns = WINDOWS_MS[state.window] * 1_000_000;
    let diagram = views::space_time(events, now_ns, window_ns, session.outage_events());
    let chart_rows = crate::chart::rows(session);
    html! {
        <>
            { controls(session, state, link) }
            { for session.findings().iter().filter(|f| f.invariant == PANIC).map(|f| html! {
                <pre class="notice panic" data-testid="panic">{ format!(
                    "a node panicked at {} (event #{}); the run stops before that step. \
                     Everything up to it is below.\n{}",
                    format_duration(f.time_ns), f.event, f.message) }</pre>
            }) }
            if let Some(notice) = state.notice {
                <pre class="notice" data-testid="notice">{ notice }</pre>
            }
            <div class="grid">
                <section class="panel">
                    <h3>{ "topology" }</h3>
                    { topology_svg(&topology, state.selected, state.canvases, link) }
                    { legend() }
                </section>
                <section class="panel">
                    { inspector(&nodes, state.selected, link) }
                </section>
            </div>
            <section class="panel wide">
                <h3>{ "messages over time " }
                    <small>{ "(one lane per node; hover or click an arrow for its contents)" }</small>
                    { window_select(state.window, link) }</h3>
                { space_time_svg(diagram, &nodes, &Highlight::default(), state.canvases, link) }
                if let Some(detail) = state.detail {
                    <pre class="detail" data-testid="message-detail">{ detail }</pre>
                }
            </section>
            if let Some(other) = state.other {
                { crate::compare::panel(session, other, state.difference, window_ns, state.canvases, link) }
            }
            if let Some(panel) = session.has_spans().then(|| views::rpc(session.span_events())).flatten() {
                { rpc_panel(&panel, session, state.trace, link) }
            }
            <section class="panel wide">
                <h3>{ "CAP: availability and consistency over virtual time" }</h3>
                <ul class="cap-summary" data-testid="cap-summary">
                    { for sim_core::check::cap::lines(session.metrics(), &session.scenario().qualified_kinds())
                        .into_iter().map(|line| html! { <li>{ line }</li> }) }
                </ul>
                <canvas ref={ state.chart.clone() } data-testid="cap-chart"
                    data-rows={ chart_rows.to_string() }
                    width="1100" height={ (chart_rows * crate::chart::ROW_HEIGHT).to_string() }></canvas>
            </section>
            <div class="grid">
                <section class="panel">{ findings(session.findings(), link) }</section>
                <section class="panel">{ event_log(session, state.filter, &nodes, link) }</section>
            </div>
            { paste_box(state.pasted, link) }
        </>
    }
}

fn controls(session: &Session, state: &PageState, link: &Scope<App>) -> Html {
    let scenario = session.scenario();
    let progress = session.progress();
    let other_done = state
        .other
        .is_none_or(|other| other.as_ref().map_or(true, |o| o.summary().is_some()));
    let status = if progress.finished && other_done {
        "done"
    } else {
        "running"
    };
    let total = session.summary().map_or(progress.events, |s| s.events);
    let here = session.request_here();
    let on_scenario = {
        let here = here.clone();
        link.callback(move |event: Event| {
            let select: web_sys::HtmlSelectElement = event.target_unchecked_into();
            let mut request = here.clone();
            request.scenario = Some(select.value());
            request.toml = None;
            request.bugs.clear();
            request.faults.clear();
            Msg::Navigate(request)
        })
    };
    let on_seed = {
        let here = here.clone();
        link.callback(move |event: Event| {
            let input: web_sys::HtmlInputElement = event.target_unchecked_into();
            let mut request = here.clone();
            request.seed = input.value().trim().parse().ok();
            Msg::Navigate(request)
        })
    };
    let on_scrub = link.callback(|event: InputEvent| {
        let input: web_sys::HtmlInputElement = event.target_unchecked_into();
        Msg::Scrub(input.value().parse().unwrap_or(0))
    });
    let on_release = link.callback(|event: Event| {
        let input: web_sys::HtmlInputElement = event.target_unchecked_into();
        Msg::Seek(input.value().parse().unwrap_or(0))
    });
    let play_label = if state.playing {
        "pause ⏸"
    } else {
        "play ▶"
    };
    html! {
        <section class="controls">
            <div>
                <label>{ "scenario " }
                    <select onchange={ on_scenario } data-testid="scenario-select">
                    if here.toml.is_some() {
                        // A file from the address (a shrunk or pasted run): named, not listed.
                        <option value="" selected=true disabled=true>
                            { format!("{} (file in the address)", scenario.name) }</option>
                    }
                    { for builtin_names().into_iter().map(|name| html! {
                        <option value={ name } selected={ here.toml.is_none() && name == scenario.name }>{ name }</option>
                    }) }
                    </select></label>
                <label>{ " seed " }<input type="number" min="0" value={ session.seed().to_string() }
                    onchange={ on_seed } data-testid="seed" /></label>
                <span class="status">{ " status: " }<b data-testid="run-status">{ status }</b></span>
                if let Some(hash) = session.trace_hash() {
                    <span>{ " trace hash " }<code data-testid="trace-hash">{ hash }</code></span>
                }
            </div>
            <p class="description" data-testid="description">{ &scenario.description }</p>
            { bug_toggles(session, &here, link) }
            <div class="transport">
                <button onclick={ link.callback(|_| Msg::StepBack) } title="step back (←)">{ "◀ step" }</button>
                <button onclick={ link.callback(|_| Msg::TogglePlay) } title="play or pause (space)"
                    data-testid="play">{ play_label }</button>
                <button onclick={ link.callback(|_| Msg::Step) } title="step one event (→)">{ "step ▶" }</button>
                <label>{ " speed " }{ speed_select(state.speed, link) }</label>
                <input class="scrubber" type="range" min="0" max={ total.to_string() }
                    value={ progress.events.to_string() } oninput={ on_scrub } onchange={ on_release }
                    data-testid="scrubber" disabled={ !progress.finished } />
                <span data-testid="progress" data-wasm-bytes={ wasm_bytes().to_string() }>{ format!(" {} / {} virtual, event {} of {}",
                    format_duration(progress.now_ns), format_duration(progress.end_ns),
                    progress.events, total) }</span>
            </div>
            { injected(session) }
        </section>
    }
}

/// The wasm instance's linear memory: what the page's run, log and checkpoints take
/// (the browser benchmark reads it).
fn wasm_bytes() -> usize {
    core::arch::wasm32::memory_size(0) * 65_536
}

fn speed_select(speed: usize, link: &Scope<App>) -> Html {
    let on_change = link.callback(|event: Event| {
        let select: web_sys::HtmlSelectElement = event.target_unchecked_into();
        Msg::SetSpeed(select.value().parse().unwrap_or(0))
    });
    html! {
        <select onchange={ on_change } data-testid="speed">
        { for SPEEDS.iter().enumerate().map(|(index, steps)| html! {
            <option value={ index.to_string() } selected={ index == speed }>
                { format!("{steps} events/frame") }</option>
        }) }
        </select>
    }
}

fn window_select(window: usize, link: &Scope<App>) -> Html {
    let on_change = link.callback(|event: Event| {
        let select: web_sys::HtmlSelectElement = event.target_unchecked_into();
        Msg::SetWindow(select.value().parse().unwrap_or(0))
    });
    html! {
        <select class="window" onchange={ on_change }>
        { for WINDOWS_MS.iter().enumerate().map(|(index, ms)| html! {
            <option value={ index.to_string() } selected={ index == window }>
                { format!("last {ms} ms") }</option>
        }) }
        </select>
    }
}

fn bug_toggles(session: &Session, here: &crate::query::Request, link: &Scope<App>) -> Html {
    // Every bug of a component the scenario's nodes host applies to it.
    let components = session.scenario().components();
    let bugs: Vec<_> = sim_core::catalogue::bugs()
        .into_iter()
        .filter(|b| components.contains(&b.protocol))
        .collect();
    if bugs.is_empty() {
        return html! {};
    }
    html! {
        <div class="bugs">{ "planted bugs: " }
        { for bugs.into_iter().map(|bug| {
            // A bug the scenario file itself switches on is shown on and stays on.
            let in_file = session.scenario().bugs.iter().any(|b| b == bug.name);
            if in_file {
                return html! {
                    <label title={ format!("{} (caught by {}; set by the scenario file)", bug.description, bug.caught_by) }>
                        <input type="checkbox" checked=true disabled=true />
                        { bug.name }{ " " }</label>
                };
            }
            let on = here.bugs.iter().any(|b| b == bug.name);
            let mut request = here.clone();
            if on {
                request.bugs.retain(|b| b != bug.name);
            } else {
                request.bugs.push(bug.name.to_string());
            }
            let toggle = link.callback(move |_| Msg::Navigate(request.clone()));
            html! {
                <label title={ format!("{} (caught by {})", bug.description, bug.caught_by) }>
                    <input type="checkbox" checked={ on } onchange={ toggle } />
                    { bug.name }{ " " }</label>
            }
        }) }
        </div>
    }
}

fn injected(session: &Session) -> Html {
    if session.injected().is_empty() {
        return html! {};
    }
    let specs: Vec<String> = session.injected().iter().map(|f| f.spec()).collect();
    html! { <p class="injected" data-testid="injected">{ "injected faults: " }
    <code>{ specs.join("  ") }</code></p> }
}

/// The node id in attribute `name` of `element`.
fn node_attribute(element: &web_sys::Element, name: &str) -> Option<NodeId> {
    element.get_attribute(name)?.parse().ok()
}

/// The topology: its links on a canvas (`svg::link_strokes`, painted by `canvas`), its
/// nodes as elements over them that the virtual DOM keeps, so their labels are laid out
/// once and only what changed (a role, a colour) is touched. One listener on the
/// container selects the node or cuts the link under the pointer, another makes a link's
/// tooltip.
fn topology_svg(
    topology: &Topology,
    selected: Option<NodeId>,
    canvases: &Canvases,
    link: &Scope<App>,
) -> Html {
    let lines = std::rc::Rc::new(crate::svg::link_strokes(topology));
    let canvas = NodeRef::default();
    canvases
        .borrow_mut()
        .push((canvas.clone(), Drawing::Links(lines.clone())));
    // The first link's ends and middle, for the browser test to point at.
    let first = lines.first().map_or(String::new(), |l| {
        format!(
            "{} {} {:.1} {:.1}",
            l.a,
            l.b,
            (l.x1 + l.x2) / 2.0,
            (l.y1 + l.y2) / 2.0
        )
    });
    let pointed = {
        let lines = lines.clone();
        move |event: &MouseEvent| -> Option<(web_sys::Element, NodeId, NodeId)> {
            let target: web_sys::Element = event.target()?.dyn_into().ok()?;
            if !target.matches("canvas.links").unwrap_or(false) {
                return None;
            }
            let client = (f64::from(event.client_x()), f64::from(event.client_y()));
            let (x, y) = crate::canvas::diagram_point(&target, client)?;
            let line = crate::arrows::at(&lines, x, y)?;
            Some((target, line.a, line.b))
        }
    };
    let drawn = std::rc::Rc::new(topology.clone());
    let hover = {
        let pointed = pointed.clone();
        Callback::from(move |event: MouseEvent| {
            let Some(target) = event
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .filter(|t| t.matches("canvas.links").unwrap_or(false))
            else {
                return;
            };
            // A tooltip only while on a link; none is a change too.
            let text = pointed(&event).and_then(|(_, a, b)| crate::svg::link_text(&drawn, a, b));
            let _ = match text {
                Some(text) => target.set_attribute("title", &text),
                None => target.remove_attribute("title"),
            };
        })
    };
    let click = link.batch_callback(move |event: MouseEvent| {
        let target: web_sys::Element = event.target()?.dyn_into().ok()?;
        if let Some(node) = target.closest("[data-node]").ok().flatten() {
            return Some(Msg::Select(Some(node_attribute(&node, "data-node")?)));
        }
        let (_, a, b) = pointed(&event)?;
        Some(Msg::Inject(vec![
            Fault::PartitionOneWay {
                from: vec![a],
                to: vec![b],
            },
            Fault::PartitionOneWay {
                from: vec![b],
                to: vec![a],
            },
        ]))
    });
    let size = crate::svg::TOPOLOGY_SIZE.to_string();
    let links = html! {
        <canvas ref={ canvas } class="topology links" width={ size.clone() } height={ size }
            data-links={ lines.len().to_string() } data-first={ first }
            onmousemove={ hover }></canvas>
    };
    let split = topology.nodes.iter().any(|n| n.side != 0);
    html! {
        <div class="drawing" data-testid="topology" onclick={ click }>
            { links }
            <svg class="topology nodes" viewBox="0 0 420 420" width="420" height="420">
            { for topology.nodes.iter().map(|node| {
                let (x, y) = crate::svg::node_position(topology, node.id);
                let id = node.id;
                let ring = if selected == Some(id) { "node selected" } else { "node" };
                let label = if node.status == "up" { node.role.clone() } else { node.status.to_string() };
                html! {
                    <g class={ ring } data-node={ id.to_string() } data-testid={ format!("node-{id}") }
                        data-status={ node.status } data-role={ node.role.clone() }>
                        <circle cx={ format!("{x:.1}") } cy={ format!("{y:.1}") } r="17"
                            fill={ crate::svg::node_colour(node) }
                            style={ if split { format!("stroke:{};stroke-width:4",
                                crate::svg::side_colour(node.side)) } else { String::new() } } />
                        <text x={ format!("{x:.1}") } y={ format!("{:.1}", y + 5.0) } class="id">{ id }</text>
                        <text x={ format!("{x:.1}") } y={ format!("{:.1}", y + 32.0) } class="role">{ label }</text>
                        <title>{ format!("node {id} ({}) {} {}; click to inspect", node.kind, node.status, node.role) }</title>
                    </g>
                }
            }) }
            </svg>
        </div>
    }
}

fn legend() -> Html {
    let items = [
        ("#eab308", "leader"),
        ("#3b82f6", "follower"),
        ("#f97316", "looking"),
        ("#a855f7", "read-only"),
        ("#9ca3af", "client / other"),
        ("#111827", "crashed"),
        ("#f59e0b", "paused"),
    ];
    html! {
        <p class="legend">
        { for items.iter().map(|(colour, name)| html! {
            <span><i style={ format!("background:{colour}") }></i>{ *name }</span>
        }) }
        <span><i class="cut"></i>{ "partitioned link" }</span>
        <span><i class="lossy"></i>{ "lossy link" }</span>
        </p>
    }
}

fn inspector(nodes: &[NodeView], selected: Option<NodeId>, link: &Scope<App>) -> Html {
    let heal = link.callback(|_| Msg::Inject(vec![Fault::Heal]));
    let Some(node) = selected.and_then(|id| nodes.get(id as usize)) else {
        return html! {
            <div data-testid="inspector">
                <h3>{ "inspector" }</h3>
                <p>{ "Click a node to see its state (znodes and sessions, election state, \
                      queues) and to crash, pause or isolate it; click a link to cut it. \
                      Injected faults join the run's schedule at the current moment, so \
                      the page's address replays them." }</p>
                <button onclick={ heal }>{ "heal all partitions now" }</button>
            </div>
        };
    };
    let id = node.id;
    let fault = |fault: Fault| link.callback(move |_| Msg::Inject(vec![fault.clone()]));
    let (crash_label, crash_id, crash) = if node.status == "down" {
        ("restart", "restart", fault(Fault::Restart { node: id }))
    } else {
        ("crash", "crash", fault(Fault::Crash { node: id }))
    };
    let (pause_label, pause) = if node.status == "paused" {
        ("resume", fault(Fault::Resume { node: id }))
    } else {
        ("pause", fault(Fault::Pause { node: id }))
    };
    let isolate = fault(Fault::Partition {
        groups: vec![vec![id]],
    });
    html! {
        <div data-testid="inspector">
            <h3>{ format!("node {id}: {} ({}, {})", node.kind, node.status, node.role) }</h3>
            <div class="actions">
                <button onclick={ crash } data-testid={ crash_id }>{ crash_label }</button>
                <button onclick={ pause }>{ pause_label }</button>
                <button onclick={ isolate } data-testid="isolate">{ "isolate" }</button>
                <button onclick={ heal }>{ "heal all" }</button>
                <button onclick={ link.callback(|_| Msg::Select(None)) }>{ "close" }</button>
            </div>
            <pre class="state" data-testid="node-state">{ &node.state }</pre>
        </div>
    }
}

/// What an arrow's tooltip and the detail box say about its message.
fn arrow_text(arrow: &views::Arrow) -> String {
    let dropped = if arrow.dropped {
        format!(", dropped ({})", arrow.drop_reason)
    } else {
        String::new()
    };
    format!(
        "#{} {} → {} sent {}{dropped}: {}",
        arrow.index,
        arrow.from,
        arrow.to,
        format_duration(arrow.sent_ns),
        arrow.detail
    )
}

/// A space-time diagram: the lanes and what moves as SVG text (`svg`), the arrows on a
/// canvas between them (`arrows`, painted by `canvas` once the page is patched). The
/// pointer finds its arrow by position: its text is made as a tooltip on hover and in
/// the message box on click.
pub fn space_time_svg(
    diagram: SpaceTime,
    nodes: &[NodeView],
    highlight: &Highlight,
    canvases: &Canvases,
    link: &Scope<App>,
) -> Html {
    let strokes = std::rc::Rc::new(crate::arrows::strokes(&diagram, highlight));
    let canvas = NodeRef::default();
    canvases
        .borrow_mut()
        .push((canvas.clone(), Drawing::Arrows(strokes.clone())));
    let lanes: Vec<(NodeId, &str)> = nodes.iter().map(|n| (n.id, n.kind.as_str())).collect();
    let still = Html::from_html_unchecked(crate::svg::lanes(&lanes).into());
    let moving = crate::svg::space_time(&diagram, lanes.len(), highlight);
    // The listeners own the diagram: its arrows' texts are made for the one pointed at.
    let arrows = std::rc::Rc::new(diagram.arrows);
    let newest = strokes.last().map_or(String::new(), |s| {
        format!(
            "{} {:.1} {:.1}",
            s.index,
            (s.x1 + s.x2) / 2.0,
            (s.y1 + s.y2) / 2.0
        )
    });
    let count = strokes.len();
    let pointed = move |event: &MouseEvent| -> Option<(web_sys::Element, String)> {
        let target: web_sys::Element = event.target()?.dyn_into().ok()?;
        let client = (f64::from(event.client_x()), f64::from(event.client_y()));
        let (x, y) = crate::canvas::diagram_point(&target, client)?;
        let index = crate::arrows::at(&strokes, x, y)?.index;
        let arrow = arrows.iter().find(|arrow| arrow.index == index)?;
        Some((target, arrow_text(arrow)))
    };
    let click = {
        let pointed = pointed.clone();
        link.batch_callback(move |event: MouseEvent| {
            pointed(&event).map(|(_, text)| Msg::ShowDetail(Some(text)))
        })
    };
    let hover = Callback::from(move |event: MouseEvent| {
        let Some(target) = event
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        else {
            return;
        };
        // A tooltip only while on an arrow; none is a change too.
        let _ = match pointed(&event) {
            Some((_, text)) => target.set_attribute("title", &text),
            None => target.remove_attribute("title"),
        };
    });
    html! {
        <div class="drawing" data-testid="space-time">
            { still }
            // No height: `canvas` sizes it to the part of the diagram in the window.
            <canvas ref={ canvas } class="arrows" width={ crate::svg::WIDTH.to_string() }
                data-arrows={ count.to_string() } data-newest={ newest }
                onclick={ click } onmousemove={ hover }></canvas>
            { Html::from_html_unchecked(moving.into()) }
        </div>
    }
}

/// Per-provider load as bars, the latest calls, and the span tree of the chosen one.
fn rpc_panel(panel: &views::Rpc, session: &Session, trace: Option<u64>, link: &Scope<App>) -> Html {
    let most = panel
        .load
        .iter()
        .map(|(_, _, served, _)| *served)
        .max()
        .unwrap_or(1)
        .max(1);
    let tree = trace
        .map(|id| views::span_tree(session.span_events(), id))
        .unwrap_or_default();
    let start = tree.first().map_or(0, |row| row.span.start_ns);
    let end = tree
        .iter()
        .filter_map(|row| row.span.end_ns)
        .max()
        .unwrap_or(start)
        .max(start + 1);
    let width = (end - start) as f64;
    html! {
        <section class="panel wide" data-testid="rpc-panel">
            <h3>{ "RPC calls " }<small>{ "(requests served per node so far; pick a call for its Dapper span tree)" }</small></h3>
            <div class="grid">
                <div data-testid="rpc-load">
                { for panel.load.iter().map(|(node, service, served, failed)| {
                    let percent = *served as f64 * 100.0 / most as f64;
                    html! {
                        <div class="load-row">
                            <span class="load-label">{ format!("n{node} {service}") }</span>
                            <span class="load-bar" style={ format!("width:{percent:.1}%") }></span>
                            <span>{ format!(" {served}") }{ if *failed > 0 { format!(" ({failed} failed)") } else { String::new() } }</span>
                        </div>
                    }
                }) }
                </div>
                <div>
                    <ul class="traces">
                    { for panel.traces.iter().map(|row| {
                        let id = row.trace_id;
                        let pick = link.callback(move |_| Msg::SelectTrace(Some(id)));
                        let outcome = row.outcome.clone().unwrap_or_else(|| "in flight".into());
                        html! {
                            <li><button data-testid="rpc-trace" onclick={ pick }
                                class={ if trace == Some(id) { "picked" } else { "" } }>
                                { format!("{} from n{} at {}: {outcome}, {} spans", row.name, row.caller,
                                    format_duration(row.start_ns), row.spans) }</button></li>
                        }
                    }) }
                    </ul>
                </div>
            </div>
            if !tree.is_empty() {
                <table class="span-tree" data-testid="span-tree">
                { for tree.iter().map(|row| {
                    let span = &row.span;
                    let left = (span.start_ns - start) as f64 * 100.0 / width;
                    let length = span.end_ns.map_or(100.0 - left, |end| (end - span.start_ns) as f64 * 100.0 / width);
                    let side = match span.kind { Kind::Client => "client", Kind::Server => "server" };
                    let outcome = span.outcome.clone().unwrap_or_else(|| "unfinished".into());
                    let took = span.end_ns.map_or("-".to_string(), |end| format_duration(end - span.start_ns));
                    html! {
                        <tr data-testid="span-row">
                            <td style={ format!("padding-left:{}em", row.depth) }>
                                { format!("{} {} n{} ({})", if span.kind == Kind::Client { "→" } else { "⇢" },
                                    span.name, span.node, span.local) }</td>
                            <td>{ took }</td><td>{ outcome }</td>
                            <td class="span-lane"><span class={ format!("span-bar {side}") }
                                style={ format!("margin-left:{left:.1}%;width:{:.1}%", length.max(0.5)) }></span></td>
                        </tr>
                    }
                }) }
                </table>
            }
        </section>
    }
}

fn findings(findings: &[Finding], link: &Scope<App>) -> Html {
    if findings.is_empty() {
        return html! { <div data-testid="findings"><h3>{ "findings" }</h3>
        <p>{ "none: every invariant held" }</p></div> };
    }
    html! {
        <div data-testid="findings">
            <h3>{ format!("findings ({})", findings.len()) }</h3>
            <ul>
            { for findings.iter().map(|finding| {
                let event = finding.event;
                let jump = link.callback(move |_| Msg::Seek(event));
                html! {
                    <li class="finding">
                        <button onclick={ jump } title="jump to the event that broke it">
                            { format!("jump to #{event}") }</button>
                        <strong>{ format!(" {}", finding.invariant) }</strong>
                        { format!(" at {}: {}", format_duration(finding.time_ns), finding.message) }
                    </li>
                }
            }) }
            </ul>
        </div>
    }
}

const LOG_KINDS: [EventKind; 9] = [
    EventKind::Send,
    EventKind::Deliver,
    EventKind::Drop,
    EventKind::Timer,
    EventKind::Observe,
    EventKind::Note,
    EventKind::Fault,
    EventKind::Crash,
    EventKind::Finding,
];

fn event_log(session: &Session, filter: &LogFilter, nodes: &[NodeView], link: &Scope<App>) -> Html {
    let lines = views::log_lines(session.events(), filter);
    // One listener for the lines (`log::list`): the clicked line's event is the cursor's.
    let jump = link.batch_callback(|event: MouseEvent| {
        let target: web_sys::Element = event.target()?.dyn_into().ok()?;
        let line = target.closest("li[data-i]").ok().flatten()?;
        Some(Msg::Seek(line.get_attribute("data-i")?.parse().ok()?))
    });
    let on_text = link.callback(|event: InputEvent| {
        let input: web_sys::HtmlInputElement = event.target_unchecked_into();
        Msg::FilterText(input.value())
    });
    let on_node = link.callback(|event: Event| {
        let select: web_sys::HtmlSelectElement = event.target_unchecked_into();
        Msg::FilterNode(select.value().parse().ok())
    });
    html! {
        <div data-testid="event-log">
            <h3>{ "event log " }<small>{ "(up to the cursor; click a line to go there)" }</small></h3>
            <div class="filters">
                <input placeholder="find text" value={ filter.text.clone() } oninput={ on_text } />
                <select onchange={ on_node }>
                    <option value="all" selected={ filter.node.is_none() }>{ "all nodes" }</option>
                    { for nodes.iter().map(|n| html! {
                        <option value={ n.id.to_string() } selected={ filter.node == Some(n.id) }>
                            { format!("node {}", n.id) }</option>
                    }) }
                </select>
                { for LOG_KINDS.iter().map(|kind| {
                    let kind = *kind;
                    let toggle = link.callback(move |_| Msg::ToggleKind(kind));
                    html! { <label><input type="checkbox" checked={ !filter.hidden.contains(&kind) }
                        onchange={ toggle } />{ kind.as_str() }</label> }
                }) }
            </div>
            <div class="log-lines" onclick={ jump }>
                { Html::from_html_unchecked(crate::log::list(&lines).into()) }
            </div>
        </div>
    }
}

fn paste_box(pasted: &str, link: &Scope<App>) -> Html {
    let on_input = link.callback(|event: InputEvent| {
        let area: web_sys::HtmlTextAreaElement = event.target_unchecked_into();
        Msg::PasteText(area.value())
    });
    html! {
        <details class="paste">
            <summary>{ "paste a scenario file" }</summary>
            <textarea rows="12" cols="100" value={ pasted.to_string() } oninput={ on_input }
                placeholder="name = \"mine\"\nprotocol = \"registry\"\n..." data-testid="paste"></textarea>
            <button onclick={ link.callback(|_| Msg::RunPasted) } data-testid="run-pasted">
                { "run it" }</button>
        </details>
    }
}
