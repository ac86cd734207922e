//! Tidy checks the compiler cannot make: every Rust file opens with a `//!` doc saying
//! what it owns, and sim-core stays free of what would break determinism or the wasm
//! build (hash-ordered collections, wall clocks, threads, ambient randomness).

use std::path::{Path, PathBuf};

const ROOTS: &[&str] = &[
    "src",
    "sim-core/src",
    "sim-core/tests",
    "web-ui/src",
    "xtask/src",
    "tests",
    "benches",
];

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("readable directory").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

fn all_files(roots: &[&str]) -> Vec<PathBuf> {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for root in roots {
        rust_files(&top.join(root), &mut files);
    }
    files.sort();
    assert!(files.len() > 20, "the walk found the sources");
    files
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let missing: Vec<String> = all_files(ROOTS)
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            !text
                .lines()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.starts_with("//!"))
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` doc: {missing:#?}"
    );
}

#[test]
fn sim_core_has_no_determinism_leaks() {
    let forbidden = [
        "std::collections::HashMap",
        "std::collections::HashSet",
        "Instant::now",
        "SystemTime",
        "thread_rng",
        "std::thread",
        "from_entropy",
        "from_os_rng",
    ];
    let mut leaks = Vec::new();
    for path in all_files(&["sim-core/src"]) {
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            for word in forbidden {
                if line.contains(word) && !line.trim_start().starts_with("//") {
                    leaks.push(format!("{}:{}: {word}", path.display(), number + 1));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "determinism leaks: {leaks:#?}");
}

#[test]
fn the_engine_names_no_protocol() {
    // Architecture invariant: engine, net, disk, fault and trace know nothing of proto::*.
    let files = all_files(&["sim-core/src/engine", "sim-core/src"]);
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let in_engine = path.components().any(|c| c.as_os_str() == "engine");
        let core = [
            "net.rs", "disk.rs", "fault.rs", "trace.rs", "node.rs", "hash.rs",
        ];
        if !(in_engine || core.contains(&name.as_str())) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("proto::"),
            "{} names a protocol",
            path.display()
        );
    }
}

#[test]
fn the_container_recipe_builds_the_cli_and_ships_it_alone() {
    let recipe =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/Containerfile"))
            .unwrap();
    let stages: Vec<&str> = recipe.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(
        stages.len(),
        2,
        "a build stage and a runtime stage: {stages:?}"
    );
    assert!(stages[0].ends_with(" AS build"), "{stages:?}");
    assert!(recipe.contains("cargo build --release --locked --bin faultline"));
    assert!(
        recipe.contains("COPY --from=build /src/target/release/faultline /usr/local/bin/faultline")
    );
    assert!(recipe.lines().any(|l| l.starts_with("USER ")), "not root");
}
