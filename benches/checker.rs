//! Criterion benchmark of the linearizability checker on generated concurrent register
//! histories: 10,000 operations, 10 processes, 5 keys, 1% crashed clients; one that is
//! linearizable (the whole search) and one with an impossible read (search, then shrink).

use criterion::{criterion_group, criterion_main, Criterion};
use sim_core::check::generate::{linearizable, to_jsonl, with_impossible_read, Shape};
use sim_core::check::history;
use sim_core::check::linearizable::{check, Model, Verdict};

const SHAPE: Shape = Shape {
    operations: 10_000,
    processes: 10,
    keys: 5,
    crash_ppm: 10_000,
};

fn checker(c: &mut Criterion) {
    let good = to_jsonl(&linearizable(7, SHAPE));
    let bad = to_jsonl(&with_impossible_read(linearizable(7, SHAPE), 7).expect("reads"));
    let mut group = c.benchmark_group("check-10k-ops");
    group.sample_size(10);
    group.bench_function("linearizable", |b| {
        b.iter(|| {
            let ops = history::parse(&good).unwrap();
            assert_eq!(check(Model::Register, &ops), Verdict::Linearizable);
        })
    });
    group.bench_function("not-linearizable", |b| {
        b.iter(|| {
            let ops = history::parse(&bad).unwrap();
            assert!(matches!(
                check(Model::Register, &ops),
                Verdict::NotLinearizable { .. }
            ));
        })
    });
    group.finish();
}

criterion_group!(benches, checker);
criterion_main!(benches);
