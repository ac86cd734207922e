//! `faultline shrink`: from a failing run, the smallest scenario found that still fails
//! with the same invariant (`sim_core::shrink`), written as a scenario file with the
//! commands that replay it on the CLI and in the browser. Exit 0 when a failing file was
//! written, 1 when the run did not fail, 2 on bad input. A budget in runs gives the same
//! result every time; a budget in time (or Ctrl-C) keeps the best found so far.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sim_core::scenario::{self, Scenario};
use sim_core::shrink::{self, Shrunk, Size, BUDGET_MAX};
use sim_core::units::format_duration;
use sim_core::RunReport;

use crate::load;
use crate::output::{paint, BOLD, GREEN};

/// Runs spent when `--budget` is not given.
const BUDGET_DEFAULT: u32 = 400;

/// `--budget`: a number of runs, or a time such as `60s`.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    Runs(u32),
    Time(Duration),
}

impl FromStr for Budget {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(runs) = text.parse::<u32>() {
            if (1..=BUDGET_MAX).contains(&runs) {
                return Ok(Budget::Runs(runs));
            }
            return Err(format!("`{text}`: runs must be 1..={BUDGET_MAX}"));
        }
        match sim_core::units::parse_duration_ns(text) {
            Ok(ns) if ns > 0 && ns <= 24 * 3_600 * 1_000_000_000 => {
                Ok(Budget::Time(Duration::from_nanos(ns as u64)))
            }
            _ => Err(format!(
                "`{text}`: expected a number of runs (e.g. 300) or a time (e.g. 60s, 5m)"
            )),
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// A built-in scenario name or a path to a .toml file.
    scenario: String,
    /// The failing seed.
    #[arg(long)]
    seed: u64,
    /// Switch on a planted bug; repeatable. It is written into the shrunk file.
    #[arg(long = "bug", value_name = "NAME")]
    bugs: Vec<String>,
    /// The invariant whose failure to keep [default: the one the bug names, if the run
    /// reports it, else the run's first finding].
    #[arg(long, value_name = "NAME")]
    invariant: Option<String>,
    /// Runs to spend (deterministic), or a time such as `60s`.
    #[arg(long, value_name = "RUNS|TIME", default_value_t = Budget::Runs(BUDGET_DEFAULT))]
    budget: Budget,
    /// Where to write the shrunk scenario [default: SCENARIO-seedN-shrunk.toml].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Where the browser demo is served, for the watch link
    /// [default: $FAULTLINE_WEB_BASE or http://127.0.0.1:8080/].
    #[arg(long, value_name = "URL")]
    web_base: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Runs(runs) => write!(f, "{runs}"),
            Budget::Time(time) => write!(f, "{}", format_duration(time.as_nanos() as u64)),
        }
    }
}

