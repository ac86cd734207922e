//! web-ui: faultline in the browser. A yew app, compiled to wasm, that runs one built-in
//! scenario chosen by the page's URL (`?scenario=NAME&seed=N`) and shows its progress,
//! nodes, findings and final trace hash, the same hex `faultline run --json` prints.
//!
//! `query` and `session` are plain Rust and build on every target, so native tests cover
//! what the page will show; `app` (the yew component) exists only on wasm32. This crate
//! depends on sim-core and never the other way round.

pub mod query;
pub mod session;

#[cfg(target_arch = "wasm32")]
mod app;

/// Entry point called by the wasm-bindgen glue when `index.html` loads the module.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    // Mount into `#app` when the page has one, so the page keeps its own layout.
    let root = web_sys::window()
        .and_then(|window| window.document())
        .and_then(|document| document.get_element_by_id("app"));
    match root {
        Some(element) => yew::Renderer::<app::App>::with_root(element).render(),
        None => yew::Renderer::<app::App>::new().render(),
    };
}
