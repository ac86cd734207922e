//! Terminal output helpers: colour that honours NO_COLOR and terminals, and the panic hook
//! that keeps a node's panic (a finding, not a crash) from spraying stderr while every
//! other panic is reported as usual, and a closed stdout ends the program quietly.

use std::cell::RefCell;
use std::io::IsTerminal;

pub const RED: &str = "31";
pub const GREEN: &str = "32";
pub const YELLOW: &str = "33";
pub const BOLD: &str = "1";
pub const DIM: &str = "2";

fn enabled(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

pub fn paint(code: &str, text: &str) -> String {
    if enabled(std::io::stdout().is_terminal()) {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub fn paint_stderr(code: &str, text: &str) -> String {
    if enabled(std::io::stderr().is_terminal()) {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Panics inside a simulated node are findings: remember where, print nothing (the
/// engine turns the payload into a finding; `take_panic_location` adds the place). Writing
/// to a closed pipe (`faultline replay ... | head`) is a normal end: exit 0, quietly, as
/// other Unix tools do. Any other panic is the program's own bug and is printed by the
/// default hook.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if sim_core::engine::simulating() {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()));
            LAST_PANIC.with(|last| *last.borrow_mut() = location);
            return;
        }
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if payload.starts_with("failed printing to std") && payload.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Where the last panic on this thread happened, once.
pub fn take_panic_location() -> Option<String> {
    LAST_PANIC.with(|last| last.borrow_mut().take())
}

/// Seconds with microsecond precision for human output.
pub fn seconds(ns: u64) -> String {
    format!(
        "{}.{:06}s",
        ns / 1_000_000_000,
        (ns % 1_000_000_000) / 1_000
    )
}