/// What one shrink found, as `--json` prints it (and `swarm --shrink` per group).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) scenario: String,
    pub(crate) seed: u64,
    pub(crate) invariant: String,
    pub(crate) before: Size,
    pub(crate) after: Size,
    pub(crate) runs: u32,
    pub(crate) wall_s: f64,
    pub(crate) cut_short: bool,
    pub(crate) file: String,
    pub(crate) replay: String,
    pub(crate) web_url: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let loaded = load::scenario(Some(&args.scenario))?;
    load::bugs(&args.bugs, &loaded.scenario)?;
    if let Some(name) = &args.invariant {
        check_invariant(name, &loaded.scenario)?;
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_file(&loaded.scenario, args.seed));
    load::check_output("--out", &out)?;
    crate::interrupt::catch();
    let job = Job {
        loaded: &loaded,
        seed: args.seed,
        bugs: &args.bugs,
        invariant: args.invariant.as_deref(),
        budget: args.budget,
        out: &out,
        web_base: &load::web_base(args.web_base.as_deref()),
        show_progress: !args.json,
    };
    match job.run()? {
        Ok((report, shrunk)) => {
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_report(&report, &shrunk);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(report) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"scenario": loaded.argument, "seed": args.seed, "failed": false, "trace_hash": report.trace_hash})
                );
            } else if let Some(name) = &args.invariant {
                let found: Vec<&str> = report
                    .findings
                    .iter()
                    .map(|f| f.invariant.as_str())
                    .collect();
                println!(
                    "seed {} of {} does not fail {name} (its findings: {}): nothing to shrink",
                    args.seed,
                    loaded.argument,
                    if found.is_empty() {
                        "none".to_string()
                    } else {
                        found.join(", ")
                    }
                );
            } else {
                println!(
                    "{} seed {} of {} did not fail: nothing to shrink (events {}, hash {})",
                    paint(GREEN, "clean:"),
                    args.seed,
                    loaded.argument,
                    report.events,
                    report.trace_hash
                );
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// `NAME-seedN-shrunk.toml`, the name made safe for a file name.
pub(crate) fn default_file(scenario: &Scenario, seed: u64) -> PathBuf {
    let stem: String = scenario
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from(format!("{stem}-seed{seed}-shrunk.toml"))
}

/// One shrink, as `faultline shrink` and `swarm --shrink` run it.
pub(crate) struct Job<'a> {
    pub(crate) loaded: &'a load::Loaded,
    pub(crate) seed: u64,
    pub(crate) bugs: &'a [String],
    pub(crate) invariant: Option<&'a str>,
    pub(crate) budget: Budget,
    pub(crate) out: &'a std::path::Path,
    pub(crate) web_base: &'a str,
    pub(crate) show_progress: bool,
}

impl Job<'_> {
    /// Shrinks and writes the file; `Ok(Err(report))` when the run does not fail.
    pub(crate) fn run(&self) -> Result<Result<(Report, Shrunk), Box<RunReport>>> {
        let started = Instant::now();
        let (runs, deadline) = match self.budget {
            Budget::Runs(runs) => (runs, None),
            Budget::Time(time) => (BUDGET_MAX, Some(started + time)),
        };
        let bar = progress_bar(deadline.is_none().then_some(runs), !self.show_progress);
        let mut control = |done: u32, best: &Size| {
            bar.set_position(done as u64);
            bar.set_message(format!(
                "best: {} faults, {} nodes, {} events",
                best.faults, best.nodes, best.events
            ));
            !crate::interrupt::requested() && deadline.is_none_or(|at| Instant::now() < at)
        };
        let result = shrink::shrink(
            &self.loaded.scenario,
            self.seed,
            self.bugs,
            self.invariant,
            runs,
            &mut control,
        );
        bar.finish_and_clear();
        let shrunk = match result {
            Ok(shrunk) => shrunk,
            Err(report) => return Ok(Err(report)),
        };
        let wall_s = started.elapsed().as_secs_f64();
        let argument = &self.loaded.argument;
        let mut written = shrunk.scenario.clone();
        written.name = format!("{}-seed{}-shrunk", self.loaded.scenario.name, self.seed);
        written.description = describe(argument, self.seed, &shrunk);
        let text = scenario::to_toml(&written);
        debug_assert_eq!(scenario::parse("check.toml", &text).as_ref(), Ok(&written));
        let bugs: String = self
            .bugs
            .iter()
            .map(|bug| format!(" --bug {bug}"))
            .collect();
        let header = format!(
            "# Shrunk by `faultline shrink {} --seed {}{bugs}` in {} runs: fails `{}`.\n",
            load::shell_quote(argument),
            self.seed,
            shrunk.runs,
            shrunk.invariant
        );
        load::write_whole(self.out, (header + &text).as_bytes())?;
        let file = self.out.display().to_string();
        let report = Report {
            scenario: argument.clone(),
            seed: self.seed,
            invariant: shrunk.invariant.clone(),
            before: shrunk.before,
            after: shrunk.after,
            runs: shrunk.runs,
            wall_s,
            cut_short: shrunk.cut_short,
            replay: format!("faultline run {}", load::shell_quote(&file)),
            file,
            web_url: web_url(self.web_base, &written, first_event(&shrunk)),
        };
        Ok(Ok((report, shrunk)))
    }
}

