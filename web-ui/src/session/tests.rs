//! The session against a run replayed from event 0: seeks, steps back, checkpoints,
//! panics, metrics and the arrangements of sides the chart draws ahead.

use super::*;
use sim_core::engine::run_to_end;

fn finish(session: &mut Session) {
    let mut slices = 0;
    while session.advance() {
        slices += 1;
        assert!(slices < 1_000_000, "the run ends");
    }
}

/// The page must show the hash the CLI prints: run in slices, hash as in one go.
#[test]
fn a_sliced_run_ends_with_the_same_hash_as_run_to_end() {
    // The million-event built-ins have their own test (sim-core's determinism).
    for (name, _) in scenario::BUILTINS
        .iter()
        .filter(|(n, _)| !scenario::is_large(n))
    {
        let mut session = Session::open(&format!("?scenario={name}&seed=2")).unwrap();
        assert_eq!(session.trace_hash(), None, "no hash before the end");
        finish(&mut session);
        let text = scenario::builtin(name).unwrap();
        let parsed = scenario::parse("x.toml", text).unwrap();
        let mut whole = parsed.build(&RunOptions {
            seed: Some(2),
            ..Default::default()
        });
        let report = run_to_end(whole.as_mut());
        assert_eq!(session.trace_hash(), Some(report.trace_hash), "{name}");
        assert!(session.progress().finished);
        assert_eq!(session.progress().events, report.events);
        assert_eq!(session.findings(), &report.findings[..]);
    }
}

#[test]
fn scrubbing_back_and_forth_shows_the_same_state_at_the_same_event() {
    let mut session = Session::open("?scenario=registry-tour&seed=3").unwrap();
    finish(&mut session);
    session.seek(5_000);
    let (nodes, time) = (session.nodes(), session.progress().now_ns);
    let retained: Vec<TraceEvent> = session.events().to_vec();
    session.seek(9_000);
    assert!(session.progress().now_ns >= time);
    session.seek(5_000);
    assert_eq!(
        session.nodes(),
        nodes,
        "the same state after scrubbing back"
    );
    assert_eq!(session.progress().now_ns, time);
    assert_eq!(session.events(), &retained[..]);
    session.step_back();
    assert!(session.cursor() < retained.len() as u64);
}

/// What the cursor must show at `event`: a fresh run stepped from event 0 to the end
/// of the step that recorded it, as the page did before checkpoints.
fn replayed(session: &Session, event: u64) -> (Vec<NodeView>, u64, u64) {
    let mut run = session.scenario.build(&RunOptions {
        seed: Some(session.seed),
        ..Default::default()
    });
    while run.trace().events() <= event && run.step() {}
    (run.nodes(), run.now_ns(), run.trace().events())
}

fn here(session: &Session) -> (Vec<NodeView>, u64, u64) {
    (session.nodes(), session.progress().now_ns, session.cursor())
}

#[test]
fn checkpointed_seeks_and_steps_back_land_where_a_replay_from_zero_does() {
    let mut session = Session::open("?scenario=broker-dead-letter-crash&seed=4").unwrap();
    finish(&mut session);
    let events = session.summary().unwrap().events;
    let (count, interval) = session.checkpoints();
    assert!(count <= CHECKPOINTS_MAX && interval >= CHECKPOINT_INTERVAL_MIN);
    assert!(
        count as u64 >= events / interval,
        "{count} checkpoints every {interval} of {events} events"
    );
    // Backwards, forwards, far and near, across checkpoints and inside one.
    let mut targets = vec![events - 1, 0, 1, events / 2, 17, events + 5];
    targets.extend((1..40).map(|k| k * 7_919 % events));
    for event in targets {
        session.seek(event);
        assert_eq!(here(&session), replayed(&session, event), "seek {event}");
        assert_eq!(session.events().len() as u64, session.cursor());
    }
    session.seek(events / 3);
    for _ in 0..50 {
        let cursor = session.cursor();
        session.step_back();
        assert!(session.cursor() < cursor);
        let mut probe = session.scenario.build(&RunOptions {
            seed: Some(session.seed),
            ..Default::default()
        });
        while probe.trace().events() < session.cursor() && probe.step() {}
        assert_eq!(
            here(&session),
            (probe.nodes(), probe.now_ns(), session.cursor())
        );
        // The next step that records anything ends where the cursor stood.
        while probe.trace().events() == session.cursor() && probe.step() {}
        assert_eq!(probe.trace().events(), cursor, "one step back");
    }
    // The steps back left a trail, and replayed from it after the first.
    assert!((1..=TRAIL_MAX).contains(&session.trail.len()));
    let (&left, _) = session.trail.iter().next().expect("a trail snapshot");
    assert!(left <= session.cursor() && session.cursor() - left <= TRAIL_STRIDE + 50);
    // A move into another checkpoint's interval drops the trail.
    assert!(
        session.trail_from > 0,
        "the steps back were past the first checkpoint"
    );
    session.seek(0);
    assert!(session.trail.is_empty());
}

