//! `faultline check`: linearizability of client histories (faultline's own or any
//! system's, in DESIGN.md's JSON Lines format), one or more files in one process; or,
//! with `--model bank`, Jepsen's bank checker over transfers and reads.
//! Exit 0: every file linearizable (valid); 1: some file is not; 2: a file is malformed
//! or its search went over budget ("unknown").

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::Serialize;
use sim_core::check::history::{self, Operation};
use sim_core::check::linearizable::{self, Model, Verdict};
use sim_core::check::{bank, number};

use crate::output::{paint, BOLD, GREEN, RED, YELLOW};

/// A history file larger than this is refused rather than read into memory.
const HISTORY_BYTES_MAX: u64 = 2 << 30;

#[derive(clap::Args)]
pub struct Args {
    /// The object the histories operate on.
    #[arg(long, value_parser = ["register", "kv", "bank"])]
    model: String,
    /// The bank model's total: what every read must add up to [default: the sum of the
    /// first read to complete].
    #[arg(long, value_name = "N")]
    total: Option<i64>,
    /// Search N times the default budget (steps and cached states) before "unknown";
    /// memory grows with it (register and kv models).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=linearizable::BUDGET_TIMES_MAX as i64))]
    budget: Option<u32>,
    /// History files (JSON Lines).
    #[arg(required = true, value_name = "HISTORY.jsonl")]
    files: Vec<PathBuf>,
    /// Print one JSON object per file instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    verdict: &'static str,
    ops: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failing: Vec<FailingOp>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<String>,
    /// For a failure: how many events (invocations and completions, in time order) of the
    /// failing key are linearizable, and the operation whose next event breaks them.
    #[serde(skip_serializing_if = "Option::is_none")]
    linearizable_prefix: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    breaks_at: Option<BreaksAt>,
}

#[derive(Clone, Copy, Serialize)]
struct BreaksAt {
    line: u32,
    /// `invoke` or `complete`.
    event: &'static str,
}

#[derive(Serialize)]
struct FailingOp {
    line: u32,
    process: u64,
    f: String,
    value: serde_json::Value,
    /// `value` for the text report (a number beyond 64 bits bare, not quoted).
    #[serde(skip)]
    value_text: String,
    result: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.total.is_some() && args.model != "bank" {
        bail!("--total is the bank model's; add --model bank");
    }
    if args.budget.is_some() && args.model == "bank" {
        bail!("--budget sizes the register and kv models' search; the bank model has none");
    }
    let budget = linearizable::Budget::times(args.budget.unwrap_or(1));
    let reports: Vec<FileReport> = match Model::parse(&args.model) {
        Some(model) => args
            .files
            .par_iter()
            .map(|file| check_file(model, file, budget))
            .collect(),
        None => args
            .files
            .par_iter()
            .map(|file| check_bank(file, args.total))
            .collect(),
    };
    for report in &reports {
        if args.json {
            println!("{}", serde_json::to_string(report)?);
        } else {
            print_report(report);
        }
    }
    Ok(ExitCode::from(exit_code(&reports)))
}

/// 1 when any file is definitely not linearizable (or not valid), even beside unknown or
/// malformed ones, which are then named on stderr: a definite failure must not hide
/// behind them. Otherwise 2 for an unknown or malformed file, else 0.
fn exit_code(reports: &[FileReport]) -> u8 {
    let failed = reports
        .iter()
        .any(|r| matches!(r.verdict, "not-linearizable" | "invalid"));
    let undecided: Vec<&str> = reports
        .iter()
        .filter(|r| {
            !matches!(
                r.verdict,
                "linearizable" | "valid" | "not-linearizable" | "invalid"
            )
        })
        .map(|r| r.file.as_str())
        .collect();
    match (failed, undecided.is_empty()) {
        (true, false) => {
            eprintln!(
                "{} not checked to the end (unknown or malformed): {}",
                paint(YELLOW, "note:"),
                undecided.join(", ")
            );
            1
        }
        (true, true) => 1,
        (false, false) => 2,
        (false, true) => 0,
    }
}

fn check_file(model: Model, path: &std::path::Path, budget: linearizable::Budget) -> FileReport {
    let file = path.display().to_string();
    let operations = match parse(model, &file, path) {
        Ok(operations) => operations,
        Err(error) => {
            let errors = format!("{error:#}").lines().map(str::to_string).collect();
            return FileReport {
                file,
                verdict: "malformed",
                ops: 0,
                key: None,
                failing: Vec::new(),
                errors,
                linearizable_prefix: None,
                breaks_at: None,
            };
        }
    };
    let ops = operations.len();
    // Each round's key searches run on all cores; the verdict does not depend on it.
    let round = |jobs: &mut [linearizable::KeySearch], budget: u64| {
        jobs.par_iter_mut().for_each(|job| job.run(budget))
    };
    match linearizable::check_with_budget(model, &operations, &round, budget) {
        Verdict::Linearizable => FileReport {
            file,
            verdict: "linearizable",
            ops,
            key: None,
            failing: Vec::new(),
            errors: Vec::new(),
            linearizable_prefix: None,
            breaks_at: None,
        },
        Verdict::NotLinearizable {
            key,
            failing,
            prefix,
        } => {
            let failing = failing.iter().map(failing_op).collect();
            FileReport {
                file,
                verdict: "not-linearizable",
                ops,
                key,
                failing,
                errors: Vec::new(),
                linearizable_prefix: prefix.map(|p| p.events),
                breaks_at: prefix.map(|p| BreaksAt {
                    line: p.breaks_at,
                    event: if p.completion { "complete" } else { "invoke" },
                }),
            }
        }
        Verdict::Unknown { key, reason } => FileReport {
            file,
            verdict: "unknown",
            ops,
            key,
            failing: Vec::new(),
            errors: vec![reason],
            linearizable_prefix: None,
            breaks_at: None,
        },
    }
}

