//! `cargo xtask golden`: rewrites `sim-core/tests/golden/hashes.txt` from native runs of
//! every built-in scenario at seeds 1 and 2, and prints what changed.
//!
//! This is the only writer of that file. Tests only read it (natively and in wasm), so a
//! changed trace hash reaches the repository solely through this command and a reviewed
//! diff.

use std::collections::BTreeMap;

use anyhow::Context;
use sim_core::engine::run_to_end;
use sim_core::scenario::{self, RunOptions};

const GOLDEN_PATH: &str = "sim-core/tests/golden/hashes.txt";
const SEEDS: [u64; 2] = [1, 2];

const HEADER: &str = "\
# Golden trace hashes: `scenario seed trace_hash`, one run per line.
# Checked natively and on wasm32 by sim-core/tests/wasm_hashes.rs.
# Rewrite ONLY with `cargo xtask golden`, then read the diff before committing.
";

/// (scenario, seed) -> trace hash.
type Hashes = BTreeMap<(String, u64), String>;

pub fn run() -> anyhow::Result<()> {
    let path = crate::root().join(GOLDEN_PATH);
    let old = match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Hashes::new(),
        Err(error) => return Err(error).with_context(|| format!("reading {GOLDEN_PATH}")),
    };
    let mut text = HEADER.to_string();
    let mut new = Hashes::new();
    for (name, _) in scenario::BUILTINS {
        for seed in SEEDS {
            let hash = trace_hash(name, seed)?;
            text.push_str(&format!("{name} {seed} {hash}\n"));
            new.insert((name.to_string(), seed), hash);
        }
    }
    std::fs::write(&path, text).with_context(|| format!("writing {GOLDEN_PATH}"))?;
    print_diff(&old, &new);
    Ok(())
}

/// The trace hash of built-in `name` at `seed`, computed exactly as the golden test does.
fn trace_hash(name: &str, seed: u64) -> anyhow::Result<String> {
    let text = scenario::builtin(name).context("BUILTINS names a built-in")?;
    let parsed = scenario::parse(&format!("{name}.toml"), text).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "built-in scenario `{name}` does not parse:\n{}",
            lines.join("\n")
        )
    })?;
    let options = RunOptions {
        seed: Some(seed),
        ..Default::default()
    };
    let mut run = parsed.build(&options);
    let report = run_to_end(run.as_mut());
    anyhow::ensure!(
        report.seed == seed,
        "{name}: ran seed {} instead of {seed}",
        report.seed
    );
    Ok(report.trace_hash)
}

/// Reads a golden file leniently: this is the old copy, about to be replaced.
fn parse(text: &str) -> Hashes {
    let mut hashes = Hashes::new();
    for line in text.lines() {
        let fields: Vec<&str> = line
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if let [name, seed, hash] = fields[..] {
            if let Ok(seed) = seed.parse::<u64>() {
                hashes.insert((name.to_string(), seed), hash.to_string());
            }
        }
    }
    hashes
}

fn print_diff(old: &Hashes, new: &Hashes) {
    let mut changed = 0;
    let mut added = 0;
    for ((name, seed), hash) in new {
        match old.get(&(name.clone(), *seed)) {
            Some(previous) if previous == hash => {}
            Some(previous) => {
                changed += 1;
                println!("  changed {name} seed {seed}: {previous} -> {hash}");
            }
            None => {
                added += 1;
                println!("  added   {name} seed {seed}: {hash}");
            }
        }
    }
    let mut removed = 0;
    for ((name, seed), hash) in old {
        if !new.contains_key(&(name.clone(), *seed)) {
            removed += 1;
            println!("  removed {name} seed {seed}: {hash}");
        }
    }
    let unchanged = new.len() - changed - added;
    println!(
        "golden: wrote {GOLDEN_PATH}: {} runs; {unchanged} unchanged, {changed} changed, \
         {added} added, {removed} removed",
        new.len()
    );
    if changed > 0 {
        println!("golden: changed hashes mean runs now behave differently; say why in the commit");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_skips_comments_and_malformed_lines() {
        let text = "# header\nping-pong 1 abc # note\nbad line\nping-pong x abc\n\n";
        let hashes = parse(text);
        assert_eq!(hashes.len(), 1);
        assert_eq!(hashes[&("ping-pong".to_string(), 1)], "abc");
    }
}