/// The cursor's samples are cut from the first pass's; they must be what a replay to
/// the same event has, forwards, backwards and at the ends.
#[test]
fn the_cursors_metrics_are_a_replays() {
    let mut session = Session::open("?scenario=cap-partition&seed=2").unwrap();
    finish(&mut session);
    let events = session.summary().unwrap().events;
    assert!(
        session.metrics_all().len() > 100,
        "the scenario reports metrics"
    );
    for event in [events / 2, 3, events - 1, events / 5, 0, events * 3 / 4] {
        session.seek(event);
        let mut run = session.scenario.build(&RunOptions {
            seed: Some(session.seed),
            ..Default::default()
        });
        while run.trace().events() <= event && run.step() {}
        assert_eq!(session.metrics(), run.metrics().to_vec(), "seek {event}");
    }
}

/// The chart draws one image per arrangement of sides ahead of the cursor: every
/// arrangement the cursor can stand in must be among those the first pass noted.
#[test]
fn every_arrangement_of_sides_the_cursor_meets_was_noted_by_the_first_pass() {
    let mut session = Session::open("?scenario=registry-partition-minority&seed=1").unwrap();
    finish(&mut session);
    let noted = session.arrangements().to_vec();
    assert!(
        noted[0].iter().all(|side| *side == noted[0][0]),
        "whole first"
    );
    let events = session.summary().unwrap().events;
    let mut met = std::collections::BTreeSet::new();
    for k in 0..=200 {
        session.seek(events * k / 200);
        met.insert(session.sides());
    }
    assert!(
        met.len() >= 2,
        "the scenario partitions the network: {met:?}"
    );
    for sides in &met {
        assert!(noted.contains(sides), "{sides:?} not among {noted:?}");
    }

    let mut whole = Session::open("?scenario=ping-pong&seed=1").unwrap();
    finish(&mut whole);
    assert_eq!(
        whole.arrangements().len(),
        1,
        "no partition, one arrangement"
    );
}

/// The chart's rows are counted on every render during the first pass, and once for
/// the finished run.
#[test]
fn the_finished_runs_chart_rows_are_counted_once() {
    let mut session = Session::open("?scenario=cap-partition&seed=1").unwrap();
    let counted = std::cell::Cell::new(0);
    let count = || {
        counted.set(counted.get() + 1);
        2
    };
    assert_eq!(
        (session.chart_rows(count), session.chart_rows(count)),
        (2, 2)
    );
    assert_eq!(counted.get(), 2, "the first pass may still add a protocol");
    finish(&mut session);
    session.seek(10);
    assert_eq!(
        (session.chart_rows(count), session.chart_rows(|| 7)),
        (2, 2)
    );
    assert_eq!(counted.get(), 3);
}

/// A node's panic: the page, told the step, stops before it and ends as the CLI
/// does (same findings, same hash), and never runs that step while scrubbing.
#[test]
fn a_run_told_where_it_panics_ends_there_as_the_cli_does() {
    let bug = "ping-pong.assert-current-round";
    let parsed = scenario::parse("x.toml", scenario::builtin("ping-pong-lossy").unwrap()).unwrap();
    let mut bugs = BugSet::default();
    sim_core::catalogue::enable_bug(&mut bugs, bug).unwrap();
    let mut native = parsed.build(&RunOptions {
        seed: Some(1),
        bugs,
        ..Default::default()
    });
    let report = run_to_end(native.as_mut());
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let finding = &report.findings[0];
    assert_eq!(finding.invariant, "panic");
    let request = Request {
        scenario: Some("ping-pong-lossy".into()),
        seed: Some(1),
        bugs: vec![bug.into()],
        panic: Some((native.steps() - 1, finding.message.clone())),
        ..Request::default()
    };
    let mut session = Session::open(&to_query(&request)).unwrap();
    finish(&mut session);
    assert_eq!(session.trace_hash(), Some(report.trace_hash.clone()));
    assert_eq!(session.findings(), &report.findings[..]);
    let end = session.summary().unwrap().events;
    session.seek(0);
    session.seek(end);
    assert_eq!(session.cursor(), end);
    assert!(!session.step(), "the run ends at the panic");
    session.step_back();
    while session.step() {}
    assert_eq!(session.cursor(), end);
}

