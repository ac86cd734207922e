//! `faultline bench ping-pong`: the engine's message rate with the trace hash on, for
//! comparison with madsim (`cargo xtask bench`) and across cluster sizes (`--pairs`);
//! `bench broker` and `bench rpc`: what the simulated broker and RPC framework carry.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Result};
use sim_core::engine::run_to_end;
use sim_core::net::Latency;
use sim_core::proto::ping_pong::spec as ping_pong;

const MESSAGES_MAX: u64 = 300_000_000;
const PAIRS_MAX: u32 = 50_000;

#[derive(clap::Args)]
pub struct Args {
    /// `ping-pong` (the engine's raw message rate), `broker` (messages published,
    /// routed, delivered and acked through the simulated broker) or `rpc` (calls
    /// through the RPC framework, providers found in the registry).
    #[arg(value_parser = ["ping-pong", "broker", "rpc"])]
    workload: String,
    /// One-way messages in all, split evenly over the pairs (broker: messages; rpc: calls).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(2..=MESSAGES_MAX))]
    messages: u64,
    /// Client/server pairs, each with one message in flight (nodes = 2 x pairs).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=PAIRS_MAX as i64))]
    pairs: u32,
    /// ping-pong only: every message over a connection (sequence numbers, acks,
    /// retransmission timers), to compare with raw datagrams.
    #[arg(long)]
    conn: bool,
    /// Print `{"messages":N,"wall_s":x,"msgs_per_sec":y}` only.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.workload == "broker" {
        return run_broker(&args);
    }
    if args.workload == "rpc" {
        return run_rpc(&args);
    }
    let per_pair = args.messages / args.pairs as u64;
    if per_pair < 2 {
        bail!(
            "--messages {} over --pairs {} leaves fewer than 2 per pair",
            args.messages,
            args.pairs
        );
    }
    let messages = per_pair * args.pairs as u64;
    let latency = Latency::Fixed { ns: 10_000 };
    let started = Instant::now();
    let report = if args.conn {
        run_to_end(&mut ping_pong::bench_over_conn(
            args.pairs, per_pair, latency,
        ))
    } else {
        run_to_end(&mut ping_pong::bench(args.pairs, per_pair, latency))
    };
    let wall_s = started.elapsed().as_secs_f64();
    if !report.findings.is_empty() {
        bail!("the benchmark run itself failed: {:?}", report.findings);
    }
    let msgs_per_sec = (messages as f64 / wall_s.max(1e-9)).round() as u64;
    if args.json {
        println!(r#"{{"messages":{messages},"wall_s":{wall_s:.6},"msgs_per_sec":{msgs_per_sec}}}"#);
    } else {
        println!(
            "ping-pong{}, {} pair(s): {messages} messages in {wall_s:.3}s = {msgs_per_sec} msgs/s \
             ({:.1} ns per event, {} events, trace hash {})",
            if args.conn { " over connections" } else { "" },
            args.pairs,
            wall_s * 1e9 / report.events as f64,
            report.events,
            report.trace_hash
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Four publishers and four consumers through one broker, persistent messages, confirms,
/// manual acks, no faults: every message is published, synced, confirmed, delivered,
/// processed and acked.
fn run_broker(args: &Args) -> Result<ExitCode> {
    let per_publisher = (args.messages / 4).clamp(1, 100_000);
    let text = format!(
        r#"
name = "bench-broker"
description = "broker throughput"
protocol = "broker"
duration = "60m"
quiet = "0s"
[[nodes]]
kind = "broker"
[[nodes]]
kind = "publisher"
count = 4
[[nodes]]
kind = "consumer"
count = 4
[network]
latency = {{ dist = "uniform", min = "50us", max = "150us" }}
fifo = true
[params]
exchange = "bench"
routing_keys = ["work"]
queues = ["work"]
messages = {per_publisher}
burst = 20
publish_interval = "1ms"
prefetch = 50
process_time = "10us"
"#
    );
    let scenario = sim_core::scenario::parse("bench-broker", &text)
        .map_err(|errors| anyhow::anyhow!("{errors:?}"))?;
    let started = Instant::now();
    let mut run = scenario.build(&Default::default());
    let mut stepped = 0u64;
    let processed_target = per_publisher * 4;
    // The run would idle until its one-hour end on heartbeats; stop once all is processed.
    while run.step() {
        stepped += 1;
        if stepped.is_multiple_of(100_000) && processed(run.as_ref()) >= processed_target {
            break;
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    let done = processed(run.as_ref());
    if done < processed_target || !run.findings().is_empty() {
        bail!(
            "the benchmark run failed: {done} of {processed_target} processed, {:?}",
            run.findings()
        );
    }
    let msgs_per_sec = (done as f64 / wall_s.max(1e-9)).round() as u64;
    if args.json {
        println!(r#"{{"messages":{done},"wall_s":{wall_s:.6},"msgs_per_sec":{msgs_per_sec}}}"#);
    } else {
        println!(
            "broker: {done} messages published, confirmed, delivered and acked in {wall_s:.3}s \
             = {msgs_per_sec} msgs/s ({} events)",
            run.trace().events()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Eight consumers, eight calls in flight each, over four providers found in a
/// three-server registry; round robin, failover, a write every fourth call; no faults.
fn run_rpc(args: &Args) -> Result<ExitCode> {
    let per_consumer = (args.messages / 8).clamp(1, 1_000_000);
    let text = format!(
        r#"
name = "bench-rpc"
description = "RPC throughput"
protocol = "rpc"
duration = "600m"
quiet = "0s"
[[nodes]]
kind = "registry.server"
count = 3
[[nodes]]
kind = "provider"
count = 4
[[nodes]]
kind = "consumer"
count = 8
[network]
latency = {{ dist = "uniform", min = "50us", max = "150us" }}
[params]
balancers = ["roundrobin"]
calls = {per_consumer}
think = "20us"
concurrency = 8
process_times = ["10us"]
"#
    );
    let scenario = sim_core::scenario::parse("bench-rpc", &text)
        .map_err(|errors| anyhow::anyhow!("{errors:?}"))?;
    let started = Instant::now();
    let mut run = scenario.build(&Default::default());
    let mut stepped = 0u64;
    let target = per_consumer * 8;
    // The run would idle until its end on session pings; stop once every call ended.
    while run.step() {
        stepped += 1;
        if stepped.is_multiple_of(100_000) && stat(run.as_ref(), "rpc.calls") >= target {
            break;
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    let (done, failed) = (
        stat(run.as_ref(), "rpc.calls"),
        stat(run.as_ref(), "rpc.failed"),
    );
    if done < target || failed > 0 || !run.findings().is_empty() {
        bail!(
            "the benchmark run failed: {done} of {target} calls ended, {failed} failed, {:?}",
            run.findings()
        );
    }
    let calls_per_sec = (done as f64 / wall_s.max(1e-9)).round() as u64;
    if args.json {
        println!(r#"{{"calls":{done},"wall_s":{wall_s:.6},"calls_per_sec":{calls_per_sec}}}"#);
    } else {
        println!(
            "rpc: {done} calls discovered, balanced, sent, served and answered in {wall_s:.3}s \
             = {calls_per_sec} calls/s ({} events)",
            run.trace().events()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn processed(run: &dyn sim_core::Run) -> u64 {
    stat(run, "broker.processed")
}

fn stat(run: &dyn sim_core::Run, name: &str) -> u64 {
    run.report().stats.get(name).copied().unwrap_or(0)
}
