//! The broker's scenarios say what they promise: persistence saves messages a crash would
//! lose, and auto-ack losses are the documented trade-off, reported as a stat.

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
