//! Every RPC invariant, fed by hand: for each, a history it must flag and a correct one
//! it must stay quiet on, including the tricky correct ones (a forking call applied by
//! two providers, a consumer that crashed with calls open, a listing that dropped a
//! provider after the call went to it, a round robin whose provider list changed).

use sim_core::invariant::EndState;
use sim_core::proto::rpc::gateway::RateLimit;
use sim_core::proto::rpc::invariants::{
    AnsweredOnce, AtMostOnce, CallsEnd, FreshProviders, GatewayGuards, Load, RateLimitReplay,
    RoundRobinReplay,
};
use sim_core::proto::rpc::{Obs, RpcError};
use sim_core::proto::world::World;
use sim_core::{Invariant, NodeId};

const MS: u64 = 1_000_000;

enum Step {
    Obs(u64, NodeId, Obs),
    Crash(NodeId),
    Pause(u64, NodeId),
    Resume(u64, NodeId),
}

fn check(
    invariant: &mut dyn Invariant<World>,
    steps: Vec<Step>,
    end_ns: Option<u64>,
) -> Result<(), String> {
    for step in steps {
        match step {
            Step::Obs(time, node, obs) => invariant.on_observation(time, node, &obs.into())?,
            Step::Crash(node) => invariant.on_crash(node),
            Step::Pause(time, node) => invariant.on_pause(node, time),
            Step::Resume(time, node) => invariant.on_resume(node, time),
        }
    }
    match end_ns {
        Some(time_ns) => invariant.at_end(&EndState {
            time_ns,
            up: vec![true; 8],
        }),
        None => Ok(()),
    }
}

fn invoked(time: u64, node: NodeId, call: u64, fanout: bool) -> Step {
    Step::Obs(
        time,
        node,
        Obs::Invoked {
            call,
            trace_id: call,
            root: true,
            token: None,
            service: "inventory".into(),
            method: "reserve".into(),
            idempotent: false,
            fanout,
            deadline_ns: 500 * MS,
        },
    )
}

fn done(time: u64, node: NodeId, call: u64) -> Step {
    Step::Obs(
        time,
        node,
        Obs::Done {
            call,
            error: None,
            empty: false,
        },
    )
}

fn applied(time: u64, provider: NodeId, consumer: NodeId, call: u64) -> Step {
    Step::Obs(time, provider, Obs::Applied { consumer, call })
}

fn listed(time: u64, node: NodeId, providers: &[NodeId]) -> Step {
    Step::Obs(
        time,
        node,
        Obs::Listed {
            service: "inventory".into(),
            providers: providers.to_vec(),
        },
    )
}

fn attempt(time: u64, node: NodeId, call: u64, provider: NodeId) -> Step {
    Step::Obs(
        time,
        node,
        Obs::Attempt {
            call,
            service: "inventory".into(),
            provider,
            balancer: "random",
        },
    )
}

#[test]
fn answered_once_flags_a_second_answer_and_not_two_calls_or_two_consumers() {
    let twice = vec![invoked(0, 6, 1, false), done(MS, 6, 1), done(2 * MS, 6, 1)];
    let error = check(&mut AnsweredOnce::default(), twice, None).unwrap_err();
    assert!(error.contains("answered call 0x1 twice"), "{error}");
    let fine = vec![done(MS, 6, 1), done(MS, 6, 2), done(MS, 7, 1)];
    assert_eq!(check(&mut AnsweredOnce::default(), fine, None), Ok(()));
}

#[test]
fn at_most_once_flags_a_write_applied_by_two_providers() {
    let steps = vec![
        invoked(0, 6, 1, false),
        applied(MS, 3, 6, 1),
        applied(2 * MS, 4, 6, 1),
    ];
    let error = check(&mut AtMostOnce::default(), steps, None).unwrap_err();
    assert!(
        error.contains("applied by provider 3 and again by provider 4"),
        "{error}"
    );
    // The same provider applying it twice (a duplicated request) is as wrong.
    let steps = vec![
        invoked(0, 6, 1, true),
        applied(MS, 3, 6, 1),
        applied(2 * MS, 3, 6, 1),
    ];
    assert!(check(&mut AtMostOnce::default(), steps, None).is_err());
}

#[test]
fn at_most_once_is_quiet_on_forking_and_on_other_consumers_calls() {
    // A forking or broadcast call is meant to reach several providers, once each.
    let steps = vec![
        invoked(0, 6, 1, true),
        applied(MS, 3, 6, 1),
        applied(MS, 4, 6, 1),
        invoked(0, 7, 1, false),
        applied(MS, 3, 7, 1),
        applied(MS, 3, 6, 2),
    ];
    assert_eq!(check(&mut AtMostOnce::default(), steps, None), Ok(()));
}

