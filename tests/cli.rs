//! End-to-end tests of the `faultline` command line, run as a user runs it: a process,
//! its exit code, its stdout and stderr. Exit codes: 0 clean, 1 findings, 2 bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("faultline runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 output")
}

fn json(output: &Output) -> Value {
    serde_json::from_str(&stdout(output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Asserts exit code 2 and that stderr says `expected`.
fn assert_bad_input(args: &[&str], expected: &str) {
    let output = faultline(args);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{args:?}: {}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains(expected),
        "{args:?}: {}",
        stderr(&output)
    );
    assert!(stdout(&output).is_empty(), "nothing half-printed on stdout");
}

#[test]
fn run_without_arguments_runs_the_default_scenario() {
    let output = faultline(&["run"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("registry-tour seed 1: "), "{text}");
    assert!(text.contains("no findings"), "{text}");
}

#[test]
fn run_json_has_the_contract_fields() {
    let report = json(&faultline(&["run", "ping-pong", "--seed", "3", "--json"]));
    assert_eq!(report["scenario"], "ping-pong");
    assert_eq!(report["seed"], 3);
    let hash = report["trace_hash"].as_str().unwrap();
    assert_eq!(hash.len(), 16);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(report["events"].as_u64().unwrap() > 1_000);
    assert!(report["sim_time_ns"].as_u64().unwrap() > 0);
    assert_eq!(report["findings"], Value::Array(vec![]));
}

#[test]
fn the_same_seed_gives_the_same_hash_across_processes_and_other_seeds_differ() {
    let hash = |seed: &str| {
        json(&faultline(&["run", "broadcast", "--seed", seed, "--json"]))["trace_hash"].clone()
    };
    assert_eq!(hash("11"), hash("11"));
    assert_ne!(hash("11"), hash("12"));
}

#[test]
fn a_planted_bug_is_a_finding_with_a_reproduce_command_and_exit_1() {
    let output = faultline(&[
        "run",
        "broadcast",
        "--seed",
        "0",
        "--bug",
        "broadcast.no-retransmit",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    let finding = &report["findings"][0];
    assert_eq!(finding["invariant"], "broadcast.agreement");
    assert!(finding["time_ns"].as_u64().is_some());
    assert!(finding["message"]
        .as_str()
        .unwrap()
        .starts_with("no progress"));
    assert_eq!(
        report["reproduce"],
        "faultline run broadcast --seed 0 --bug broadcast.no-retransmit"
    );
    let text = stdout(&faultline(&[
        "run",
        "broadcast",
        "--seed",
        "0",
        "--bug",
        "broadcast.no-retransmit",
    ]));
    assert!(text.contains("FINDING broadcast.agreement"), "{text}");
    assert!(
        text.contains("reproduce: faultline run broadcast --seed 0 --bug broadcast.no-retransmit"),
        "{text}"
    );
}

#[test]
fn history_and_trace_files_are_json_lines() {
    let history = temp("history.jsonl");
    let trace = temp("trace.jsonl");
    let output = faultline(&[
        "run",
        "broadcast-calm",
        "--history",
        history.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let history = std::fs::read_to_string(history).unwrap();
    let first: Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "invoke");
    assert_eq!(first["f"], "append");
    assert!(first["time"].as_u64().is_some());
    let events = std::fs::read_to_string(trace).unwrap();
    // A header line names the run, then one event per line.
    let header: Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    assert_eq!(header["faultline_trace"], 1);
    assert_eq!(header["scenario"], "broadcast-calm");
    assert_eq!(header["events"], header["retained"]);
    let kinds: Vec<String> = events
        .lines()
        .skip(1)
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for kind in [
        "start", "send", "deliver", "timer", "crash", "restart", "fault", "observe",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "no {kind} event in the trace"
        );
    }
}

#[test]
fn replay_matches_a_saved_trace_and_points_at_the_first_difference() {
    let saved = temp("saved.jsonl");
    let path = saved.to_str().unwrap();
    assert_eq!(
        faultline(&["run", "broadcast-calm", "--seed", "4", "--trace", path])
            .status
            .code(),
        Some(0)
    );
    let output = faultline(&[
        "replay",
        "--scenario",
        "broadcast-calm",
        "--seed",
        "4",
        "--trace",
        path,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("trace matches: "),
        "{}",
        stdout(&output)
    );

    // The header names the run: the trace alone is enough, a faulted run included.
    let output = faultline(&["replay", "--trace", path]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let faulted = temp("faulted.jsonl");
    let faulted = faulted.to_str().unwrap();
    let run = faultline(&[
        "run",
        "registry-basic",
        "--fault",
        "crash:0@1s",
        "--trace",
        faulted,
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let output = faultline(&["replay", "--trace", faulted]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));

    // Another seed is a header mismatch, said before any event is compared.
    let output = faultline(&["replay", "broadcast-calm", "--seed", "5", "--trace", path]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.starts_with("header mismatch"), "{text}");
    assert!(
        text.contains("the trace is of seed 4, this run of seed 5"),
        "{text}"
    );

    // A changed event: where, the events before it, both versions, which field.
    let tampered = temp("tampered.jsonl");
    let original = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = original.lines().map(str::to_string).collect();
    let mut event: Value = serde_json::from_str(&lines[20]).unwrap();
    event["detail"] = Value::String("tampered".into());
    lines[20] = event.to_string();
    std::fs::write(&tampered, lines.join("\n") + "\n").unwrap();
    let output = faultline(&["replay", "--trace", tampered.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("the run no longer matches the saved trace at event #19"),
        "{text}"
    );
    assert!(text.contains("events that led to it"), "{text}");
    assert!(
        text.contains("\nsaved: #") && text.contains("\nnow:   #"),
        "{text}"
    );
    assert!(text.contains("differs in: detail\n"), "{text}");

    // An empty trace is what it is.
    let empty = temp("empty-trace.jsonl");
    std::fs::write(&empty, "").unwrap();
    assert_bad_input(
        &["replay", "ping-pong", "--trace", empty.to_str().unwrap()],
        "an empty trace",
    );

    let broken = temp("broken.jsonl");
    std::fs::write(&broken, "{\"index\":0}\nnot json\n").unwrap();
    let broken = broken.to_str().unwrap();
    assert_bad_input(
        &["replay", "--scenario", "ping-pong", "--trace", broken],
        "broken.jsonl:1:",
    );
}

#[test]
fn replay_without_a_trace_prints_the_event_log() {
    let output = faultline(&["replay", "--scenario", "ping-pong", "--seed", "2"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert!(
        text.starts_with("nodes: n0 ping-pong.client, n1 ping-pong.server\n#0 "),
        "{text}"
    );
    assert!(text.contains("send") && text.contains("Ping(0)"), "{text}");
    let last = text.lines().last().unwrap();
    let hash =
        json(&faultline(&["run", "ping-pong", "--seed", "2", "--json"]))["trace_hash"].clone();
    assert!(
        last.contains(hash.as_str().unwrap()),
        "replay reaches the same hash: {last}"
    );
}

#[test]
fn swarm_reports_seeds_findings_and_speed() {
    let output = faultline(&["swarm", "broadcast", "--seeds", "40", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["seeds"], 40);
    assert_eq!(report["findings"], Value::Array(vec![]));
    assert!(report["seeds_per_sec"].as_f64().unwrap() > 0.0);

    let output = faultline(&[
        "swarm",
        "broadcast",
        "--seeds",
        "20",
        "--bug",
        "broadcast.no-retransmit",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    let finding = &report["findings"][0];
    let seed = finding["seed"].as_u64().unwrap();
    assert_eq!(
        finding["reproduce"],
        format!("faultline run broadcast --seed {seed} --bug broadcast.no-retransmit")
    );
    // Grouped by invariant: exact counts, the smallest seed and its commands.
    let groups = report["groups"].as_array().unwrap();
    assert!(!groups.is_empty());
    for group in groups {
        let invariant = group["invariant"].as_str().unwrap();
        let seeds: Vec<u64> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["invariant"] == invariant)
            .map(|f| f["seed"].as_u64().unwrap())
            .collect();
        let mut distinct = seeds.clone();
        distinct.dedup();
        assert_eq!(group["seeds"], distinct.len() as u64, "{group}");
        let smallest = *seeds.iter().min().unwrap();
        assert_eq!(group["smallest_seed"], smallest);
        assert_eq!(
            group["reproduce"],
            format!("faultline run broadcast --seed {smallest} --bug broadcast.no-retransmit")
        );
        assert!(group["web_url"]
            .as_str()
            .unwrap()
            .contains(&format!("seed={smallest}")));
    }
    let text = stdout(&faultline(&[
        "swarm",
        "broadcast",
        "--seeds",
        "20",
        "--bug",
        "broadcast.no-retransmit",
    ]));
    assert!(
        text.contains("findings by invariant:\n  broadcast."),
        "{text}"
    );
}

#[test]
fn swarm_shrink_shrinks_the_smallest_seed_of_each_group() {
    let dir = temp("swarm-shrink");
    std::fs::create_dir_all(&dir).unwrap();
    let output = faultline(&[
        "swarm",
        "broker-topics",
        "--seeds",
        "6",
        "--bug",
        "broker.route-duplicates",
        "--shrink",
        "--shrink-dir",
        dir.to_str().unwrap(),
        "--shrink-budget",
        "30",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let group = &report["groups"][0];
    assert_eq!(group["invariant"], "broker.no-duplicates");
    let shrunk = &group["shrunk"];
    assert_eq!(shrunk["seed"], group["smallest_seed"]);
    assert!(shrunk["runs"].as_u64().unwrap() <= 30);
    assert!(shrunk["after"]["events"].as_u64() < shrunk["before"]["events"].as_u64());
    let file = shrunk["file"].as_str().unwrap();
    assert!(
        file.ends_with("-broker.no-duplicates-shrunk.toml"),
        "{file}"
    );
    let run = faultline(&["run", file, "--json"]);
    assert_eq!(run.status.code(), Some(1), "the shrunk file still fails");
    assert_bad_input(
        &[
            "swarm",
            "broker-topics",
            "--seeds",
            "2",
            "--shrink-dir",
            "x",
        ],
        "--shrink",
    );
}

#[test]
fn swarm_shards_are_disjoint_and_cover_the_range() {
    let run = |shard: &str| {
        let report = json(&faultline(&[
            "swarm",
            "broadcast",
            "--seeds",
            "30",
            "--bug",
            "broadcast.no-retransmit",
            "--shard",
            shard,
            "--json",
        ]));
        let mut seeds: Vec<u64> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["seed"].as_u64().unwrap())
            .collect();
        seeds.dedup();
        (report["seeds"].as_u64().unwrap(), seeds)
    };
    let (count_a, seeds_a) = run("0/2");
    let (count_b, seeds_b) = run("1/2");
    assert_eq!(count_a + count_b, 30);
    assert!(seeds_a.iter().all(|s| s % 2 == 0) && seeds_b.iter().all(|s| s % 2 == 1));
    let (_, whole) = run("0/1");
    let mut union: Vec<u64> = seeds_a.into_iter().chain(seeds_b).collect();
    union.sort_unstable();
    assert_eq!(union, whole);
}

#[test]
fn list_and_bugs_print_the_catalogues() {
    let list = json(&faultline(&["list", "--json"]));
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"broadcast") && names.contains(&"ping-pong"),
        "{names:?}"
    );
    let bugs = json(&faultline(&["bugs", "--json"]));
    for bug in bugs.as_array().unwrap() {
        for field in ["name", "protocol", "description", "scenario"] {
            assert!(
                bug[field].as_str().is_some_and(|s| !s.is_empty()),
                "{bug}: {field}"
            );
        }
    }
    assert!(stdout(&faultline(&["bugs"])).contains("broadcast.ack-before-persist"));
}

#[test]
fn bench_prints_its_json_contract() {
    let report = json(&faultline(&[
        "bench",
        "ping-pong",
        "--messages",
        "10000",
        "--json",
    ]));
    let object = report.as_object().unwrap();
    let keys: Vec<&String> = object.keys().collect();
    assert_eq!(keys, ["messages", "msgs_per_sec", "wall_s"]);
    assert_eq!(report["messages"], 10_000);
    let broker = json(&faultline(&[
        "bench",
        "broker",
        "--messages",
        "400",
        "--json",
    ]));
    assert_eq!(
        broker["messages"], 400,
        "every message made it through the broker"
    );
    assert!(broker["msgs_per_sec"].as_u64().unwrap() > 0);
    let rpc = json(&faultline(&["bench", "rpc", "--messages", "800", "--json"]));
    assert_eq!(rpc["calls"], 800, "every call answered");
    assert!(rpc["calls_per_sec"].as_u64().unwrap() > 0);
}

#[test]
fn bad_input_anywhere_is_a_clear_error_and_exit_2() {
    assert_bad_input(
        &["run", "no-such-scenario"],
        "unknown scenario `no-such-scenario`: not a built-in",
    );
    assert_bad_input(
        &["run", "--seed", "abc"],
        "invalid value 'abc' for '--seed <SEED>'",
    );
    assert_bad_input(
        &["swarm", "broadcast", "--seeds", "0"],
        "0 is not in 1..=100000000",
    );
    assert_bad_input(
        &["swarm", "broadcast", "--seeds", "5", "--shard", "2/2"],
        "expected I/N with 0 <= I < N",
    );
    assert_bad_input(
        &["run", "--bug", "broadcast.no-retransmt"],
        "did you mean `broadcast.no-retransmit`?",
    );
    assert_bad_input(
        &["run", "ping-pong", "--bug", "broadcast.no-retransmit"],
        "lives in component `broadcast`, which no node of scenario `ping-pong` hosts",
    );
    assert_bad_input(
        &["bench", "ping-pong", "--messages", "1"],
        "1 is not in 2..=300000000",
    );
    assert_bad_input(&["frobnicate"], "unrecognized subcommand 'frobnicate'");

    let not_toml = temp("not-toml.toml");
    std::fs::write(&not_toml, "name = \"a\"\nprotocol = [1, \n").unwrap();
    assert_bad_input(&["run", not_toml.to_str().unwrap()], "not-toml.toml:2:");

    let binary = temp("binary.toml");
    std::fs::write(&binary, [b'n', 0xff, 0xfe, 0]).unwrap();
    assert_bad_input(
        &["run", binary.to_str().unwrap()],
        "not UTF-8 text (invalid byte at offset 1)",
    );

    let huge = temp("huge.toml");
    let text = "name = \"h\"\ndescription = \"d\"\nprotocol = \"broadcast\"\nduration = \"1s\"\n\
                [[nodes]]\nkind = \"peer\"\ncount = 10000000\n";
    std::fs::write(&huge, text).unwrap();
    assert_bad_input(
        &["run", huge.to_str().unwrap()],
        "huge.toml:7:9: `count` must be between 1 and 100000, found 10000000",
    );
}

#[test]
fn a_scenario_with_several_mistakes_reports_them_all() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sim-core/tests/testdata/mistakes.toml"
    );
    let output = faultline(&["run", path]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains("11 problems in the scenario:"), "{text}");
    assert!(
        text.contains("mistakes.toml:16:1: unknown key `latncy` in [network]"),
        "{text}"
    );
    assert!(text.contains("(did you mean `latency`?)"), "{text}");
}

#[test]
fn output_files_are_not_left_half_written_on_bad_input() {
    let history = temp("never.jsonl");
    let _ = std::fs::remove_file(&history);
    let output = faultline(&["run", "nope", "--history", history.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!history.exists());
}

#[test]
fn check_gives_verdicts_per_file_and_the_worst_exit_code() {
    let good = temp("good.jsonl");
    std::fs::write(
        &good,
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
         {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n",
    )
    .unwrap();
    let stale = temp("stale.jsonl");
    std::fs::write(
        &stale,
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
         {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n\
         {\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
         {\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":null}\n",
    )
    .unwrap();
    let (good, stale) = (good.to_str().unwrap(), stale.to_str().unwrap());
    let output = faultline(&["check", "--model", "register", good]);
    assert_eq!(output.status.code(), Some(0));
    let output = faultline(&["check", "--model", "register", good, stale, "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let lines: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["verdict"], "linearizable");
    assert_eq!(lines[1]["verdict"], "not-linearizable");
    assert_eq!(lines[1]["ops"], 2);
    let failing_lines: Vec<u64> = lines[1]["failing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["line"].as_u64().unwrap())
        .collect();
    assert_eq!(failing_lines, [1, 3]);
    // The write and the read's invocation are linearizable; the read's completion breaks.
    assert_eq!(lines[1]["linearizable_prefix"], 3);
    assert_eq!(lines[1]["breaks_at"]["line"], 3);
    assert_eq!(lines[1]["breaks_at"]["event"], "complete");
}

#[test]
fn check_reports_a_malformed_line_with_its_location_and_exit_2() {
    let broken = temp("broken-history.jsonl");
    std::fs::write(&broken, "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n{\"process\":0,\"type\":\"wat\",\"f\":\"write\"}\n").unwrap();
    let output = faultline(&["check", "--model", "register", broken.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("broken-history.jsonl:2:14: `type` must be"),
        "{}",
        stderr(&output)
    );
    let append = temp("append.jsonl");
    std::fs::write(
        &append,
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"append\",\"key\":\"x\",\"value\":\"a\"}\n",
    )
    .unwrap();
    let output = faultline(&["check", "--model", "register", append.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("the register model has no append"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_runs_own_history_passes_the_checker() {
    let history = temp("run-history.jsonl");
    let path = history.to_str().unwrap();
    assert_eq!(
        faultline(&["run", "broadcast", "--seed", "3", "--history", path])
            .status
            .code(),
        Some(0)
    );
    let output = faultline(&["check", "--model", "kv", path]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn registry_histories_are_checked_in_the_run_and_by_check() {
    let history = temp("registry-history.jsonl");
    let path = history.to_str().unwrap();
    let clean = faultline(&["run", "registry-tour", "--seed", "2", "--history", path]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));
    let output = faultline(&["check", "--model", "register", path]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));

    // A planted stale read: the swarm finds a seed, the run fails on it, and the history
    // it writes fails `check` on its own.
    let bug = "registry.stale-read-as-linearizable";
    let scenario = "registry-partition-minority";
    let swarm = json(&faultline(&[
        "swarm", scenario, "--seeds", "200", "--bug", bug, "--json",
    ]));
    let failing = swarm["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["invariant"] == "registry.linearizable")
        .expect("the swarm catches the stale read");
    let seed = failing["seed"].to_string();
    let run = faultline(&[
        "run",
        scenario,
        "--seed",
        &seed,
        "--bug",
        bug,
        "--history",
        path,
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", stdout(&run));
    let output = faultline(&["check", "--model", "register", path]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let verdict = stdout(&output).to_lowercase();
    assert!(verdict.contains("not linearizable"), "{verdict}");
}

#[test]
fn swarm_draws_a_progress_bar_on_a_terminal_only() {
    // `script` (util-linux, in every Debian) gives the swarm a pseudo-terminal.
    let command = format!(
        "{} swarm broadcast --seeds 30",
        env!("CARGO_BIN_EXE_faultline")
    );
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).replace('\r', "\n");
    assert!(
        text.contains("/30 seeds"),
        "a progress bar on the terminal: {text}"
    );
    assert!(
        text.contains("swarm broadcast: 30 seeds"),
        "then the summary: {text}"
    );
    let piped = faultline(&["swarm", "broadcast", "--seeds", "30"]);
    assert!(
        !stderr(&piped).contains("seeds"),
        "no bar when stderr is not a terminal"
    );
}

#[test]
fn swarm_merge_combines_shards_into_the_whole_swarms_report() {
    let shard = |index: &str| {
        let output = faultline(&[
            "swarm",
            "broadcast",
            "--seeds",
            "24",
            "--bug",
            "broadcast.no-retransmit",
            "--shard",
            index,
            "--json",
        ]);
        let path = temp(&format!("shard-{}.json", index.replace('/', "-")));
        std::fs::write(&path, &output.stdout).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (a, b, c) = (shard("0/3"), shard("1/3"), shard("2/3"));
    let output = faultline(&["swarm", "merge", &a, &b, &c, "--json"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the merged swarm has findings"
    );
    let merged = json(&output);
    let whole = json(&faultline(&[
        "swarm",
        "broadcast",
        "--seeds",
        "24",
        "--bug",
        "broadcast.no-retransmit",
        "--json",
    ]));
    assert_eq!(merged["seeds"], whole["seeds"]);
    assert_eq!(merged["failing_seeds"], whole["failing_seeds"]);
    assert_eq!(merged["events"], whole["events"]);
    assert_eq!(merged["findings"], whole["findings"]);
    assert_eq!(
        merged["groups"], whole["groups"],
        "merge keeps the grouping"
    );

    let other = temp("other-shard.json");
    let output = faultline(&["swarm", "ping-pong", "--seeds", "2", "--json"]);
    std::fs::write(&other, &output.stdout).unwrap();
    assert_bad_input(
        &["swarm", "merge", &a, other.to_str().unwrap()],
        "is a shard of `ping-pong`",
    );
    // The same shard twice, a missing shard, shards of other bugs: refused.
    assert_bad_input(&["swarm", "merge", &a, &a, &c], "are both shard 0/3");
    assert_bad_input(&["swarm", "merge", &a, &c], "shards missing: 1/3");
    let clean = temp("clean-shard.json");
    let output = faultline(&[
        "swarm",
        "broadcast",
        "--seeds",
        "24",
        "--shard",
        "1/3",
        "--json",
    ]);
    std::fs::write(&clean, &output.stdout).unwrap();
    assert_bad_input(
        &["swarm", "merge", &a, clean.to_str().unwrap(), &c],
        "not shards of one swarm: bugs",
    );
    let longer = temp("longer-shard.json");
    let output = faultline(&[
        "swarm",
        "broadcast",
        "--seeds",
        "30",
        "--bug",
        "broadcast.no-retransmit",
        "--shard",
        "1/3",
        "--json",
    ]);
    std::fs::write(&longer, &output.stdout).unwrap();
    assert_bad_input(
        &["swarm", "merge", &a, longer.to_str().unwrap(), &c],
        "not shards of one swarm: seeds asked",
    );
    let garbage = temp("garbage.json");
    std::fs::write(&garbage, "{\"scenario\": 3}").unwrap();
    assert_bad_input(
        &["swarm", "merge", garbage.to_str().unwrap()],
        "garbage.json:1:",
    );
}

#[test]
fn output_is_coloured_on_a_terminal_unless_no_color_is_set() {
    let command = format!("{} run ping-pong", env!("CARGO_BIN_EXE_faultline"));
    let on_terminal = |no_color: bool| {
        let mut script = Command::new("script");
        script
            .args(["-qec", &command, "/dev/null"])
            .env_remove("NO_COLOR");
        if no_color {
            script.env("NO_COLOR", "1");
        }
        String::from_utf8_lossy(&script.output().unwrap().stdout).to_string()
    };
    assert!(
        on_terminal(false).contains("\x1b[32mno findings"),
        "green on a terminal"
    );
    assert!(
        !on_terminal(true).contains('\x1b'),
        "NO_COLOR turns colour off"
    );
    assert!(
        !stdout(&faultline(&["run", "ping-pong"])).contains('\x1b'),
        "none when piped"
    );
}

#[test]
fn an_injected_fault_changes_the_run_and_rides_along_in_reproduce() {
    let plain = json(&faultline(&[
        "run",
        "registry-basic",
        "--seed",
        "1",
        "--json",
    ]));
    let args = [
        "run",
        "registry-basic",
        "--seed",
        "1",
        "--fault",
        "crash:0@1s",
        "--fault",
        "restart:0@1.5s",
        "--json",
    ];
    let faulted = json(&faultline(&args));
    assert_ne!(plain["trace_hash"], faulted["trace_hash"]);
    assert_eq!(json(&faultline(&args))["trace_hash"], faulted["trace_hash"]);
    assert_eq!(
        faulted["reproduce"],
        "faultline run registry-basic --seed 1 --fault crash:0@1s --fault restart:0@1.5s"
    );
    assert_eq!(
        faulted["web_url"],
        "http://127.0.0.1:8080/?scenario=registry-basic&seed=1&fault=crash:0@1s\
         &fault=restart:0@1.5s",
        "no finding: the link opens the run at its end"
    );
}

#[test]
fn a_finding_prints_a_browser_link_that_replays_it() {
    let args = [
        "run",
        "broadcast",
        "--seed",
        "0",
        "--bug",
        "broadcast.no-retransmit",
        "--fault",
        "pause:1@1s",
        "--web-base",
        "http://demo.test/",
    ];
    let output = faultline(&args);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains(
            "watch it: http://demo.test/?scenario=broadcast&seed=0\
             &bug=broadcast.no-retransmit&fault=pause:1@1s&event="
        ),
        "{text}"
    );
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let report = json(&faultline(&json_args));
    let event = report["findings"][0]["event"].as_u64().unwrap();
    let url = report["web_url"].as_str().unwrap();
    assert!(url.ends_with(&format!("&event={event}")), "{url}");
}

#[test]
fn bad_fault_specs_are_bad_input() {
    assert_bad_input(
        &["run", "registry-basic", "--fault", "crash:0"],
        "fault `crash:0`: no `@TIME`",
    );
    assert_bad_input(
        &["run", "registry-basic", "--fault", "crash:42@1s"],
        "names node 42",
    );
    assert_bad_input(
        &["run", "registry-basic", "--fault", "heal@10m"],
        "not inside the fault phase",
    );
}

/// Checks one span against Zipkin's v2 model (zipkin-api's `zipkin2-api.yaml`, `Span`
/// and `Endpoint`): the fields it defines and nothing else, with their types and forms.
fn assert_zipkin_v2_span(span: &Value) {
    let object = span.as_object().expect("a span is an object");
    let allowed = [
        "traceId",
        "parentId",
        "id",
        "kind",
        "name",
        "timestamp",
        "duration",
        "localEndpoint",
        "remoteEndpoint",
        "annotations",
        "tags",
        "debug",
        "shared",
    ];
    for key in object.keys() {
        assert!(
            allowed.contains(&key.as_str()),
            "`{key}` is not a Zipkin v2 span field: {span}"
        );
    }
    let hex = |key: &str, lengths: &[usize]| {
        let text = object[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} is a string: {span}"));
        assert!(lengths.contains(&text.len()), "{key} length: {span}");
        assert!(
            text.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "{key} is lower-hex: {span}"
        );
        assert!(
            text.chars().any(|c| c != '0'),
            "{key} is not all zeros: {span}"
        );
    };
    hex("traceId", &[16, 32]);
    hex("id", &[16]);
    if object.contains_key("parentId") {
        hex("parentId", &[16]);
    }
    assert!(
        ["CLIENT", "SERVER", "PRODUCER", "CONSUMER"].contains(&object["kind"].as_str().unwrap())
    );
    let name = object["name"].as_str().unwrap();
    assert_eq!(name, name.to_lowercase(), "span names are lowercase");
    // Epoch microseconds, after 2001 (Zipkin rejects a zero or millisecond timestamp).
    assert!(object["timestamp"].as_u64().unwrap() > 1_000_000_000_000_000);
    if let Some(duration) = object.get("duration") {
        assert!(
            duration.as_u64().unwrap() >= 1,
            "durations are at least 1 us"
        );
    }
    for endpoint in ["localEndpoint", "remoteEndpoint"] {
        let endpoint = object[endpoint].as_object().unwrap();
        for key in endpoint.keys() {
            assert!(
                ["serviceName", "ipv4", "ipv6", "port"].contains(&key.as_str()),
                "{key}"
            );
        }
        let service = endpoint["serviceName"].as_str().unwrap();
        assert_eq!(service, service.to_lowercase());
        let ipv4: Vec<&str> = endpoint["ipv4"].as_str().unwrap().split('.').collect();
        assert_eq!(ipv4.len(), 4);
        assert!(ipv4.iter().all(|octet| octet.parse::<u8>().is_ok()));
    }
    for (key, value) in object["tags"].as_object().unwrap() {
        assert!(value.is_string(), "tag {key} is a string");
    }
    if let Some(shared) = object.get("shared") {
        assert!(shared.is_boolean());
    }
}

#[test]
fn spans_export_as_zipkin_v2_and_link_a_nested_chain() {
    let path = temp("spans.json");
    let output = faultline(&["run", "rpc-trace-chain", "--spans", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let spans: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let spans = spans
        .as_array()
        .expect("Zipkin's POST /api/v2/spans takes an array");
    assert!(spans.len() > 100, "{} spans", spans.len());
    for span in spans {
        assert_zipkin_v2_span(span);
    }
    // An order placed by the client is one trace of three hops: client -> gateway ->
    // orders -> inventory, each a client span whose parent is the hop before.
    let place: Vec<&Value> = spans
        .iter()
        .filter(|s| {
            s["name"] == "orders.place" && s["kind"] == "CLIENT" && s.get("parentId").is_none()
        })
        .collect();
    assert!(!place.is_empty());
    let root = place[0];
    let trace: Vec<&Value> = spans
        .iter()
        .filter(|s| s["traceId"] == root["traceId"])
        .collect();
    let child_of = |parent: &Value| -> &Value {
        trace
            .iter()
            .find(|s| s["kind"] == "CLIENT" && s["parentId"] == parent["id"])
            .unwrap_or_else(|| panic!("no child of {parent}"))
    };
    let to_orders = child_of(root);
    assert_eq!(to_orders["localEndpoint"]["serviceName"], "gateway");
    assert_eq!(to_orders["remoteEndpoint"]["serviceName"], "orders");
    let to_inventory = child_of(to_orders);
    assert_eq!(to_inventory["name"], "inventory.reserve");
    assert_eq!(to_inventory["remoteEndpoint"]["serviceName"], "inventory");
    // Every client span has its server side, sharing its id, inside it in time.
    for client in trace.iter().filter(|s| s["kind"] == "CLIENT") {
        let server = trace
            .iter()
            .find(|s| s["kind"] == "SERVER" && s["id"] == client["id"])
            .expect("the server side");
        assert_eq!(server["shared"], true);
        let (cs, sr) = (
            client["timestamp"].as_u64().unwrap(),
            server["timestamp"].as_u64().unwrap(),
        );
        assert!(cs <= sr);
        let (cd, sd) = (
            client["duration"].as_u64().unwrap(),
            server["duration"].as_u64().unwrap(),
        );
        assert!(sr + sd <= cs + cd);
    }
}

#[test]
fn a_closed_pipe_ends_quietly() {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["replay", "broadcast-calm"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("faultline runs");
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout); // as `| head -1` does
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
}

#[test]
fn a_bad_output_path_is_refused_before_the_run() {
    let output = faultline(&["run", "broadcast", "--trace", "no-such-folder/t.jsonl"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--trace no-such-folder/t.jsonl: no such folder no-such-folder"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).is_empty(), "the run did not happen");
    let dir = temp("a-folder");
    std::fs::create_dir_all(&dir).unwrap();
    let output = faultline(&["run", "broadcast", "--history", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("not a file path"),
        "{}",
        stderr(&output)
    );
}

#[cfg(unix)]
#[test]
fn outputs_write_through_a_symlink_and_name_what_they_wrote() {
    let target = temp("history-target.jsonl");
    let link = temp("history-link.jsonl");
    let _ = std::fs::remove_file(&target);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let output = faultline(&["run", "broadcast", "--history", link.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "still a link"
    );
    assert!(
        std::fs::read_to_string(&target).unwrap().lines().count() > 10,
        "written through"
    );
    assert!(stderr(&output).contains(&format!("wrote history to {}", link.display())));
}

#[test]
fn replay_takes_the_scenario_as_run_does_and_exits_1_on_findings() {
    let clean = faultline(&["replay", "ping-pong", "--seed", "1"]);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    let flagged = faultline(&["replay", "--scenario", "ping-pong", "--seed", "1"]);
    assert_eq!(
        stdout(&flagged),
        stdout(&clean),
        "the flag form still works"
    );
    let failing = faultline(&[
        "replay",
        "ping-pong-lossy",
        "--seed",
        "1",
        "--bug",
        "ping-pong.no-retransmit",
    ]);
    assert_eq!(failing.status.code(), Some(1), "{}", stderr(&failing));
}

#[test]
fn a_misspelt_scenario_gets_a_suggestion_and_paths_are_quoted() {
    assert_bad_input(&["run", "brodcast"], "did you mean `broadcast`?");
    let dir = temp("with space");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("my scenario.toml");
    std::fs::write(&path, sim_core::scenario::builtin("ping-pong").unwrap()).unwrap();
    let report = json(&faultline(&["run", path.to_str().unwrap(), "--json"]));
    let reproduce = report["reproduce"].as_str().unwrap();
    assert!(
        reproduce.starts_with(&format!("faultline run '{}' --seed", path.display())),
        "{reproduce}"
    );
}

/// Runs every command of the README's tour, in its order, in a fresh folder (its files
/// feed later commands): each must do what the tour says, a clean exit, or 1 where it
/// switches on a planted bug. The tour is what a new user types first.
#[test]
fn every_command_of_the_readme_tour_works() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let tour: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != "## A tour")
        .skip_while(|l| *l != "```sh")
        .skip(1)
        .take_while(|l| *l != "```")
        .collect();
    assert!(tour.len() > 15, "the tour: {tour:?}");
    let folder = temp("tour");
    std::fs::create_dir_all(&folder).unwrap();
    for line in tour {
        let command = line.split('#').next().unwrap();
        let expected = if command.contains("--bug") { 1 } else { 0 };
        for part in command.split("&&") {
            let words: Vec<&str> = part.split_whitespace().collect();
            assert_eq!(words.first(), Some(&"faultline"), "{line}");
            let output = Command::new(env!("CARGO_BIN_EXE_faultline"))
                .args(&words[1..])
                .current_dir(&folder)
                .env("NO_COLOR", "1")
                .output()
                .unwrap();
            assert_eq!(
                output.status.code(),
                Some(expected),
                "`{line}`: {}{}",
                stdout(&output),
                stderr(&output)
            );
        }
    }
}

#[test]
fn check_says_when_a_file_is_not_a_history() {
    let empty = temp("empty-history.jsonl");
    std::fs::write(&empty, "\n\n").unwrap();
    assert_bad_input(
        &["check", "--model", "register", empty.to_str().unwrap()],
        "empty-history.jsonl:1:1: empty history: no operations",
    );
    let trace = temp("a-trace.jsonl");
    let output = faultline(&["run", "broadcast-calm", "--trace", trace.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    let output = faultline(&["check", "--model", "kv", trace.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains("this is a trace (`faultline run --trace`), not a history"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "said once: {text}");
    // A file of many bad lines: the list stops, and says so.
    let bad = temp("bad-history.jsonl");
    std::fs::write(&bad, "{\"process\": -1}\n".repeat(500)).unwrap();
    let output = faultline(&["check", "--model", "kv", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("stopped after 100 problems"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn swarm_stops_early_at_max_findings_and_says_so() {
    let report = json(&faultline(&[
        "swarm",
        "ping-pong-lossy",
        "--seeds",
        "100000",
        "--bug",
        "ping-pong.no-retransmit",
        "--max-findings",
        "3",
        "--json",
    ]));
    assert_eq!(report["stopped_early"], true);
    let seeds = report["seeds"].as_u64().unwrap();
    assert!(seeds < 1_000, "stopped after a small chunk: {seeds}");
    assert!(report["failing_seeds"].as_u64().unwrap() >= 3);
    // Without the cap the report has no such field: the contract is unchanged.
    let full = json(&faultline(&[
        "swarm",
        "ping-pong",
        "--seeds",
        "10",
        "--json",
    ]));
    assert!(full.get("stopped_early").is_none());
    assert_eq!(full["seeds"], 10);
}

#[test]
fn replay_filters_the_log_and_findings_name_the_command_that_reads_them() {
    let run = stdout(&faultline(&[
        "run",
        "ping-pong-lossy",
        "--seed",
        "1",
        "--bug",
        "ping-pong.no-retransmit",
    ]));
    let read = run
        .lines()
        .find_map(|line| line.strip_prefix("read it: "))
        .expect("a `read it:` line");
    let command: Vec<&str> = read.split_whitespace().skip(1).collect();
    let log = stdout(&faultline(&command));
    assert!(log.starts_with("nodes: n0 ping-pong.client"), "{log}");
    let events: Vec<&str> = log.lines().filter(|l| l.starts_with('#')).collect();
    assert!(events.iter().any(|l| l.contains("finding")), "{log}");
    assert!(
        events.len() <= 21,
        "at most --context 10 either side: {}",
        events.len()
    );
    let sends = stdout(&faultline(&[
        "replay",
        "registry-basic",
        "--node",
        "4",
        "--kind",
        "send",
        "--from",
        "1s",
        "--to",
        "1.1s",
    ]));
    let lines: Vec<&str> = sends.lines().filter(|l| l.starts_with('#')).collect();
    assert!(!lines.is_empty());
    for line in lines {
        assert!(
            line.contains(" send ") && (line.contains("n4") || line.contains("-> 4")),
            "{line}"
        );
    }
    assert_bad_input(
        &["replay", "registry-basic", "--kind", "sendd"],
        "--kind sendd: not an event kind",
    );
    assert_bad_input(
        &["replay", "registry-basic", "--from", "soon"],
        "--from soon",
    );
}

#[test]
fn the_contracts_document_every_command_and_flag() {
    let contracts =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CONTRACTS.md")).unwrap();
    let help = stdout(&faultline(&["--help"]));
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 7, "{commands:?}");
    for command in commands {
        assert!(
            contracts.contains(&format!("`faultline {command}")),
            "`faultline {command}` is not in docs/CONTRACTS.md"
        );
        let help = stdout(&faultline(&[command, "--help"]));
        for flag in help
            .split_whitespace()
            .filter(|w| w.starts_with("--") && w.len() > 2)
        {
            let end = flag
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(flag.len());
            let flag = &flag[..end];
            if flag == "--help" || flag == "--version" {
                continue;
            }
            assert!(
                contracts.contains(flag),
                "`faultline {command} {flag}` is not in docs/CONTRACTS.md"
            );
        }
    }
}

#[test]
fn a_report_folder_holds_what_a_bug_report_needs() {
    let dir = temp("report");
    let _ = std::fs::remove_dir_all(&dir);
    let output = faultline(&[
        "run",
        "ping-pong-lossy",
        "--seed",
        "1",
        "--bug",
        "ping-pong.no-retransmit",
        "--report",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let summary = read("summary.txt");
    assert!(summary.contains("FINDING ping-pong.progress"), "{summary}");
    assert!(
        summary.contains("read it: faultline replay ping-pong-lossy"),
        "{summary}"
    );
    assert!(!summary.contains('\u{1b}'), "no colour codes in files");
    assert!(read("events.log").starts_with("nodes: n0 ping-pong.client"));
    let svg = read("space-time.svg");
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
    assert!(
        svg.contains("n2 ping-pong.server") && svg.contains("ping-pong.progress"),
        "{svg}"
    );
    assert!(std::fs::metadata(dir.join("history.jsonl")).is_ok());
    assert_bad_input(
        &["run", "ping-pong", "--report", "no-such-folder/inner"],
        "--report no-such-folder/inner: no such folder",
    );
}

#[test]
fn run_ends_with_a_timeline_of_faults_and_findings() {
    let text = stdout(&faultline(&["run", "registry-partition-minority"]));
    let timeline = text
        .split("timeline (")
        .nth(1)
        .unwrap_or_else(|| panic!("no timeline: {text}"));
    assert!(
        timeline.contains(" fault    partition:") && timeline.contains("  (nemesis)"),
        "{timeline}"
    );
    assert!(timeline.contains("fault phase over"), "{timeline}");
    let failing = stdout(&faultline(&[
        "run",
        "ping-pong-lossy",
        "--seed",
        "1",
        "--bug",
        "ping-pong.no-retransmit",
    ]));
    assert!(failing.contains("finding  ping-pong.progress"), "{failing}");
    let json = stdout(&faultline(&["run", "ping-pong", "--json"]));
    assert!(!json.contains("timeline"), "the JSON report is unchanged");
}

/// The Indexed Job `swarm --k8s-job` prints, checked as Kubernetes would read it, and run
/// here pod by pod (same command, same JOB_COMPLETION_INDEX) into reports whose merge is
/// the unsharded swarm's report.
#[test]
fn a_k8s_indexed_job_runs_the_swarm_in_shards_that_merge_into_the_whole() {
    let job = json(&faultline(&[
        "swarm",
        "broadcast",
        "--seeds",
        "24",
        "--bug",
        "broadcast.no-retransmit",
        "--k8s-job",
        "--shards",
        "3",
        "--image",
        "registry.example/faultline:test",
    ]));
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(
        (spec["completions"].as_u64(), spec["parallelism"].as_u64()),
        (Some(3), Some(3))
    );
    assert!(spec["activeDeadlineSeconds"].as_u64().unwrap() >= 300);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "registry.example/faultline:test");
    assert_eq!(container["resources"]["requests"]["cpu"], "2");
    let command: Vec<String> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    assert_eq!(command[0], "faultline");
    let mut shards = Vec::new();
    for index in 0..3 {
        let output = Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(&command[1..])
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            output.status.code().is_some_and(|c| c <= 1),
            "{}",
            stderr(&output)
        );
        let path = temp(&format!("pod-{index}.json"));
        std::fs::write(&path, &output.stdout).unwrap();
        shards.push(path.to_str().unwrap().to_string());
    }
    let mut merge = vec!["swarm", "merge", "--json"];
    merge.extend(shards.iter().map(String::as_str));
    let merged = json(&faultline(&merge));
    let whole = json(&faultline(&[
        "swarm",
        "broadcast",
        "--seeds",
        "24",
        "--bug",
        "broadcast.no-retransmit",
        "--json",
    ]));
    for field in [
        "seeds",
        "failing_seeds",
        "events",
        "findings",
        "scenario_hash",
        "bugs",
    ] {
        assert_eq!(merged[field], whole[field], "{field}");
    }
    // Outside a pod the index is missing: a clear error, not shard 0.
    assert_bad_input(
        &[
            "swarm",
            "broadcast",
            "--seeds",
            "4",
            "--shard-from-env",
            "2",
        ],
        "JOB_COMPLETION_INDEX is not set",
    );
    // Where kubectl is installed, it reads the manifest as a Kubernetes resource (offline).
    let folder = temp("kustomize");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("job.json"), serde_json::to_vec(&job).unwrap()).unwrap();
    std::fs::write(
        folder.join("kustomization.yaml"),
        "resources:\n- job.json\n",
    )
    .unwrap();
    if let Ok(output) = Command::new("kubectl")
        .arg("kustomize")
        .arg(&folder)
        .output()
    {
        let yaml = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            yaml.contains("kind: Job") && yaml.contains("completionMode: Indexed"),
            "{yaml}"
        );
    }
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_swarm_with_the_report_of_the_seeds_done() {
    let child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        // A hundred million seeds: streamed, not collected (which took 800 MB up front).
        .args(["swarm", "rpc-nemesis", "--seeds", "100000000", "--json"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["interrupted"], true);
    let seeds = report["seeds"].as_u64().unwrap();
    assert!(seeds > 0 && seeds < 100_000, "{seeds} seeds");
}

#[cfg(unix)]
#[test]
fn an_output_fifo_is_written_through_not_replaced() {
    let fifo = temp("history.fifo");
    let _ = std::fs::remove_file(&fifo);
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let output = faultline(&["run", "broadcast-calm", "--history", fifo.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let read = reader.join().unwrap();
    assert!(
        read.lines().count() > 10,
        "the reader got the history: {read}"
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "still a FIFO"
    );
}

#[test]
fn bank_histories_are_checked_as_jepsen_checks_them() {
    // A run's own history passes; the same with a planted shard that forgets its
    // prepared branches fails, naming the reads whose total is wrong.
    let history = temp("bank-history.jsonl");
    let path = history.to_str().unwrap();
    let run = faultline(&["run", "bank-shard-crash", "--seed", "3", "--history", path]);
    assert_eq!(run.status.code(), Some(0), "{}", stdout(&run));
    let output = faultline(&["check", "--model", "bank", path]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(
        stdout(&output).contains(": valid (bank: "),
        "{}",
        stdout(&output)
    );
    let bad = temp("bank-bad.jsonl");
    let bad = bad.to_str().unwrap();
    let bug = "xa.vote-before-persist";
    let run = faultline(&[
        "run",
        "bank-shard-crash",
        "--seed",
        "3",
        "--bug",
        bug,
        "--history",
        bad,
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", stdout(&run));
    assert!(
        stdout(&run).contains("bank.conservation"),
        "{}",
        stdout(&run)
    );
    let output = faultline(&["check", "--model", "bank", path, bad, "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let reports: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports[0]["verdict"], "valid");
    assert_eq!(reports[1]["verdict"], "invalid");
    let first = &reports[1]["failing"][0];
    assert!(first["line"].as_u64().unwrap() > 0);
    assert!(
        first["result"]
            .as_str()
            .unwrap()
            .starts_with("wrong-total: "),
        "{first}"
    );
    // A total given on the command line overrides the first read's.
    let output = faultline(&["check", "--model", "bank", "--total", "801", path]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    // The other models refuse transfers, and --total, with a clear error.
    assert_bad_input(&["check", "--model", "kv", path], "use --model bank");
    assert_bad_input(
        &["check", "--model", "register", "--total", "5", path],
        "--total is the bank model's",
    );
}

#[test]
fn a_run_summary_sets_availability_beside_consistency() {
    let output = faultline(&["run", "cap-partition", "--seed", "1"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let text = stdout(&output);
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line: {text}"))
            .to_string()
    };
    let bank = line("cap bank: ");
    let shop = line("cap shop: ");
    assert!(
        bank.contains("| oldest branch in doubt (ms): peak"),
        "{bank}"
    );
    assert!(!bank.contains("100.0% of"), "{bank}");
    assert!(
        shop.starts_with("cap shop: 100.0% of 800 requests served"),
        "{shop}"
    );
    assert!(shop.contains("orders not yet applied: peak"), "{shop}");
    assert!(shop.ends_with(", 0 at the end"), "{shop}");
}

/// A definite "not linearizable" is never hidden behind an unknown or malformed file:
/// exit 1, and the files not checked to the end are named.
#[test]
fn a_failing_file_beside_a_malformed_one_exits_1() {
    let stale = temp("stale-beside.jsonl");
    std::fs::write(
        &stale,
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
         {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n\
         {\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
         {\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":2}\n",
    )
    .unwrap();
    let broken = temp("broken-beside.jsonl");
    std::fs::write(&broken, "{\"process\":0,\"type\":\"wat\"}\n").unwrap();
    let (stale, broken) = (stale.to_str().unwrap(), broken.to_str().unwrap());
    let output = faultline(&["check", "--model", "register", stale, broken]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("not checked to the end") && stderr(&output).contains(broken),
        "{}",
        stderr(&output)
    );
    // Alone, the malformed file is still exit 2.
    assert_eq!(
        faultline(&["check", "--model", "register", broken])
            .status
            .code(),
        Some(2)
    );
}

/// Values compare as the numbers they denote, exactly: the Java and JavaScript spellings
/// of one number agree, `1` and `1.00` agree, `-0` is `0`, and integers beyond 64 bits
/// stay apart.
#[test]
fn history_numbers_compare_exactly() {
    let history = |written: &str, read: &str| {
        let path = temp(&format!("numbers-{written}-{read}.jsonl"));
        std::fs::write(
            &path,
            format!(
                "{{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":{written}}}\n\
                 {{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":{written}}}\n\
                 {{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}}\n\
                 {{\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":{read}}}\n"
            ),
        )
        .unwrap();
        path
    };
    for (written, read, expected) in [
        ("6e23", "6.0E23", 0),
        ("3e-22", "3.0E-22", 0),
        ("1", "1.00", 0),
        ("1.0", "1.00", 0),
        ("-0", "0", 0),
        ("18446744073709551616", "18446744073709551617", 1),
        ("0.1", "0.1000000000000000055511151231257827", 1),
    ] {
        let path = history(written, read);
        let output = faultline(&["check", "--model", "register", path.to_str().unwrap()]);
        assert_eq!(
            output.status.code(),
            Some(expected),
            "write {written}, read {read}: {}",
            stdout(&output)
        );
    }
    // The report shows a number beyond 64 bits bare, as written: quoted, it would read
    // like the string of the same digits, which is another value.
    let path = history("18446744073709551616", "18446744073709551617");
    let output = faultline(&["check", "--model", "register", path.to_str().unwrap()]);
    assert!(
        stdout(&output).contains("read null -> ok 18446744073709551617\n"),
        "{}",
        stdout(&output)
    );
    let path = history("\"18446744073709551617\"", "18446744073709551617");
    let output = faultline(&["check", "--model", "register", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "a string is not a number");
    assert!(
        stdout(&output).contains("read null -> ok 18446744073709551617\n"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_planted_bug_goes_from_swarm_to_shrunk_file_to_browser_address() {
    let bug = "zab.commit-without-quorum";
    let swarm = faultline(&[
        "swarm",
        "registry-partition-minority",
        "--seeds",
        "40",
        "--bug",
        bug,
        "--json",
    ]);
    assert_eq!(swarm.status.code(), Some(1));
    let report = json(&swarm);
    let seed = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["invariant"] == "zab.agreement")
        .map(|f| f["seed"].as_u64().unwrap())
        .min()
        .expect("the swarm finds the bug");
    let file = temp("shrunk.toml");
    let seed_text = seed.to_string();
    let file_text = file.to_str().unwrap();
    let args = [
        "shrink",
        "registry-partition-minority",
        "--seed",
        &seed_text,
        "--bug",
        bug,
        "--out",
        file_text,
    ];
    let shrunk = faultline(&args);
    assert_eq!(shrunk.status.code(), Some(0), "{}", stderr(&shrunk));
    let text = stdout(&shrunk);
    assert!(text.contains("fails zab.agreement"), "{text}");
    assert!(
        text.contains(&format!("replay: faultline run {file_text}")),
        "{text}"
    );
    let url = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("watch:  "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(url.starts_with("http://127.0.0.1:8080/?seed="), "{url}");
    assert!(
        url.contains("&toml=name%20%3D%20") && url.contains("&event="),
        "{url}"
    );
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let report = json(&faultline(&with_json));
    let (before, after) = (&report["before"], &report["after"]);
    assert!(
        after["faults"].as_u64() < before["faults"].as_u64(),
        "{report}"
    );
    assert!(
        after["events"].as_u64() < before["events"].as_u64(),
        "{report}"
    );
    assert_eq!(report["invariant"], "zab.agreement");
    // The file alone reproduces the failure: its seed and bug are in it.
    let replay = faultline(&["run", file_text, "--json"]);
    assert_eq!(replay.status.code(), Some(1));
    let replayed = json(&replay);
    assert_eq!(replayed["events"], after["events"]);
    assert!(replayed["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["invariant"] == "zab.agreement"));
}

#[test]
fn shrink_refuses_a_clean_run_and_bad_input() {
    let clean = faultline(&[
        "shrink",
        "broker-topics",
        "--seed",
        "0",
        "--out",
        temp("clean.toml").to_str().unwrap(),
    ]);
    assert_eq!(clean.status.code(), Some(1), "{}", stderr(&clean));
    assert!(stdout(&clean).contains("did not fail: nothing to shrink"));
    assert!(!temp("clean.toml").exists(), "nothing written");
    assert_bad_input(
        &[
            "shrink",
            "broker-topics",
            "--seed",
            "0",
            "--budget",
            "forever",
        ],
        "expected a number of runs (e.g. 300) or a time",
    );
    assert_bad_input(
        &[
            "shrink",
            "broker-topics",
            "--seed",
            "0",
            "--invariant",
            "broker.no-duplicate",
        ],
        "did you mean `broker.no-duplicates`?",
    );
    assert_bad_input(
        &[
            "shrink",
            "broker-topics",
            "--seed",
            "0",
            "--out",
            "no-such-folder/x.toml",
        ],
        "no such folder",
    );
}

#[test]
fn a_swarm_counts_the_seeds_that_reached_each_rare_path_and_names_the_others() {
    let report = json(&faultline(&[
        "swarm",
        "registry-tour",
        "--seeds",
        "3",
        "--json",
    ]));
    let marks = report["marks"].as_array().unwrap();
    let count = |name: &str| {
        marks
            .iter()
            .find(|m| m["mark"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {marks:?}"))["seeds"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count("zab.sync-diff"), 3, "every seed syncs a follower");
    assert_eq!(
        count("registry.read-only-session"),
        0,
        "read-only mode is off"
    );
    assert!(marks
        .iter()
        .all(|m| !m["hint"].as_str().unwrap().is_empty()));
    let text = stdout(&faultline(&["swarm", "registry-tour", "--seeds", "3"]));
    assert!(
        text.contains("rare paths (seeds that reached each, of 3):"),
        "{text}"
    );
    assert!(text.contains("NOT REACHED by any seed"), "{text}");
    assert!(
        text.contains("registry.read-only-session: a cut-off server accepted a read-only session\n      to reach it: read_only = true"),
        "{text}"
    );
    // A scenario whose rare paths all show up says so and names none.
    let calm = stdout(&faultline(&["swarm", "ping-pong-lossy", "--seeds", "2"]));
    assert!(calm.contains("every rare path was reached"), "{calm}");
    assert!(!calm.contains("NOT REACHED"), "{calm}");
}

#[test]
fn a_run_exports_to_perfetto_and_shiviz() {
    let perfetto = temp("run.perfetto.json");
    let shiviz = temp("run.shiviz.log");
    let output = faultline(&[
        "run",
        "registry-tour",
        "--perfetto",
        perfetto.to_str().unwrap(),
        "--shiviz",
        shiviz.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("ui.perfetto.dev"));
    let document: Value =
        serde_json::from_str(&std::fs::read_to_string(&perfetto).unwrap()).unwrap();
    let events = document["traceEvents"].as_array().unwrap();
    assert!(events.iter().any(|e| e["ph"] == "s") && events.iter().any(|e| e["ph"] == "f"));
    assert!(events
        .iter()
        .any(|e| e["ph"] == "M" && e["args"]["name"] == "n0 server"));
    let log = std::fs::read_to_string(&shiviz).unwrap();
    let mut lines = log.lines();
    assert!(lines.next().unwrap().starts_with("(?<host>"));
    assert_eq!(lines.next(), Some(""));
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("n0 {\"n0\":1} 0.000000s boot"),
        "{log:.300}"
    );
    assert_bad_input(
        &["run", "ping-pong", "--perfetto", "no-such-folder/x.json"],
        "no such folder",
    );
}

/// The checker's hard small cases: concurrent writes then reads, and concurrent appends
/// then a read. The search alone went "unknown" on each after seconds (millions of
/// cached states); the zones and the prefix cut decide them within the default budget.
#[test]
fn the_hard_small_histories_are_decided_within_the_default_budget() {
    let line = |p: u64, t: &str, f: &str, value: Value, time: u64| {
        serde_json::json!({"process": p, "type": t, "f": f, "key": "x", "value": value, "time": time})
            .to_string()
    };
    let mut writes: Vec<String> = (0..20)
        .map(|p| line(p, "invoke", "write", Value::from(p.to_string()), 0))
        .collect();
    writes.extend((0..20).map(|p| line(p, "ok", "write", Value::from(p.to_string()), 100)));
    let mut two_reads = writes.clone();
    two_reads.push(line(99, "invoke", "read", Value::Null, 200));
    two_reads.push(line(99, "ok", "read", Value::from("7"), 300));
    two_reads.push(line(99, "invoke", "read", Value::Null, 400));
    two_reads.push(line(99, "ok", "read", Value::from("3"), 500));
    let mut appends: Vec<String> = (0..10)
        .map(|p| line(p, "invoke", "append", Value::from(format!("{p},")), 0))
        .collect();
    appends.extend((0..10).map(|p| line(p, "ok", "append", Value::from(format!("{p},")), 100)));
    appends.push(line(99, "invoke", "read", Value::Null, 200));
    let order = |ids: &[u64]| -> String { ids.iter().map(|p| format!("{p},")).collect() };
    let mut all = appends.clone();
    all.push(line(
        99,
        "ok",
        "read",
        Value::from(order(&[3, 1, 4, 0, 5, 9, 2, 6, 8, 7])),
        300,
    ));
    let mut missing = appends;
    missing.push(line(
        99,
        "ok",
        "read",
        Value::from(order(&[3, 1, 4, 0, 5, 9, 2, 6, 8])),
        300,
    ));
    for (name, lines, verdict) in [
        ("two-reads.jsonl", two_reads, "not-linearizable"),
        ("ten-appends.jsonl", all, "linearizable"),
        ("ten-appends-one-lost.jsonl", missing, "not-linearizable"),
    ] {
        let path = temp(name);
        std::fs::write(&path, lines.join("\n")).unwrap();
        let output = faultline(&["check", "--model", "kv", path.to_str().unwrap(), "--json"]);
        let report = json(&output);
        assert_eq!(report["verdict"], verdict, "{name}: {report}");
    }
    assert_bad_input(
        &["check", "--model", "bank", "x.jsonl", "--budget", "2"],
        "the bank model has none",
    );
    assert_bad_input(
        &["check", "--model", "kv", "x.jsonl", "--budget", "0"],
        "0 is not in 1..=1000",
    );
}
