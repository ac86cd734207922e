//! `cargo xtask test`'s browser step: the demo in a real, headless Chromium, driven over
//! the W3C WebDriver protocol by chromedriver, both from Debian (installed when missing).
//!
//! It checks what a user would: the page loads with no console errors; every built-in
//! scenario runs to `done` and shows the trace hash the engine computes natively, for
//! two seeds; clicking crash on a node changes its state and the run's hash; the address
//! the click produced replays to the same hash twice; a node's panic stops the run in the
//! page with the CLI's finding and hash and a clean console. Screenshots land in
//! `target/browser/` for people to look at.
//!
//! The WebDriver client is a few plain HTTP/1.1 requests to chromedriver on 127.0.0.1;
//! the page is served by `serve` from `dist/`. Every wait is bounded.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use sim_core::engine::run_to_end;
use sim_core::scenario::{self, RunOptions};

use crate::root;

/// How long one run may take to reach `done` in the page.
const RUN_TIMEOUT_S: u64 = 180;
const POLL_MS: u64 = 100;
const DRIVER_START_TIMEOUT_S: u64 = 30;
const SEEDS: [u64; 2] = [1, 2];
/// Screenshots are the largest answers: a few MiB of base64.
const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;

pub fn run() -> anyhow::Result<()> {
    ensure_chromium()?;
    crate::web::build()?;
    let dist = root().join("dist");
    let server = TcpListener::bind(("127.0.0.1", 0)).context("binding the page server")?;
    let page_port = server.local_addr()?.port();
    std::thread::spawn(move || crate::serve::serve_listener(server, &dist));
    let driver = Driver::start()?;
    let result = check_everything(&driver, &format!("http://127.0.0.1:{page_port}/"));
    driver.stop();
    result
}

fn check_everything(driver: &Driver, base: &str) -> anyhow::Result<()> {
    let shots = root().join("target/browser");
    std::fs::create_dir_all(&shots)?;
    let browser = driver.session()?;
    let outcome = (|| {
        every_scenario_matches_native(&browser, base)?;
        scrubbing_back_shows_the_same_moment(&browser, base)?;
        a_tall_diagrams_canvas_follows_the_window(&browser, base, &shots)?;
        crash_click_changes_the_run(&browser, base, &shots)?;
        a_link_click_cuts_it(&browser, base)?;
        rpc_calls_show_load_and_span_trees(&browser, base, &shots)?;
        bank_beside_shop_in_the_cap_panel(&browser, base, &shots)?;
        a_shrunk_run_opens_at_its_finding(&browser, base, &shots)?;
        a_panic_is_a_finding_in_the_page(&browser, base, &shots)?;
        two_runs_side_by_side(&browser, base, &shots)?;
        Ok(())
    })();
    browser.close();
    outcome
}

fn every_scenario_matches_native(browser: &Browser, base: &str) -> anyhow::Result<()> {
    for (name, _) in scenario::BUILTINS {
        for seed in SEEDS {
            let expected = native_hash(name, seed, &[])?;
            browser.open(&format!("{base}?scenario={name}&seed={seed}"))?;
            let shown = browser.wait_done()?;
            if shown != expected {
                bail!("{name} seed {seed}: the page shows {shown}, the engine computes {expected}");
            }
            browser.no_console_errors(&format!("{name} seed {seed}"))?;
            println!("  {name} seed {seed}: {shown} (matches native)");
        }
    }
    Ok(())
}

