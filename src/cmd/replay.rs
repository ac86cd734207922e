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
    /// [default: the one a saved trace's header names]
    #[arg(value_name = "SCENARIO", required_unless_present_any = ["scenario_flag", "trace"])]
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
    /// Switch on a planted bug; repeatable [default: a saved trace's].
    #[arg(long = "bug", value_name = "NAME")]
    bugs: Vec<String>,
    /// Inject a fault as `run --fault` does; repeatable [default: a saved trace's].
    #[arg(long = "fault", value_name = "SPEC")]
    faults: Vec<String>,
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

/// The format version of trace files' header line.
pub const TRACE_FORMAT: u32 = 1;

/// The first line of a trace file: which run it is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TraceHeader {
    /// The format version (`TRACE_FORMAT`); its presence marks the line as a header.
    pub faultline_trace: u32,
    pub scenario: String,
    /// The scenario as `run` was given it: a built-in name or a path.
    pub source: String,
    /// The scenario text's hash: a changed file is told apart from a changed engine.
    pub scenario_hash: String,
    pub seed: u64,
    pub bugs: Vec<String>,
    /// Injected faults, as `--fault` specs.
    pub faults: Vec<String>,
    /// Events in the run, and of those in the file (fewer: the trace was capped).
    pub events: u64,
    pub retained: u64,
    pub trace_hash: String,
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
    let filter = Filter::new(&args)?;
    let saved = match &args.trace {
        Some(path) => Some(read_saved(path)?),
        None => None,
    };
    let header = saved.as_ref().and_then(|(header, _)| header.clone());
    let named = args.scenario.as_deref().or(args.scenario_flag.as_deref());
    let Some(source) = named.or(header.as_ref().map(|h| h.source.as_str())) else {
        bail!("give the scenario: this saved trace has no header naming its run (saved by an older faultline)");
    };
    let loaded = load::scenario(Some(source))?;
    let bug_names = match (&header, args.bugs.is_empty()) {
        (Some(header), true) => header.bugs.clone(),
        _ => args.bugs.clone(),
    };
    let bugs = load::bugs(&bug_names, &loaded.scenario)?;
    let fault_specs = match (&header, args.faults.is_empty()) {
        (Some(header), true) => header.faults.clone(),
        _ => args.faults.clone(),
    };
    let faults = load::faults(&fault_specs, &loaded.scenario)?;
    let seed = args.seed.or(header.as_ref().map(|h| h.seed));
    if let Some(header) = &header {
        let asked = (
            &loaded.text_hash,
            seed,
            bugs.names()
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>(),
            faults.iter().map(|f| f.spec()).collect::<Vec<_>>(),
        );
        let saved_run = (
            &header.scenario_hash,
            Some(header.seed),
            header.bugs.clone(),
            header.faults.clone(),
        );
        if asked != saved_run {
            let mut problems = Vec::new();
            if asked.0 != saved_run.0 {
                problems.push(format!(
                    "the scenario's text changed since the trace was saved (hash {} then, {} now)",
                    saved_run.0, asked.0
                ));
            }
            if asked.1 != saved_run.1 {
                let asked = seed.map_or("the scenario's own".to_string(), |s| s.to_string());
                problems.push(format!(
                    "the trace is of seed {}, this run of seed {asked}",
                    header.seed
                ));
            }
            if asked.2 != saved_run.2 {
                problems.push(format!(
                    "the trace was saved with bugs {:?}, this run has {:?}",
                    saved_run.2, asked.2
                ));
            }
            if asked.3 != saved_run.3 {
                problems.push(format!(
                    "the trace was saved with faults {:?}, this run has {:?}",
                    saved_run.3, asked.3
                ));
            }
            println!(
                "{}",
                paint(
                    RED,
                    "header mismatch: this is not the run the trace was saved from"
                )
            );
            for problem in problems {
                println!("  {problem}");
            }
            return Ok(ExitCode::from(1));
        }
    }
    let options = RunOptions {
        seed,
        bugs,
        retain_trace: true,
        extra_faults: faults,
    };
    let mut run = loaded.scenario.build(&options);
    let report = run_to_end(run.as_mut());
    let events = run.trace().retained();
    let Some((_, saved)) = saved else {
        // Who is who, once, so the log's `n3` can be read.
        let kinds = loaded.scenario.qualified_kinds();
        let legend: Vec<String> = kinds
            .iter()
            .enumerate()
            .map(|(id, kind)| format!("n{id} {kind}"))
            .collect();
        println!("{}", paint(DIM, &format!("nodes: {}", legend.join(", "))));
        for event in events.iter().filter(|e| filter.shows(e)) {
            println!("{}", super::log::line(event, &kinds));
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
    let mut now = events;
    if let Some(header) = &header {
        if header.retained < header.events {
            println!(
                "{}",
                paint(DIM, &format!(
                    "the saved trace holds the first {} of the run's {} events (capped); comparing those",
                    header.retained, header.events
                ))
            );
            now = &events[..events.len().min(saved.len())];
        }
    }
    if run.trace().truncated() && saved.len() > events.len() {
        return Err(anyhow!(
            "the run kept only {} events but the saved trace has {}; raise [limits] trace_events_max",
            events.len(),
            saved.len()
        ));
    }
    let mut same = compare(&saved, now, args.context as usize, &report.trace_hash);
    if let Some(header) = &header {
        if same == ExitCode::SUCCESS && header.trace_hash != report.trace_hash {
            println!(
                "{} the saved events match, but the run's trace hash is {} where the trace saved {}: \
                 the difference lies past the saved events",
                paint(RED, "the run no longer matches:"),
                report.trace_hash,
                header.trace_hash
            );
            same = ExitCode::from(1);
        }
    }
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
    if let (Some(a), Some(b)) = (saved.get(index), now.get(index)) {
        println!("differs in: {}", differing_fields(a, b).join(", "));
    }
    ExitCode::from(1)
}

/// The fields in which two events differ, by their names in the trace file.
fn differing_fields(a: &TraceEvent, b: &TraceEvent) -> Vec<&'static str> {
    let fields = [
        ("index", a.index != b.index),
        ("time_ns", a.time_ns != b.time_ns),
        ("kind", a.kind != b.kind),
        ("node", a.node != b.node),
        ("peer", a.peer != b.peer),
        ("msg", a.msg != b.msg),
        ("timer", a.timer != b.timer),
        ("reason", a.reason != b.reason),
        ("cause", a.cause != b.cause),
        ("label", a.label != b.label),
        ("detail", a.detail != b.detail),
    ];
    fields
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(name, _)| name)
        .collect()
}

/// A saved trace: its header (None in files from before headers) and its events.
type Saved = (Option<TraceHeader>, Vec<TraceEvent>);

fn read_saved(path: &std::path::Path) -> Result<Saved> {
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
    let mut header = None;
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if events.is_empty() && header.is_none() && line.contains("\"faultline_trace\"") {
            let parsed: TraceHeader = serde_json::from_str(line).map_err(|error| {
                anyhow!(
                    "{shown}:{}:{}: not a trace header: {error}",
                    number + 1,
                    error.column()
                )
            })?;
            if parsed.faultline_trace != TRACE_FORMAT {
                bail!(
                    "{shown}:{}:1: trace format {} (this faultline reads format {TRACE_FORMAT})",
                    number + 1,
                    parsed.faultline_trace
                );
            }
            header = Some(parsed);
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
    if events.is_empty() {
        bail!("{shown}: an empty trace (no events): nothing to compare");
    }
    Ok((header, events))
}