/// Refuses an invariant no component of the scenario checks (a typo would otherwise
/// read as "the run does not fail it").
fn check_invariant(name: &str, scenario: &Scenario) -> Result<()> {
    let mut known: Vec<&str> = vec![
        "panic",
        "limit.events",
        "limit.held",
        "limit.history",
        "limit.intents",
        "limit.nemesis",
        "limit.queue",
        "limit.timers",
    ];
    for component in scenario.components() {
        if let Some(spec) = sim_core::catalogue::component(component) {
            known.extend(spec.invariants.iter().copied());
        }
    }
    if known.contains(&name) {
        return Ok(());
    }
    let mut message = format!(
        "--invariant {name}: not an invariant of scenario `{}`; expected one of: {}",
        scenario.name,
        known.join(", ")
    );
    if let Some(close) = sim_core::bugs::closest(name, &known) {
        message.push_str(&format!(" (did you mean `{close}`?)"));
    }
    anyhow::bail!(message)
}

fn describe(argument: &str, seed: u64, shrunk: &Shrunk) -> String {
    format!(
        "{argument} seed {seed} shrunk: fails {} with {} faults (was {}), {} nodes (was {}), {} \
         events (was {})",
        shrunk.invariant,
        shrunk.after.faults,
        shrunk.before.faults,
        shrunk.after.nodes,
        shrunk.before.nodes,
        shrunk.after.events,
        shrunk.before.events
    )
}

/// The trace event of the shrunk run's first finding of the invariant.
fn first_event(shrunk: &Shrunk) -> Option<u64> {
    shrunk
        .report
        .findings
        .iter()
        .find(|finding| finding.invariant == shrunk.invariant)
        .map(|finding| finding.event)
}

/// The browser's address for a scenario given by its text: the page reads `toml=`.
pub fn web_url(base: &str, scenario: &Scenario, event: Option<u64>) -> String {
    let text = scenario::to_toml(scenario);
    let mut url = format!(
        "{base}?seed={}&toml={}",
        scenario.seed,
        percent_encode(&text)
    );
    if let Some(event) = event {
        url.push_str(&format!("&event={event}"));
    }
    url
}

fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len() * 2);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:,/".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

pub(crate) fn print_report(report: &Report, shrunk: &Shrunk) {
    let (before, after) = (&report.before, &report.after);
    println!(
        "{} {} seed {} fails {}",
        paint(BOLD, "shrunk:"),
        report.scenario,
        report.seed,
        report.invariant
    );
    let row = |what: &str, from: String, to: String| println!("  {what:<9} {from:>10} -> {to}");
    row(
        "faults",
        before.faults.to_string(),
        after.faults.to_string(),
    );
    row("nodes", before.nodes.to_string(), after.nodes.to_string());
    row(
        "events",
        before.events.to_string(),
        after.events.to_string(),
    );
    row(
        "duration",
        format_duration(before.duration_ns),
        format_duration(after.duration_ns),
    );
    println!(
        "  {} runs in {:.1} s{}",
        report.runs,
        report.wall_s,
        if report.cut_short {
            " (budget spent: more runs may shrink it further)"
        } else {
            " (nothing smaller fails)"
        }
    );
    if let Some(finding) = shrunk
        .report
        .findings
        .iter()
        .find(|finding| finding.invariant == report.invariant)
    {
        println!(
            "  finding at {}: {}",
            format_duration(finding.time_ns),
            finding.message
        );
    }
    println!("wrote {}", report.file);
    println!("  replay: {}", report.replay);
    println!("  watch:  {}", report.web_url);
}

/// A bar over the run budget, or a spinner counting runs under a time budget; hidden
/// unless standard error is a terminal.
fn progress_bar(runs: Option<u32>, hidden: bool) -> ProgressBar {
    use std::io::IsTerminal;
    if hidden || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match runs {
        Some(runs) => (
            ProgressBar::new(runs as u64),
            "{spinner} [{bar:30}] {pos}/{len} runs  {msg}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} {pos} runs {elapsed}  {msg}",
        ),
    };
    bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
    bar
}
