//! `cargo xtask browser-bench`: how the demo feels on large runs, measured in headless
//! Chromium with the timings read from the page itself (`performance.now()` around each
//! input, up to the next painted frame), never a timed unit test.
//!
//! For each scenario: how long the first pass takes and how many events it has, the wasm
//! memory afterwards, one step back (the arrow key) from the end and from the middle,
//! jumps to spread-out moments (the scrubber), and the longest gap between frames while
//! playing at each speed. It prints a table and fails nothing: the figures go to
//! ARCHITECTURE.md, and the targets (50 ms) are compared there.

use std::net::TcpListener;
use std::time::Instant;

use anyhow::bail;
use serde_json::Value;

use crate::browser::{ensure_chromium, Browser, Driver};
use crate::root;

/// The large built-ins first; then ordinary ones for comparison.
const SCENARIOS: [&str; 4] = [
    "registry-large",
    "broker-large",
    "registry-five-nemesis",
    "registry-tour",
];
const LARGE_ONLY: [&str; 2] = ["registry-large", "broker-large"];
const MOVES: u32 = 25;
const PLAY_MS: u32 = 2_000;

/// Resolves after the next frame is painted: a `setTimeout` queued from inside
/// `requestAnimationFrame` runs once that frame's style, layout and paint are done.
const HELPERS: &str = "
const painted = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
const timed = async (act) => { const t0 = performance.now(); act(); await painted(); \
                               return performance.now() - t0; };
const key = (k) => document.dispatchEvent(new KeyboardEvent('keydown', {key: k, bubbles: true}));
const seek = (e) => { const s = document.querySelector('[data-testid=scrubber]'); s.value = e; \
                      s.dispatchEvent(new Event('change', {bubbles: true})); };
const renders = () => { const r = document.documentElement.dataset; \
                         return [Number(r.moveMs), Number(r.viewMs), Number(r.chartMs)]; };
const stats = (xs) => { const s = [...xs].sort((a, b) => a - b); \
                        return [s[Math.floor(s.length / 2)], s[s.length - 1]]; };
";

pub fn run() -> anyhow::Result<()> {
    ensure_chromium()?;
    crate::web::build()?;
    let dist = root().join("dist");
    let server = TcpListener::bind(("127.0.0.1", 0))?;
    let port = server.local_addr()?.port();
    std::thread::spawn(move || crate::serve::serve_listener(server, &dist));
    let driver = Driver::start()?;
    let result = (|| {
        let browser = driver.session()?;
        let outcome = measure_all(&browser, &format!("http://127.0.0.1:{port}/"));
        browser.close();
        outcome
    })();
    driver.stop();
    result
}

fn measure_all(browser: &Browser, base: &str) -> anyhow::Result<()> {
    engine_speed(browser, base)?;
    println!(
        "{:<24} {:>9} {:>7} {:>8} {:>15} {:>15} {:>15} {:>21} {:>22}",
        "scenario",
        "events",
        "load s",
        "wasm MB",
        "back end ms",
        "back mid ms",
        "jump ms",
        "play worst frame ms",
        "jump: move/view/chart"
    );
    println!(
        "{:<66} {:>15} {:>15} {:>15} {:>21}",
        "", "med / max", "med / max", "med / max", "25 / 1000 ev/frame"
    );
    for name in SCENARIOS {
        let started = Instant::now();
        browser.open(&format!("{base}?scenario={name}&seed=1"))?;
        browser.wait_done()?;
        let load_s = started.elapsed().as_secs_f64();
        let page = browser.script(&format!(
            "{HELPERS} const p = document.querySelector('[data-testid=progress]'); \
             return [Number(document.querySelector('[data-testid=scrubber]').max), \
                     Number(p.dataset.wasmBytes)];"
        ))?;
        let events = page[0].as_u64().unwrap_or(0);
        let wasm_mb = page[1].as_f64().unwrap_or(0.0) / 1e6;
        if events == 0 {
            bail!("{name}: the page shows no events");
        }
        let back_end = moves(browser, "key('End'); await painted();", "key('ArrowLeft')")?;
        let back_mid = moves(
            browser,
            &format!("seek({}); await painted();", events / 2),
            "key('ArrowLeft')",
        )?;
        let jumps = moves(
            browser,
            "let k = 0;",
            &format!("seek((++k * 7919 * 104729) % {events})"),
        )?;
        let slow = play(browser, 2)?;
        let fast = play(browser, 4)?;
        browser.no_console_errors(name)?;
        println!(
            "{name:<24} {events:>9} {load_s:>7.1} {wasm_mb:>8.0} {:>15} {:>15} {:>15} {:>21} {:>22}",
            pair(&back_end),
            pair(&back_mid),
            pair(&jumps),
            format!("{slow:.0} / {fast:.0}"),
            format!(
                "{:.0} / {:.0} / {:.0}",
                jumps[2].as_f64().unwrap_or(f64::NAN),
                jumps[3].as_f64().unwrap_or(f64::NAN),
                jumps[4].as_f64().unwrap_or(f64::NAN)
            ),
        );
    }
    Ok(())
}

