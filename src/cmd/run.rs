//! `faultline run`: one scenario, one seed; prints the summary or the JSON report and
//! optionally writes the client history and the full trace.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;
use sim_core::engine::{run_to_end, RunReport};
use sim_core::scenario::RunOptions;
use sim_core::Run;

use crate::load;
use crate::output::{paint, seconds, BOLD, GREEN, RED, YELLOW};

#[derive(clap::Args)]
pub struct Args {
    /// A built-in scenario name or a path to a .toml file [default: registry-tour].
    scenario: Option<String>,
    /// The run seed [default: the scenario's own].
    #[arg(long)]
    seed: Option<u64>,
    /// Switch on a planted bug (see `faultline bugs`); repeatable.
    #[arg(long = "bug", value_name = "NAME")]
    bugs: Vec<String>,
    /// Write the client history as JSON Lines.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Write every event as JSON Lines.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Write the RPC spans (Dapper's annotations, assembled) as a Zipkin v2 JSON array,
    /// which Zipkin and Jaeger import.
    #[arg(long, value_name = "FILE")]
    spans: Option<PathBuf>,
    /// Write the run as Chrome trace-event JSON (a track per node, messages as flows),
    /// which ui.perfetto.dev and chrome://tracing open.
    #[arg(long, value_name = "FILE")]
    perfetto: Option<PathBuf>,
    /// Write the run as a ShiViz log (vector clocks), which ShiViz draws as a space-time
    /// diagram.
    #[arg(long, value_name = "FILE")]
    shiviz: Option<PathBuf>,
    /// Write a bug report into this folder: the summary, the event log, the client
    /// history and a space-time diagram (SVG), readable without a browser.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Write the metric samples (queue depths...) as JSON Lines.
    #[arg(long, value_name = "FILE")]
    metrics: Option<PathBuf>,
    /// Inject a fault, e.g. `crash:3@1.2s`, `partition:0,4@2s`, `oneway:0>1@1s`,
    /// `skew:2,-300ms,50ppm@1s`, `disk:1,torn=0.1@0s`, `heal@3s`; repeatable.
    #[arg(long = "fault", value_name = "SPEC")]
    faults: Vec<String>,
    /// Where the browser demo is served, for the replay link printed with findings
    /// [default: $FAULTLINE_WEB_BASE or http://127.0.0.1:8080/].
    #[arg(long, value_name = "URL")]
    web_base: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The JSON report: the engine's report plus a reproduce command per finding.
#[derive(Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    report: &'a RunReport,
    protocol: &'a str,
    reproduce: String,
    /// The browser demo's link that replays this run, opened at its first finding if it
    /// has one (built-in scenarios only).
    web_url: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let loaded = load::scenario(args.scenario.as_deref())?;
    let bugs = load::bugs(&args.bugs, &loaded.scenario)?;
    let faults = load::faults(&args.faults, &loaded.scenario)?;
    let options = RunOptions {
        seed: args.seed,
        bugs: bugs.clone(),
        retain_trace: args.trace.is_some()
            || args.spans.is_some()
            || args.report.is_some()
            || args.perfetto.is_some()
            || args.shiviz.is_some(),
        extra_faults: faults.clone(),
    };
    let outputs = [
        ("--history", &args.history),
        ("--trace", &args.trace),
        ("--spans", &args.spans),
        ("--metrics", &args.metrics),
        ("--perfetto", &args.perfetto),
        ("--shiviz", &args.shiviz),
    ];
    for (flag, path) in outputs {
        if let Some(path) = path {
            load::check_output(flag, path)?;
        }
    }
    if let Some(dir) = &args.report {
        load::check_output_dir("--report", dir)?;
    }
    let nodes = loaded.scenario.node_count();
    if args.shiviz.is_some() && nodes > SHIVIZ_NODES_MAX {
        anyhow::bail!(
            "--shiviz: the scenario has {nodes} nodes; a ShiViz log holds at most \
             {SHIVIZ_NODES_MAX} (a vector clock per event, and a diagram a person can read)"
        );
    }
    let mut run = loaded.scenario.build(&options);
    let mut report = run_to_end(run.as_mut());
    add_panic_location(&mut report);
    let reproduce = load::reproduce(&loaded.argument, report.seed, &bugs, &faults);
    let mut report_log = None;
    let base = load::web_base(args.web_base.as_deref());
    let first_event = report.findings.first().map(|finding| finding.event);
    let web_url = load::web_url(
        &base,
        &loaded.argument,
        report.seed,
        &bugs,
        &faults,
        first_event,
    );
    // The findings first: an output that fails to write must not hide them.
    if args.json {
        let json = JsonReport {
            report: &report,
            protocol: &loaded.scenario.protocol,
            reproduce: reproduce.clone(),
            web_url: web_url.clone(),
        };
        println!("{}", serde_json::to_string(&json)?);
    } else {
        let log = first_event.and_then(|event| {
            load::replay_around(&loaded.argument, report.seed, &bugs, &faults, event)
        });
        print_summary(&report, &reproduce, log.as_deref(), web_url.as_deref());
        for line in
            sim_core::check::cap::lines(run.metrics().iter(), &loaded.scenario.qualified_kinds())
        {
            println!("{line}");
        }
        report_log = log;
        print_metrics(run.metrics());
        print_timeline(run.trace().milestones(), &loaded.scenario.qualified_kinds());
    }
    if let Some(path) = &args.history {
        load::write_whole(path, &json_lines(run.history().iter())?)?;
        wrote("history", path);
    }
    if let Some(path) = &args.trace {
        let header = super::replay::TraceHeader {
            faultline_trace: super::replay::TRACE_FORMAT,
            scenario: loaded.scenario.name.clone(),
            source: loaded.argument.clone(),
            scenario_hash: loaded.text_hash.clone(),
            seed: report.seed,
            bugs: bugs.names().iter().map(|n| n.to_string()).collect(),
            faults: faults.iter().map(|f| f.spec()).collect(),
            events: report.events,
            retained: run.trace().retained().len() as u64,
            trace_hash: report.trace_hash.clone(),
        };
        write_trace(path, run.as_ref(), &header)?;
        wrote("trace", path);
    }
    if let Some(path) = &args.spans {
        write_spans(path, run.as_ref())?;
        wrote("spans", path);
    }
    if let Some(path) = &args.metrics {
        load::write_whole(path, &json_lines(run.metrics().iter())?)?;
        wrote("metrics", path);
    }
    let title = format!("{} seed {}", loaded.scenario.name, report.seed);
    if let Some(path) = &args.perfetto {
        let kinds = loaded.scenario.qualified_kinds();
        let text = sim_core::export::perfetto(run.trace().retained(), &kinds, &title);
        load::write_whole(path, text.as_bytes())?;
        wrote("Chrome/Perfetto trace (open it in ui.perfetto.dev)", path);
        warn_if_truncated(run.as_ref());
    }
    if let Some(path) = &args.shiviz {
        let text = sim_core::export::shiviz(run.trace().retained(), nodes);
        load::write_whole(path, text.as_bytes())?;
        wrote("ShiViz log (open it in ShiViz: Try it, then upload)", path);
        warn_if_truncated(run.as_ref());
    }
    if let Some(dir) = &args.report {
        let plain = |_: &str, text: &str| text.to_string();
        let log = report_log.or_else(|| {
            let event = report.findings.first()?.event;
            load::replay_around(&loaded.argument, report.seed, &bugs, &faults, event)
        });
        let mut summary = summary_text(
            &report,
            &reproduce,
            log.as_deref(),
            web_url.as_deref(),
            &plain,
        );
        for line in
            sim_core::check::cap::lines(run.metrics().iter(), &loaded.scenario.qualified_kinds())
        {
            summary.push_str(&line);
            summary.push('\n');
        }
        super::report::write(dir, &loaded.scenario, run.as_ref(), &summary)?;
        wrote("report", dir);
    }
    Ok(if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Names a file written, on stderr (stdout may be a JSON report).
fn wrote(what: &str, path: &std::path::Path) {
    eprintln!("wrote {what} to {}", path.display());
}

pub fn add_panic_location(report: &mut RunReport) {
    if let Some(location) = crate::output::take_panic_location() {
        for finding in report
            .findings
            .iter_mut()
            .filter(|f| f.invariant == "panic")
        {
            finding.message = format!("{} (at {location})", finding.message);
        }
    }
}

pub fn json_lines<'a, T: Serialize + 'a>(
    items: impl IntoIterator<Item = &'a T>,
) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    for item in items {
        serde_json::to_writer(&mut bytes, item)?;
        bytes.push(b'\n');
    }
    Ok(bytes)
}

/// The most nodes a ShiViz export may have.
const SHIVIZ_NODES_MAX: u32 = 256;

/// Exports come from the retained trace: say so when it was capped.
fn warn_if_truncated(run: &dyn Run) {
    if run.trace().truncated() {
        eprintln!(
            "the export holds the first {} events of {}; raise [limits] trace_events_max for all",
            run.trace().retained().len(),
            run.trace().events()
        );
    }
}

fn write_spans(path: &std::path::Path, run: &dyn Run) -> Result<()> {
    use sim_core::proto::rpc::spans;
    let zipkin = spans::zipkin(&spans::collect(run.trace().retained()));
    load::write_whole(path, &serde_json::to_vec_pretty(&zipkin)?)?;
    if run.trace().truncated() {
        eprintln!(
            "{} spans come from the trace, which kept its first {} events of {}; raise [limits] \
             trace_events_max for the rest",
            paint(YELLOW, "warning:"),
            run.trace().retained().len(),
            run.trace().events()
        );
    }
    Ok(())
}

/// The trace file: a header line that says which run it is (so `replay --trace FILE` needs
/// nothing else), then every retained event.
fn write_trace(
    path: &std::path::Path,
    run: &dyn Run,
    header: &super::replay::TraceHeader,
) -> Result<()> {
    let mut bytes = serde_json::to_vec(header)?;
    bytes.push(b'\n');
    bytes.extend(json_lines(run.trace().retained())?);
    load::write_whole(path, &bytes)?;
    if run.trace().truncated() {
        eprintln!(
            "{} the trace kept its first {} events of {}; raise [limits] trace_events_max",
            paint(YELLOW, "warning:"),
            run.trace().retained().len(),
            run.trace().events()
        );
    }
    Ok(())
}

/// One line per metric: its peak and its last value, so a queue that absorbed a burst and
/// drained shows both.
/// Lines of the timeline printed at most: the first and the last half of them.
const TIMELINE_LINES_MAX: usize = 20;

/// The run's faults and findings in order, before its summary: what happened when.
fn print_timeline(milestones: &[sim_core::trace::TraceEvent], kinds: &[String]) {
    if milestones.is_empty() {
        return;
    }
    println!("timeline ({} faults and findings):", milestones.len());
    let half = TIMELINE_LINES_MAX / 2;
    for (index, event) in milestones.iter().enumerate() {
        if milestones.len() > TIMELINE_LINES_MAX && index == half {
            println!(
                "  ... {} more (the event log has them all)",
                milestones.len() - 2 * half
            );
        }
        if milestones.len() <= TIMELINE_LINES_MAX
            || index < half
            || index >= milestones.len() - half
        {
            println!("  {}", super::log::line(event, kinds));
        }
    }
}

fn print_metrics(samples: &sim_core::chunked::Chunked<sim_core::engine::MetricSample>) {
    let mut summary: std::collections::BTreeMap<&str, (u64, u64, u64)> = Default::default();
    for sample in samples.iter() {
        let entry = summary.entry(&sample.name).or_insert((0, 0, 0));
        *entry = (entry.0.max(sample.value), sample.value, entry.2 + 1);
    }
    for (name, (max, last, count)) in summary {
        println!("metric {name}: max {max}, last {last} ({count} samples; --metrics FILE for all)");
    }
}

fn print_summary(report: &RunReport, reproduce: &str, log: Option<&str>, web_url: Option<&str>) {
    print!("{}", summary_text(report, reproduce, log, web_url, &paint));
}

/// The run's summary; `style` colours a piece of text (or leaves it plain, for files).
fn summary_text(
    report: &RunReport,
    reproduce: &str,
    log: Option<&str>,
    web_url: Option<&str>,
    style: &dyn Fn(&str, &str) -> String,
) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} seed {}: {} events, {} virtual, trace hash {}",
        style(BOLD, &report.scenario),
        report.seed,
        report.events,
        seconds(report.sim_time_ns),
        report.trace_hash
    );
    for (name, value) in &report.stats {
        let _ = writeln!(text, "stat {name}: {value}");
    }
    if report.findings.is_empty() {
        let _ = writeln!(
            text,
            "{}",
            style(GREEN, "no findings: every invariant held")
        );
        return text;
    }
    for finding in &report.findings {
        let _ = writeln!(
            text,
            "{} {} at {} (event #{}): {}",
            style(RED, "FINDING"),
            style(BOLD, &finding.invariant),
            seconds(finding.time_ns),
            finding.event,
            finding.message
        );
    }
    let _ = writeln!(text, "reproduce: {reproduce}");
    if let Some(log) = log {
        let _ = writeln!(text, "read it: {log}");
    }
    if let Some(url) = web_url {
        let _ = writeln!(text, "watch it: {url}");
    }
    text
}
