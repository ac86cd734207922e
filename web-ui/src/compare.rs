//! The compare panel (`diff=` in the address): the compared run named, both trace hashes,
//! the first event at which the two runs part with the events that led to it in each,
//! and the two space-time diagrams one above the other at the same moment, the first
//! difference and its causes marked. The cursor moves both: the compared run follows
//! this one's virtual time (`App::follow`). Pure rendering, like `draw`.

use sim_core::trace::TraceEvent;
use sim_core::units::format_duration;
use yew::html::Scope;
use yew::prelude::*;

use crate::app::{App, Msg};
use crate::canvas::Canvases;
use crate::diff::Difference;
use crate::draw::{space_time_svg, Highlight};
use crate::session::Session;
use crate::views;

pub fn panel(
    a: &Session,
    other: &Result<Session, String>,
    difference: Option<&Option<Difference>>,
    window_ns: u64,
    canvases: &Canvases,
    link: &Scope<App>,
) -> Html {
    let b = match other {
        Ok(b) => b,
        Err(message) => {
            return html! {
                <section class="panel wide" data-testid="compare">
                    <h3>{ "compared run" }</h3>
                    <p class="error" data-testid="compare-error">{ message }</p>
                </section>
            };
        }
    };
    let heading = format!("A: this run · B: {}", describe(b));
    let summary = match difference {
        None => html! { <p>{ "computing both runs…" }</p> },
        Some(None) => html! {
            <p data-testid="diff-first">{ format!("the runs are the same, event for event ({} events)",
                a.summary().map_or(0, |s| s.events)) }</p>
        },
        Some(Some(d)) => first_difference(d, link),
    };
    let (a_mark, b_mark) = match difference {
        Some(Some(d)) => (
            highlight(d.a.as_ref(), &d.a_causes),
            highlight(d.b.as_ref(), &d.b_causes),
        ),
        _ => (Highlight::default(), Highlight::default()),
    };
    html! {
        <section class="panel wide" data-testid="compare">
            <h3>{ "two runs side by side " }<small>{ heading }</small></h3>
            <p class="hashes">{ "trace hashes: A " }<code>{ a.trace_hash().unwrap_or_default() }</code>
                { " · B " }<code data-testid="compare-hash">{ b.trace_hash().unwrap_or_default() }</code></p>
            { summary }
            { diagram("A", a, &a_mark, window_ns, canvases, link) }
            { diagram("B", b, &b_mark, window_ns, canvases, link) }
        </section>
    }
}

/// "seed 2, bug zab.x, fault crash:0@1s" for the compared run.
fn describe(b: &Session) -> String {
    let request = b.request_here();
    let mut parts = vec![format!("{} seed {}", b.scenario().name, b.seed())];
    parts.extend(request.bugs.iter().map(|bug| format!("bug {bug}")));
    parts.extend(request.faults.iter().map(|f| format!("fault {}", f.spec())));
    parts.join(", ")
}

fn highlight(event: Option<&TraceEvent>, causes: &[TraceEvent]) -> Highlight {
    Highlight {
        at: event.map(|e| (e.time_ns, e.index)),
        causes: causes.iter().map(|e| e.index).collect(),
    }
}

fn first_difference(d: &Difference, link: &Scope<App>) -> Html {
    let index = d.index;
    let jump = link.callback(move |_| Msg::Seek(index));
    let shown = |event: &Option<TraceEvent>| {
        event
            .as_ref()
            .map_or_else(|| "(the run has ended)".to_string(), TraceEvent::render)
    };
    let time = d.a.as_ref().or(d.b.as_ref()).map_or(0, |e| e.time_ns);
    html! {
        <>
            <p data-testid="diff-first">
                <button onclick={ jump }>{ format!("jump to #{index}") }</button>
                { format!(" the runs agree on events #0..#{}; they part at #{index}, {}", index.saturating_sub(1), format_duration(time)) }
            </p>
            <div class="diff-grid">
                { causes("A", &d.a_causes, &shown(&d.a)) }
                { causes("B", &d.b_causes, &shown(&d.b)) }
            </div>
        </>
    }
}

fn causes(run: &str, chain: &[TraceEvent], event: &str) -> Html {
    html! {
        <div>
            <b>{ format!("{run}: what led to it") }</b>
            <ol class="log causes">
                { for chain.iter().map(|e| html! { <li>{ e.render() }</li> }) }
                <li class="differs" data-testid={ format!("differs-{}", run.to_lowercase()) }>{ event }</li>
            </ol>
        </div>
    }
}

fn diagram(
    label: &str,
    session: &Session,
    mark: &Highlight,
    window_ns: u64,
    canvases: &Canvases,
    link: &Scope<App>,
) -> Html {
    let diagram = views::space_time(
        session.events(),
        session.progress().now_ns,
        window_ns,
        session.outage_events(),
    );
    html! {
        <div class="compare-run">
            <b>{ format!("{label} at {}", format_duration(session.progress().now_ns)) }</b>
            { space_time_svg(diagram, &session.nodes_inspecting(None), mark, canvases, link) }
        </div>
    }
}
