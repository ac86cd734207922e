//! `faultline list`: the built-in scenarios with one-line descriptions.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;
use sim_core::scenario;

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
    protocol: String,
    description: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let mut entries = Vec::new();
    for (name, text) in scenario::BUILTINS {
        let parsed = scenario::parse(name, text).expect("built-in scenarios are valid (tested)");
        entries.push(Entry {
            name,
            protocol: parsed.protocol,
            description: parsed.description,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
    for entry in &entries {
        let name = format!("{:width$}", entry.name);
        let protocol = format!("[{}]", entry.protocol);
        println!(
            "{}  {}  {}",
            paint(BOLD, &name),
            entry.description,
            paint(DIM, &protocol)
        );
    }
    Ok(ExitCode::SUCCESS)
}
