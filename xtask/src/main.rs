//! `cargo xtask`: the repository's task runner (the alias lives in `.cargo/config.toml`).
//!
//! Subcommands: `test` (set up what is missing, then run every test), `browser` (the
//! browser tests alone), `web` (build and serve the browser demo), `golden` (rewrite the
//! golden trace hashes on purpose) and `bench` (faultline's ping-pong against the madsim
//! reference). One file per command.
//! Bad usage prints the usage text and exits 2; a failed step exits 1. It never edits a
//! file except `golden`'s one output and the `dist/` folder `web` builds.

mod bench;
mod browser;
mod browser_bench;
mod golden;
mod serve;
mod test;
mod web;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test                          install what is missing (wasm target, wasm-bindgen-cli),
                                then fmt, clippy, native tests, wasm tests, web build,
                                and the demo in headless Chromium (installed if missing)
  web [--build-only] [--port N] build the browser demo into dist/ and serve it on
                                127.0.0.1 (default port 8080)
  browser                       only the browser tests (build, serve, headless Chromium)
  browser-bench                 time the demo on large runs in headless Chromium: load,
                                step back, jump, frames while playing (figures only)
  golden                        rewrite sim-core/tests/golden/hashes.txt from native runs
  bench                         faultline vs madsim ping-pong, 3 alternating runs each
";

/// Bad command-line input: printed with the usage text, exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => no_flags(&args[1..]).and_then(|()| test::run()),
        Some("web") => web::Args::parse(&args[1..]).and_then(web::run),
        Some("golden") => no_flags(&args[1..]).and_then(|()| golden::run()),
        Some("browser") => no_flags(&args[1..]).and_then(|()| browser::run()),
        Some("browser-bench") => no_flags(&args[1..]).and_then(|()| browser_bench::run()),
        Some("bench") => no_flags(&args[1..]).and_then(|()| bench::run()),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(UsageError(format!("unknown command `{other}`")).into()),
        None => Err(UsageError("no command given".to_string()).into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<UsageError>() => {
            eprintln!("xtask: {error}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn no_flags(args: &[String]) -> anyhow::Result<()> {
    match args.first() {
        Some(arg) => Err(UsageError(format!("unexpected argument `{arg}`")).into()),
        None => Ok(()),
    }
}

/// The workspace root: xtask always works from there, wherever it was started.
pub fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("xtask/ sits in the workspace root")
        .to_path_buf()
}

/// `cargo`, the same binary that started us when there is one (rustup proxies otherwise).
pub fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.current_dir(root());
    command
}

/// Echoes `command` and runs it to completion; a non-zero exit is an error.
pub fn exec(command: &mut Command) -> anyhow::Result<()> {
    let shown = show(command);
    println!("$ {shown}");
    let status = command
        .status()
        .map_err(|error| anyhow::anyhow!("could not start `{shown}`: {error}"))?;
    if !status.success() {
        anyhow::bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs `command` quietly and returns its standard output (not echoed: used for probes).
pub fn capture(command: &mut Command) -> anyhow::Result<String> {
    let shown = show(command);
    let out = command
        .output()
        .map_err(|error| anyhow::anyhow!("could not start `{shown}`: {error}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        anyhow::bail!("`{shown}` failed ({}): {}", out.status, stderr.trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A command as a user would type it, environment overrides first.
fn show(command: &Command) -> String {
    let mut parts = Vec::new();
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            let value = quote(&value.to_string_lossy());
            parts.push(format!("{}={value}", key.to_string_lossy()));
        }
    }
    let program = Path::new(command.get_program());
    let program = program.file_name().unwrap_or(program.as_os_str());
    parts.push(program.to_string_lossy().into_owned());
    parts.extend(command.get_args().map(|arg| quote(&arg.to_string_lossy())));
    parts.join(" ")
}

/// Quotes a word that a shell would otherwise split, so echoed commands can be pasted.
fn quote(word: &str) -> String {
    if word.is_empty() || word.contains([' ', '"', '\'', '$', '*', '?']) {
        format!("'{}'", word.replace('\'', r"'\''"))
    } else {
        word.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_commands_quote_what_a_shell_would_split() {
        let mut command = Command::new("/usr/bin/cargo");
        command
            .env("RUSTFLAGS", "--cfg madsim")
            .args(["build", "it's"]);
        assert_eq!(
            show(&command),
            r#"RUSTFLAGS='--cfg madsim' cargo build 'it'\''s'"#
        );
    }
}
