//! `faultline swarm`: many seeds of one scenario on all cores. A panic in one seed is that
//! seed's finding; the swarm goes on. `--shard I/N` runs one of N disjoint slices of the
//! seed range, so a batch scheduler can spread a swarm over machines. Seeds are run in
//! chunks, never collected up front, so memory stays bounded whatever `--seeds` says;
//! `--max-findings N` stops after the chunk in which the Nth failing seed turned up.

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Instant;

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sim_core::check::Finding;
use sim_core::engine::run_to_end;
use sim_core::scenario::RunOptions;

use crate::load;
use crate::output::{paint, BOLD, GREEN, RED};

const SEEDS_MAX: u64 = 100_000_000;
/// Findings listed in a report; the count of failing seeds is always exact.
pub(crate) const FINDINGS_LISTED_MAX: usize = 10_000;
const FINDINGS_PRINTED_MAX: usize = 20;
/// Seeds run together; what a swarm holds at once is bounded by this.
const CHUNK: u64 = 4_096;

#[derive(Clone, Copy, Debug)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let expected = || format!("`{text}`: expected I/N with 0 <= I < N, e.g. 0/4");
        let (index, count) = text.split_once('/').ok_or_else(expected)?;
        let index: u64 = index.parse().map_err(|_| expected())?;
        let count: u64 = count.parse().map_err(|_| expected())?;
        if count == 0 || index >= count {
            return Err(expected());
        }
        Ok(Shard { index, count })
    }
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<SwarmCommand>,
    /// A built-in scenario name or a path to a .toml file.
    #[arg(required = true)]
    scenario: Option<String>,
    /// How many seeds to run.
    #[arg(long, required = true, value_parser = clap::value_parser!(u64).range(1..=SEEDS_MAX))]
    seeds: Option<u64>,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Switch on a planted bug; repeatable.
    #[arg(long = "bug", value_name = "NAME")]
    bugs: Vec<String>,
    /// Run only slice I of N of the seeds (seed index modulo N equals I).
    #[arg(long, value_name = "I/N", conflicts_with = "shard_from_env")]
    shard: Option<Shard>,
    /// Run slice I of N, I read from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job's pod).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    shard_from_env: Option<u64>,
    /// Print the Kubernetes Indexed Job that runs this swarm as `--shards` pods, instead of
    /// running it (after timing a few seeds here to size the pods).
    #[arg(long, requires_all = ["shards", "image"])]
    k8s_job: bool,
    /// With --k8s-job: how many pods (shards).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    shards: Option<u64>,
    /// With --k8s-job: the container image holding faultline (deploy/Containerfile).
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// With --k8s-job: the Job's name.
    #[arg(long, value_name = "NAME", default_value = "faultline-swarm")]
    job_name: String,
    /// With --k8s-job: cores each pod asks for.
    #[arg(long, value_name = "CORES", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=256))]
    cores: u32,
    /// Where the browser demo is served, for each finding's replay link
    /// [default: $FAULTLINE_WEB_BASE or http://127.0.0.1:8080/].
    #[arg(long, value_name = "URL")]
    web_base: Option<String>,
    /// Stop once this many seeds have failed (after the chunk of seeds running then).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_findings: Option<u64>,
    /// Shrink the smallest failing seed of each invariant's group (`faultline shrink`).
    #[arg(long)]
    shrink: bool,
    /// With --shrink: the folder the shrunk scenarios are written to.
    #[arg(long, value_name = "DIR", default_value = ".", requires = "shrink")]
    shrink_dir: std::path::PathBuf,
    /// With --shrink: runs (or a time) each shrink may spend.
    #[arg(long, value_name = "RUNS|TIME", default_value_t = super::shrink::Budget::Runs(400), requires = "shrink")]
    shrink_budget: super::shrink::Budget,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum SwarmCommand {
    /// Combine the `--json` reports of a swarm's shards into one report.
    Merge(super::merge::Args),
}

#[derive(Serialize, Deserialize)]
pub(crate) struct SeedFinding {
    pub(crate) seed: u64,
    #[serde(flatten)]
    finding: Finding,
    reproduce: String,
    /// The browser demo's link that replays the seed at the finding (built-ins only).
    #[serde(default)]
    web_url: Option<String>,
}

