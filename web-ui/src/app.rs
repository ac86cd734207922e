//! The yew component: opens the session the URL asks for, computes the run in slices
//! (one per timer tick, so the browser paints between them), then lets the user play,
//! pause, step, scrub, inspect, inject faults and follow findings.
//!
//! Elements that tests read carry `data-testid`: `run-status` (`running`, then `done`,
//! or `error`), `trace-hash` (present once the run is done), `error`, `topology`, nodes
//! as `node-N` with a `data-status`, `inspector`, `crash`/`restart`, `space-time`,
//! `cap-chart`, `event-log`, `findings`. An injected fault or a new scenario, seed or bug
//! set changes the URL and reloads, so the address always replays what the page shows.
//!
//! wasm32 panics abort, so a panic inside a node ends the app; the panic hook in `lib.rs`
//! reloads the page with `panic_step=`, and the new page stops before that step and shows
//! the `panic` finding (`panic` element). A panic of the page's own shows in `error`.

use gloo_events::EventListener;
use gloo_timers::callback::Timeout;
use sim_core::fault::Fault;
use sim_core::node::NodeId;
use sim_core::trace::EventKind;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::diff::{first_difference, Difference};
use crate::draw;
use crate::query::{to_query, Request};
use crate::session::Session;
use crate::views::LogFilter;

/// Milliseconds between two redraws of the CAP chart while playing.
const CHART_PLAYING_MS: f64 = 250.0;
/// Engine steps per animation frame at each speed the page offers. Playing steps on the
/// browser's frames (`requestAnimationFrame`), not on a timer: a timer's wait came on top
/// of each frame's work, so a frame took the work plus the wait.
pub const SPEEDS: [u64; 5] = [1, 5, 25, 125, 1_000];
/// The space-time diagram's window choices, in milliseconds of virtual time.
pub const WINDOWS_MS: [u64; 4] = [20, 100, 500, 2_000];

pub enum Msg {
    /// Run the next slice of the first pass.
    Slice,
    /// Draw the CAP chart of one more arrangement of sides off screen (`chart::prepare`).
    Prepare,
    /// One frame of playing.
    Frame,
    TogglePlay,
    Step,
    StepBack,
    Seek(u64),
    /// The scrubber moves under the pointer: forward is cheap and follows at once; a move
    /// back replays the run from the start, so it waits for the release (`Seek`).
    Scrub(u64),
    SetSpeed(usize),
    SetWindow(usize),
    Select(Option<NodeId>),
    /// Show this trace's span tree in the RPC panel.
    SelectTrace(Option<u64>),
    /// Inject these faults at the cursor (a click on a node or a link).
    Inject(Vec<Fault>),
    /// Reload the page with this request (scenario, seed, bugs).
    Navigate(Request),
    ShowDetail(Option<String>),
    ToggleKind(EventKind),
    FilterText(String),
    FilterNode(Option<NodeId>),
    PasteText(String),
    RunPasted,
    Key(String),
}

