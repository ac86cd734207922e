//! The RPC scenarios say what they promise: each cluster mode and balancer behaves as
//! Dubbo's does under the crash, pause or outage its scenario stages, seen through the
//! run summary's counters over several seeds.

use std::collections::BTreeMap;

use sim_core::engine::{run_to_end, RunReport};
use sim_core::scenario::{builtin, parse, RunOptions};

const SEEDS: u64 = 5;

fn run(name: &str, seed: u64) -> RunReport {
    let scenario = parse(name, builtin(name).unwrap()).unwrap();
    let mut run = scenario.build(&RunOptions {
        seed: Some(seed),
        ..Default::default()
    });
    let report = run_to_end(run.as_mut());
    assert!(
        report.findings.is_empty(),
        "{name} seed {seed}: {:?}",
        report.findings
    );
    report
}

fn stat(stats: &BTreeMap<String, u64>, name: &str) -> u64 {
    stats.get(name).copied().unwrap_or(0)
}

#[test]
fn failover_retries_failed_reads_on_other_providers_and_never_writes() {
    for seed in 0..SEEDS {
        let stats = run("rpc-failover", seed).stats;
        // The crash and the pause cost attempts, which failover retried elsewhere.
        assert!(
            stat(&stats, "rpc.attempts") > stat(&stats, "rpc.calls"),
            "seed {seed}: {stats:?}"
        );
        // No read failed for good (three providers, two retries); the writes caught by
        // the pause or the crash failed, since they are not retried.
        assert_eq!(
            stat(&stats, "rpc.failed-idempotent"),
            0,
            "seed {seed}: {stats:?}"
        );
        assert!(stat(&stats, "rpc.failed") > 0, "seed {seed}: {stats:?}");
    }
}

#[test]
fn failfast_fails_the_calls_a_paused_or_crashed_provider_holds() {
    for seed in 0..SEEDS {
        let stats = run("rpc-failfast", seed).stats;
        assert!(
            stat(&stats, "rpc.failed.timeout") > 0,
            "seed {seed}: {stats:?}"
        );
        // Every failure is the transport's, reported as such: never retried, never
        // swallowed.
        assert_eq!(
            stat(&stats, "rpc.failed"),
            stat(&stats, "rpc.failed.timeout") + stat(&stats, "rpc.failed.connection-broken"),
            "seed {seed}: {stats:?}"
        );
        assert_eq!(stat(&stats, "rpc.swallowed"), 0);
        assert_eq!(
            stat(&stats, "rpc.attempts"),
            stat(&stats, "rpc.calls"),
            "one attempt each"
        );
    }
}

#[test]
fn failsafe_swallows_what_the_crash_breaks() {
    for seed in 0..SEEDS {
        let stats = run("rpc-failsafe", seed).stats;
        assert_eq!(stat(&stats, "rpc.failed"), 0, "seed {seed}: {stats:?}");
        assert!(stat(&stats, "rpc.swallowed") > 0, "seed {seed}: {stats:?}");
        assert_eq!(
            stat(&stats, "rpc.attempts"),
            stat(&stats, "rpc.calls"),
            "one attempt each"
        );
    }
}

#[test]
fn failback_answers_empty_at_once_and_retries_in_the_background() {
    for seed in 0..SEEDS {
        let stats = run("rpc-failback", seed).stats;
        assert_eq!(stat(&stats, "rpc.failed"), 0, "seed {seed}: {stats:?}");
        let swallowed = stat(&stats, "rpc.swallowed");
        assert!(swallowed > 0, "seed {seed}: {stats:?}");
        // The background retries are attempts beyond one per call.
        assert!(
            stat(&stats, "rpc.attempts") > stat(&stats, "rpc.calls"),
            "seed {seed}: {stats:?}"
        );
        // Failures answer at once: well under the 200 ms attempt timeout plus a retry.
        assert!(
            stat(&stats, "rpc.latency-us.inventory.p99") <= 201_000,
            "seed {seed}: {stats:?}"
        );
    }
}

