//! web-ui: faultline in the browser. A yew app, compiled to wasm, that runs the scenario
//! the page's URL names (`?scenario=NAME&seed=N&bug=B&fault=F&event=K`), shows the same
//! trace hash as `faultline run --json`, and lets the user play, step and scrub the run,
//! inspect nodes, inject faults, follow messages and findings, compare availability
//! with consistency, and compare two runs side by side (`diff=`).
//!
//! `query`, `session`, `index`, `diff`, `cap`, `views`, `svg`, `log` and `arrows` are plain
//! Rust and build on every target, so native tests cover what the page will show;
//! `app`, `draw`, `canvas`, `compare` and `chart` (the yew component, its HTML, its
//! canvas painting, its plotters chart) exist only on wasm32. This crate depends on
//! sim-core and never the other way round.

pub mod arrows;
pub mod cap;
pub mod diff;
pub mod index;
pub mod log;
pub mod query;
pub mod session;
pub mod svg;
pub mod views;

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod canvas;
#[cfg(target_arch = "wasm32")]
mod chart;
#[cfg(target_arch = "wasm32")]
mod compare;
#[cfg(target_arch = "wasm32")]
mod draw;

/// Entry point called by the wasm-bindgen glue when `index.html` loads the module.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    yew::set_custom_panic_hook(Box::new(|info| {
        let step = session::STEPPING.load(std::sync::atomic::Ordering::Relaxed);
        let message = info.payload_as_str().unwrap_or("a node panicked");
        if step == u64::MAX || !reload_stopping_before(step, message) {
            show_panic(&info.to_string());
        }
    }));
    // Mount into `#app` when the page has one, so the page keeps its own layout.
    let root = web_sys::window()
        .and_then(|window| window.document())
        .and_then(|document| document.get_element_by_id("app"));
    match root {
        Some(element) => yew::Renderer::<app::App>::with_root(element).render(),
        None => yew::Renderer::<app::App>::new().render(),
    };
}

/// Runs built-in `scenario` at `seed` to its end with nothing retained, as `faultline
/// run` does, and returns `[events, seconds]`: the wasm engine's own speed, which the
/// browser benchmark (`cargo xtask browser-bench`) compares with native.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn bench_engine(scenario: &str, seed: u64) -> Result<Vec<f64>, String> {
    let text = sim_core::scenario::builtin(scenario)
        .ok_or_else(|| format!("no built-in scenario `{scenario}`"))?;
    let parsed =
        sim_core::scenario::parse(scenario, text).map_err(|errors| format!("{errors:?}"))?;
    let performance = web_sys::window()
        .and_then(|w| w.performance())
        .ok_or("no performance clock")?;
    let options = sim_core::scenario::RunOptions {
        seed: Some(seed),
        ..Default::default()
    };
    let started = performance.now();
    let mut run = parsed.build(&options);
    let report = sim_core::engine::run_to_end(run.as_mut());
    let seconds = (performance.now() - started) / 1e3;
    Ok(vec![report.events as f64, seconds])
}

/// A node panicked in engine step `step`: wasm32 panics abort, so the page reloads
/// itself at the same address plus `panic_step`/`panic`, and the new page stops before
/// that step with the CLI's `panic` finding. `data-panicked` on `<html>` tells
/// `index.html` to keep the abort's trap off the console. False if it cannot reload.
#[cfg(target_arch = "wasm32")]
fn reload_stopping_before(step: u64, message: &str) -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let location = window.location();
    let (Ok(path), Ok(search)) = (location.pathname(), location.search()) else {
        return false;
    };
    let Ok(mut request) = query::parse_query(&search) else {
        return false;
    };
    if request.panic.is_some() {
        // Already stopping before a panic: this one is something else; show it.
        return false;
    }
    let mut cut = message.len().min(query::PANIC_MESSAGE_MAX);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    request.panic = Some((step, message[..cut].to_string()));
    if let Some(root) = window.document().and_then(|d| d.document_element()) {
        // Nothing to do if it fails: the console then shows the trap, nothing worse.
        let _ = root.set_attribute("data-panicked", "true");
    }
    location
        .replace(&format!("{path}{}", query::to_query(&request)))
        .is_ok()
}

/// wasm32 panics abort, so after a panic (say, an assertion inside a node) the app never
/// renders again. For a panic outside a run's step (the page's own bug), the hook writes
/// it into the page directly rather than leave `running` on screen forever.
#[cfg(target_arch = "wasm32")]
fn show_panic(message: &str) {
    web_sys::console::error_1(&message.into());
    let Some(document) = web_sys::window().and_then(|window| window.document()) else {
        return;
    };
    if let Ok(Some(status)) = document.query_selector("[data-testid=\"run-status\"]") {
        status.set_text_content(Some("error"));
    }
    let Ok(paragraph) = document.create_element("p") else {
        return;
    };
    paragraph.set_class_name("error");
    // Best effort: inside a panic hook there is nobody left to report a failure to.
    let _ = paragraph.set_attribute("data-testid", "error");
    paragraph.set_text_content(Some(&format!("the run panicked: {message}")));
    let parent: Option<web_sys::Node> = match document.get_element_by_id("app") {
        Some(app) => Some(app.into()),
        None => document.body().map(Into::into),
    };
    if let Some(parent) = parent {
        let _ = parent.append_child(&paragraph);
    }
}