pub struct App {
    session: Result<Session, String>,
    /// The pending slice of the first pass; dropping it cancels it, so it lives as long
    /// as needed.
    tick: Option<Timeout>,
    /// The next `Prepare`, apart from `tick` so that it never cancels a slice or a frame.
    preparing: Option<Timeout>,
    /// The next animation frame while playing; dropping it cancels it.
    frame: Option<AnimationFrame>,
    playing: bool,
    speed: usize,
    window: usize,
    selected: Option<NodeId>,
    trace: Option<u64>,
    detail: Option<String>,
    notice: Option<String>,
    filter: LogFilter,
    pasted: String,
    chart: NodeRef,
    _keys: Option<EventListener>,
    /// When the last `view` began (ms, `performance.now()`), for the render timings.
    view_started: std::cell::Cell<f64>,
    /// How long the last cursor move took (ms): the replay before the render.
    moved_ms: f64,
    /// The space-time diagrams' canvases of the last view, painted once it is patched.
    canvases: std::rc::Rc<crate::canvas::Canvases>,
    /// Paint `canvases` again when the page scrolls or the window resizes: each covers
    /// only what is in view.
    _scroll: Vec<EventListener>,
    /// When the chart was last drawn (ms): while playing it is redrawn at most every
    /// `CHART_PLAYING_MS`, a summary needs no more and a frame has better uses.
    chart_drawn: f64,
    /// The whole run's chart, off screen, once the first pass is done: one image per
    /// arrangement of sides visited lately, the latest last.
    chart_image: Vec<crate::chart::Drawn>,
    /// The run compared with this one (`diff=` in the address), its cursor following
    /// this one's virtual time; and where the two first differ, once both are done.
    other: Option<Result<Session, String>>,
    difference: Option<Option<Difference>>,
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let search = web_sys::window()
            .map(|window| window.location().search().unwrap_or_default())
            .unwrap_or_default();
        let session = Session::open(&search);
        let other = session
            .as_ref()
            .ok()
            .and_then(|s| s.request().diff.as_deref())
            .map(|request| Session::open(&to_query(request)));
        let canvases = std::rc::Rc::<crate::canvas::Canvases>::default();
        let mut app = App {
            session,
            other,
            difference: None,
            tick: None,
            preparing: None,
            frame: None,
            playing: false,
            speed: 2,
            window: 1,
            selected: None,
            trace: None,
            detail: None,
            notice: None,
            filter: LogFilter {
                hidden: vec![EventKind::Timer, EventKind::Observe],
                ..LogFilter::default()
            },
            pasted: String::new(),
            chart: NodeRef::default(),
            _keys: keyboard(ctx),
            view_started: std::cell::Cell::new(0.0),
            moved_ms: 0.0,
            canvases: canvases.clone(),
            _scroll: on_scroll(canvases),
            chart_drawn: f64::NEG_INFINITY,
            chart_image: Vec::new(),
        };
        if app.session.is_ok() {
            app.schedule(ctx, Msg::Slice, 0);
        }
        app
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Self::Message) -> bool {
        match msg {
            Msg::Slice => {
                self.tick = None;
                // This run's first pass, then the compared run's, one slice at a time.
                let mut more = false;
                if let Ok(session) = &mut self.session {
                    more = session.advance();
                }
                if let (false, Some(Ok(other))) = (more, &mut self.other) {
                    more = other.advance();
                }
                if more {
                    self.schedule(ctx, Msg::Slice, 0);
                } else {
                    self.compare();
                    self.preparing = Some(later(ctx, Msg::Prepare, 0));
                }
            }
            Msg::Prepare => {
                self.preparing = None;
                if self.playing {
                    // Not in the middle of playing's frames: it waits for a pause.
                    self.preparing = Some(later(ctx, Msg::Prepare, CHART_PLAYING_MS as u32));
                } else if let (Ok(session), Some(canvas)) = (&self.session, self.chart.cast()) {
                    if session.summary().is_some()
                        && crate::chart::prepare(&canvas, session, &mut self.chart_image)
                    {
                        self.preparing = Some(later(ctx, Msg::Prepare, 0));
                    }
                }
                // Off screen only: nothing on the page changed.
                return false;
            }
            Msg::Frame => self.on_frame(ctx),
            Msg::TogglePlay => self.toggle_play(ctx),
            Msg::Key(key) => return self.on_key(ctx, &key),
            Msg::Scrub(event) => {
                let forward = matches!(&self.session, Ok(s) if event >= s.cursor());
                if !forward {
                    // No render: the slider stays under the pointer until it is let go.
                    return false;
                }
                self.move_cursor(Msg::Seek(event));
            }
            Msg::Navigate(request) => navigate(&to_query(&request)),
            Msg::Inject(faults) => self.inject(&faults),
            Msg::PasteText(text) => self.pasted = text,
            Msg::RunPasted => self.run_pasted(ctx),
            Msg::SetSpeed(index) => self.speed = index.min(SPEEDS.len() - 1),
            Msg::SetWindow(index) => self.window = index.min(WINDOWS_MS.len() - 1),
            Msg::Select(node) => self.selected = node,
            Msg::SelectTrace(trace) => self.trace = trace,
            Msg::ShowDetail(detail) => self.detail = detail,
            Msg::FilterText(text) => self.filter.text = text,
            Msg::FilterNode(node) => self.filter.node = node,
            Msg::ToggleKind(kind) => match self.filter.hidden.iter().position(|k| *k == kind) {
                Some(index) => {
                    self.filter.hidden.remove(index);
                }
                None => self.filter.hidden.push(kind),
            },
            msg => self.move_cursor(msg),
        }
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        self.view_started.set(now_ms());
        self.canvases.borrow_mut().clear();
        let link = ctx.link();
        let body = match &self.session {
            Ok(session) => draw::page(
                session,
                &draw::PageState {
                    playing: self.playing,
                    speed: self.speed,
                    window: self.window,
                    selected: self.selected,
                    detail: self.detail.as_deref(),
                    notice: self.notice.as_deref(),
                    filter: &self.filter,
                    pasted: &self.pasted,
                    chart: &self.chart,
                    trace: self.trace,
                    other: self.other.as_ref(),
                    difference: self.difference.as_ref(),
                    canvases: &self.canvases,
                },
                link,
            ),
            Err(message) => draw::error_page(message, &self.pasted, link),
        };
        html! {
            <main class="faultline">
                <header><h1>{ "faultline" }</h1>
                    <span class="tagline">{ "a deterministic cluster simulator: \
                        watch a run, inject faults, replay any seed" }</span></header>
                { body }
            </main>
        }
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first_render: bool) {
        crate::canvas::paint_all(&self.canvases);
        let patched = now_ms();
        if let (Ok(session), Some(canvas)) = (&self.session, self.chart.cast()) {
            let cheap = crate::chart::cheap(&self.chart_image, &canvas, session);
            if cheap || !self.playing || patched - self.chart_drawn >= CHART_PLAYING_MS {
                crate::chart::draw(&canvas, session, &mut self.chart_image);
                self.chart_drawn = patched;
            }
        }
        // The last render's cost, outside the virtual DOM so writing it renders nothing:
        // the browser benchmark reads it (the cursor move, view and patch, the chart).
        let root = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element());
        if let Some(root) = root {
            let view = format!("{:.1}", patched - self.view_started.get());
            let chart = format!("{:.1}", now_ms() - patched);
            // Attributes on <html> cannot fail to set; nothing to report if they did.
            let _ = root.set_attribute("data-move-ms", &format!("{:.1}", self.moved_ms));
            let _ = root.set_attribute("data-view-ms", &view);
            let _ = root.set_attribute("data-chart-ms", &chart);
        }
    }
}