#[test]
fn calls_end_flags_a_call_past_its_deadline_and_a_call_open_at_the_end() {
    // Deadline 500 ms plus an eighth for clock drift plus 1 ms: due at 563.5 ms.
    let late = vec![invoked(0, 6, 1, false), done(600 * MS, 6, 1)];
    let error = check(&mut CallsEnd::default(), late, None).unwrap_err();
    assert!(
        error.contains("call 0x1 of consumer 6 has not ended"),
        "{error}"
    );
    let open = vec![invoked(0, 6, 1, false)];
    let error = check(&mut CallsEnd::default(), open, Some(2_000 * MS)).unwrap_err();
    assert!(error.starts_with("no progress"), "{error}");
}

#[test]
fn calls_end_is_quiet_on_answers_in_time_and_a_consumer_that_crashed() {
    let steps = vec![
        invoked(0, 6, 1, false),
        done(560 * MS, 6, 1),
        invoked(0, 7, 1, false),
        Step::Crash(7),
        invoked(900 * MS, 6, 2, false),
        done(1_000 * MS, 6, 2),
    ];
    assert_eq!(
        check(&mut CallsEnd::default(), steps, Some(5_000 * MS)),
        Ok(())
    );
}

#[test]
fn fresh_providers_flags_a_call_to_a_provider_the_listing_dropped() {
    let steps = vec![
        listed(0, 6, &[3, 4]),
        attempt(MS, 6, 1, 3),
        listed(2 * MS, 6, &[4]),
        attempt(3 * MS, 6, 2, 3),
    ];
    let error = check(&mut FreshProviders::default(), steps, None).unwrap_err();
    assert!(error.contains("sent call 0x2 to provider 3"), "{error}");
    // Before any listing, nothing may be called.
    let steps = vec![attempt(MS, 6, 1, 3)];
    assert!(check(&mut FreshProviders::default(), steps, None).is_err());
}

#[test]
fn fresh_providers_is_quiet_on_a_provider_that_came_back_and_a_restarted_consumer() {
    let steps = vec![
        listed(0, 6, &[3, 4]),
        attempt(MS, 6, 1, 3),
        listed(2 * MS, 6, &[4]),
        attempt(3 * MS, 6, 2, 4),
        listed(4 * MS, 6, &[3, 4]),
        attempt(5 * MS, 6, 3, 3),
        Step::Crash(6),
        listed(6 * MS, 6, &[4]),
        attempt(7 * MS, 6, 4, 4),
    ];
    assert_eq!(check(&mut FreshProviders::default(), steps, None), Ok(()));
}

fn round_robin(time: u64, node: NodeId, providers: &[(&str, u32)], chosen: usize) -> Step {
    Step::Obs(
        time,
        node,
        Obs::RoundRobin {
            key: "inventory.stock".into(),
            now_ms: time / MS,
            providers: providers.iter().map(|(p, w)| (p.to_string(), *w)).collect(),
            chosen,
        },
    )
}

#[test]
fn round_robin_flags_a_choice_the_smooth_round_robin_would_not_make() {
    let weights = [("a", 100), ("b", 200)];
    // Smooth weighted round robin over a:1, b:2 goes b, a, b.
    let forgetful = vec![
        round_robin(MS, 6, &weights, 1),
        round_robin(2 * MS, 6, &weights, 1),
    ];
    let error = check(&mut RoundRobinReplay::default(), forgetful, None).unwrap_err();
    assert!(
        error.contains("chose b where the smooth weighted round robin chooses a"),
        "{error}"
    );
}

#[test]
fn round_robin_is_quiet_on_the_smooth_sequence_across_a_list_change_and_a_restart() {
    let weights = [("a", 100), ("b", 200)];
    let three = [("a", 100), ("b", 200), ("c", 100)];
    let steps = vec![
        round_robin(MS, 6, &weights, 1),
        round_robin(2 * MS, 6, &weights, 0),
        round_robin(3 * MS, 6, &weights, 1),
        // A new provider joins: its state starts at zero beside the others'.
        round_robin(4 * MS, 6, &three, 1),
        Step::Crash(6),
        round_robin(5 * MS, 6, &weights, 1),
    ];
    assert_eq!(check(&mut RoundRobinReplay::default(), steps, None), Ok(()));
}

#[test]
fn load_counts_attempts_failures_and_latencies_per_service() {
    let mut load = Load::default();
    let steps = vec![
        invoked(0, 6, 1, false),
        attempt(0, 6, 1, 3),
        done(4 * MS, 6, 1),
        invoked(0, 6, 2, false),
        attempt(0, 6, 2, 3),
        Step::Obs(
            10 * MS,
            6,
            Obs::Done {
                call: 2,
                error: Some(RpcError::Timeout),
                empty: false,
            },
        ),
    ];
    assert_eq!(check(&mut load, steps, None), Ok(()));
    let stats = Invariant::<World>::stats(&load);
    let stat = |name: &str| stats.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    assert_eq!(stat("rpc.calls"), Some(2));
    assert_eq!(stat("rpc.failed.timeout"), Some(1));
    assert_eq!(stat("rpc.load.random.n3"), Some(2));
    assert_eq!(stat("rpc.latency-us.inventory.p50"), Some(10_000));
    assert_eq!(stat("rpc.latency-us.inventory.p90"), Some(10_000));
}