#[test]
fn forking_masks_a_paused_provider_at_twice_the_load() {
    for seed in 0..SEEDS {
        let stats = run("rpc-forking", seed).stats;
        let calls = stat(&stats, "rpc.calls");
        assert_eq!(stat(&stats, "rpc.failed"), 0, "seed {seed}: {stats:?}");
        // Two forks a call, but one while the first listing named a single provider.
        let attempts = stat(&stats, "rpc.attempts");
        assert!(
            attempts <= 2 * calls && attempts * 10 > 19 * calls,
            "seed {seed}: {stats:?}"
        );
        // The slow provider (20 ms) never holds the answer back: the other fork wins.
        assert!(
            stat(&stats, "rpc.latency-us.inventory.p90") < 20_000,
            "seed {seed}: {stats:?}"
        );
    }
}

#[test]
fn broadcast_reaches_every_provider_and_fails_what_the_crash_catches() {
    let mut broken = 0;
    for seed in 0..SEEDS {
        let stats = run("rpc-broadcast", seed).stats;
        let calls = stat(&stats, "rpc.calls");
        // The healthy providers get every call but those made before their
        // registration reached the consumer (startup takes up to ~80 ms of 10 ms calls;
        // Dubbo's consumer, too, calls the providers it knows of).
        for provider in ["n3", "n5"] {
            let load = stat(&stats, &format!("rpc.load.broadcast.{provider}"));
            assert!(
                load <= calls && load + 8 >= calls,
                "seed {seed} {provider}: {stats:?}"
            );
        }
        assert!(
            stat(&stats, "rpc.load.broadcast.n4") < calls,
            "seed {seed}: {stats:?}"
        );
        assert!(stat(&stats, "rpc.failed") > 0, "seed {seed}: {stats:?}");
        broken += stat(&stats, "rpc.failed.connection-broken");
    }
    // A call in flight when its provider's connection breaks fails with its own error.
    assert!(broken > 0);
}

#[test]
fn cached_providers_carry_the_calls_through_a_registry_outage() {
    for seed in 0..SEEDS {
        let stats = run("rpc-registry-outage", seed).stats;
        assert_eq!(stat(&stats, "rpc.calls"), 500, "seed {seed}: {stats:?}");
        assert_eq!(stat(&stats, "rpc.failed"), 0, "seed {seed}: {stats:?}");
    }
}

#[test]
fn the_five_balancers_spread_load_as_dubbo_does() {
    for seed in 0..SEEDS {
        let stats = run("rpc-balancers", seed).stats;
        let load = |balancer: &str| -> Vec<u64> {
            (3..=6)
                .map(|n| stat(&stats, &format!("rpc.load.{balancer}.n{n}")))
                .collect()
        };
        // Smooth weighted round robin: exactly the weights' ratio, 1:2:3:4.
        assert_eq!(load("roundrobin"), vec![40, 80, 120, 160], "seed {seed}");
        // Weighted random: in the weights' order, roughly.
        let random = load("random");
        assert!(random[0] < random[3], "seed {seed}: {random:?}");
        // Shortest response favours the fastest provider (2 ms) above all.
        let shortest = load("shortestresponse");
        assert!(
            shortest[0] > shortest[1] + shortest[2] + shortest[3],
            "seed {seed}: {shortest:?}"
        );
        // Every balancer made every call, once: no failures, no retries.
        for balancer in [
            "random",
            "roundrobin",
            "leastactive",
            "consistenthash",
            "shortestresponse",
        ] {
            assert_eq!(
                load(balancer).iter().sum::<u64>(),
                400,
                "seed {seed}: {balancer}"
            );
        }
    }
}

#[test]
fn a_warming_provider_gets_less_than_its_weight() {
    for seed in 0..SEEDS {
        let stats = run("rpc-warmup", seed).stats;
        let late = stat(&stats, "rpc.load.roundrobin.n5");
        let early = stat(&stats, "rpc.load.roundrobin.n3");
        assert!(late > 0 && late * 2 < early, "seed {seed}: {stats:?}");
    }
}

