//! A bounded slice of the swarms that keep the protocols honest on bad networks: every
//! hard built-in scenario (loss, duplication, reordering, short and one-way cuts, a
//! 5-server ensemble under every nemesis fault, broker crashes on lossy links, RPC under
//! every cluster mode and fault) must pass a run of seeds with no finding. The full swarms (2,000 seeds each, `faultline swarm`)
//! are in the README; this slice keeps CI within its budget and still catches a
//! regression that fails one seed in a few dozen.
#![cfg(not(target_arch = "wasm32"))]

use sim_core::engine::run_to_end;
use sim_core::scenario::{builtin, parse, RunOptions};

fn swarm(name: &str, seeds: u64) {
    let scenario = parse(name, builtin(name).expect("a built-in")).expect("valid");
    for seed in 0..seeds {
        let options = RunOptions {
            seed: Some(seed),
            ..Default::default()
        };
        let mut run = scenario.build(&options);
        let report = run_to_end(run.as_mut());
        assert!(
            report.findings.is_empty(),
            "{name} seed {seed}: {:?}\n  reproduce: faultline run {name} --seed {seed}",
            report.findings
        );
    }
}

#[test]
fn registry_on_lossy_links() {
    swarm("registry-lossy", 200);
}

#[test]
fn registry_on_duplicating_links() {
    swarm("registry-duplicates", 200);
}

#[test]
fn registry_across_short_and_long_cuts() {
    swarm("registry-cut-short", 100);
    swarm("registry-cut-long", 100);
    swarm("registry-short-partitions", 200);
}

#[test]
fn registry_across_one_way_cuts() {
    swarm("registry-one-way", 200);
}

#[test]
fn registry_in_read_only_mode_under_churn() {
    swarm("registry-read-only-churn", 200);
}

#[test]
fn five_servers_under_every_nemesis_fault() {
    swarm("registry-five-nemesis", 100);
}

#[test]
fn broker_crashes_on_lossy_links() {
    swarm("broker-lossy", 100);
}

#[test]
fn broker_dead_letters_across_crashes_and_torn_writes() {
    swarm("broker-dead-letter-crash", 100);
}

#[test]
fn broker_with_restarting_publishers_and_full_queues() {
    swarm("broker-publisher-restart", 100);
    swarm("broker-reject-publish", 100);
}

#[test]
fn rpc_under_every_cluster_mode_and_every_fault() {
    swarm("rpc-nemesis", 100);
    for name in [
        "rpc-failover",
        "rpc-failfast",
        "rpc-failback",
        "rpc-forking",
        "rpc-broadcast",
    ] {
        swarm(name, 30);
    }
}
