//! `faultline bugs`: the bug zoo, each planted bug with the scenario that exposes it.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::output::{paint, BOLD, DIM};

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Entry {
    name: &'static str,
    protocol: &'static str,
    description: &'static str,
    scenario: &'static str,
    /// The invariant that catches it in that scenario.
    caught_by: &'static str,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let entries: Vec<Entry> = sim_core::catalogue::bugs()
        .into_iter()
        .map(|bug| Entry {
            name: bug.name,
            protocol: bug.protocol,
            description: bug.description,
            scenario: bug.scenario,
            caught_by: bug.caught_by,
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    for entry in &entries {
        println!(
            "{}  {}",
            paint(BOLD, entry.name),
            paint(
                DIM,
                &format!(
                    "(scenario {}, caught by {})",
                    entry.scenario, entry.caught_by
                )
            )
        );
        println!("    {}", entry.description);
        println!(
            "    try: faultline swarm {} --seeds 200 --bug {}",
            entry.scenario, entry.name
        );
    }
    Ok(ExitCode::SUCCESS)
}