#[test]
fn the_gateway_refuses_bad_credentials_and_excess_and_balances_like_nginx() {
    for seed in 0..SEEDS {
        let stats = run("rpc-gateway", seed).stats;
        // Two of the four clients hold no valid credential: all their calls are refused.
        assert_eq!(
            stat(&stats, "rpc.failed.unauthenticated"),
            500,
            "seed {seed}: {stats:?}"
        );
        // The others call 100 times a second against a limit of 80.
        assert!(
            stat(&stats, "rpc.failed.rate-limited") > 0,
            "seed {seed}: {stats:?}"
        );
        // Upstream, least_conn used every inventory provider.
        for provider in 3..=5 {
            assert!(
                stat(&stats, &format!("rpc.load.nginx-leastconn.n{provider}")) > 0,
                "seed {seed}: {stats:?}"
            );
        }
        // Whatever got in was answered: refusals are the only failures.
        let refused =
            stat(&stats, "rpc.failed.unauthenticated") + stat(&stats, "rpc.failed.rate-limited");
        assert_eq!(
            stat(&stats, "rpc.failed"),
            refused,
            "seed {seed}: {stats:?}"
        );
    }
}

#[test]
fn a_nested_chain_answers_every_call_and_reports_latency_per_service() {
    for seed in 0..SEEDS {
        let stats = run("rpc-trace-chain", seed).stats;
        assert_eq!(stat(&stats, "rpc.failed"), 0, "seed {seed}: {stats:?}");
        // Orders wait on the inventory, so they are slower at every percentile.
        for p in ["p50", "p90"] {
            let orders = stat(&stats, &format!("rpc.latency-us.orders.{p}"));
            let inventory = stat(&stats, &format!("rpc.latency-us.inventory.{p}"));
            assert!(
                orders > inventory && inventory > 0,
                "seed {seed}: {stats:?}"
            );
        }
    }
}

#[test]
fn a_write_repeated_through_the_gateway_is_caught_at_the_orders_service() {
    let text = include_str!("testdata/rpc-chain-retry.toml");
    let scenario = parse("rpc-chain-retry.toml", text).unwrap();
    let mut bugs = sim_core::bugs::BugSet::default();
    sim_core::catalogue::enable_bug(&mut bugs, "rpc.failover-retries-writes").unwrap();
    for seed in 0..SEEDS {
        let quiet = run_to_end(
            scenario
                .build(&RunOptions {
                    seed: Some(seed),
                    ..Default::default()
                })
                .as_mut(),
        );
        assert!(
            quiet.findings.is_empty(),
            "seed {seed}: {:?}",
            quiet.findings
        );
        let options = RunOptions {
            seed: Some(seed),
            bugs: bugs.clone(),
            ..Default::default()
        };
        let caught = run_to_end(scenario.build(&options).as_mut());
        assert!(
            caught
                .findings
                .iter()
                .any(|f| f.invariant == "rpc.at-most-once"),
            "seed {seed}: {:?}",
            caught.findings
        );
    }
}

#[test]
fn failback_never_retries_a_call_its_deadline_answered() {
    let text = include_str!("testdata/rpc-failback-deadline.toml");
    let scenario = parse("rpc-failback-deadline.toml", text).unwrap();
    for seed in 0..SEEDS {
        let report = run_to_end(
            scenario
                .build(&RunOptions {
                    seed: Some(seed),
                    ..Default::default()
                })
                .as_mut(),
        );
        assert!(
            report.findings.is_empty(),
            "seed {seed}: {:?}",
            report.findings
        );
        assert!(
            stat(&report.stats, "rpc.failed.deadline-exceeded") > 0,
            "seed {seed}: {:?}",
            report.stats
        );
        assert_eq!(
            stat(&report.stats, "rpc.attempts"),
            stat(&report.stats, "rpc.calls"),
            "no retries"
        );
    }
}
