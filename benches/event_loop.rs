//! Criterion benchmarks of the engine's event loop: ping-pong with one message in flight
//! per pair (trace hash on), across cluster sizes from 10 to 10,000 nodes so the cost per
//! event can be seen to stay flat, and one whole broadcast scenario under its nemesis.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use sim_core::engine::{run_to_end, Limits, SimConfig};
use sim_core::net::{Latency, LinkModel};
use sim_core::proto::ping_pong::Params;
use sim_core::scenario::{builtin, parse, ping_pong_sim, RunOptions};

fn ping_pong_config(pairs: u32, messages: u64) -> SimConfig {
    let mut kinds = vec!["client".to_string(); pairs as usize];
    kinds.extend(vec!["server".to_string(); pairs as usize]);
    SimConfig {
        scenario: "bench".into(),
        seed: 1,
        kinds,
        link: LinkModel {
            latency: Latency::Uniform {
                min_ns: 5_000,
                max_ns: 15_000,
            },
            ..LinkModel::default()
        },
        links: Vec::new(),
        faults: Vec::new(),
        nemesis: None,
        fault_phase_ns: 1 << 62,
        quiet_ns: 0,
        limits: Limits {
            events_max: messages * 4 + 10_000,
            ..Limits::default()
        },
        bugs: Default::default(),
        retain_trace: false,
    }
}

fn ping_pong_by_cluster_size(c: &mut Criterion) {
    let messages: u64 = 1_000_000;
    let mut group = c.benchmark_group("ping-pong-events");
    group.sample_size(10);
    for nodes in [10u32, 100, 1_000, 10_000] {
        let pairs = nodes / 2;
        // At least 400 messages per pair, so large clusters are measured warm too.
        let per_pair = (messages / pairs as u64).max(400);
        // Throughput in events (send, deliver, observe): what "cost per event" means.
        let events = {
            let mut sim = ping_pong_sim(
                ping_pong_config(pairs, messages),
                Params {
                    messages: per_pair,
                    timeout_ns: 0,
                },
                |_| true,
            );
            run_to_end(&mut sim).events
        };
        group.throughput(Throughput::Elements(events));
        // Building the cluster is set-up, not event cost: only the run is timed.
        let build = || {
            let config = ping_pong_config(pairs, messages);
            ping_pong_sim(
                config,
                Params {
                    messages: per_pair,
                    timeout_ns: 0,
                },
                |_| true,
            )
        };
        group.bench_with_input(BenchmarkId::from_parameter(nodes), &nodes, |b, _| {
            // The simulation is returned so criterion drops it outside the timing.
            b.iter_batched(
                build,
                |mut sim| {
                    let report = run_to_end(&mut sim);
                    (sim, report)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn broadcast_scenario(c: &mut Criterion) {
    let scenario = parse("broadcast", builtin("broadcast").unwrap()).unwrap();
    let mut group = c.benchmark_group("scenario");
    group.sample_size(10);
    group.bench_function("broadcast-seed-1", |b| {
        b.iter(|| {
            let mut run = scenario.build(&RunOptions {
                seed: Some(1),
                ..Default::default()
            });
            run_to_end(run.as_mut())
        })
    });
    group.finish();
}

criterion_group!(benches, ping_pong_by_cluster_size, broadcast_scenario);
criterion_main!(benches);
