//! The bank's and the shop's invariants, fed by hand: for each, a run it must flag and a
//! correct one it must stay quiet on, including the tricky correct ones (a heuristic
//! outcome the coordinator reported, a branch still in doubt when the run ends young, a
//! shard that crashed with an active branch, a redelivery the warehouse recognised).

use serde_json::json;
use sim_core::check::{HistoryEvent, OpFunction, OpType};
use sim_core::invariant::EndState;
use sim_core::proto::txn::invariants::{Atomic, Blocking, Conservation, Resolved};
use sim_core::proto::txn::shop::invariants::{Converged, NoDuplicates, Published};
use sim_core::proto::txn::shop::Obs as ShopObs;
use sim_core::proto::txn::xa::{Gtrid, Heuristic, Xid};
use sim_core::proto::txn::Obs;
use sim_core::proto::world::World;
use sim_core::{Invariant, NodeId};

const MS: u64 = 1_000_000;
/// Shards are nodes 1, 2 and 3; the coordinator is node 0.
const SHARDS: [NodeId; 3] = [1, 2, 3];

enum Step {
    Xa(u64, NodeId, Obs),
    Shop(u64, NodeId, ShopObs),
    History(u64, HistoryEvent),
    Crash(NodeId),
}

fn check(
    invariant: &mut dyn Invariant<World>,
    steps: Vec<Step>,
    end_ns: Option<u64>,
) -> Result<(), String> {
    for step in steps {
        match step {
            Step::Xa(time, node, obs) => invariant.on_observation(time, node, &obs.into())?,
            Step::Shop(time, node, obs) => invariant.on_observation(time, node, &obs.into())?,
            Step::History(time, event) => invariant.on_history(time, 9, &event)?,
            Step::Crash(node) => invariant.on_crash(node),
        }
    }
    match end_ns {
        Some(time_ns) => invariant.at_end(&EndState {
            time_ns,
            up: vec![true; 10],
        }),
        None => Ok(()),
    }
}

fn gtrid(seq: u32) -> Gtrid {
    Gtrid {
        tm: 0,
        boot: 0,
        seq,
    }
}

fn xid(seq: u32, branch: u32) -> Xid {
    Xid {
        gtrid: gtrid(seq),
        branch,
    }
}

fn decided(time: u64, seq: u32, commit: bool) -> Step {
    Step::Xa(
        time,
        0,
        Obs::Decided {
            gtrid: gtrid(seq),
            commit,
            participants: vec![0, 1],
        },
    )
}

fn applied(time: u64, seq: u32, branch: u32, commit: bool, heuristic: bool, delta: i64) -> Step {
    Step::Xa(
        time,
        SHARDS[branch as usize],
        Obs::Applied {
            xid: xid(seq, branch),
            commit,
            heuristic,
            delta,
        },
    )
}

fn reported(time: u64, seq: u32) -> Step {
    Step::Xa(
        time,
        0,
        Obs::Reported {
            gtrid: gtrid(seq),
            heuristic: Heuristic::Mixed,
        },
    )
}

const BOUND: u64 = 1_000 * MS;

#[test]
fn atomic_is_quiet_on_all_or_nothing_and_on_reported_heuristics() {
    let steps = vec![
        decided(1, 1, true),
        applied(2, 1, 0, true, false, -5),
        applied(3, 1, 1, true, false, 5),
        decided(4, 2, false),
        applied(5, 2, 0, false, false, 0),
        applied(5, 2, 1, false, false, 0),
        // A heuristic rollback against a commit, reported by the coordinator.
        decided(6, 3, true),
        applied(7, 3, 0, true, false, -5),
        applied(8, 3, 1, false, true, 0),
        reported(9, 3),
    ];
    check(
        &mut Atomic::new(SHARDS.to_vec(), BOUND),
        steps,
        Some(10_000 * MS),
    )
    .unwrap();
}

#[test]
fn atomic_flags_a_split_outcome_no_shard_decided() {
    let steps = vec![
        applied(2, 1, 0, true, false, -5),
        applied(3, 1, 1, false, false, 0),
    ];
    let error = check(&mut Atomic::new(SHARDS.to_vec(), BOUND), steps, None).unwrap_err();
    assert!(error.contains("no shard decided alone"), "{error}");
}

#[test]
fn atomic_flags_a_branch_completed_against_the_decision() {
    let steps = vec![decided(1, 1, false), applied(2, 1, 0, true, false, -5)];
    let error = check(&mut Atomic::new(SHARDS.to_vec(), BOUND), steps, None).unwrap_err();
    assert!(error.contains("decided rollback"), "{error}");
    // A decision that comes after a branch went the other way (recorded late).
    let steps = vec![applied(2, 1, 0, false, false, 0), decided(3, 1, true)];
    let error = check(&mut Atomic::new(SHARDS.to_vec(), BOUND), steps, None).unwrap_err();
    assert!(
        error.contains("decided commit after branch b0 rolled back"),
        "{error}"
    );
}