/// The engine alone, wasm in this page against the native `faultline run` (release,
/// whole process), on the large built-ins: events per second (best of three each) and
/// the ratio.
fn engine_speed(browser: &Browser, base: &str) -> anyhow::Result<()> {
    const ROUNDS: usize = 3;
    browser.open(&format!("{base}?scenario=ping-pong&seed=1"))?;
    browser.wait_done()?;
    crate::exec(crate::cargo().args(["build", "--release", "-q", "-p", "faultline"]))?;
    let binary = root().join("target/release/faultline");
    println!(
        "{:<24} {:>9} {:>14} {:>14} {:>12}",
        "engine only", "events", "wasm ev/s", "native ev/s", "wasm/native"
    );
    for name in LARGE_ONLY {
        // Best of three on both sides: V8 compiles wasm first with its baseline compiler
        // and optimises hot functions while they run, so a first run measures the
        // compiler as much as the engine.
        let (mut events, mut wasm_s) = (0.0, f64::INFINITY);
        for _ in 0..ROUNDS {
            let measured = browser.script(&format!(
                "const m = await import('./web_ui.js'); return Array.from(m.bench_engine('{name}', 1n));"
            ))?;
            events = measured[0].as_f64().unwrap_or(0.0);
            wasm_s = wasm_s.min(measured[1].as_f64().unwrap_or(f64::NAN));
        }
        let mut best_native = f64::INFINITY;
        for _ in 0..ROUNDS {
            let started = Instant::now();
            crate::capture(
                std::process::Command::new(&binary).args(["run", name, "--seed", "1", "--json"]),
            )?;
            best_native = best_native.min(started.elapsed().as_secs_f64());
        }
        println!(
            "{name:<24} {events:>9} {:>14.0} {:>14.0} {:>11.2}x",
            events / wasm_s,
            events / best_native,
            wasm_s / best_native
        );
    }
    println!();
    Ok(())
}

/// Runs `setup`, then `MOVES` times `act` each timed to the next painted frame;
/// returns [median, max, median cursor move (the replay), median view-and-patch, median
/// chart] in milliseconds.
fn moves(browser: &Browser, setup: &str, act: &str) -> anyhow::Result<Value> {
    browser.script(&format!(
        "{HELPERS} {setup} const xs = [], views = [], charts = []; \
         const moved = []; \
         for (let i = 0; i < {MOVES}; i++) {{ xs.push(await timed(() => {act})); \
             const [m, v, c] = renders(); moved.push(m); views.push(v); charts.push(c); }} \
         return [...stats(xs), stats(moved)[0], stats(views)[0], stats(charts)[0]];"
    ))
}

/// Plays from the start at speed `speed` (an index into the page's speeds) for
/// `PLAY_MS`, and returns the longest gap between two animation frames.
fn play(browser: &Browser, speed: u32) -> anyhow::Result<f64> {
    let worst = browser.script(&format!(
        "{HELPERS} key('Home'); await painted(); \
         const sel = document.querySelector('[data-testid=speed]'); sel.value = '{speed}'; \
         sel.dispatchEvent(new Event('change', {{bubbles: true}})); \
         key(' '); let last = performance.now(); let worst = 0; \
         const end = last + {PLAY_MS}; let i = 0; \
         while (performance.now() < end) {{ \
             await new Promise(r => requestAnimationFrame(r)); i++; \
             const now = performance.now(); worst = Math.max(worst, now - last); \
             last = now; }} \
         key(' '); await painted(); return [worst, i];"
    ))?;
    Ok(worst[0].as_f64().unwrap_or(f64::NAN))
}

fn pair(value: &Value) -> String {
    let ms = |i: usize| value[i].as_f64().unwrap_or(f64::NAN);
    format!("{:.1} / {:.1}", ms(0), ms(1))
}
