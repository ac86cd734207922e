//! Dubbo's own test cases and vectors computed from its verbatim code (see the notes in
//! each test): exact selections, not statistics, wherever Dubbo's rule is exact.

use super::*;

/// A `draw` that returns the given values in turn and counts its calls.
struct Draws {
    values: Vec<u32>,
    calls: Vec<u32>,
}

impl Draws {
    fn new(values: &[u32]) -> Self {
        Self {
            values: values.iter().rev().copied().collect(),
            calls: Vec::new(),
        }
    }

    fn draw(&mut self) -> impl FnMut(u32) -> u32 + '_ {
        |n| {
            self.calls.push(n);
            let value = self.values.pop().expect("a draw was expected");
            assert!(value < n, "test draw {value} out of [0, {n})");
            value
        }
    }
}

#[test]
fn warmup_weights_follow_dubbos_load_balance_base_test() {
    // LoadBalanceBaseTest.testLoadBalanceWarmup (warm-up 10 min, weight 100); its first
    // row calls the inner function with uptime 0 (1), through getWeight it keeps 100.
    let rows = [
        (0, 100),
        (13, 1),
        (6_000, 1),
        (12_000, 2),
        (60_000, 10),
        (300_000, 50),
        (300_023, 50),
        (305_999, 50),
        (306_000, 51),
        (540_000, 90),
        (588_000, 98),
        (594_000, 99),
        (599_999, 99),
        (600_000, 100),
        (1_200_000, 100),
    ];
    for (uptime, expected) in rows {
        assert_eq!(
            warmup_weight(uptime, 600_000, 100),
            expected,
            "uptime {uptime}"
        );
    }
}

#[test]
fn warmup_weights_are_binary32_arithmetic_not_integer() {
    // (warm-up, weight, uptime, Dubbo's f32 result); exact integer maths differs.
    let rows = [
        (600_000, 14, 300_000, 6),
        (600_000, 28, 150_000, 6),
        (600_000, 28, 300_000, 13),
        (600_000, 700, 54_000, 62),
        (600_000, 700, 108_000, 125),
        (600_000, 700, 216_000, 251),
        (60_000, 70, 54_000, 62),
        (60_000, 90, 42_000, 62),
        (60_000, 93, 20_000, 30),
        (10_000, 62, 5_000, 30),
        (10_000, 65, 2_000, 12),
        (10_000, 70, 9_000, 62),
        (2, 14, 1, 6),
        (3, 21, 2, 13),
        (753_388_740, 544, 123_256_607, 89),
        (1_828_925_509, 904, 1_527_476_528, 754),
    ];
    for (warmup, weight, uptime, expected) in rows {
        assert_eq!(
            warmup_weight(uptime, warmup, weight),
            expected,
            "warmup {warmup} weight {weight} uptime {uptime}"
        );
    }
}

#[test]
fn warmup_edge_cases() {
    assert_eq!(warmup_weight(5, 600_000, 0), 0, "weight 0 stays 0");
    assert_eq!(warmup_weight(-1, 600_000, 100), 1, "a clock ahead gives 1");
    assert_eq!(warmup_weight(-100_000, 0, 100), 1);
    assert_eq!(warmup_weight(1, 600_000, 100), 1, "clamped up to 1");
    assert_eq!(warmup_weight(1 << 31, 600_000, 100), 100);
    assert_eq!(warmup_weight(5, 0, 7), 7, "no warm-up");
}

#[test]
fn smooth_round_robin_matches_dubbos_sequences() {
    let rows: [(&[u32], [usize; 16]); 8] = [
        (&[1, 9, 6], [1, 2, 1, 2, 1, 0, 1, 2, 1, 2, 1, 1, 2, 1, 2, 1]),
        (&[5, 1, 1], [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0]),
        (&[1, 1, 1], [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0]),
        (&[2, 1], [0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]),
        (&[3, 0, 2], [0, 2, 0, 2, 0, 0, 2, 0, 2, 0, 0, 2, 0, 2, 0, 0]),
        (&[0, 0], [0; 16]),
        (&[4, 2, 1], [0, 1, 0, 2, 0, 1, 0, 0, 1, 0, 2, 0, 1, 0, 0, 1]),
        (
            &[1, 9, 6, 11],
            [3, 1, 2, 3, 1, 3, 2, 1, 3, 0, 1, 3, 2, 3, 1, 2],
        ),
    ];
    for (weights, expected) in rows {
        assert_eq!(
            smooth_round_robin(weights, 16),
            expected,
            "weights {weights:?}"
        );
    }
    // RoundRobinLoadBalanceTest.testSelectByWeight, single-threaded: exact shares.
    let picks = smooth_round_robin(&[1, 9, 6], 10_000);
    let counts: Vec<usize> = (0..3)
        .map(|i| picks.iter().filter(|p| **p == i).count())
        .collect();
    assert_eq!(counts, [625, 5_625, 3_750]);
}

fn providers<'a>(names: &'a [&'a str], weights: &[u32]) -> Vec<(&'a str, u32)> {
    names.iter().copied().zip(weights.iter().copied()).collect()
}

