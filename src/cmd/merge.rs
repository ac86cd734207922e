//! `faultline swarm merge`: one report from the `--json` reports of a swarm's shards
//! (`swarm --shard I/N` on N machines, say as a Kubernetes Indexed Job). Shards ran side by
//! side, so their rates add up.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};

use super::swarm::{print_report, Report};

/// A shard report larger than this is refused rather than read into memory.
const REPORT_BYTES_MAX: u64 = 1 << 30;

#[derive(clap::Args)]
pub struct Args {
    /// The shards' `faultline swarm --json` outputs.
    #[arg(required = true, value_name = "SHARD.json")]
    files: Vec<PathBuf>,
    /// Print the merged report as JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let mut shards = Vec::new();
    for path in &args.files {
        shards.push((path.display().to_string(), read(path)?));
    }
    let (first_file, first) = &shards[0];
    for (file, shard) in &shards[1..] {
        if shard.scenario != first.scenario || shard.start != first.start {
            bail!(
                "{file} is a shard of `{}` from seed {}, but {first_file} is of `{}` from seed {}",
                shard.scenario,
                shard.start,
                first.scenario,
                first.start
            );
        }
    }
    let mut merged = Report {
        scenario: first.scenario.clone(),
        start: first.start,
        seeds: 0,
        failing_seeds: 0,
        seeds_per_sec: 0.0,
        events: 0,
        findings: Vec::new(),
        findings_truncated: false,
        stopped_early: false,
    };
    for (_, shard) in shards {
        merged.seeds += shard.seeds;
        merged.failing_seeds += shard.failing_seeds;
        merged.seeds_per_sec += shard.seeds_per_sec;
        merged.events += shard.events;
        merged.findings_truncated |= shard.findings_truncated;
        merged.stopped_early |= shard.stopped_early;
        merged.findings.extend(shard.findings);
    }
    merged.findings.sort_by_key(|f| f.seed);
    if args.json {
        println!("{}", serde_json::to_string(&merged)?);
    } else {
        print_report(
            &merged,
            merged.seeds as f64 / merged.seeds_per_sec.max(1e-9),
        );
    }
    Ok(if merged.failing_seeds == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn read(path: &std::path::Path) -> Result<Report> {
    let shown = path.display();
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {shown}"))?
        .len();
    if size > REPORT_BYTES_MAX {
        bail!("{shown}: {size} bytes is more than a swarm report may hold");
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {shown} as UTF-8 text"))?;
    serde_json::from_str(&text).map_err(|error| {
        anyhow!(
            "{shown}:{}:{}: not a `faultline swarm --json` report: {error}",
            error.line(),
            error.column()
        )
    })
}
