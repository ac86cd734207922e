//! `faultline replay`: re-runs one seed and prints its event log, or checks it against a
//! saved trace and shows the first event that differs with the events that led to it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use sim_core::engine::run_to_end;
use sim_core::scenario::RunOptions;
use sim_core::trace::{EventKind, TraceEvent};
use sim_core::units::parse_duration_ns;

use crate::load;
use crate::output::{paint, BOLD, DIM, GREEN, RED};

/// A saved trace larger than this is refused rather than read into memory.
const SAVED_TRACE_BYTES_MAX: u64 = 4 << 30;

#[derive(clap::Args)]
pub struct Args {
    /// A built-in scenario name or a path to a .toml file (as `run` takes it).
    #[arg(value_name = "SCENARIO", required_unless_present = "scenario_flag")]
    scenario: Option<String>,
    /// The same, as a flag (the form older commands printed).
    #[arg(
        long = "scenario",
        value_name = "SCENARIO",
        conflicts_with = "scenario"
    )]
    scenario_flag: Option<String>,
    /// The run seed [default: the scenario's own].
    #[arg(long)]
    seed: Option<u64>,
    /// Switch on a planted bug; repeatable.
    #[arg(long = "bug", value_name = "NAME")]
    bugs: Vec<String>,
    /// A trace saved by `faultline run --trace`: verify the run still matches it.
    #[arg(long, value_name = "SAVED.jsonl")]
    trace: Option<PathBuf>,
    /// How many events before a difference (or around `--around`) to show.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    context: u32,
    /// Show only the events around event K (`--context` either side), as findings name it.
    #[arg(long, value_name = "K")]
    around: Option<u64>,
    /// Show only events of this node (as sender, receiver or actor); repeatable.
    #[arg(long = "node", value_name = "N")]
    nodes: Vec<u32>,
    /// Show only events of this kind (send, deliver, drop, timer, crash, annotate...);
    /// repeatable.
    #[arg(long = "kind", value_name = "KIND")]
    kinds: Vec<String>,
    /// Show only events from this virtual time on (e.g. 1.5s).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Show only events up to this virtual time.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
}

/// Which events of the log to print.
struct Filter {
    around: Option<(u64, u64)>,
    nodes: Vec<u32>,
    kinds: Vec<EventKind>,
    from_ns: u64,
    to_ns: u64,
}

impl Filter {
    fn new(args: &Args) -> Result<Filter> {
        let mut kinds = Vec::new();
        for name in &args.kinds {
            let Some(kind) = EventKind::ALL.into_iter().find(|k| k.as_str() == name) else {
                let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                bail!(
                    "--kind {name}: not an event kind; expected one of: {}",
                    names.join(", ")
                );
            };
            kinds.push(kind);
        }
        let time = |flag: &str, text: &Option<String>, default: u64| -> Result<u64> {
            match text {
                None => Ok(default),
                Some(text) => {
                    let ns = parse_duration_ns(text).map_err(|e| anyhow!("{flag} {text}: {e}"))?;
                    u64::try_from(ns)
                        .map_err(|_| anyhow!("{flag} {text}: a time in the run is not negative"))
                }
            }
        };
        let context = args.context as u64;
        Ok(Filter {
            around: args
                .around
                .map(|k| (k.saturating_sub(context), k.saturating_add(context))),
            nodes: args.nodes.clone(),
            kinds,
            from_ns: time("--from", &args.from, 0)?,
            to_ns: time("--to", &args.to, u64::MAX)?,
        })
    }

    fn shows(&self, event: &TraceEvent) -> bool {
        let around = self
            .around
            .is_none_or(|(low, high)| (low..=high).contains(&event.index));
        let node = self.nodes.is_empty()
            || self.nodes.contains(&event.node)
            || event.peer.is_some_and(|peer| self.nodes.contains(&peer));
        let kind = self.kinds.is_empty() || self.kinds.contains(&event.kind);
        let time = (self.from_ns..=self.to_ns).contains(&event.time_ns);
        around && node && kind && time
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let loaded = load::scenario(args.scenario.as_deref().or(args.scenario_flag.as_deref()))?;
    let bugs = load::bugs(&args.bugs, &loaded.scenario)?;
    let filter = Filter::new(&args)?;
    let saved = match &args.trace {
        Some(path) => Some(read_saved(path)?),
        None => None,
    };
    let options = RunOptions {
        seed: args.seed,
        bugs,
        retain_trace: true,
        extra_faults: Vec::new(),
    };
    let mut run = loaded.scenario.build(&options);
    let report = run_to_end(run.as_mut());
    let events = run.trace().retained();
    let Some(saved) = saved else {
        // Who is who, once, so the log's `n3` can be read.
        let kinds = loaded.scenario.qualified_kinds();
        let legend: Vec<String> = kinds
            .iter()
            .enumerate()
            .map(|(id, kind)| format!("n{id} {kind}"))
            .collect();
        println!("{}", paint(DIM, &format!("nodes: {}", legend.join(", "))));
        for event in events.iter().filter(|e| filter.shows(e)) {
            println!("{}", event.render());
        }
        println!(
            "{} seed {}: {} events, trace hash {}, {} finding(s)",
            paint(BOLD, &report.scenario),
            report.seed,
            report.events,
            report.trace_hash,
            report.findings.len()
        );
        // As `run`: a run with findings exits 1.
        return Ok(if report.findings.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    };
    if run.trace().truncated() && saved.len() > events.len() {
        return Err(anyhow!(
            "the run kept only {} events but the saved trace has {}; raise [limits] trace_events_max",
            events.len(),
            saved.len()
        ));
    }
    let same = compare(&saved, events, args.context as usize, &report.trace_hash);
    Ok(
        if same == ExitCode::SUCCESS && !report.findings.is_empty() {
            ExitCode::from(1)
        } else {
            same
        },
    )
}

fn compare(saved: &[TraceEvent], now: &[TraceEvent], context: usize, hash: &str) -> ExitCode {
    let first_difference = (0..saved.len().max(now.len())).find(|&i| saved.get(i) != now.get(i));
    let Some(index) = first_difference else {
        println!(
            "{} {} events, trace hash {hash}",
            paint(GREEN, "trace matches:"),
            now.len()
        );
        return ExitCode::SUCCESS;
    };
    println!(
        "{} at event #{index}",
        paint(RED, "the run no longer matches the saved trace")
    );
    let start = index.saturating_sub(context);
    if start < index {
        println!(
            "{}",
            paint(DIM, "events that led to it (identical in both):")
        );
        for event in &now[start..index] {
            println!("  {}", event.render());
        }
    }
    let show = |event: Option<&TraceEvent>| match event {
        Some(event) => event.render(),
        None => "(no event: the run ended here)".to_string(),
    };
    println!("saved: {}", show(saved.get(index)));
    println!("now:   {}", show(now.get(index)));
    ExitCode::from(1)
}

fn read_saved(path: &std::path::Path) -> Result<Vec<TraceEvent>> {
    let shown = path.display();
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {shown}"))?
        .len();
    if size > SAVED_TRACE_BYTES_MAX {
        return Err(anyhow!(
            "{shown}: {size} bytes is more than a saved trace may hold"
        ));
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {shown}"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{shown}: not UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    let mut events = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event: TraceEvent = serde_json::from_str(line).map_err(|error| {
            let line_number = number + 1;
            anyhow!(
                "{shown}:{line_number}:{}: not a trace event: {error}",
                error.column()
            )
        })?;
        events.push(event);
    }
    Ok(events)
}