impl App {
    /// Queues `msg` behind a timer: a macrotask, so the browser renders and handles
    /// input before it runs.
    fn schedule(&mut self, ctx: &Context<Self>, msg: Msg, delay_ms: u32) {
        self.tick = Some(later(ctx, msg, delay_ms));
    }

    fn ready(&self) -> bool {
        let done = |s: &Result<Session, String>| matches!(s, Ok(s) if s.summary().is_some());
        done(&self.session) && self.other.as_ref().is_none_or(|o| o.is_err() || done(o))
    }

    /// Once both runs are done: where they first differ.
    fn compare(&mut self) {
        if let (Ok(a), Some(Ok(b)), None) = (&self.session, &self.other, &self.difference) {
            if a.summary().is_some() && b.summary().is_some() {
                self.difference = Some(first_difference(a.log(), b.log()));
            }
        }
    }

    /// Puts the compared run's cursor at this run's moment.
    fn follow(&mut self) {
        if let (Ok(a), Some(Ok(b))) = (&self.session, &mut self.other) {
            if b.summary().is_some() {
                b.seek_time(a.progress().now_ns);
            }
        }
    }

    fn toggle_play(&mut self, ctx: &Context<Self>) {
        if !self.ready() {
            return;
        }
        self.playing = !self.playing;
        if self.playing {
            if let Ok(session) = &mut self.session {
                if session.at_end() {
                    session.seek(0);
                }
            }
            self.frame = AnimationFrame::request(ctx);
        } else {
            self.frame = None;
        }
    }

    fn on_frame(&mut self, ctx: &Context<Self>) {
        self.frame = None;
        let Ok(session) = &mut self.session else {
            return;
        };
        if !self.playing {
            return;
        }
        let mut more = true;
        for _ in 0..SPEEDS[self.speed] {
            more = session.step();
            if !more {
                break;
            }
        }
        self.follow();
        if more {
            self.frame = AnimationFrame::request(ctx);
        } else {
            self.playing = false;
        }
    }

    fn move_cursor(&mut self, msg: Msg) {
        if !self.ready() {
            return;
        }
        let Ok(session) = &mut self.session else {
            return;
        };
        self.notice = None;
        let started = now_ms();
        match msg {
            Msg::Step => {
                session.step();
            }
            Msg::StepBack => session.step_back(),
            Msg::Seek(event) => session.seek(event),
            _ => unreachable!("only cursor moves come here"),
        }
        self.follow();
        self.moved_ms = now_ms() - started;
    }