#[test]
fn a_changed_weight_resets_that_providers_entry() {
    let names = ["p0", "p1", "p2"];
    let mut rr = RoundRobin::new();
    let first: Vec<usize> = (0..5)
        .map(|_| rr.select(0, &providers(&names, &[1, 9, 6])).unwrap())
        .collect();
    assert_eq!(first, [1, 2, 1, 2, 1]);
    let after: Vec<usize> = (0..5)
        .map(|_| rr.select(0, &providers(&names, &[1, 9, 3])).unwrap())
        .collect();
    assert_eq!(after, [0, 1, 1, 2, 1]);
}

#[test]
fn stale_entries_are_recycled_after_60_s_only_when_the_sizes_differ() {
    let four = ["p0", "p1", "p2", "p3"];
    let mut rr = RoundRobin::new();
    let picks: Vec<usize> = (0..3)
        .map(|_| rr.select(0, &providers(&four, &[1, 9, 6, 11])).unwrap())
        .collect();
    assert_eq!(picks, [3, 1, 2]);
    let three = providers(&four[..3], &[1, 9, 6]);
    assert_eq!(rr.select(60_000, &three), Some(1));
    assert_eq!(rr.remembered(), 4, "60,000 ms is not past the period");
    assert_eq!(rr.select(60_001, &three), Some(0));
    assert_eq!(rr.remembered(), 3, "p3 recycled");
    // p3 back, fresh: p1 and p3 tie at 11 and the earlier one wins.
    assert_eq!(
        rr.select(60_002, &providers(&four, &[1, 9, 6, 11])),
        Some(1)
    );
    assert_eq!(rr.remembered(), 4);
}

#[test]
fn one_provider_is_answered_without_state() {
    let mut rr = RoundRobin::new();
    assert_eq!(rr.select(0, &[("only", 5)]), Some(0));
    assert_eq!(rr.remembered(), 0);
    assert_eq!(rr.select(0, &[]), None);
}

const BASE_TEST_INVOKERS: [&str; 5] = [
    "127.0.0.1:1",
    "127.0.0.1:2",
    "127.0.0.1:3",
    "127.0.0.1:4",
    "127.0.0.1:5",
];

#[test]
fn the_consistent_hash_ring_sends_keys_where_dubbos_does() {
    // ConsistentHashLoadBalanceTest: every call with arguments {"arg1", ...} goes to one
    // invoker, 127.0.0.1:2.
    let ring = ConsistentHashRing::new(&BASE_TEST_INVOKERS, 160);
    let rows = [
        ("arg1", 1),
        ("arg1arg2", 3),
        ("", 3),
        ("null", 0),
        ("arg0", 3),
        ("arg2", 2),
        ("arg3", 1),
        ("arg4", 3),
        ("arg5", 0),
        ("arg6", 3),
        ("arg7", 0),
        ("arg8", 0),
        ("arg9", 3),
        ("1", 4),
        ("42", 4),
        ("hello", 1),
        ("k4946", 0), // past the last point: wraps to the first
    ];
    for (key, expected) in rows {
        assert_eq!(ring.select(key), expected, "key {key:?}");
    }
    // testArgumentMatchAll: keys arg0..arg999 reach every invoker.
    let mut counts = [0; 5];
    for i in 0..1_000 {
        counts[ring.select(&format!("arg{i}"))] += 1;
    }
    assert_eq!(counts, [180, 250, 169, 179, 222]);
}

#[test]
fn small_rings_and_their_points() {
    let nodes = ["10.0.0.1:20880", "10.0.0.2:20880", "10.0.0.3:20880"];
    let full = ConsistentHashRing::new(&nodes, 160);
    let users: Vec<usize> = (0..20).map(|i| full.select(&format!("user{i}"))).collect();
    assert_eq!(
        users,
        [1, 0, 0, 2, 2, 1, 1, 0, 1, 0, 0, 0, 0, 2, 1, 1, 0, 0, 2, 2]
    );
    let small = ConsistentHashRing::new(&nodes, 8);
    assert_eq!(small.points.len(), 24);
    assert_eq!(small.points.first_key_value(), Some((&199_776_485, &2)));
    assert_eq!(small.points.last_key_value(), Some((&4_208_999_753, &2)));
    let users: Vec<usize> = (0..20).map(|i| small.select(&format!("user{i}"))).collect();
    assert_eq!(
        users,
        [1, 0, 0, 2, 1, 0, 1, 2, 0, 0, 0, 2, 0, 1, 1, 1, 1, 2, 0, 0]
    );
    // md5("127.0.0.1:10") = a89e84e7 bbcfbc11 20536123 d67982d8.
    let digest = md5(b"127.0.0.1:10");
    let points: Vec<u32> = (0..4).map(|h| point(&digest, h)).collect();
    assert_eq!(
        points,
        [3_884_228_264, 297_586_619, 593_580_832, 3_632_429_526]
    );
    // Fewer than 4 nodes: one digest per address, where Dubbo's ring would be empty.
    assert_eq!(ConsistentHashRing::new(&nodes, 2).points.len(), 12);
}

