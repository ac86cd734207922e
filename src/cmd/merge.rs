//! `faultline swarm merge`: one report from the `--json` reports of a swarm's shards
//! (`swarm --shard I/N` on N machines, say as a Kubernetes Indexed Job). Shards ran side by
//! side, so their rates add up.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};

use super::swarm::{print_report, Report, FINDINGS_LISTED_MAX};

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
    let parts = check_shards(&shards)?;
    let (_, first) = &shards[0];
    let mut merged = Report {
        scenario: first.scenario.clone(),
        scenario_hash: first.scenario_hash.clone(),
        bugs: first.bugs.clone(),
        shard: Some("0/1".to_string()),
        seeds_asked: first.seeds_asked,
        start: first.start,
        seeds: 0,
        failing_seeds: 0,
        seeds_per_sec: 0.0,
        events: 0,
        findings: Vec::new(),
        findings_truncated: false,
        groups: Vec::new(),
        marks: Vec::new(),
        stopped_early: false,
        interrupted: false,
    };
    let mut groups = super::groups::Groups::default();
    for (_, shard) in shards {
        groups.merge(shard.groups);
        super::marks::merge(&mut merged.marks, shard.marks);
        merged.seeds += shard.seeds;
        merged.failing_seeds += shard.failing_seeds;
        merged.seeds_per_sec += shard.seeds_per_sec;
        merged.events += shard.events;
        merged.findings_truncated |= shard.findings_truncated;
        merged.stopped_early |= shard.stopped_early;
        merged.interrupted |= shard.interrupted;
        merged.findings.extend(shard.findings);
    }
    merged.findings.sort_by_key(|f| f.seed);
    merged.groups = groups.into_vec();
    // The same cap as one unsharded swarm, so both reports agree.
    if merged.findings.len() > FINDINGS_LISTED_MAX {
        merged.findings.truncate(FINDINGS_LISTED_MAX);
        merged.findings_truncated = true;
    }
    assert!(parts >= 1, "checked shards cover at least one");
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

/// Checks that the shards are of one swarm (scenario and its text, bugs, seeds asked,
/// first seed, shard count) and cover it exactly once; returns the shard count.
fn check_shards(shards: &[(String, Report)]) -> Result<u64> {
    let mut seen: Vec<Option<&String>> = Vec::new();
    let (first_file, first) = &shards[0];
    let identity = |file: &str, report: &Report| -> Result<(u64, u64)> {
        let (Some(_), Some(_), Some(shard), Some(_)) = (
            &report.scenario_hash,
            &report.bugs,
            &report.shard,
            &report.seeds_asked,
        ) else {
            bail!("{file}: a swarm report without its shard identity (from an older faultline?); run the shard again");
        };
        let (index, count) = shard
            .split_once('/')
            .and_then(|(i, n)| Some((i.parse::<u64>().ok()?, n.parse::<u64>().ok()?)))
            .filter(|(i, n)| i < n)
            .ok_or_else(|| anyhow!("{file}: shard `{shard}` is not I/N"))?;
        Ok((index, count))
    };
    let (_, count) = identity(first_file, first)?;
    seen.resize(count as usize, None);
    for (file, shard) in shards {
        let (index, this_count) = identity(file, shard)?;
        let differs = |what: &str, a: String, b: String| -> Result<()> {
            if a != b {
                bail!(
                    "{file} and {first_file} are not shards of one swarm: {what} {a} against {b}"
                );
            }
            Ok(())
        };
        if shard.scenario != first.scenario || shard.start != first.start {
            bail!(
                "{file} is a shard of `{}` from seed {}, but {first_file} is of `{}` from seed {}",
                shard.scenario,
                shard.start,
                first.scenario,
                first.start
            );
        }
        differs(
            "scenario text",
            format!("{:?}", shard.scenario_hash),
            format!("{:?}", first.scenario_hash),
        )?;
        differs(
            "bugs",
            format!("{:?}", shard.bugs),
            format!("{:?}", first.bugs),
        )?;
        differs(
            "seeds asked",
            format!("{:?}", shard.seeds_asked),
            format!("{:?}", first.seeds_asked),
        )?;
        differs("shard count", this_count.to_string(), count.to_string())?;
        if let Some(other) = seen[index as usize] {
            bail!("{file} and {other} are both shard {index}/{count}");
        }
        seen[index as usize] = Some(file);
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, file)| file.is_none())
        .map(|(index, _)| format!("{index}/{count}"))
        .collect();
    if !missing.is_empty() {
        bail!("shards missing: {}", missing.join(", "));
    }
    Ok(count)
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
