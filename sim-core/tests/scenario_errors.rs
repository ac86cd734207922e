//! Scenario validation reports every problem at once, each with file:line:column, what
//! was expected, and a suggestion for misspelt names. The texts are pinned: changing one
//! is a deliberate act, reviewed in the diff.

use sim_core::scenario::parse;

fn errors(text: &str) -> String {
    let errors = parse("s.toml", text).expect_err("the scenario has mistakes");
    errors.iter().map(|e| format!("{e}\n")).collect()
}

const MINIMAL: &str = r#"
name = "x"
description = "y"
protocol = "broadcast"
duration = "1s"
[[nodes]]
kind = "peer"
count = 3
"#;

#[test]
fn every_mistake_in_a_file_is_reported_in_one_pass() {
    let text = include_str!("testdata/mistakes.toml");
    let expected = "\
s.toml:4:12: `duration`: `5 seconds`: expected a duration such as \"250ms\", \"1.5s\" or \"10us\" (units: ns, us, ms, s, m)
s.toml:5:8: `seed` must be between 0 and 9223372036854775807, found -3
s.toml:9:9: `count` must be between 1 and 100000, found 10000000
s.toml:12:8: unknown node kind for protocol `broadcast`: `server`; expected one of: peer (another protocol's kind is written `protocol.kind`, e.g. `registry.server`) (did you mean `ping-pong.server`?)
s.toml:16:1: unknown key `latncy` in [network]; expected one of: latency, fifo, loss, duplicate, reorder, reorder_window, links (did you mean `latency`?)
s.toml:17:8: `loss` must be a probability between 0 and 1
s.toml:22:8: `node` must be between 0 and 1, found 99
s.toml:26:10: unknown fault action: `partiton`; expected one of: crash, restart, pause, resume, partition, partition-one-way, heal, clock-skew, disk-fault (did you mean `partition`?)
s.toml:29:20: unknown nemesis fault: `meteor`; expected one of: crash, partition, partition-one-way, pause, clock-skew
s.toml:31:1: unknown key `bugs` in [nemesis]; expected one of: faults, interval_min, interval_max, fault_min, fault_max, skew_max, targets (keys after a [table] header belong to that table: move `bugs` above the first header)
s.toml:34:1: unknown key `mesages` in [params] of protocol `broadcast`; expected one of: messages, interval, retransmit (did you mean `messages`?)
";
    assert_eq!(errors(text), expected);
}

#[test]
fn a_file_that_is_not_toml_says_where_the_syntax_breaks() {
    let text = "name = \"x\"\ndescription = \n";
    let report = errors(text);
    assert!(report.starts_with("s.toml:2:"), "{report}");
    assert!(report.contains("not valid TOML"), "{report}");
}

#[test]
fn missing_required_keys_are_named() {
    let report = errors("name = \"x\"\n");
    assert!(report.contains("missing key `description`"), "{report}");
    assert!(report.contains("missing key `protocol`"), "{report}");
    assert!(report.contains("missing key `duration`"), "{report}");
    assert!(report.contains("missing key `nodes`"), "{report}");
}

#[test]
fn an_unknown_protocol_is_suggested_a_known_one() {
    let report = errors(&MINIMAL.replace("\"broadcast\"", "\"brodcast\""));
    assert!(report.contains("unknown protocol: `brodcast`"), "{report}");
    assert!(report.contains("(did you mean `broadcast`?)"), "{report}");
}

#[test]
fn a_bug_of_a_component_no_node_hosts_is_refused() {
    let mut text = MINIMAL.replace("\"broadcast\"", "\"ping-pong\"");
    text = text.replace(
        "kind = \"peer\"\ncount = 3",
        "kind = \"client\"\n[[nodes]]\nkind = \"server\"",
    );
    let text = format!("bugs = [\"broadcast.no-retransmit\"]\n{text}");
    let report = errors(&text);
    assert_eq!(report, "s.toml:1:9: bug `broadcast.no-retransmit` lives in component `broadcast`, which no node of this scenario hosts (its nodes host: ping-pong)\n");
}

/// A broadcast scenario with three registry servers beside its peers.
const MIXED: &str = r#"
name = "x"
description = "y"
protocol = "broadcast"
duration = "1s"
[[nodes]]
kind = "peer"
count = 3
[[nodes]]
kind = "registry.server"
count = 3
"#;

#[test]
fn another_protocols_kinds_are_written_protocol_dot_kind() {
    let scenario = parse("s.toml", MIXED).expect("valid");
    assert_eq!(scenario.protocols(), ["broadcast", "registry"]);
    assert_eq!(scenario.components(), ["broadcast", "zab", "registry"]);
    let report = errors(&MIXED.replace("registry.server", "registry.sever"));
    assert!(
        report.starts_with(
            "s.toml:10:8: unknown node kind for protocol `broadcast`: `registry.sever`"
        ),
        "{report}"
    );
}

#[test]
fn a_bug_of_a_hosted_component_of_another_protocol_is_accepted() {
    let text = format!("bugs = [\"zab.ack-before-persist\"]\n{MIXED}");
    let scenario = parse("s.toml", &text).expect("zab is hosted by the registry servers");
    assert_eq!(scenario.bugs, ["zab.ack-before-persist"]);
}

#[test]
fn another_protocols_parameters_go_in_a_table_named_after_it() {
    let text = format!("{MIXED}[params]\nmessages = 2\n[params.registry]\ntick = \"10ms\"\n");
    let scenario = parse("s.toml", &text).expect("valid");
    assert_eq!(scenario.params["registry"].number("tick"), 10_000_000);
    assert_eq!(scenario.params["broadcast"].number("messages"), 2);
    let report = errors(&format!("{MIXED}[params.registry]\ntik = \"10ms\"\n"));
    assert_eq!(
        report,
        "s.toml:13:1: unknown key `tik` in [params.registry] of protocol `registry`; expected one of: tick, init_limit, sync_limit, session_timeout, read_only, linearizable_reads, keys, ops, think, hold, snapshot_every, log_retain, interface, stall (did you mean `tick`?)\n"
    );
    let report = errors(&format!("{MINIMAL}[params.registry]\ntick = \"10ms\"\n"));
    assert!(
        report.contains("unknown key `registry` in [params] of protocol `broadcast`"),
        "a protocol with no nodes here takes no parameters: {report}"
    );
}

#[test]
fn each_protocol_present_checks_its_own_nodes() {
    let text = MIXED.replace("count = 3\n\"#", "count = 3\n").replace(
        "kind = \"registry.server\"\ncount = 3",
        "kind = \"registry.locker\"\ncount = 1\n[[nodes]]\nkind = \"registry.server\"\ncount = 1",
    );
    let report = errors(&text);
    assert!(
        report.contains("lockers write to exactly one resource node, found 0"),
        "{report}"
    );
}

#[test]
fn faults_must_fall_inside_the_fault_phase() {
    let text = format!("{MINIMAL}[[faults]]\nat = \"2s\"\naction = \"heal\"\n");
    let report = errors(&text);
    assert_eq!(
        report,
        "s.toml:10:6: `at` must be between 0ns and 999.999999ms, found \"2s\"\n"
    );
}

#[test]
fn partition_groups_may_not_overlap() {
    let text = format!(
        "{MINIMAL}[[faults]]\nat = \"1ms\"\naction = \"partition\"\ngroups = [[0, 1], [1, 2]]\n"
    );
    assert_eq!(
        errors(&text),
        "s.toml:12:20: node 1 is in two partition groups\n"
    );
}

#[test]
fn ping_pong_needs_a_server_per_client() {
    let text = MINIMAL
        .replace("\"broadcast\"", "\"ping-pong\"")
        .replace("\"peer\"", "\"client\"");
    let report = errors(&text);
    assert!(
        report.contains("needs as many servers as clients (found 3 clients and 0 servers)"),
        "{report}"
    );
}

#[test]
fn a_minimal_scenario_is_valid() {
    let scenario = parse("s.toml", MINIMAL).expect("valid");
    assert_eq!(scenario.node_count(), 3);
    assert_eq!(scenario.quiet_ns, 5_000_000_000, "the default quiet phase");
}

#[test]
fn connection_parameters_are_checked_against_each_other() {
    let text = format!("{MINIMAL}[connections]\ntimeout = \"5ms\"\nwindow = 0\n");
    let report = errors(&text);
    assert_eq!(
        report,
        "s.toml:10:11: [connections] `timeout` 5ms leaves no time to retransmit after rto_min 20ms\n\
         s.toml:11:10: `window` must be between 1 and 4096, found 0\n"
    );
    let text = format!("{MINIMAL}[connections]\nretries = 3\n");
    assert!(errors(&text).contains("unknown key `retries` in [connections]"));
    let text = format!("{MINIMAL}[connections]\nrto_min = \"50ms\"\ntimeout = \"10s\"\n");
    let scenario = parse("s.toml", &text).expect("valid");
    assert_eq!(scenario.conn.rto_min_ns, 50_000_000);
    assert_eq!(scenario.conn.timeout_ns, 10_000_000_000);
}

#[test]
fn nemesis_targets_must_be_kinds_of_the_scenario() {
    let text = format!("{MINIMAL}[nemesis]\ntargets = [\"per\"]\n");
    assert_eq!(
        errors(&text),
        "s.toml:10:12: unknown nemesis target kind: `per`; expected one of: peer (did you mean `peer`?)\n"
    );
    let empty = format!("{MINIMAL}[nemesis]\ntargets = []\n");
    assert!(errors(&empty).contains("`targets` must name at least one node kind"));
    let fine = format!("{MINIMAL}[nemesis]\ntargets = [\"peer\"]\n");
    assert_eq!(
        parse("s.toml", &fine).unwrap().nemesis.unwrap().targets,
        ["peer"]
    );
}
