//! Terminal output helpers: colour that honours NO_COLOR and terminals, and the panic hook
//! that keeps a node's panic (a finding, not a crash) from spraying stderr.

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

/// Panics inside a simulated node are findings: remember where, print nothing. The
/// engine turns the payload into a finding; `last_panic_location` adds the place.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        LAST_PANIC.with(|last| *last.borrow_mut() = location);
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
