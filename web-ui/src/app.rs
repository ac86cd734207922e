//! The yew component: opens the session the URL asks for, advances it one slice per
//! timer tick, and renders scenario, progress, nodes, findings and the trace hash.
//!
//! Elements that tests read carry `data-testid`: `run-status` (`running`, then `done`,
//! or `error`), `trace-hash` (present only when the run is done), `error`. The component
//! never runs more than one slice per tick, so the browser paints between slices.
//!
//! wasm32 panics abort, so a panic inside a node ends the app; the panic hook in `lib.rs`
//! then sets `run-status` to `error` and shows the message in an `error` element.

use gloo_timers::callback::Timeout;
use sim_core::check::Finding;
use sim_core::engine::NodeView;
use sim_core::scenario::format_duration;
use yew::prelude::*;

use crate::session::Session;

pub enum Msg {
    /// Run the next slice.
    Slice,
}

pub struct App {
    session: Result<Session, String>,
    /// The pending tick; dropping it cancels it, so it lives as long as the component.
    tick: Option<Timeout>,
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let search = web_sys::window()
            .map(|window| window.location().search().unwrap_or_default())
            .unwrap_or_default();
        let mut app = App {
            session: Session::open(&search),
            tick: None,
        };
        if app.session.is_ok() {
            app.schedule_slice(ctx);
        }
        app
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Self::Message) -> bool {
        match msg {
            Msg::Slice => {
                self.tick = None;
                let more = match &mut self.session {
                    Ok(session) => session.advance(),
                    Err(_) => false,
                };
                if more {
                    self.schedule_slice(ctx);
                }
                true
            }
        }
    }

    fn view(&self, _ctx: &Context<Self>) -> Html {
        let body = match &self.session {
            Ok(session) => view_session(session),
            Err(message) => view_error(message),
        };
        html! {
            <main class="faultline">
                <h1>{ "faultline" }</h1>
                { body }
            </main>
        }
    }
}

impl App {
    /// Queues the next slice behind a zero-delay timer: a macrotask, so the browser
    /// renders and handles input before it runs.
    fn schedule_slice(&mut self, ctx: &Context<Self>) {
        let link = ctx.link().clone();
        self.tick = Some(Timeout::new(0, move || link.send_message(Msg::Slice)));
    }
}

fn view_error(message: &str) -> Html {
    let names = sim_core::scenario::builtin_names().join(", ");
    html! {
        <section>
            <p>{ "status: " }<span data-testid="run-status">{ "error" }</span></p>
            <p class="error" data-testid="error">{ message }</p>
            <p>{ "Open this page as " }<code>{ "?scenario=NAME&seed=N" }</code>
               { format!("; built-in scenarios: {names}.") }</p>
        </section>
    }
}

fn view_session(session: &Session) -> Html {
    let scenario = session.scenario();
    let progress = session.progress();
    let status = if progress.finished { "done" } else { "running" };
    html! {
        <section>
            <h2 data-testid="scenario">{ &scenario.name }</h2>
            <p data-testid="description">{ &scenario.description }</p>
            <p>{ "seed " }<span data-testid="seed">{ session.seed() }</span></p>
            <p data-testid="progress">
                { format!("virtual time {} / {}, {} events",
                    format_duration(progress.now_ns),
                    format_duration(progress.end_ns),
                    progress.events) }
            </p>
            <p>{ "status: " }<span data-testid="run-status">{ status }</span></p>
            if let Some(hash) = session.trace_hash() {
                <p>{ "trace hash: " }<code data-testid="trace-hash">{ hash }</code></p>
            }
            { view_nodes(&session.nodes()) }
            { view_findings(session.findings(), progress.finished) }
        </section>
    }
}

fn view_nodes(nodes: &[NodeView]) -> Html {
    html! {
        <table data-testid="nodes">
            <thead><tr><th>{ "id" }</th><th>{ "kind" }</th><th>{ "status" }</th>
                <th>{ "role" }</th></tr></thead>
            <tbody>
            { for nodes.iter().map(|node| html! {
                <tr key={ node.id }>
                    <td>{ node.id }</td><td>{ &node.kind }</td>
                    <td class={ node.status }>{ node.status }</td><td>{ &node.role }</td>
                </tr>
            }) }
            </tbody>
        </table>
    }
}

fn view_findings(findings: &[Finding], finished: bool) -> Html {
    if findings.is_empty() {
        let text = if finished {
            "findings: none"
        } else {
            "findings: none so far"
        };
        return html! { <p data-testid="findings">{ text }</p> };
    }
    html! {
        <section data-testid="findings">
            <h3>{ format!("findings ({})", findings.len()) }</h3>
            <ul>
            { for findings.iter().map(|finding| html! {
                <li>
                    <strong>{ &finding.invariant }</strong>
                    { format!(" at {}: {}", format_duration(finding.time_ns), finding.message) }
                </li>
            }) }
            </ul>
        </section>
    }
}
