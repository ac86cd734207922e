//! `cargo xtask test`: installs what is missing, then runs every test, in order, stopping
//! at the first failure.
//!
//! Set-up steps only install (the wasm target, a `wasm-bindgen-cli` matching Cargo.lock);
//! they never upgrade or remove anything else. The order puts the cheapest checks first,
//! so a formatting slip fails in seconds rather than after a full build.

use std::process::Command;
use std::time::Instant;

use anyhow::Context;

use crate::{capture, cargo, exec, root};

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// One step of the test run: a header and what it does.
struct Step {
    name: &'static str,
    action: fn() -> anyhow::Result<()>,
}

const STEPS: &[Step] = &[
    Step {
        name: "wasm32 target installed",
        action: ensure_wasm_target,
    },
    Step {
        name: "wasm-bindgen-cli matches Cargo.lock",
        action: ensure_wasm_bindgen,
    },
    Step {
        name: "formatting (cargo fmt --check)",
        action: check_fmt,
    },
    Step {
        name: "lints (cargo clippy -D warnings)",
        action: check_clippy,
    },
    Step {
        name: "native tests (cargo test --workspace)",
        action: test_native,
    },
    Step {
        name: "wasm tests (golden trace hashes under Node)",
        action: test_wasm,
    },
    Step {
        name: "browser demo builds",
        action: build_web,
    },
    Step {
        name: "browser tests (the demo in headless Chromium)",
        action: crate::browser::run,
    },
];

pub fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let total = STEPS.len();
    for (index, step) in STEPS.iter().enumerate() {
        let number = index + 1;
        println!("\n==> [{number}/{total}] {}", step.name);
        let step_started = Instant::now();
        if let Err(error) = (step.action)() {
            println!(
                "\nxtask test: FAILED at step {number}/{total} ({}): {error:#}",
                step.name
            );
            anyhow::bail!("step {number}/{total} failed");
        }
        println!("--> ok in {:.1}s", step_started.elapsed().as_secs_f64());
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    println!("\nxtask test: all {total} steps passed in {elapsed_s:.0}s");
    Ok(())
}

pub fn ensure_wasm_target() -> anyhow::Result<()> {
    let installed = capture(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        println!("{WASM_TARGET} is installed");
        return Ok(());
    }
    exec(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// The test runner must be the exact version of the `wasm-bindgen` crate in Cargo.lock:
/// the two share an unversioned wire format and refuse to work across versions.
pub fn ensure_wasm_bindgen() -> anyhow::Result<()> {
    let lock_path = root().join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path)
        .with_context(|| format!("reading {}", lock_path.display()))?;
    let wanted = locked_version(&lock, "wasm-bindgen")
        .context("Cargo.lock has no `wasm-bindgen` package")?;
    // A missing binary is not an error here: it is what this step installs.
    let installed = capture(Command::new("wasm-bindgen").arg("--version")).unwrap_or_default();
    let installed = installed
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    if installed == wanted {
        println!("wasm-bindgen {installed} matches Cargo.lock");
        return Ok(());
    }
    let found = if installed.is_empty() {
        "none"
    } else {
        installed.as_str()
    };
    println!("wasm-bindgen-cli {wanted} needed, found {found}");
    exec(cargo().args(["install", "wasm-bindgen-cli", "--version", &wanted]))
}

/// The version of package `name` in a Cargo.lock (the first, if several are locked).
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted_name = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() != wanted_name {
            continue;
        }
        let version = lines.next()?.trim().strip_prefix("version = \"")?;
        return Some(version.strip_suffix('"')?.to_string());
    }
    None
}

fn check_fmt() -> anyhow::Result<()> {
    exec(cargo().args(["fmt", "--all", "--", "--check"]))
}

fn check_clippy() -> anyhow::Result<()> {
    exec(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}

fn test_native() -> anyhow::Result<()> {
    exec(cargo().args(["test", "--workspace"]))
}

fn test_wasm() -> anyhow::Result<()> {
    let mut command = cargo();
    command.env(
        "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
        "wasm-bindgen-test-runner",
    );
    command.args([
        "test",
        "-p",
        "sim-core",
        "--target",
        WASM_TARGET,
        "--test",
        "wasm_hashes",
    ]);
    exec(&mut command)
}

/// The browser code is compiled only for wasm32, so it gets its own lint pass here.
fn build_web() -> anyhow::Result<()> {
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "-p",
        "web-ui",
        "--target",
        WASM_TARGET,
        "--",
        "-D",
        "warnings",
    ]);
    exec(&mut clippy)?;
    crate::web::build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_version_reads_the_line_after_the_name() {
        let lock = "[[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n";
        assert_eq!(
            locked_version(lock, "wasm-bindgen").as_deref(),
            Some("0.2.130")
        );
    }

    #[test]
    fn locked_version_does_not_match_a_longer_name() {
        let lock = "[[package]]\nname = \"wasm-bindgen-test\"\nversion = \"0.3.80\"\n";
        assert_eq!(locked_version(lock, "wasm-bindgen"), None);
    }
}
