//! The `faultline` command line: run scenarios, swarm seeds, replay and compare traces,
//! list the built-ins and the bug zoo, and benchmark the engine.
//!
//! Exit codes are a contract (DESIGN.md): 0 clean, 1 findings, 2 bad input or usage.
//! Every command lives in its own file under `cmd/`; this file only parses arguments.

mod cmd;
mod interrupt;
mod load;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "faultline",
    version,
    about = "A deterministic cluster simulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the built-in scenarios.
    List(cmd::list::Args),
    /// Run one scenario at one seed and report its findings.
    Run(cmd::run::Args),
    /// Re-run a seed and print its event log, or compare it with a saved trace.
    Replay(cmd::replay::Args),
    /// Run many seeds of a scenario on all cores.
    Swarm(cmd::swarm::Args),
    /// Shrink a failing run to the smallest scenario that still fails the same way.
    Shrink(cmd::shrink::Args),
    /// List the planted bugs (the bug zoo).
    Bugs(cmd::bugs::Args),
    /// Check client histories for linearizability.
    Check(cmd::check::Args),
    /// Measure the engine's speed.
    Bench(cmd::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::install_panic_hook();
    let result = match cli.command {
        Command::List(args) => cmd::list::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Swarm(args) => cmd::swarm::run(args),
        Command::Shrink(args) => cmd::shrink::run(args),
        Command::Bugs(args) => cmd::bugs::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Bench(args) => cmd::bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{} {error:#}", output::paint_stderr(output::RED, "error:"));
            ExitCode::from(2)
        }
    }
}
