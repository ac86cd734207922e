//! The broker's scenarios say what they promise: persistence saves messages a crash would
//! lose, auto-ack losses and a backlog longer than the quiet phase are counted, not
//! reported, and a crash while dead-lettering leaves each message in exactly one queue.

use sim_core::engine::{run_to_end, RunReport};
use sim_core::scenario::{builtin, parse, RunOptions};

fn run(name: &str, seed: u64) -> RunReport {
    let scenario = parse(name, builtin(name).unwrap()).unwrap();
    let mut run = scenario.build(&RunOptions {
        seed: Some(seed),
        ..Default::default()
    });
    run_to_end(run.as_mut())
}

#[test]
fn persistence_keeps_what_a_transient_broker_loses_in_the_same_crashes() {
    for seed in 0..5 {
        let durable = run("broker-crash-durable", seed);
        let transient = run("broker-crash-transient", seed);
        assert!(durable.findings.is_empty() && transient.findings.is_empty());
        let published = 2 * 800;
        assert!(
            durable.stats["broker.processed"] >= published,
            "seed {seed}: {:?}",
            durable.stats
        );
        assert!(
            transient.stats["broker.processed"] < published,
            "seed {seed}: {:?}",
            transient.stats
        );
    }
}

#[test]
fn auto_ack_losses_on_a_consumer_crash_are_counted_not_reported() {
    for seed in 0..5 {
        let report = run("broker-consumer-crash-auto-ack", seed);
        assert!(
            report.findings.is_empty(),
            "seed {seed}: {:?}",
            report.findings
        );
        assert!(
            report.stats["broker.auto-ack-lost"] > 0,
            "seed {seed}: {:?}",
            report.stats
        );
        let manual = run("broker-consumer-crash", seed);
        assert_eq!(manual.stats["broker.auto-ack-lost"], 0);
        assert_eq!(
            manual.stats["broker.processed"], 300,
            "manual acks lose nothing"
        );
    }
}

fn run_file(text: &str) -> RunReport {
    let scenario = parse("testdata", text).unwrap();
    run_to_end(scenario.build(&RunOptions::default()).as_mut())
}

#[test]
fn a_crash_mid_dead_letter_leaves_the_message_in_one_queue() {
    let report = run_file(include_str!("testdata/broker-dead-letter-torn-crash.toml"));
    let invariants: Vec<&str> = report
        .findings
        .iter()
        .map(|f| f.invariant.as_str())
        .collect();
    assert!(
        !invariants.contains(&"broker.no-duplicates"),
        "{:?}",
        report.findings
    );
    // No consumer in the shrunk run: the liveness checker still sees what is held.
    assert_eq!(invariants, ["broker.at-least-once"]);
}

#[test]
fn a_backlog_still_draining_at_the_end_is_counted_not_reported() {
    let report = run_file(include_str!("testdata/broker-dead-letter-backlog.toml"));
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert!(
        report.stats["broker.draining-at-end"] > 0,
        "{:?}",
        report.stats
    );
}