    fn on_key(&mut self, ctx: &Context<Self>, key: &str) -> bool {
        match key {
            " " => self.toggle_play(ctx),
            "ArrowRight" => self.move_cursor(Msg::Step),
            "ArrowLeft" => self.move_cursor(Msg::StepBack),
            "Home" => self.move_cursor(Msg::Seek(0)),
            "End" => self.move_cursor(Msg::Seek(u64::MAX)),
            _ => return false,
        }
        true
    }

    fn inject(&mut self, faults: &[Fault]) {
        let Ok(session) = &self.session else {
            return;
        };
        match session.inject(faults) {
            Ok(query) => navigate(&query),
            Err(message) => self.notice = Some(message),
        }
    }

    fn run_pasted(&mut self, ctx: &Context<Self>) {
        let seed = self.session.as_ref().ok().map(Session::seed);
        match Session::open_text(&self.pasted, seed) {
            Ok(session) => {
                self.session = Ok(session);
                self.playing = false;
                self.selected = None;
                self.notice = None;
                self.schedule(ctx, Msg::Slice, 0);
            }
            Err(errors) => self.notice = Some(errors),
        }
    }
}

/// A requested animation frame that sends `Msg::Frame`; dropping it cancels it.
struct AnimationFrame {
    id: i32,
    _callback: wasm_bindgen::closure::Closure<dyn FnMut()>,
}

impl AnimationFrame {
    fn request(ctx: &Context<App>) -> Option<AnimationFrame> {
        let link = ctx.link().clone();
        // yew handles the message in a microtask, after this callback has returned, so
        // the update may drop this frame (and its closure) safely.
        let callback = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
            link.send_message(Msg::Frame)
        });
        let id = web_sys::window()?
            .request_animation_frame(callback.as_ref().unchecked_ref())
            .ok()?;
        Some(AnimationFrame {
            id,
            _callback: callback,
        })
    }
}

impl Drop for AnimationFrame {
    fn drop(&mut self) {
        if let Some(window) = web_sys::window() {
            // Cancelling a frame that already ran does nothing.
            let _ = window.cancel_animation_frame(self.id);
        }
    }
}

/// Paints the arrows' canvases again as the page scrolls or the window resizes: each
/// covers only the part of its diagram in the window (`canvas`).
fn on_scroll(canvases: std::rc::Rc<crate::canvas::Canvases>) -> Vec<EventListener> {
    let Some(window) = web_sys::window() else {
        return Vec::new();
    };
    ["scroll", "resize"]
        .into_iter()
        .map(|event| {
            let canvases = canvases.clone();
            EventListener::new(&window, event, move |_| crate::canvas::paint_all(&canvases))
        })
        .collect()
}

/// Space plays and pauses, the arrows step, Home and End jump; keys typed into a form
/// field stay there.
fn keyboard(ctx: &Context<App>) -> Option<EventListener> {
    let document = web_sys::window()?.document()?;
    let link = ctx.link().clone();
    // Not passive (gloo's default): the page keeps Space and the arrows from scrolling.
    let options = gloo_events::EventListenerOptions::enable_prevent_default();
    Some(EventListener::new_with_options(
        &document,
        "keydown",
        options,
        move |event| {
            let Some(event) = event.dyn_ref::<web_sys::KeyboardEvent>() else {
                return;
            };
            let in_field = event
                .target()
                .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
                .is_some_and(|element| {
                    matches!(element.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                });
            let key = event.key();
            let ours = matches!(
                key.as_str(),
                " " | "ArrowRight" | "ArrowLeft" | "Home" | "End"
            );
            if in_field || !ours {
                return;
            }
            event.prevent_default();
            link.send_message(Msg::Key(key));
        },
    ))
}

/// Milliseconds since the page loaded, for timings (0 where there is no clock).
fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// Loads the page at `query`: a new run, and an address that replays it.
fn navigate(query: &str) {
    if let Some(window) = web_sys::window() {
        // A failed navigation leaves the current page as it was; nothing to undo.
        let _ = window.location().set_search(query);
    }
}

/// Sends `msg` after `delay_ms` behind a timer (a macrotask, so the browser renders and
/// handles input first), unless the returned timeout is dropped before.
fn later(ctx: &Context<App>, msg: Msg, delay_ms: u32) -> Timeout {
    let link = ctx.link().clone();
    let mut msg = Some(msg);
    Timeout::new(delay_ms, move || {
        if let Some(msg) = msg.take() {
            link.send_message(msg);
        }
    })
}