#[test]
fn atomic_flags_a_heuristic_outcome_never_reported_but_waits_for_recovery() {
    let steps = || {
        vec![
            decided(1, 1, true),
            applied(2, 1, 0, true, false, -5),
            applied(3 * MS, 1, 1, false, true, 0),
        ]
    };
    // Young: the coordinator's recovery may not have found it yet.
    check(
        &mut Atomic::new(SHARDS.to_vec(), BOUND),
        steps(),
        Some(500 * MS),
    )
    .unwrap();
    let error = check(
        &mut Atomic::new(SHARDS.to_vec(), BOUND),
        steps(),
        Some(5_000 * MS),
    )
    .unwrap_err();
    assert!(error.contains("never reported"), "{error}");
}

#[test]
fn resolved_flags_a_branch_stuck_in_doubt_and_not_one_in_flight() {
    let prepared = |time, seq| Step::Xa(time, 1, Obs::Prepared { xid: xid(seq, 0) });
    let locked = |time, seq| Step::Xa(time, 2, Obs::Locked { xid: xid(seq, 1) });
    // In flight at the end: younger than the bound.
    let young = vec![prepared(4_500 * MS, 1), locked(4_600 * MS, 2)];
    check(&mut Resolved::new(BOUND), young, Some(5_000 * MS)).unwrap();
    // Resolved ones, and an active branch that died with its shard.
    let done = vec![
        prepared(MS, 1),
        applied(2 * MS, 1, 0, true, false, 0),
        locked(MS, 2),
        Step::Crash(2),
    ];
    check(&mut Resolved::new(BOUND), done, Some(5_000 * MS)).unwrap();
    // A prepared branch survives its shard's crash, and stays stuck.
    let stuck = vec![prepared(MS, 1), Step::Crash(1)];
    let error = check(&mut Resolved::new(BOUND), stuck, Some(5_000 * MS)).unwrap_err();
    assert!(error.contains("in doubt since"), "{error}");
    let held = vec![locked(MS, 2)];
    let error = check(&mut Resolved::new(BOUND), held, Some(5_000 * MS)).unwrap_err();
    assert!(error.contains("holding locks"), "{error}");
}

#[test]
fn blocking_reports_the_window_and_how_transactions_ended() {
    let mut blocking = Blocking::default();
    let steps = vec![
        Step::Xa(1, 1, Obs::Prepared { xid: xid(1, 0) }),
        decided(2, 1, true),
        applied(3, 1, 0, true, false, 0),
        applied(3, 2, 1, true, false, 0), // never prepared: one phase
        Step::Xa(
            4,
            1,
            Obs::Released {
                xid: xid(1, 0),
                held_ns: 30 * MS,
                in_doubt_ns: 20 * MS,
            },
        ),
    ];
    check(&mut blocking, steps, Some(5)).unwrap();
    let stats = Invariant::<World>::stats(&blocking);
    let get = |name: &str| stats.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    assert_eq!(get("xa.two-phase-commits"), Some(1));
    assert_eq!(get("xa.one-phase-commits"), Some(1));
    assert_eq!(get("xa.lock-held-max-ms n1"), Some(30));
    assert_eq!(get("xa.in-doubt-max-ms n1"), Some(20));
}

fn read(balances: serde_json::Value) -> Step {
    Step::History(
        1,
        HistoryEvent::new(1, OpType::Ok, OpFunction::Read, balances),
    )
}

#[test]
fn conservation_is_quiet_on_reads_that_add_up_and_on_reported_damage() {
    let steps = vec![
        read(json!({"a0": 15, "a1": 5})),
        // A heuristic rollback left the credit of a transfer committed: +5.
        applied(2, 1, 0, true, false, 5),
        applied(3, 1, 1, false, true, 0),
        read(json!({"a0": 20, "a1": 5})),
        // Failed or unknown operations are not checked.
        Step::History(
            4,
            HistoryEvent::new(2, OpType::Info, OpFunction::Read, json!(null)),
        ),
    ];
    check(&mut Conservation::new(2, 10), steps, Some(10)).unwrap();
}