/// A compared run follows the cursor by virtual time: it stands after the last event
/// at or before that time.
#[test]
fn seeking_a_time_stands_after_the_last_event_at_or_before_it() {
    let mut session = Session::open("?scenario=registry-basic&seed=2").unwrap();
    finish(&mut session);
    for time_ns in [0, 1, 123_456_789, 2_000_000_000, u64::MAX] {
        session.seek_time(time_ns);
        let all = session.log();
        let cursor = session.cursor() as usize;
        assert!(
            all[..cursor].iter().all(|e| e.time_ns <= time_ns),
            "{time_ns}"
        );
        let next = all.get(cursor).map_or(u64::MAX, |e| e.time_ns);
        assert!(
            next > time_ns || cursor == all.len(),
            "{time_ns}: next at {next}"
        );
    }
}

#[test]
fn an_injected_fault_is_an_address_that_replays_with_it() {
    let mut session = Session::open("?scenario=registry-basic&seed=1").unwrap();
    finish(&mut session);
    let hash = session.trace_hash().unwrap();
    session.seek(3_000);
    let query = session.inject(&[Fault::Crash { node: 0 }]).unwrap();
    assert!(query.contains("fault=crash:0@"), "{query}");
    let mut again = Session::open(&query).unwrap();
    finish(&mut again);
    assert_ne!(
        again.trace_hash().unwrap(),
        hash,
        "the crash changes the run"
    );
    let mut twice = Session::open(&query).unwrap();
    finish(&mut twice);
    assert_eq!(
        again.trace_hash(),
        twice.trace_hash(),
        "and replays exactly"
    );
    let down = again.nodes().iter().find(|n| n.id == 0).unwrap().status;
    assert_eq!(down, "down", "the page opens at the crash");
}

#[test]
fn faults_after_the_fault_phase_are_refused() {
    let mut session = Session::open("?scenario=registry-basic&seed=1").unwrap();
    finish(&mut session);
    let error = session.inject(&[Fault::Heal]).unwrap_err();
    assert!(error.contains("fault phase"), "{error}");
}

#[test]
fn a_pasted_scenario_reports_located_errors() {
    let error = Session::open_text("name = \"x\"\nprotocl = \"registry\"\n", None)
        .err()
        .unwrap();
    assert!(error.contains("pasted.toml:2:1"), "{error}");
}

#[test]
fn no_query_runs_the_default_scenario_at_its_own_seed() {
    let session = Session::open("").unwrap();
    assert_eq!(session.scenario().name, scenario::DEFAULT_SCENARIO);
    assert_eq!(session.seed(), session.scenario().seed);
    assert_eq!(
        session.nodes().len() as u32,
        session.scenario().node_count()
    );
}

#[test]
fn an_unknown_scenario_names_the_built_ins_and_a_suggestion() {
    let error = Session::open("?scenario=ping-pnog").err().unwrap();
    assert!(error.contains("unknown scenario `ping-pnog`"), "{error}");
    assert!(error.contains("built-in: "), "{error}");
    assert!(error.contains("did you mean `ping-pong`?"), "{error}");
}

#[test]
fn bad_seeds_bugs_and_faults_are_errors() {
    let error = Session::open("?scenario=ping-pong&seed=x").err().unwrap();
    assert!(error.contains("bad seed `x`"), "{error}");
    let error = Session::open("?scenario=ping-pong&bug=zab.nope")
        .err()
        .unwrap();
    assert!(error.contains("zab.nope"), "{error}");
    let error = Session::open("?scenario=ping-pong&fault=crash:99@1ms")
        .err()
        .unwrap();
    assert!(error.contains("names node 99"), "{error}");
}

/// `faultline shrink` prints an address holding the file: the page runs that file.
#[test]
fn a_scenario_in_the_address_runs_as_the_file_does_and_keeps_its_address() {
    let text = scenario::builtin("broker-topics").unwrap();
    let parsed = scenario::parse("x.toml", text).unwrap();
    let request = Request {
        toml: Some(scenario::to_toml(&parsed)),
        seed: Some(4),
        ..Request::default()
    };
    let mut session = Session::open(&to_query(&request)).unwrap();
    finish(&mut session);
    let mut whole = parsed.build(&RunOptions {
        seed: Some(4),
        ..Default::default()
    });
    assert_eq!(
        session.trace_hash(),
        Some(run_to_end(whole.as_mut()).trace_hash)
    );
    let here = session.request_here();
    assert_eq!(here.toml, request.toml, "the address still holds the file");
    assert!(to_query(&here).contains("toml=name%20%3D"));
    let error = Session::open("?toml=name%20%3D%201").err().unwrap();
    assert!(error.contains("address.toml:1:8"), "{error}");
}

#[test]
fn a_pasted_scenario_gets_an_address_and_takes_injected_faults() {
    let text = scenario::builtin("ping-pong").unwrap();
    let session = Session::open_text(text, Some(2)).unwrap();
    let address = session.inject(&[Fault::Crash { node: 0 }]).unwrap();
    assert!(address.contains("toml=") && address.contains("fault=crash:0@0ns"));
    let again = Session::open(&address).unwrap();
    assert_eq!(again.scenario().name, "ping-pong");
}
