//! Golden trace hashes: every built-in scenario, run at the seeds listed in
//! `tests/golden/hashes.txt`, must end with exactly the trace hash written there, both
//! natively and on `wasm32-unknown-unknown` (run under Node by `wasm-bindgen-test-runner`).
//!
//! This is how we prove the determinism rule "same scenario + seed gives the same hash
//! natively and in wasm": the file is produced natively by `cargo xtask golden` and the
//! wasm build must agree with it. Tests only read the file; they never rewrite it, so a
//! changed hash is always a diff somebody reviewed.

use sim_core::engine::run_to_end;
use sim_core::scenario::{self, RunOptions};

/// `scenario seed trace_hash` per line; `#` starts a comment.
const GOLDEN: &str = include_str!("golden/hashes.txt");

/// Bounds the file so a runaway generator cannot turn this test into a long soak.
const GOLDEN_LINES_MAX: usize = 1_000;

struct Golden {
    line: usize,
    scenario: String,
    seed: u64,
    trace_hash: String,
}

/// The golden entries; a malformed line fails the test with its line number.
fn golden_entries() -> Vec<Golden> {
    let mut entries = Vec::new();
    for (index, raw) in GOLDEN.lines().enumerate() {
        let text = raw.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let line = index + 1;
        let fields: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(
            fields.len(),
            3,
            "hashes.txt:{line}: expected `scenario seed hash`: {raw}"
        );
        let seed = fields[1].parse::<u64>();
        let seed = seed.unwrap_or_else(|_| panic!("hashes.txt:{line}: bad seed `{}`", fields[1]));
        let hash = fields[2];
        assert!(
            !hash.is_empty() && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "hashes.txt:{line}: trace hash is not hex: `{hash}`"
        );
        entries.push(Golden {
            line,
            scenario: fields[0].to_string(),
            seed,
            trace_hash: hash.to_string(),
        });
    }
    assert!(
        entries.len() <= GOLDEN_LINES_MAX,
        "hashes.txt has over {GOLDEN_LINES_MAX} entries"
    );
    entries
}

/// Runs built-in scenario `name` at `seed` to its end and returns its trace hash.
fn trace_hash(name: &str, seed: u64) -> String {
    let text = scenario::builtin(name).unwrap_or_else(|| panic!("`{name}` is not a built-in"));
    let parsed = scenario::parse(&format!("{name}.toml"), text);
    let parsed = parsed.unwrap_or_else(|errors| panic!("{name}: {errors:?}"));
    let options = RunOptions {
        seed: Some(seed),
        ..Default::default()
    };
    let mut run = parsed.build(&options);
    let report = run_to_end(run.as_mut());
    assert_eq!(report.seed, seed, "the run used the seed it was given");
    report.trace_hash
}

/// Runs every golden entry and reports all mismatches at once, each with its line.
fn check_golden_hashes() {
    let entries = golden_entries();
    assert!(
        !entries.is_empty(),
        "hashes.txt lists no runs; run `cargo xtask golden`"
    );
    let mut mismatches = Vec::new();
    for entry in &entries {
        let actual = trace_hash(&entry.scenario, entry.seed);
        if actual != entry.trace_hash {
            mismatches.push(format!(
                "hashes.txt:{}: {} seed {}: golden {}, got {actual}",
                entry.line, entry.scenario, entry.seed, entry.trace_hash
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "trace hashes differ from the golden file (if the change is intended, run \
         `cargo xtask golden` and review the diff):\n{}",
        mismatches.join("\n")
    );
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn every_golden_run_ends_with_its_golden_trace_hash() {
    check_golden_hashes();
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test::wasm_bindgen_test]
fn every_golden_run_ends_with_its_golden_trace_hash() {
    check_golden_hashes();
}

/// A new built-in scenario cannot be forgotten: the file must list each at seeds 1 and 2.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn golden_file_lists_every_builtin_at_seeds_1_and_2() {
    let entries = golden_entries();
    let mut missing = Vec::new();
    for (name, _) in scenario::BUILTINS {
        for seed in [1, 2] {
            if !entries
                .iter()
                .any(|entry| entry.scenario == *name && entry.seed == seed)
            {
                missing.push(format!("{name} seed {seed}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "hashes.txt lacks: {} (run `cargo xtask golden`)",
        missing.join(", ")
    );
    for entry in &entries {
        assert!(
            scenario::builtin(&entry.scenario).is_some(),
            "hashes.txt:{}: unknown",
            entry.line
        );
    }
}