#[test]
fn conservation_flags_each_broken_rule() {
    let cases = [
        (json!({"a0": 15, "a1": 6}), "adds up to 21, not 20"),
        (json!({"a0": 25, "a1": -5}), "a1 is negative"),
        (json!({"a0": 20}), "missing account a1"),
        (json!({"a0": 10, "a1": 10, "a9": 0}), "unknown accounts"),
        (json!(7), "not balances"),
    ];
    for (balances, expected) in cases {
        let error = check(&mut Conservation::new(2, 10), vec![read(balances)], None).unwrap_err();
        assert!(error.contains(expected), "{error}");
    }
    // Money moved without a heuristic decision is not excused.
    let steps = vec![
        applied(2, 1, 0, true, false, 5),
        read(json!({"a0": 20, "a1": 5})),
    ];
    let error = check(&mut Conservation::new(2, 10), steps, None).unwrap_err();
    assert!(error.contains("adds up to 25, not 20"), "{error}");
}

fn committed(order: u64, item: u32, qty: u32) -> Step {
    Step::Shop(1, 4, ShopObs::Committed { order, item, qty })
}

fn published(order: u64) -> Step {
    Step::Shop(2, 4, ShopObs::Published { order })
}

fn shop_applied(order: u64, item: u32, qty: u32) -> Step {
    Step::Shop(3, 5, ShopObs::Applied { order, item, qty })
}

fn stock(levels: &[i64]) -> Step {
    Step::Shop(
        3,
        5,
        ShopObs::Stock {
            levels: levels.to_vec(),
        },
    )
}

#[test]
fn published_flags_an_order_never_confirmed() {
    let steps = vec![
        committed(1, 0, 1),
        published(1),
        committed(2, 0, 1),
        published(2),
    ];
    check(&mut Published::new(5), steps, Some(10)).unwrap();
    let steps = vec![committed(1, 0, 1), committed(2, 0, 1), published(2)];
    let error = check(&mut Published::new(5), steps, Some(10)).unwrap_err();
    assert!(
        error.contains("1 committed orders were never published"),
        "{error}"
    );
}

/// An order committed moments before the end (clients still ordering) may not be
/// published or applied yet: neither checker counts it against the shop.
#[test]
fn orders_still_on_their_way_at_the_end_are_not_flagged() {
    let young = |order| {
        Step::Shop(
            8,
            4,
            ShopObs::Committed {
                order,
                item: 0,
                qty: 3,
            },
        )
    };
    let steps = vec![committed(1, 0, 1), published(1), young(2)];
    check(&mut Published::new(5), steps, Some(10)).unwrap();
    let steps = vec![
        stock(&[10, 10]),
        committed(1, 0, 1),
        shop_applied(1, 0, 1),
        stock(&[9, 10]),
        young(2),
    ];
    check(&mut Converged::new(5, 2, 10, 5), steps, Some(10)).unwrap();
}

#[test]
fn no_duplicates_flags_a_second_application_not_a_recognised_redelivery() {
    let steps = vec![
        shop_applied(1, 0, 1),
        Step::Shop(4, 5, ShopObs::Redelivered { order: 1 }),
    ];
    check(&mut NoDuplicates::default(), steps, Some(10)).unwrap();
    let steps = vec![shop_applied(1, 0, 1), shop_applied(1, 0, 1)];
    let error = check(&mut NoDuplicates::default(), steps, None).unwrap_err();
    assert!(error.contains("applied order 0x1 twice"), "{error}");
}

#[test]
fn converged_checks_the_stock_at_the_end_and_tracks_divergence() {
    let quiet = vec![
        stock(&[10, 10]),
        committed(1, 0, 3),
        committed(2, 1, 2),
        shop_applied(1, 0, 3),
        stock(&[7, 10]),
        shop_applied(2, 1, 2),
        stock(&[7, 8]),
    ];
    let mut converged = Converged::new(5, 2, 10, 5);
    check(&mut converged, quiet, Some(10)).unwrap();
    let mut samples = Vec::new();
    Invariant::<World>::take_samples(&mut converged, &mut samples);
    let divergence: Vec<u64> = samples.iter().map(|(_, _, v)| *v).collect();
    assert_eq!(divergence, [0, 1, 2, 1, 0]);
    // The warehouse lost an applied effect (a crash after an early ack).
    let lost = vec![
        committed(1, 0, 3),
        shop_applied(1, 0, 3),
        stock(&[7, 10]),
        Step::Crash(5),
        stock(&[10, 10]),
    ];
    let error = check(&mut Converged::new(5, 2, 10, 5), lost, Some(10)).unwrap_err();
    assert!(error.contains("applied effects were lost"), "{error}");
    let behind = vec![committed(1, 0, 3)];
    let error = check(&mut Converged::new(5, 2, 10, 5), behind, Some(10)).unwrap_err();
    assert!(error.contains("1 of them were never applied"), "{error}");
}