/// Drags the scrubber to an event, forward, then back again: the page must show the
/// same moment both times (the run is rebuilt and replayed to get there).
fn scrubbing_back_shows_the_same_moment(browser: &Browser, base: &str) -> anyhow::Result<()> {
    browser.open(&format!("{base}?scenario=registry-tour&seed=1"))?;
    browser.wait_done()?;
    let moment = |event: u64| -> anyhow::Result<String> {
        let script = format!(
            "const s = document.querySelector('[data-testid=scrubber]'); s.value = {event}; \
             s.dispatchEvent(new Event('change', {{bubbles: true}})); \
             return document.querySelector('[data-testid=progress]').textContent + ' ' + \
             [...document.querySelectorAll('[data-testid^=node-]')] \
                 .map(n => n.dataset.status + '/' + n.dataset.role).join(',');"
        );
        // The change re-renders asynchronously: read the page after it settles.
        browser.script(&script)?;
        std::thread::sleep(Duration::from_millis(300));
        let read = "return document.querySelector('[data-testid=progress]').textContent + ' ' + \
                    [...document.querySelectorAll('[data-testid^=node-]')] \
                        .map(n => n.dataset.status + '/' + n.dataset.role).join(',');";
        Ok(browser
            .script(read)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    };
    let first = moment(6_000)?;
    let later = moment(12_000)?;
    let again = moment(6_000)?;
    if first != again || first == later {
        bail!("scrubbing: event 6000 showed `{first}`, then `{again}` (event 12000: `{later}`)");
    }
    if !first.contains("event 600") {
        bail!("scrubbing to event 6000 shows `{first}`");
    }
    println!("  scrubbing: back and forth to event 6000 shows the same moment");
    an_arrow_tells_its_message(browser, "at event 6000")?;
    moment(12_000)?;
    // The window has moved and the canvas been painted again: the pointer must follow.
    an_arrow_tells_its_message(browser, "at event 12000")
}

/// A hundred-lane diagram is taller than the window: its canvas covers the part in view
/// and follows the window as the page scrolls, and the pointer still finds its arrows.
fn a_tall_diagrams_canvas_follows_the_window(
    browser: &Browser,
    base: &str,
    shots: &Path,
) -> anyhow::Result<()> {
    browser.open(&format!(
        "{base}?scenario=registry-large&seed=1&event=600000"
    ))?;
    browser.wait_done()?;
    browser.script(
        "const d = document.querySelector('[data-testid=space-time]'); \
         window.scrollTo(0, window.scrollY + d.getBoundingClientRect().top + 600);",
    )?;
    // The scroll repaints on its event: read the page after it settles.
    std::thread::sleep(Duration::from_millis(300));
    let placed = browser.script(
        "const d = document.querySelector('[data-testid=space-time]'); \
         const c = d.querySelector('canvas.arrows'); const r = d.getBoundingClientRect(); \
         return [c.height, window.innerHeight, parseFloat(c.style.top), -r.top, r.height];",
    )?;
    let at = |i: usize| placed[i].as_f64().unwrap_or(f64::NAN);
    let (height, window, top, scrolled, tall) = (at(0), at(1), at(2), at(3), at(4));
    if !(tall > window && height == window.ceil() && top == scrolled.floor() && top > 0.0) {
        bail!(
            "scrolled {scrolled} px into a {tall} px diagram in a {window} px window: \
             the canvas is {height} px tall at {top} px"
        );
    }
    println!("  a {tall} px diagram scrolled {scrolled} px: its {height} px canvas at {top} px");
    browser.screenshot(&shots.join("tall-diagram.png"))?;
    an_arrow_tells_its_message(browser, "scrolled into a tall diagram")?;
    browser.no_console_errors("a tall diagram")
}

/// Pointing at the newest arrow (the canvas says where it is drawn) gives it a tooltip
/// naming its send (`#index`), and clicking there shows that text in the message box.
fn an_arrow_tells_its_message(browser: &Browser, when: &str) -> anyhow::Result<()> {
    let hover = "const c = document.querySelector('[data-testid=space-time] canvas.arrows'); \
                 if (!c || !c.dataset.newest) return ['', '']; \
                 const [i, x, y] = c.dataset.newest.split(' ').map(Number); \
                 const r = c.parentElement.getBoundingClientRect(); \
                 const at = {clientX: r.left + x, clientY: r.top + y, bubbles: true}; \
                 c.dispatchEvent(new MouseEvent('mousemove', at)); \
                 const t = c.getAttribute('title') || ''; \
                 c.dispatchEvent(new MouseEvent('click', at)); \
                 return [String(i), t];";
    let shown = browser.script(hover)?;
    let (index, title) = (
        shown[0].as_str().unwrap_or_default().to_string(),
        shown[1].as_str().unwrap_or_default().to_string(),
    );
    if index.is_empty() || !title.starts_with(&format!("#{index} ")) {
        bail!("{when}: the newest arrow (#{index}) has the tooltip `{title}`");
    }
    std::thread::sleep(Duration::from_millis(300));
    let detail = browser.script(
        "const d = document.querySelector('[data-testid=message-detail]'); \
         return d ? d.textContent : '';",
    )?;
    if detail.as_str() != Some(title.as_str()) {
        bail!("{when}: clicking arrow #{index} shows `{detail}`, its tooltip says `{title}`");
    }
    println!("  {when}: arrow #{index} tells its message: {title}");
    Ok(())
}

/// Pointing at a topology link (on its canvas, where the page says the first one is)
/// names it in a tooltip, and clicking it cuts it both ways: two faults join the
/// address, and the run they make is the one the engine makes natively.
fn a_link_click_cuts_it(browser: &Browser, base: &str) -> anyhow::Result<()> {
    browser.open(&format!(
        "{base}?scenario=registry-partition-minority&seed=3&event=4000"
    ))?;
    let before = browser.wait_done()?;
    let shown = browser.script(
        "const c = document.querySelector('[data-testid=topology] canvas.links'); \
         if (!c || !c.dataset.first) return ''; \
         const [a, b, x, y] = c.dataset.first.split(' ').map(Number); \
         const r = c.getBoundingClientRect(); \
         const at = {clientX: r.left + x, clientY: r.top + y, bubbles: true}; \
         c.dispatchEvent(new MouseEvent('mousemove', at)); \
         const t = c.getAttribute('title') || ''; \
         c.dispatchEvent(new MouseEvent('click', at)); \
         return t;",
    )?;
    let title = shown.as_str().unwrap_or_default().to_string();
    let named = title
        .split_once(": ")
        .and_then(|(pair, rest)| Some((pair.split_once(" ↔ ")?, rest)));
    let Some(((a, b), rest)) = named else {
        bail!("the first link's tooltip is `{title}`");
    };
    if !rest.contains("messages") || !rest.ends_with("click to cut this link") {
        bail!("the tooltip of link {a} ↔ {b} is `{title}`");
    }
    let after = browser.wait_done()?;
    // Decoded as the page reads them (`>` travels as %3E).
    let faults =
        browser.script("return new URLSearchParams(window.location.search).getAll('fault');")?;
    let faults: Vec<&str> = faults
        .as_array()
        .map(|all| all.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if faults.len() != 2 || after == before {
        bail!("clicking link {a} ↔ {b} gave {faults:?} and the hash {before} -> {after}");
    }
    let native = native_hash("registry-partition-minority", 3, &faults)?;
    if native != after {
        bail!("the page shows {after} after the cut; the engine computes {native} for {faults:?}");
    }
    println!("  link click: {title} -> {faults:?}, {before} -> {after} (matches native)");
    browser.no_console_errors("a link click")
}

fn crash_click_changes_the_run(browser: &Browser, base: &str, shots: &Path) -> anyhow::Result<()> {
    // Open the partition scenario a little after 1 s: event 4000 is in its fault phase.
    browser.open(&format!(
        "{base}?scenario=registry-partition-minority&seed=3&event=4000"
    ))?;
    let before = browser.wait_done()?;
    browser.screenshot(&shots.join("registry-partition-minority.png"))?;
    browser.click("[data-testid=node-0]")?;
    let status = browser.attribute("[data-testid=node-0]", "data-status")?;
    if status != "up" {
        bail!("node 0 should be up before the click, is {status}");
    }
    browser.click("[data-testid=crash]")?;
    let after = browser.wait_done()?;
    let address = browser.script("return window.location.search")?;
    let address = address.as_str().unwrap_or_default().to_string();
    if !address.contains("fault=crash:0@") {
        bail!("the address does not carry the injected crash: {address}");
    }
    if after == before {
        bail!("crashing node 0 left the trace hash at {after}");
    }
    let status = browser.attribute("[data-testid=node-0]", "data-status")?;
    if status != "down" {
        bail!("node 0 shows `{status}` after the crash click, not `down`");
    }
    // The inspector of a live server shows its election state and znodes.
    browser.click("[data-testid=node-2]")?;
    let state =
        browser.script("return document.querySelector('[data-testid=node-state]').textContent")?;
    let state = state.as_str().unwrap_or_default();
    if !state.contains("znodes (committed)") || !state.contains("epoch") {
        bail!("the inspector of server 2 shows no znodes or epoch: {state}");
    }
    browser.screenshot(&shots.join("after-crash-click.png"))?;
    let faults: Vec<&str> = address
        .split('&')
        .filter_map(|pair| pair.strip_prefix("fault="))
        .collect();
    let native = native_hash("registry-partition-minority", 3, &faults)?;
    if native != after {
        bail!(
            "the page shows {after} after the crash; the engine computes {native} for {faults:?}"
        );
    }
    for attempt in 1..=2 {
        browser.open(&format!("{base}{address}"))?;
        let again = browser.wait_done()?;
        if again != after {
            bail!("the address {address} replayed to {again} on load {attempt}, not {after}");
        }
    }
    browser.no_console_errors("fault injection")?;
    println!("  crash click: {before} -> {after}, replayed twice from {address}");
    Ok(())
}

/// The RPC panel of a nested chain: load per serving node, and a placed order's span tree
/// through the gateway and the orders service down to the inventory.
fn rpc_calls_show_load_and_span_trees(
    browser: &Browser,
    base: &str,
    shots: &Path,
) -> anyhow::Result<()> {
    browser.open(&format!("{base}?scenario=rpc-trace-chain&seed=1"))?;
    browser.wait_done()?;
    let loads = browser
        .script("return document.querySelectorAll('[data-testid=rpc-load] .load-row').length")?;
    if loads.as_u64().unwrap_or(0) < 4 {
        bail!("the RPC panel shows {loads} serving nodes, not the gateway, orders and two inventories");
    }
    let picked = browser.script(
        "const b = [...document.querySelectorAll('[data-testid=rpc-trace]')] \
             .find(b => b.textContent.startsWith('orders.place')); \
         if (!b) return 'none'; b.click(); return b.textContent;",
    )?;
    if picked.as_str() == Some("none") {
        bail!("the RPC panel lists no orders.place call");
    }
    std::thread::sleep(Duration::from_millis(300));
    let rows = browser.script(
        "return [...document.querySelectorAll('[data-testid=span-row]')].map(r => r.textContent).join(' | ')",
    )?;
    let rows = rows.as_str().unwrap_or_default().to_string();
    for hop in [
        "orders.place n7 (client)",
        "orders.place n6 (gateway)",
        "orders.place n5 (orders)",
        "inventory.reserve n5 (orders)",
        "(inventory)",
    ] {
        if !rows.contains(hop) {
            bail!("the span tree lacks `{hop}`: {rows}");
        }
    }
    browser.screenshot(&shots.join("rpc-trace-chain.png"))?;
    browser.no_console_errors("rpc panel")?;
    println!(
        "  rpc panel: {picked} -> {} spans",
        rows.split(" | ").count()
    );
    Ok(())
}

/// The CAP panel of the side-by-side scenario: a row for the bank and one for the shop,
/// and the summary lines the CLI prints (the shop served every order, the bank did not).
fn bank_beside_shop_in_the_cap_panel(
    browser: &Browser,
    base: &str,
    shots: &Path,
) -> anyhow::Result<()> {
    browser.open(&format!("{base}?scenario=cap-partition&seed=1"))?;
    browser.wait_done()?;
    let rows = browser.attribute("[data-testid=cap-chart]", "data-rows")?;
    if rows != "2" {
        bail!("the CAP chart draws {rows} rows, not the bank's and the shop's");
    }
    let lines = browser.script(
        "return [...document.querySelectorAll('[data-testid=cap-summary] li')] \
             .map(l => l.textContent).join('\\n')",
    )?;
    let lines = lines.as_str().unwrap_or_default().to_string();
    let bank = lines.lines().find(|l| l.starts_with("cap bank:"));
    let shop = lines.lines().find(|l| l.starts_with("cap shop:"));
    let (Some(bank), Some(shop)) = (bank, shop) else {
        bail!("the CAP summary lacks the bank or the shop: {lines}");
    };
    if !shop.contains("100.0% of") || bank.contains("100.0% of") {
        bail!("under the partition the shop should serve all and the bank not: {lines}");
    }
    if !shop.contains("orders not yet applied: peak") || !bank.contains("oldest branch in doubt") {
        bail!("the CAP summary lacks the consistency gauges: {lines}");
    }
    // The panel below the fold: scroll it into view for the screenshot.
    browser
        .script("document.querySelector('[data-testid=cap-summary]').scrollIntoView(); return 0")?;
    std::thread::sleep(Duration::from_millis(300));
    browser.screenshot(&shots.join("cap-partition.png"))?;
    browser.no_console_errors("cap panel")?;
    println!("  cap panel: {}", lines.replace('\n', " / "));
    Ok(())
}

/// `faultline shrink` prints an address holding the shrunk file: the page runs that file
/// to the hash the CLI computes for it and opens at the finding.
fn a_shrunk_run_opens_at_its_finding(
    browser: &Browser,
    base: &str,
    shots: &Path,
) -> anyhow::Result<()> {
    let file = root().join("target/browser/shrunk.toml");
    let printed = crate::capture(crate::cargo().args([
        "run",
        "-q",
        "-p",
        "faultline",
        "--",
        "shrink",
        "registry-partition-minority",
        "--seed",
        "0",
        "--bug",
        "zab.commit-without-quorum",
        "--budget",
        "100",
        "--json",
        "--web-base",
        base,
        "--out",
        file.to_str().ok_or_else(|| anyhow!("a UTF-8 path"))?,
    ]))?;
    let report: Value = serde_json::from_str(&printed)?;
    let url = report["web_url"].as_str().unwrap_or_default();
    if !url.starts_with(base) || !url.contains("toml=") {
        bail!("shrink printed no address of this page: {printed}");
    }
    let text = std::fs::read_to_string(&file)?;
    let parsed = scenario::parse("shrunk.toml", &text).map_err(|e| anyhow!("{e:?}"))?;
    let native = run_to_end(parsed.build(&RunOptions::default()).as_mut());
    browser.open(url)?;
    let shown = browser.wait_done()?;
    if shown != native.trace_hash {
        bail!(
            "the shrunk run shows {shown}; the engine computes {}",
            native.trace_hash
        );
    }
    let findings = browser
        .script("return document.querySelectorAll('[data-testid=findings] li.finding').length")?;
    if findings.as_u64().unwrap_or(0) == 0 {
        bail!("the shrunk run's page shows no finding");
    }
    browser.screenshot(&shots.join("shrunk.png"))?;
    browser.no_console_errors("shrunk run")?;
    println!(
        "  shrunk run: {} faults -> {}, {} events -> {}, hash {shown}",
        report["before"]["faults"],
        report["after"]["faults"],
        report["before"]["events"],
        report["after"]["events"]
    );
    Ok(())
}

/// A node's assertion fails (a planted bug): the page reloads itself stopping before
/// the panicking step, shows the panic and everything up to it, ends with the CLI's
/// hash, and keeps the console clean.
fn a_panic_is_a_finding_in_the_page(
    browser: &Browser,
    base: &str,
    shots: &Path,
) -> anyhow::Result<()> {
    let (name, seed, bug) = ("ping-pong-lossy", 1, "ping-pong.assert-current-round");
    let mut run = native_run(name, seed, &[], &[bug], false)?;
    // The node's panic is expected: keep the default hook's report off the output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let native = run_to_end(run.as_mut());
    std::panic::set_hook(hook);
    let Some(finding) = native.findings.iter().find(|f| f.invariant == "panic") else {
        bail!("{name} seed {seed} with {bug} does not panic natively");
    };
    browser.open(&format!("{base}?scenario={name}&seed={seed}&bug={bug}"))?;
    let shown = browser.wait_done()?;
    let page = browser.script(
        "const p = document.querySelector('[data-testid=panic]'); \
         return [location.search, p ? p.textContent : '', \
                 document.querySelectorAll('[data-testid=event-log] li').length];",
    )?;
    let (address, banner) = (
        page[0].as_str().unwrap_or(""),
        page[1].as_str().unwrap_or(""),
    );
    if !address.contains("panic_step=") {
        bail!("the page did not reload stopping before the panic: {address}");
    }
    if !banner.contains(&finding.message) {
        bail!("the panic banner `{banner}` lacks `{}`", finding.message);
    }
    if page[2].as_u64().unwrap_or(0) == 0 {
        bail!("the event log up to the panic is empty");
    }
    if shown != native.trace_hash {
        bail!(
            "the panicking run shows {shown}; the engine computes {}",
            native.trace_hash
        );
    }
    browser.screenshot(&shots.join("panic.png"))?;
    browser.no_console_errors("panicking run")?;
    println!(
        "  panic: `{}` at event {}, hash {shown} (matches native)",
        finding.message, finding.event
    );
    Ok(())
}

/// A run and the same run with a crash injected, compared: the page names the event at
/// which they part (as comparing the two traces natively does), marks it in both
/// diagrams once the cursor is there, and shows both hashes.
fn two_runs_side_by_side(browser: &Browser, base: &str, shots: &Path) -> anyhow::Result<()> {
    let (name, seed, fault) = ("registry-basic", 1, "crash:0@500ms");
    let log = |faults: &[&str]| -> anyhow::Result<Vec<sim_core::trace::TraceEvent>> {
        let mut run = native_run(name, seed, faults, &[], true)?;
        while run.step() {}
        Ok(run.trace().retained().to_vec())
    };
    let (a, b) = (log(&[])?, log(&[fault])?);
    let parted = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let other = format!("?scenario={name}&seed={seed}&fault={fault}");
    let escaped: String = other
        .bytes()
        .map(|byte| match byte {
            b'?' | b'=' | b'&' | b'@' | b':' => format!("%{byte:02X}"),
            _ => (byte as char).to_string(),
        })
        .collect();
    browser.open(&format!(
        "{base}?scenario={name}&seed={seed}&diff={escaped}"
    ))?;
    browser.wait_done()?;
    let read = "const q = (s) => document.querySelector(s); \
                return [q('[data-testid=diff-first]') ? q('[data-testid=diff-first]').textContent : '', \
                        q('[data-testid=compare-hash]') ? q('[data-testid=compare-hash]').textContent : '', \
                        document.querySelectorAll('[data-testid=differ-mark]').length];";
    let shown = browser.script(read)?;
    let text = shown[0].as_str().unwrap_or_default();
    if !text.contains(&format!("they part at #{parted}")) {
        bail!("the compare panel says `{text}`; the traces part at #{parted}");
    }
    let expected_b = native_hash(name, seed, &[fault])?;
    if shown[1].as_str() != Some(expected_b.as_str()) {
        bail!(
            "the compared run shows hash {}, the engine computes {expected_b}",
            shown[1]
        );
    }
    browser.click("[data-testid=diff-first] button")?;
    std::thread::sleep(Duration::from_millis(300));
    let marks = browser.script(read)?[2].as_u64().unwrap_or(0);
    if marks != 2 {
        bail!("after jumping to the first difference, {marks} diagrams mark it (want 2)");
    }
    browser
        .script("document.querySelector('[data-testid=compare]').scrollIntoView(); return 1;")?;
    browser.screenshot(&shots.join("compare.png"))?;
    browser.no_console_errors("two runs side by side")?;
    println!("  compare: {name} seed {seed} with and without {fault} part at event #{parted}");
    Ok(())
}

/// The hash `faultline run NAME --seed N` prints, computed here with the same library.
fn native_hash(name: &str, seed: u64, faults: &[&str]) -> anyhow::Result<String> {
    let mut run = native_run(name, seed, faults, &[], false)?;
    Ok(run_to_end(run.as_mut()).trace_hash)
}

/// Built-in `name` at `seed` with `--fault` specs and `--bug` names, as `faultline run`
/// builds it, not yet run.
fn native_run(
    name: &str,
    seed: u64,
    faults: &[&str],
    bugs: &[&str],
    retain_trace: bool,
) -> anyhow::Result<Box<dyn sim_core::engine::Run>> {
    let text = scenario::builtin(name).ok_or_else(|| anyhow!("no built-in {name}"))?;
    let parsed = scenario::parse(name, text).map_err(|e| anyhow!("{name}: {e:?}"))?;
    let mut options = RunOptions {
        seed: Some(seed),
        retain_trace,
        ..Default::default()
    };
    for spec in faults {
        let fault = sim_core::fault::ScheduledFault::parse_spec(spec).map_err(|e| anyhow!(e))?;
        options.extra_faults.push(fault);
    }
    for bug in bugs {
        sim_core::catalogue::enable_bug(&mut options.bugs, bug).map_err(|e| anyhow!(e))?;
    }
    Ok(parsed.build(&options))
}

/// Installs Debian's chromium and chromium-driver when either is missing.
pub(crate) fn ensure_chromium() -> anyhow::Result<()> {
    let have = |name: &str| {
        Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if have("chromium") && have("chromedriver") {
        return Ok(());
    }
    println!("installing Debian's chromium and chromium-driver");
    let sudo = !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let apt = |args: &[&str]| -> anyhow::Result<()> {
        let mut command = if sudo {
            Command::new("sudo")
        } else {
            Command::new("apt-get")
        };
        if sudo {
            command.arg("apt-get");
        }
        command.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        crate::exec(&mut command)
    };
    apt(&["update", "-qq"])?;
    apt(&["install", "-y", "-qq", "chromium", "chromium-driver"])
}

pub(crate) struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    pub(crate) fn start() -> anyhow::Result<Driver> {
        let port = TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(DRIVER_START_TIMEOUT_S) {
                bail!(
                    "chromedriver did not listen on port {port} within {DRIVER_START_TIMEOUT_S}s"
                );
            }
            std::thread::sleep(Duration::from_millis(POLL_MS));
        }
        Ok(Driver { child, port })
    }

    pub(crate) fn session(&self) -> anyhow::Result<Browser> {
        let profile =
            std::env::temp_dir().join(format!("faultline-chromium-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1700",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let answer = request(self.port, "POST", "/session", Some(&capabilities))?;
        let id = answer["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("chromedriver gave no session: {answer}"))?;
        Ok(Browser {
            port: self.port,
            session: format!("/session/{id}"),
            profile,
        })
    }

    pub(crate) fn stop(mut self) {
        // The driver is ours alone; if it already exited there is nothing to stop.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Browser {
    port: u16,
    session: String,
    /// Chromium's fresh profile directory, removed on close: each run made one in the
    /// temporary directory, and they added up to hundreds of megabytes.
    profile: std::path::PathBuf,
}

impl Browser {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        request(self.port, method, &format!("{}{path}", self.session), body)
    }

    pub(crate) fn open(&self, url: &str) -> anyhow::Result<()> {
        self.call("POST", "/url", Some(&json!({ "url": url })))?;
        Ok(())
    }

    pub(crate) fn script(&self, script: &str) -> anyhow::Result<Value> {
        self.call(
            "POST",
            "/execute/sync",
            Some(&json!({"script": script, "args": []})),
        )
    }

    /// Waits for `run-status` to read `done`; returns the trace hash shown.
    pub(crate) fn wait_done(&self) -> anyhow::Result<String> {
        let read = "const s = document.querySelector('[data-testid=run-status]'); \
                    const h = document.querySelector('[data-testid=trace-hash]'); \
                    const e = document.querySelector('[data-testid=error]'); \
                    return [s ? s.textContent : '', h ? h.textContent : '', e ? e.textContent : ''];";
        let started = Instant::now();
        loop {
            let state = self.script(read)?;
            let field = |i: usize| state[i].as_str().unwrap_or_default().to_string();
            match field(0).as_str() {
                "done" if !field(1).is_empty() => return Ok(field(1)),
                "error" => bail!("the page shows an error: {}", field(2)),
                _ => {}
            }
            if started.elapsed() > Duration::from_secs(RUN_TIMEOUT_S) {
                bail!(
                    "the run did not finish within {RUN_TIMEOUT_S}s (status `{}`)",
                    field(0)
                );
            }
            std::thread::sleep(Duration::from_millis(POLL_MS));
        }
    }

    fn element(&self, css: &str) -> anyhow::Result<String> {
        let found = self.call(
            "POST",
            "/element",
            Some(&json!({"using": "css selector", "value": css})),
        )?;
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no element {css}: {found}"))
    }

    fn click(&self, css: &str) -> anyhow::Result<()> {
        let element = self.element(css)?;
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(&json!({})),
        )?;
        Ok(())
    }

    fn attribute(&self, css: &str, name: &str) -> anyhow::Result<String> {
        let element = self.element(css)?;
        let value = self.call("GET", &format!("/element/{element}/attribute/{name}"), None)?;
        Ok(value.as_str().unwrap_or_default().to_string())
    }

    pub(crate) fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let data = self.call("GET", "/screenshot", None)?;
        let text = data.as_str().ok_or_else(|| anyhow!("no screenshot data"))?;
        std::fs::write(path, decode_base64(text)?)?;
        println!("  screenshot: {}", path.display());
        Ok(())
    }

    /// Fails on any console message of level SEVERE since the last call.
    pub(crate) fn no_console_errors(&self, what: &str) -> anyhow::Result<()> {
        let log = self.call("POST", "/se/log", Some(&json!({"type": "browser"})))?;
        let severe: Vec<String> = log
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].to_string())
            .collect();
        if !severe.is_empty() {
            bail!("{what}: console errors: {}", severe.join("; "));
        }
        Ok(())
    }

    pub(crate) fn close(self) {
        // Closing is best effort: chromedriver is stopped right after, and a profile
        // left behind is only disk space.
        let _ = request(self.port, "DELETE", &self.session, None);
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One WebDriver call: a JSON request, the response's `value` (an error if it is one).
fn request(port: u16, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).context("connecting to chromedriver")?;
    stream.set_read_timeout(Some(Duration::from_secs(RUN_TIMEOUT_S)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let response = read_response(&mut stream).with_context(|| format!("{method} {path}"))?;
    let text = String::from_utf8_lossy(&response);
    let (headers, payload) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("{method} {path}: no HTTP response"))?;
    let payload = if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(payload)
    } else {
        payload.to_string()
    };
    let answer: Value = serde_json::from_str(&payload)
        .with_context(|| format!("{method} {path}: not JSON: {payload}"))?;
    let value = answer["value"].clone();
    if value.get("error").is_some() {
        bail!("{method} {path}: {}", value["message"]);
    }
    Ok(value)
}

/// Reads one response: chromedriver keeps the connection open after it, so the end is
/// the `Content-Length` (or the last chunk), not the end of the stream.
fn read_response(stream: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
    let mut response = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = stream.read(&mut buffer)?;
        response.extend_from_slice(&buffer[..read]);
        if read == 0 || complete(&response) {
            return Ok(response);
        }
        if response.len() > RESPONSE_BYTES_MAX {
            bail!("a response over {RESPONSE_BYTES_MAX} bytes");
        }
    }
}

fn complete(response: &[u8]) -> bool {
    let text = String::from_utf8_lossy(response);
    let Some((headers, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let headers = headers.to_ascii_lowercase();
    if headers.contains("transfer-encoding: chunked") {
        return body.ends_with("0\r\n\r\n");
    }
    let length = headers
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok());
    length.is_some_and(|length| body.len() >= length)
}

fn dechunk(payload: &str) -> String {
    let mut out = String::new();
    let mut rest = payload;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

fn decode_base64(text: &str) -> anyhow::Result<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for byte in text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
    {
        let value = ALPHABET
            .iter()
            .position(|a| *a == byte)
            .ok_or_else(|| anyhow!("screenshot data is not base64"))?;
        bits = bits << 6 | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGk").unwrap(), b"hi");
        assert!(decode_base64("a$b").is_err());
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