#[test]
fn hash_keys_concatenate_the_named_arguments() {
    let args = ["arg1", "arg2", "arg3"];
    assert_eq!(hash_key(&args, "0"), "arg1");
    assert_eq!(hash_key(&args, "0,1"), "arg1arg2");
    assert_eq!(hash_key(&args, "1, 0"), "arg2arg1");
    assert_eq!(hash_key(&args, "0,0"), "arg1arg1");
    assert_eq!(hash_key(&args, "5,-1,2"), "arg3", "out of range skipped");
    assert_eq!(hash_key(&args, "x"), "", "not an index: skipped");
}

#[test]
fn random_draws_once_over_the_weight_sum_or_the_count() {
    // Weights [1, 9, 6]: cumulative [1, 10, 16], one draw over 16.
    for (offset, expected) in [(0, 0), (1, 1), (9, 1), (10, 2), (15, 2)] {
        let mut draws = Draws::new(&[offset]);
        assert_eq!(random(&[1, 9, 6], &mut draws.draw()), expected);
        assert_eq!(draws.calls, [16]);
    }
    // [3, 0, 2]: a weight of 0 is never chosen.
    for (offset, expected) in [(0, 0), (2, 0), (3, 2), (4, 2)] {
        let mut draws = Draws::new(&[offset]);
        assert_eq!(random(&[3, 0, 2], &mut draws.draw()), expected);
    }
    // Equal weights, or all 0: one draw over the count.
    let mut draws = Draws::new(&[2]);
    assert_eq!(random(&[5, 5, 5], &mut draws.draw()), 2);
    assert_eq!(draws.calls, [3]);
    let mut draws = Draws::new(&[1]);
    assert_eq!(random(&[0, 0], &mut draws.draw()), 1);
    assert_eq!(draws.calls, [2]);
    // One provider: no draw.
    let mut draws = Draws::new(&[]);
    assert_eq!(random(&[7], &mut draws.draw()), 0);
    assert!(draws.calls.is_empty());
    // More than four providers (Dubbo's binary search branch) agrees with the scan.
    let weights = [2, 0, 3, 1, 4, 0, 2];
    for offset in 0..12 {
        let mut draws = Draws::new(&[offset]);
        let chosen = random(&weights, &mut draws.draw());
        let mut running = 0;
        let expected = weights
            .iter()
            .position(|w| {
                running += w;
                offset < running
            })
            .unwrap();
        assert_eq!(chosen, expected, "offset {offset}");
    }
}

#[test]
fn least_active_picks_among_the_least_busy() {
    // (actives, weights, draw, expected draw bound, expected index)
    type Row<'a> = (&'a [u32], &'a [u32], Option<u32>, Option<u32>, usize);
    let rows: [Row; 7] = [
        (&[0, 0, 1], &[1, 9, 6], Some(0), Some(10), 0),
        (&[0, 0, 1], &[1, 9, 6], Some(1), Some(10), 1),
        (&[0, 0, 1], &[1, 9, 6], Some(9), Some(10), 1),
        (&[1, 2, 3, 4, 5], &[1, 1, 1, 1, 1], None, None, 0),
        (&[2, 1, 1], &[5, 5, 5], Some(1), Some(2), 2),
        (&[0, 0], &[0, 0], Some(1), Some(2), 1),
        (&[0, 0, 0], &[0, 3, 3], Some(4), Some(6), 2),
    ];
    for (actives, weights, draw, bound, expected) in rows {
        let values: Vec<u32> = draw.into_iter().collect();
        let mut draws = Draws::new(&values);
        assert_eq!(
            least_active(actives, weights, &mut draws.draw()),
            expected,
            "{actives:?} {weights:?}"
        );
        assert_eq!(draws.calls, bound.into_iter().collect::<Vec<_>>());
    }
    // LeastActiveBalanceTest: with test3 busy, 10,000 picks never choose it.
    let mut state = 12_345u32;
    let mut lcg = |n: u32| {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (state >> 8) % n
    };
    let picks: Vec<usize> = (0..10_000)
        .map(|_| least_active(&[0, 0, 1], &[1, 9, 6], &mut lcg))
        .collect();
    assert!(!picks.contains(&2));
}

#[test]
fn shortest_response_prefers_providers_without_a_slow_history() {
    // ShortestResponseLoadBalanceTest: invoker 5 (one success of 5,000 ms, one call in
    // flight) estimates 10,000; the others, with no success yet, 0 and are chosen.
    let estimates = [
        estimated_response(0, 0, 0),
        estimated_response(0, 0, 0),
        estimated_response(1, 5_000, 1),
    ];
    assert_eq!(estimates, [0, 0, 10_000]);
    let mut draws = Draws::new(&[3]);
    assert_eq!(
        shortest_response(&estimates, &[1, 9, 15], &mut draws.draw()),
        1
    );
    assert_eq!(draws.calls, [10]);
}
