//! `cargo xtask bench`: faultline's engine against the madsim reference, on the same
//! workload (two nodes, one message in flight, a million messages).
//!
//! Runs alternate (faultline, madsim, faultline, ...) so that a machine getting busier or
//! cooler during the benchmark skews both sides alike; the medians are compared. It never
//! builds the reference inside the workspace: madsim needs `--cfg madsim` for its whole
//! crate graph, which must not leak into faultline's build.

use std::process::Command;

use anyhow::Context;

use crate::{capture, cargo, exec, root};

const MESSAGES: &str = "1000000";
const ROUNDS: usize = 3;
const MADSIM_MANIFEST: &str = "bench/madsim-ping-pong/Cargo.toml";
const MADSIM_TARGET_DIR: &str = "target/madsim";

pub fn run() -> anyhow::Result<()> {
    let mut madsim_build = cargo();
    madsim_build.env("RUSTFLAGS", "--cfg madsim");
    madsim_build.args(["build", "--release", "--manifest-path", MADSIM_MANIFEST]);
    madsim_build.args(["--target-dir", MADSIM_TARGET_DIR]);
    exec(&mut madsim_build)?;
    exec(cargo().args(["build", "--release", "-p", "faultline"]))?;

    let faultline_bin = root().join("target/release/faultline");
    let madsim_bin = root()
        .join(MADSIM_TARGET_DIR)
        .join("release/madsim-ping-pong");
    let mut faultline_rates = Vec::with_capacity(ROUNDS);
    let mut madsim_rates = Vec::with_capacity(ROUNDS);
    for round in 1..=ROUNDS {
        let mut faultline = Command::new(&faultline_bin);
        faultline.args(["bench", "ping-pong", "--messages", MESSAGES, "--json"]);
        let rate = measure(&mut faultline).context("faultline ping-pong")?;
        println!("round {round}/{ROUNDS}: faultline {}", per_sec(rate));
        faultline_rates.push(rate);

        let mut madsim = Command::new(&madsim_bin);
        madsim.args(["--messages", MESSAGES]);
        let rate = measure(&mut madsim).context("madsim ping-pong")?;
        println!("round {round}/{ROUNDS}: madsim    {}", per_sec(rate));
        madsim_rates.push(rate);
    }
    let faultline = median(&mut faultline_rates);
    let madsim = median(&mut madsim_rates);
    println!("median faultline: {}", per_sec(faultline));
    println!("median madsim:    {}", per_sec(madsim));
    println!("ratio faultline/madsim: {:.2}x", faultline / madsim);
    Ok(())
}

/// Runs one benchmark binary and returns its `msgs_per_sec`, checking the message count.
fn measure(command: &mut Command) -> anyhow::Result<f64> {
    let stdout = capture(command)?;
    let line = stdout
        .lines()
        .rev()
        .find(|line| line.trim_start().starts_with('{'));
    let line = line.with_context(|| format!("no JSON object in output: {stdout}"))?;
    let value: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("bad JSON: {line}"))?;
    let messages = value["messages"]
        .as_u64()
        .context("no integer `messages`")?;
    anyhow::ensure!(
        messages.to_string() == MESSAGES,
        "ran {messages} messages, not {MESSAGES}"
    );
    let rate = value["msgs_per_sec"]
        .as_f64()
        .context("no number `msgs_per_sec`")?;
    anyhow::ensure!(
        rate.is_finite() && rate > 0.0,
        "implausible msgs_per_sec {rate}"
    );
    Ok(rate)
}

fn median(rates: &mut [f64]) -> f64 {
    assert!(!rates.is_empty(), "a median needs at least one run");
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn per_sec(rate: f64) -> String {
    format!("{:.2} M msgs/s", rate / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_three_is_the_middle_one() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }
}
