//! `faultline bench ping-pong`: the engine's message rate with the trace hash on, for
//! comparison with madsim (`cargo xtask bench`) and across cluster sizes (`--pairs`).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Result};
use sim_core::engine::{run_to_end, Limits, SimConfig};
use sim_core::net::{Latency, LinkModel};
use sim_core::proto::ping_pong::Params;
use sim_core::scenario::ping_pong_sim;

const MESSAGES_MAX: u64 = 300_000_000;
const PAIRS_MAX: u32 = 50_000;

#[derive(clap::Args)]
pub struct Args {
    /// The workload; only `ping-pong` exists.
    #[arg(value_parser = ["ping-pong"])]
    workload: String,
    /// One-way messages in all, split evenly over the pairs.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(2..=MESSAGES_MAX))]
    messages: u64,
    /// Client/server pairs, each with one message in flight (nodes = 2 x pairs).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=PAIRS_MAX as i64))]
    pairs: u32,
    /// Print `{"messages":N,"wall_s":x,"msgs_per_sec":y}` only.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let per_pair = args.messages / args.pairs as u64;
    if per_pair < 2 {
        bail!(
            "--messages {} over --pairs {} leaves fewer than 2 per pair",
            args.messages,
            args.pairs
        );
    }
    let messages = per_pair * args.pairs as u64;
    let mut kinds = vec!["client".to_string(); args.pairs as usize];
    kinds.extend(vec!["server".to_string(); args.pairs as usize]);
    let config = SimConfig {
        scenario: "bench-ping-pong".into(),
        seed: 1,
        kinds,
        link: LinkModel {
            latency: Latency::Fixed { ns: 10_000 },
            ..LinkModel::default()
        },
        links: Vec::new(),
        faults: Vec::new(),
        nemesis: None,
        fault_phase_ns: 1 << 62,
        quiet_ns: 0,
        limits: Limits {
            events_max: messages * 3 + 1_000,
            queue_max: 10 * args.pairs + 1_000,
            ..Limits::default()
        },
        bugs: Default::default(),
        retain_trace: false,
    };
    let params = Params {
        messages: per_pair,
        timeout_ns: 0,
    };
    let started = Instant::now();
    let mut sim = ping_pong_sim(config, params, |_| true);
    let report = run_to_end(&mut sim);
    let wall_s = started.elapsed().as_secs_f64();
    if !report.findings.is_empty() {
        bail!("the benchmark run itself failed: {:?}", report.findings);
    }
    let msgs_per_sec = (messages as f64 / wall_s.max(1e-9)).round() as u64;
    if args.json {
        println!(r#"{{"messages":{messages},"wall_s":{wall_s:.6},"msgs_per_sec":{msgs_per_sec}}}"#);
    } else {
        println!(
            "ping-pong, {} pair(s): {messages} messages in {wall_s:.3}s = {msgs_per_sec} msgs/s \
             ({:.1} ns per event, {} events, trace hash {})",
            args.pairs,
            wall_s * 1e9 / report.events as f64,
            report.events,
            report.trace_hash
        );
    }
    Ok(ExitCode::SUCCESS)
}