fn client_call(node: NodeId, trace_id: u64, token: Option<&str>) -> Step {
    Step::Obs(
        0,
        node,
        Obs::Invoked {
            call: 1,
            trace_id,
            root: true,
            token: token.map(str::to_string),
            service: "orders".into(),
            method: "place".into(),
            idempotent: false,
            fanout: false,
            deadline_ns: 500 * MS,
        },
    )
}

fn served(node: NodeId, trace_id: u64) -> Step {
    Step::Obs(
        MS,
        node,
        Obs::Served {
            consumer: 7,
            method: "place".into(),
            trace_id,
        },
    )
}

fn guards() -> GatewayGuards {
    GatewayGuards::new([10, 11], ["good".to_string()])
}

#[test]
fn gateway_guards_flag_a_call_without_a_valid_credential_that_was_served() {
    let steps = vec![client_call(11, 0xbad, None), served(3, 0xbad)];
    let error = check(&mut guards(), steps, None).unwrap_err();
    assert!(
        error.contains("caller 11 started without a valid credential"),
        "{error}"
    );
    let steps = vec![client_call(10, 0xbad, Some("forged")), served(6, 0xbad)];
    assert!(check(&mut guards(), steps, None).is_err());
}

#[test]
fn gateway_guards_are_quiet_on_good_credentials_and_direct_consumers() {
    let steps = vec![
        client_call(10, 1, Some("good")),
        served(3, 1),
        // A consumer that calls providers directly presents no credential: not a
        // gateway caller.
        client_call(12, 2, None),
        served(3, 2),
        // A refused caller whose call nobody served.
        client_call(11, 3, None),
        served(3, 4),
    ];
    assert_eq!(check(&mut guards(), steps, None), Ok(()));
}

fn gate(node: NodeId, clock_ms: u64, admitted: bool) -> Step {
    let caller = "alice".to_string();
    let clock_ns = clock_ms * MS;
    let obs = if admitted {
        Obs::Admitted {
            caller,
            clock_ns,
            trace_id: 1,
        }
    } else {
        Obs::Limited { caller, clock_ns }
    };
    Step::Obs(clock_ns, node, obs)
}

fn replay() -> RateLimitReplay {
    RateLimitReplay::new(RateLimit {
        rate_per_s: 10,
        burst: 2,
    })
}

#[test]
fn rate_limit_flags_an_admission_beyond_the_bucket() {
    let steps = vec![gate(7, 0, true), gate(7, 0, true), gate(7, 50, true)];
    let error = check(&mut replay(), steps, None).unwrap_err();
    assert!(
        error.contains("beyond its rate limit (10 per second, burst 2)"),
        "{error}"
    );
    // An idle second refills to the burst, not beyond.
    let steps = vec![
        gate(7, 0, true),
        gate(7, 1_000, true),
        gate(7, 1_000, true),
        gate(7, 1_000, true),
    ];
    assert!(check(&mut replay(), steps, None).is_err());
}

#[test]
fn rate_limit_is_quiet_on_refills_refusals_and_a_restarted_gateway() {
    let steps = vec![
        gate(7, 0, true),
        gate(7, 0, true),
        gate(7, 10, false),
        gate(7, 100, true),
        // A restarted gateway starts every caller with a full bucket.
        Step::Crash(7),
        gate(7, 110, true),
        gate(7, 110, true),
        // Another gateway keeps its own buckets.
        gate(8, 110, true),
    ];
    assert_eq!(check(&mut replay(), steps, None), Ok(()));
}

#[test]
fn calls_end_gives_a_paused_consumer_its_pause_back_and_no_more() {
    // Paused from 100 ms to 1.1 s: due at 563.5 ms + 1 s.
    let steps = vec![
        invoked(0, 6, 1, false),
        Step::Pause(100 * MS, 6),
        invoked(200 * MS, 7, 1, false),
        done(300 * MS, 7, 1),
        Step::Resume(1_100 * MS, 6),
        done(1_100 * MS, 6, 1),
    ];
    assert_eq!(check(&mut CallsEnd::default(), steps, None), Ok(()));
    let steps = vec![
        invoked(0, 6, 1, false),
        Step::Pause(100 * MS, 6),
        Step::Resume(1_100 * MS, 6),
        done(1_600 * MS, 6, 1),
    ];
    let error = check(&mut CallsEnd::default(), steps, None).unwrap_err();
    assert!(error.contains("call 0x1 of consumer 6"), "{error}");
}