/// The `--json` report; `swarm merge` reads it back.
#[derive(Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) scenario: String,
    /// What identifies a shard, so `merge` can check its shards belong together and
    /// cover the swarm once: the scenario text's hash, the bugs, the shard and the seeds
    /// asked for (the whole swarm's, before sharding).
    #[serde(default)]
    pub(crate) scenario_hash: Option<String>,
    #[serde(default)]
    pub(crate) bugs: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) shard: Option<String>,
    #[serde(default)]
    pub(crate) seeds_asked: Option<u64>,
    pub(crate) start: u64,
    pub(crate) seeds: u64,
    pub(crate) failing_seeds: u64,
    pub(crate) seeds_per_sec: f64,
    pub(crate) events: u64,
    pub(crate) findings: Vec<SeedFinding>,
    pub(crate) findings_truncated: bool,
    /// The findings grouped by invariant, with exact counts and the smallest seed each.
    #[serde(default)]
    pub(crate) groups: Vec<super::groups::Group>,
    /// Each rare-path mark the scenario's components declare, with the seeds that
    /// reached it.
    #[serde(default)]
    pub(crate) marks: Vec<super::marks::MarkCount>,
    /// `--max-findings` stopped the swarm before its last seed: `seeds` were run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) stopped_early: bool,
    /// Ctrl-C stopped the swarm: the report covers the `seeds` that ran.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) interrupted: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if let Some(SwarmCommand::Merge(merge)) = args.command {
        return super::merge::run(merge);
    }
    let scenario = args
        .scenario
        .clone()
        .expect("clap requires a scenario without a subcommand");
    let seed_count = args
        .seeds
        .expect("clap requires --seeds without a subcommand");
    let loaded = load::scenario(Some(&scenario))?;
    let bugs = load::bugs(&args.bugs, &loaded.scenario)?;
    if args.start.checked_add(seed_count).is_none() {
        bail!(
            "--start {} plus --seeds {} overflows the seed range",
            args.start,
            seed_count
        );
    }
    if args.k8s_job {
        return print_job(&args, &loaded, &bugs, seed_count);
    }
    let shard = match args.shard_from_env {
        Some(count) => Shard {
            index: super::k8s::index_from_env(count).map_err(|e| anyhow::anyhow!(e))?,
            count,
        },
        None => args.shard.unwrap_or(Shard { index: 0, count: 1 }),
    };
    // This shard's seeds are start + index + k * count, for k in 0..in_shard.
    let in_shard = seed_count.saturating_sub(shard.index).div_ceil(shard.count);
    let progress = progress_bar(in_shard, args.json);
    let started = Instant::now();
    let base = load::web_base(args.web_base.as_deref());
    let mut report = Report {
        scenario: loaded.scenario.name.clone(),
        scenario_hash: Some(loaded.text_hash.clone()),
        bugs: Some(bugs.names().iter().map(|n| n.to_string()).collect()),
        shard: Some(format!("{}/{}", shard.index, shard.count)),
        seeds_asked: Some(seed_count),
        start: args.start,
        seeds: 0,
        failing_seeds: 0,
        seeds_per_sec: 0.0,
        events: 0,
        findings: Vec::new(),
        findings_truncated: false,
        groups: Vec::new(),
        marks: super::marks::declared(&loaded.scenario),
        stopped_early: false,
        interrupted: false,
    };
    if args.shrink {
        load::check_output_dir("--shrink-dir", &args.shrink_dir)?;
    }
    let mut groups = super::groups::Groups::default();
    let commands = |seed: u64| {
        let reproduce = load::reproduce(&loaded.argument, seed, &bugs, &[]);
        let web_url = load::web_url(&base, &loaded.argument, seed, &bugs, &[], None);
        (reproduce, web_url)
    };
    crate::interrupt::catch();
    // Small chunks when stopping early is asked for, so few seeds run past the Nth.
    let chunk_size = if args.max_findings.is_some() {
        64
    } else {
        CHUNK
    };
    let mut k = 0;
    while k < in_shard {
        let chunk: Vec<u64> = (k..in_shard.min(k + chunk_size))
            .map(|k| args.start + shard.index + k * shard.count)
            .collect();
        k += chunk.len() as u64;
        type Outcome = (
            u64,
            u64,
            Vec<Finding>,
            std::collections::BTreeMap<String, u64>,
        );
        let results: Vec<Outcome> = chunk
            .par_iter()
            .filter(|_| !crate::interrupt::requested())
            .map(|&seed| {
                let options = RunOptions {
                    seed: Some(seed),
                    bugs: bugs.clone(),
                    ..Default::default()
                };
                let mut run = loaded.scenario.build(&options);
                let mut report = run_to_end(run.as_mut());
                super::run::add_panic_location(&mut report);
                progress.inc(1);
                (seed, report.events, report.findings, report.marks)
            })
            .collect();
        report.seeds += results.len() as u64;
        for (seed, events, findings, marks) in results {
            super::marks::add_seed(&mut report.marks, &marks);
            report.events += events;
            report.failing_seeds += !findings.is_empty() as u64;
            let invariants = findings.iter().map(|f| f.invariant.as_str());
            groups.add_seed(seed, invariants, &commands);
            for finding in findings {
                if report.findings.len() >= FINDINGS_LISTED_MAX {
                    report.findings_truncated = true;
                    break;
                }
                let reproduce = load::reproduce(&loaded.argument, seed, &bugs, &[]);
                let event = Some(finding.event);
                let web_url = load::web_url(&base, &loaded.argument, seed, &bugs, &[], event);
                report.findings.push(SeedFinding {
                    seed,
                    finding,
                    reproduce,
                    web_url,
                });
            }
        }
        if crate::interrupt::requested() {
            report.interrupted = true;
            break;
        }
        if args
            .max_findings
            .is_some_and(|max| report.failing_seeds >= max)
            && k < in_shard
        {
            report.stopped_early = true;
            break;
        }
    }
    progress.finish_and_clear();
    let wall_s = started.elapsed().as_secs_f64();
    report.seeds_per_sec = report.seeds as f64 / wall_s.max(1e-9);
    report.groups = groups.into_vec();
    if args.shrink && !report.interrupted {
        shrink_groups(&args, &loaded, &base, &mut report.groups)?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report, wall_s);
    }
    Ok(if report.interrupted {
        ExitCode::from(crate::interrupt::EXIT_INTERRUPTED)
    } else if report.failing_seeds == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `--shrink`: the smallest seed of each group, shrunk to a file in `--shrink-dir`.
fn shrink_groups(
    args: &Args,
    loaded: &load::Loaded,
    base: &str,
    groups: &mut [super::groups::Group],
) -> Result<()> {
    for group in groups {
        if crate::interrupt::requested() {
            break;
        }
        let file = super::shrink::default_file(&loaded.scenario, group.smallest_seed);
        let stem = file.to_string_lossy().replace("-shrunk.toml", "");
        let name = format!("{stem}-{}-shrunk.toml", group.invariant);
        let out = args.shrink_dir.join(name);
        let job = super::shrink::Job {
            loaded,
            seed: group.smallest_seed,
            bugs: &args.bugs,
            invariant: Some(&group.invariant),
            budget: args.shrink_budget,
            out: &out,
            web_base: base,
            show_progress: !args.json,
        };
        if let Ok((shrunk, _)) = job.run()? {
            group.shrunk = Some(shrunk);
        }
    }
    Ok(())
}

/// Seeds timed here to size the Job's pods.
const CALIBRATION_SEEDS: u64 = 8;

/// Times a few seeds on one thread, then prints the Indexed Job manifest.
fn print_job(
    args: &Args,
    loaded: &load::Loaded,
    bugs: &sim_core::bugs::BugSet,
    seeds: u64,
) -> Result<ExitCode> {
    let shards = args.shards.expect("clap requires --shards with --k8s-job");
    if shards > seeds {
        bail!("--shards {shards} is more than --seeds {seeds}: some pods would run nothing");
    }
    let started = Instant::now();
    let timed = seeds.min(CALIBRATION_SEEDS);
    for seed in args.start..args.start + timed {
        let options = RunOptions {
            seed: Some(seed),
            bugs: bugs.clone(),
            ..Default::default()
        };
        run_to_end(loaded.scenario.build(&options).as_mut());
    }
    let seconds_per_seed = started.elapsed().as_secs_f64() / timed as f64;
    let names: Vec<String> = bugs.names().iter().map(|n| n.to_string()).collect();
    let spec = super::k8s::JobSpec {
        name: &args.job_name,
        image: args
            .image
            .as_deref()
            .expect("clap requires --image with --k8s-job"),
        scenario: &loaded.argument,
        seeds,
        start: args.start,
        bugs: &names,
        shards,
        seconds_per_seed,
        cores: args.cores,
    };
    println!("{}", serde_json::to_string_pretty(&spec.manifest())?);
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(seeds: u64, json: bool) -> ProgressBar {
    use std::io::IsTerminal;
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(seeds);
    let style =
        ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} seeds {per_sec} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> ");
    bar.set_style(style);
    bar
}

pub(crate) fn print_report(report: &Report, wall_s: f64) {
    println!(
        "{}: {} seeds in {wall_s:.2}s ({:.1} seeds/s, {} events)",
        paint(BOLD, &format!("swarm {}", report.scenario)),
        report.seeds,
        report.seeds_per_sec,
        report.events
    );
    if report.stopped_early {
        println!("stopped early (--max-findings): {} seeds run", report.seeds);
    }
    if report.interrupted {
        println!("interrupted (Ctrl-C): {} seeds run", report.seeds);
    }
    super::marks::print(&report.marks, report.seeds);
    if report.failing_seeds == 0 {
        println!("{}", paint(GREEN, "no findings in any seed"));
        return;
    }
    println!(
        "{}",
        paint(
            RED,
            &format!("{} seed(s) with findings", report.failing_seeds)
        )
    );
    super::groups::print(&report.groups);
    for item in report.findings.iter().take(FINDINGS_PRINTED_MAX) {
        println!(
            "seed {}: {} at {}: {}\n    reproduce: {}\n    read it: {}",
            item.seed,
            paint(BOLD, &item.finding.invariant),
            crate::output::seconds(item.finding.time_ns),
            item.finding.message,
            item.reproduce,
            item.reproduce
                .replacen("faultline run", "faultline replay", 1)
                + &format!(" --around {}", item.finding.event)
        );
        if let Some(url) = &item.web_url {
            println!("    watch it: {url}");
        }
    }
    if report.findings.len() > FINDINGS_PRINTED_MAX {
        println!(
            "... and {} more (use --json for all)",
            report.findings.len() - FINDINGS_PRINTED_MAX
        );
    }
}
