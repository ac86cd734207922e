//! The exports follow their formats' rules: a Chrome trace-event file has the required
//! fields, a named track for every thread it uses and every flow finished once after it
//! started; a ShiViz log starts with its expression and an empty delimiter line, and its
//! vector clocks are well formed (each host's own entry counts its events one by one,
//! never goes back) and respect happens-before (a delivery's clock is above its send's).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sim_core::engine::run_to_end;
use sim_core::export::{perfetto, shiviz, SHIVIZ_REGEX};
use sim_core::scenario::{builtin, parse, RunOptions};
use sim_core::trace::{EventKind, TraceEvent};

/// A run's retained events and its node kinds.
fn run(name: &str, seed: u64) -> (Vec<TraceEvent>, Vec<String>) {
    let scenario = parse(name, builtin(name).unwrap()).unwrap();
    let options = RunOptions {
        seed: Some(seed),
        retain_trace: true,
        ..Default::default()
    };
    let mut run = scenario.build(&options);
    run_to_end(run.as_mut());
    (run.trace().retained().to_vec(), scenario.qualified_kinds())
}

/// Scenarios with duplicated messages, drops, crashes, partitions and findings.
const RUNS: &[(&str, u64)] = &[
    ("registry-tour", 1),
    ("registry-duplicates", 2),
    ("broadcast", 3),
    ("broker-crash-durable", 1),
];

#[test]
fn a_perfetto_file_has_named_tracks_and_every_flow_finished_once_after_its_start() {
    for (name, seed) in RUNS {
        let (events, kinds) = run(name, *seed);
        let document: Value = serde_json::from_str(&perfetto(&events, &kinds, name)).unwrap();
        assert_eq!(document["displayTimeUnit"], "ns");
        let trace = document["traceEvents"].as_array().unwrap();
        let mut named = BTreeSet::new();
        let mut starts: BTreeMap<u64, (f64, String)> = BTreeMap::new();
        let mut finished = BTreeSet::new();
        let mut used = BTreeSet::new();
        for event in trace {
            let ph = event["ph"]
                .as_str()
                .unwrap_or_else(|| panic!("no ph: {event}"));
            assert!(event["pid"].is_u64() && event["tid"].is_u64(), "{event}");
            assert!(event["name"].is_string(), "{event}");
            let tid = event["tid"].as_u64().unwrap();
            if ph == "M" {
                if event["name"] == "thread_name" {
                    named.insert(tid);
                }
                continue;
            }
            used.insert(tid);
            let ts = event["ts"]
                .as_f64()
                .unwrap_or_else(|| panic!("no ts: {event}"));
            match ph {
                "X" => assert_eq!(event["dur"], 0, "{event}"),
                "i" => assert!(["t", "g"].contains(&event["s"].as_str().unwrap())),
                "s" => {
                    let id = event["id"].as_u64().unwrap();
                    let cat = event["cat"].as_str().unwrap().to_string();
                    assert!(
                        starts.insert(id, (ts, cat)).is_none(),
                        "flow {id} starts twice"
                    );
                }
                "f" => {
                    let id = event["id"].as_u64().unwrap();
                    let (start, cat) = starts
                        .get(&id)
                        .unwrap_or_else(|| panic!("{name}: flow {id} finishes before it starts"));
                    assert!(*start <= ts && event["cat"] == cat.as_str(), "{event}");
                    assert_eq!(event["bp"], "e");
                    assert!(finished.insert(id), "flow {id} finishes twice");
                }
                other => panic!("unexpected phase {other}"),
            }
        }
        assert_eq!(
            starts.keys().copied().collect::<BTreeSet<u64>>(),
            finished,
            "{name}: every flow that starts finishes"
        );
        let delivered = events
            .iter()
            .filter(|e| e.kind == EventKind::Deliver)
            .count();
        assert_eq!(finished.len(), delivered, "{name}: a flow per arrival");
        assert!(used.is_subset(&named), "{name}: every track has a name");
    }
}

/// One ShiViz line: host, clock, text.
fn shiviz_line(line: &str) -> (String, BTreeMap<String, u64>, String) {
    let (host, rest) = line.split_once(' ').unwrap();
    let end = rest.find("} ").unwrap() + 1;
    let clock: BTreeMap<String, u64> = serde_json::from_str(&rest[..end]).unwrap();
    (host.to_string(), clock, rest[end + 1..].to_string())
}

#[test]
fn a_shiviz_log_has_well_formed_vector_clocks_that_respect_happens_before() {
    for (name, seed) in RUNS {
        let (events, kinds) = run(name, *seed);
        let log = shiviz(&events, kinds.len() as u32);
        let mut lines = log.lines();
        assert_eq!(lines.next(), Some(SHIVIZ_REGEX));
        assert_eq!(lines.next(), Some(""), "the executions delimiter is empty");
        let by_index: BTreeMap<u64, &TraceEvent> = events.iter().map(|e| (e.index, e)).collect();
        let mut own: BTreeMap<String, u64> = BTreeMap::new();
        let mut last: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let mut sent: BTreeMap<u64, BTreeMap<String, u64>> = BTreeMap::new();
        let mut deliveries = 0;
        for line in lines {
            let (host, clock, text) = shiviz_line(line);
            let count = own.entry(host.clone()).or_insert(0);
            *count += 1;
            assert_eq!(clock.get(&host).copied(), Some(*count), "{name}: {line}");
            if let Some(before) = last.get(&host) {
                for (node, time) in before {
                    assert!(clock.get(node).is_some_and(|t| t >= time), "{name}: {line}");
                }
            }
            let index: u64 = text
                .rsplit_once("(#")
                .and_then(|(_, rest)| rest.strip_suffix(')'))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no event index: {line}"));
            let event = by_index[&index];
            assert_eq!(format!("n{}", event.node), host);
            match event.kind {
                EventKind::Send => {
                    sent.insert(event.msg.unwrap(), clock.clone());
                }
                EventKind::Deliver => {
                    let at_send = &sent[&event.msg.unwrap()];
                    for (node, time) in at_send {
                        assert!(clock.get(node).is_some_and(|t| t >= time), "{name}: {line}");
                    }
                    assert!(clock[&host] > at_send.get(&host).copied().unwrap_or(0));
                    deliveries += 1;
                }
                _ => {}
            }
            last.insert(host, clock);
        }
        let delivered = events
            .iter()
            .filter(|e| e.kind == EventKind::Deliver)
            .count();
        assert_eq!(
            deliveries, delivered,
            "{name}: every delivery is in the log"
        );
    }
}