/// Jepsen's bank checker on one file.
fn check_bank(path: &std::path::Path, total: Option<i64>) -> FileReport {
    let file = path.display().to_string();
    let malformed = |file: String, error: anyhow::Error| FileReport {
        file,
        verdict: "malformed",
        ops: 0,
        key: None,
        failing: Vec::new(),
        errors: format!("{error:#}").lines().map(str::to_string).collect(),
        linearizable_prefix: None,
        breaks_at: None,
    };
    let operations = match parse_history(&file, path) {
        Ok(operations) => operations,
        Err(error) => return malformed(file, error),
    };
    let report = match bank::check(&operations, total.map(i128::from)) {
        Ok(report) => report,
        Err(error) => {
            let error = anyhow::anyhow!("{file}:{}:1: {}", error.line, error.message);
            return malformed(file, error);
        }
    };
    let failing = report
        .errors
        .iter()
        .map(|error| FailingOp {
            line: error.line,
            process: error.process,
            f: "read".into(),
            value: number::shown(&error.read),
            value_text: number::text(&error.read),
            result: format!("{}: {}", error.kind, error.message),
        })
        .collect();
    let mut errors = Vec::new();
    if report.more_errors > 0 {
        errors.push(format!(
            "{} more reads break the rules (the first {} are listed)",
            report.more_errors,
            bank::ERRORS_MAX
        ));
    }
    FileReport {
        file,
        verdict: if report.is_valid() {
            "valid"
        } else {
            "invalid"
        },
        ops: operations.len(),
        key: None,
        failing,
        errors,
        linearizable_prefix: None,
        breaks_at: None,
    }
}

/// Reads a history file line by line: memory holds its operations, never the file (a
/// ten-million-line history is read in a few hundred megabytes). Errors are located.
fn parse_history(file: &str, path: &std::path::Path) -> Result<Vec<Operation>> {
    let shown = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("{shown}: cannot read: {e}"))?
        .len();
    if size > HISTORY_BYTES_MAX {
        bail!("{shown}: {size} bytes is more than a history may hold");
    }
    let handle =
        std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{shown}: cannot read: {e}"))?;
    let reader = std::io::BufReader::with_capacity(1 << 16, handle);
    history::parse_reader(reader).map_err(|errors| {
        let lines: Vec<String> = errors
            .iter()
            .map(|e| format!("{file}:{}:{}: {}", e.line, e.column, e.message))
            .collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    })
}

/// A register or kv history, each operation one the model can express.
fn parse(model: Model, file: &str, path: &std::path::Path) -> Result<Vec<Operation>> {
    let operations = parse_history(file, path)?;
    for op in &operations {
        if let Err(message) = model.check_supported(op) {
            bail!("{file}:{}:1: {message}", op.line);
        }
    }
    Ok(operations)
}

fn failing_op(op: &Operation) -> FailingOp {
    let result = match (&op.output, op.completed) {
        (Some(output), true) => format!("ok {}", number::text(output)),
        (None, true) => "ok".to_string(),
        (_, false) => "unknown (info or never completed)".to_string(),
    };
    FailingOp {
        line: op.line,
        process: op.process,
        f: format!("{:?}", op.f).to_lowercase(),
        value: number::shown(&op.input),
        value_text: number::text(&op.input),
        result,
    }
}

/// " on key `k`" for a verdict about one key, else nothing.
fn on_key(report: &FileReport) -> String {
    report
        .key
        .as_deref()
        .map(|k| format!(" on key `{k}`"))
        .unwrap_or_default()
}

fn print_report(report: &FileReport) {
    match report.verdict {
        "valid" => println!(
            "{}: {} (bank: {} operations, every read adds up)",
            report.file,
            paint(GREEN, "valid"),
            report.ops
        ),
        "invalid" => {
            println!(
                "{}: {} (bank: {} operations); the reads that break it:",
                report.file,
                paint(RED, "INVALID"),
                report.ops
            );
            for op in &report.failing {
                println!(
                    "  line {:>6}  process {:<4} {} -> {}",
                    op.line, op.process, op.value_text, op.result
                );
            }
            for error in &report.errors {
                println!("  {error}");
            }
        }
        "linearizable" => println!(
            "{}: {} ({} operations)",
            report.file,
            paint(GREEN, "linearizable"),
            report.ops
        ),
        "not-linearizable" => {
            let key = on_key(report);
            println!(
                "{}: {}{key} ({} operations in the file); the smallest failing part, with the \
                 writes its reads contradict:",
                report.file,
                paint(RED, "NOT linearizable"),
                report.ops
            );
            for op in &report.failing {
                println!(
                    "  line {:>6}  process {:<4} {} {} -> {}",
                    op.line,
                    op.process,
                    paint(BOLD, &op.f),
                    op.value_text,
                    op.result
                );
            }
            if let (Some(events), Some(at)) = (report.linearizable_prefix, report.breaks_at) {
                let what = if at.event == "complete" {
                    "completion"
                } else {
                    "invocation"
                };
                println!(
                    "  how far it linearizes{key}: its first {events} events (invocations and \
                     completions); no order gets past the {what} of the operation on line {}",
                    at.line
                );
            }
        }
        "unknown" => {
            let key = on_key(report);
            println!(
                "{}: {}{key}: {}",
                report.file,
                paint(YELLOW, "unknown"),
                report.errors.join("; ")
            )
        }
        _ => {
            for error in &report.errors {
                eprintln!("{} {error}", paint(RED, "error:"));
            }
        }
    }
}
