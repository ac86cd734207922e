//! Criterion benchmarks of the engine's event loop: ping-pong with one message in flight
//! per pair (trace hash on), across cluster sizes from 10 to 10,000 nodes so the cost per
//! event can be seen to stay flat, and one whole broadcast scenario under its nemesis.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use sim_core::engine::run_to_end;
use sim_core::net::Latency;
use sim_core::proto::ping_pong::spec::bench as ping_pong_bench;
use sim_core::scenario::{builtin, parse, RunOptions};

const JITTER: Latency = Latency::Uniform {
    min_ns: 5_000,
    max_ns: 15_000,
};

fn ping_pong_by_cluster_size(c: &mut Criterion) {
    let messages: u64 = 1_000_000;
    let mut group = c.benchmark_group("ping-pong-events");
    group.sample_size(10);
    for nodes in [10u32, 100, 1_000, 10_000] {
        let pairs = nodes / 2;
        // At least 400 messages per pair, so large clusters are measured warm too.
        let per_pair = (messages / pairs as u64).max(400);
        // Building the cluster is set-up, not event cost: only the run is timed.
        let build = || ping_pong_bench(pairs, per_pair, JITTER);
        // Throughput in events (send, deliver, observe): what "cost per event" means.
        let events = run_to_end(&mut build()).events;
        group.throughput(Throughput::Elements(events));
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
