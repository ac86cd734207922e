//! Each broker checker fed by hand: a history it must flag and correct ones it must stay
//! quiet on, including the broker's legal surprises (a dead-lettered message back in its
//! source after a crash, a message beside its own dead-lettered copy, a restarted
//! publisher).

use super::*;
use crate::proto::world::World;

fn enqueued(id: u64, durable: bool) -> Obs {
    Obs::Enqueued {
        queue: "q".into(),
        copy: (id, 0),
        durable,
        from: None,
    }
}

fn delivered(queue: &str, copy: CopyId, redelivered: bool) -> Obs {
    Obs::Delivered {
        queue: queue.into(),
        copy,
        redelivered,
        auto_ack: false,
        consumer: 7,
    }
}

fn dropped(queue: &str, copy: CopyId, reason: DropReason) -> Obs {
    Obs::Dropped {
        queue: queue.into(),
        copy,
        reason,
    }
}

fn recovered(queues: &[(&str, &[CopyId])]) -> Obs {
    Obs::Recovered {
        queues: queues
            .iter()
            .map(|(q, copies)| (q.to_string(), copies.to_vec()))
            .collect(),
    }
}

/// A copy of message `id` dead-lettered from `source` (copy `from`) into `queue`.
fn dead_lettered(queue: &str, copy: CopyId, source: &str, from: CopyId) -> Obs {
    Obs::Enqueued {
        queue: queue.into(),
        copy,
        durable: true,
        from: Some((source.into(), from)),
    }
}

fn feed<I: Invariant<World>>(invariant: &mut I, observations: &[Obs]) -> Result<(), String> {
    feed_from(invariant, 0, observations)
}

fn feed_from<I: Invariant<World>>(
    invariant: &mut I,
    node: NodeId,
    observations: &[Obs],
) -> Result<(), String> {
    observations
        .iter()
        .try_for_each(|obs| invariant.on_observation(0, node, &obs.clone().into()))
}

fn end(up: usize) -> EndState {
    EndState {
        time_ns: 0,
        up: vec![true; up],
    }
}

#[test]
fn a_confirmed_durable_message_missing_after_recovery_is_a_violation() {
    let mut check = ConfirmedDurable::new();
    let crash = [
        enqueued(1, true),
        Obs::Confirmed { id: 1 },
        recovered(&[("q", &[])]),
    ];
    let error = feed(&mut check, &crash).unwrap_err();
    assert!(
        error.contains("confirmed persistent message 0x1"),
        "{error}"
    );
}

#[test]
fn unconfirmed_or_transient_or_processed_messages_may_vanish_in_a_crash() {
    let mut check = ConfirmedDurable::new();
    let observations = [
        enqueued(1, true),  // never confirmed
        enqueued(2, false), // transient
        Obs::Confirmed { id: 2 },
        enqueued(3, true),
        Obs::Confirmed { id: 3 },
        Obs::Processed {
            queue: "q".into(),
            copy: (3, 0),
        }, // acked before the crash
        recovered(&[("q", &[])]),
    ];
    assert_eq!(feed(&mut check, &observations), Ok(()));
}

#[test]
fn a_dead_lettered_message_back_in_its_source_after_a_crash_survived() {
    // Rejected from q into dlq shortly before the crash: the move was not synced, so
    // the broker recovers the message in q. The old checker looked only in dlq.
    let mut check = ConfirmedDurable::new();
    let observations = [
        enqueued(1, true),
        Obs::Confirmed { id: 1 },
        dropped("q", (1, 0), DropReason::Rejected),
        dead_lettered("dlq", (1, 9), "q", (1, 0)),
        recovered(&[("q", &[(1, 0)]), ("dlq", &[])]),
    ];
    assert_eq!(feed(&mut check, &observations), Ok(()));
    // In neither queue, it is lost.
    let mut check = ConfirmedDurable::new();
    let observations = [
        enqueued(1, true),
        Obs::Confirmed { id: 1 },
        dropped("q", (1, 0), DropReason::Rejected),
        dead_lettered("dlq", (1, 9), "q", (1, 0)),
        recovered(&[("q", &[]), ("dlq", &[])]),
    ];
    let error = feed(&mut check, &observations).unwrap_err();
    assert!(error.contains("dead-lettered copy"), "{error}");
}

#[test]
fn at_least_once_reports_unprocessed_messages_and_counts_auto_ack_losses() {
    let mut check = AtLeastOnce::new(0, SECOND);
    let observations = [
        enqueued(1, true),
        enqueued(2, true),
        dropped("q", (2, 0), DropReason::AutoAcked),
    ];
    feed(&mut check, &observations).unwrap();
    let error = Invariant::<World>::at_end(&mut check, &end(1)).unwrap_err();
    assert!(
        error.starts_with("no progress: 1 accepted messages"),
        "{error}"
    );
    assert!(Invariant::<World>::stats(&check).contains(&("broker.auto-ack-lost".to_string(), 1)));
}

const SECOND: u64 = 1_000_000_000;

fn end_at(time_ns: u64) -> EndState {
    EndState {
        time_ns,
        up: vec![true; 1],
    }
}

/// Feeds one observation at virtual time `time_ns`.
fn at(check: &mut AtLeastOnce, time_ns: u64, obs: Obs) {
    Invariant::<World>::on_observation(check, time_ns, 0, &obs.into()).unwrap();
}

#[test]
fn a_backlog_still_draining_at_the_end_is_not_a_stall() {
    let mut check = AtLeastOnce::new(0, SECOND);
    feed(&mut check, &[enqueued(1, true), enqueued(2, true)]).unwrap();
    at(&mut check, 5 * SECOND, delivered("q", (1, 0), false));
    let processed = Obs::Processed {
        queue: "q".into(),
        copy: (1, 0),
    };
    at(&mut check, 5 * SECOND, processed);
    // Copy 2 waits behind a queue that processed something half a second ago.
    let half_later = end_at(5 * SECOND + SECOND / 2);
    assert_eq!(Invariant::<World>::at_end(&mut check, &half_later), Ok(()));
    let draining = ("broker.draining-at-end".to_string(), 1);
    assert!(Invariant::<World>::stats(&check).contains(&draining));
    // The same queue idle for two seconds: copy 2 is stuck.
    let error = Invariant::<World>::at_end(&mut check, &end_at(7 * SECOND)).unwrap_err();
    assert!(
        error.starts_with("no progress: 1 accepted messages"),
        "{error}"
    );
}

#[test]
fn a_copy_handed_out_long_ago_is_stuck_however_busy_its_queue() {
    let mut check = AtLeastOnce::new(0, SECOND);
    feed(&mut check, &[enqueued(1, true), enqueued(2, true)]).unwrap();
    // Copy 1 went to a consumer at 1 s and never came back; copy 2 flows at 5 s.
    at(&mut check, SECOND, delivered("q", (1, 0), false));
    at(&mut check, 5 * SECOND, delivered("q", (2, 0), false));
    let error = Invariant::<World>::at_end(&mut check, &end_at(5 * SECOND)).unwrap_err();
    assert!(
        error.contains("no progress: 1 accepted messages"),
        "{error}"
    );
    assert!(error.contains("0x1 "), "{error}");
}

#[test]
fn a_broker_crash_excuses_transient_messages() {
    let mut check = AtLeastOnce::new(0, SECOND);
    feed(&mut check, &[enqueued(1, false)]).unwrap();
    Invariant::<World>::on_crash(&mut check, 0);
    assert_eq!(Invariant::<World>::at_end(&mut check, &end(1)), Ok(()));
}

#[test]
fn queue_order_catches_a_consumer_seeing_a_later_message_first() {
    let mut check = QueueOrder::default();
    let error = feed(
        &mut check,
        &[
            enqueued(1, true),
            enqueued(2, true),
            delivered("q", (2, 0), false),
            delivered("q", (1, 0), false),
        ],
    );
    assert!(error.unwrap_err().contains("after a later one"));
}

#[test]
fn queue_order_stops_checking_a_queue_once_it_requeued() {
    let mut check = QueueOrder::default();
    let observations = [
        enqueued(1, true),
        enqueued(2, true),
        delivered("q", (2, 0), false),
        delivered("q", (2, 0), true),
        delivered("q", (1, 0), false),
    ];
    assert_eq!(feed(&mut check, &observations), Ok(()));
}

/// A recovered broker hands out its queues afresh: the queues that held copies stop
/// being checked, and one first filled after the crash still is, on its own numbers.
#[test]
fn queue_order_after_a_broker_recovery() {
    let into = |queue: &str, id: u64| Obs::Enqueued {
        queue: queue.into(),
        copy: (id, 0),
        durable: true,
        from: None,
    };
    let mut check = QueueOrder::default();
    let observations = [
        into("q", 1),
        into("q", 2),
        recovered(&[("q", &[(1, 0), (2, 0)])]),
        delivered("q", (2, 0), false),
        delivered("q", (1, 0), false),
    ];
    assert_eq!(feed(&mut check, &observations), Ok(()));
    let error = feed(
        &mut check,
        &[
            into("later", 3),
            into("later", 4),
            delivered("later", (4, 0), false),
            delivered("later", (3, 0), false),
        ],
    );
    assert!(error.unwrap_err().contains("3 in `later`"));
}

#[test]
fn a_message_beside_its_own_dead_lettered_copy_is_in_order_and_no_duplicate() {
    // Fanout into q and q2; q's copy is rejected and dead-lettered into q2, where the
    // first copy still waits. RabbitMQ allows it: two copies.
    let observations = [
        Obs::Enqueued {
            queue: "q2".into(),
            copy: (1, 0),
            durable: true,
            from: None,
        },
        enqueued(1, true),
        dropped("q", (1, 0), DropReason::Rejected),
        dead_lettered("q2", (1, 9), "q", (1, 0)),
        delivered("q2", (1, 0), false),
        delivered("q2", (1, 9), false),
    ];
    assert_eq!(feed(&mut NoDuplicates::default(), &observations), Ok(()));
    assert_eq!(feed(&mut QueueOrder::default(), &observations), Ok(()));
}

#[test]
fn one_publish_in_one_queue_twice_is_a_duplicate() {
    let mut check = NoDuplicates::default();
    assert!(feed(&mut check, &[enqueued(1, true), enqueued(1, true)]).is_err());
    let mut check = NoDuplicates::default();
    let ok = [
        enqueued(1, true),
        Obs::Processed {
            queue: "q".into(),
            copy: (1, 0),
        },
        enqueued(1, true),
    ];
    assert_eq!(
        feed(&mut check, &ok),
        Ok(()),
        "a copy after the first left is not a duplicate"
    );
}

fn told(id: u64, outcome: Outcome) -> Obs {
    Obs::Told { id, outcome }
}

#[test]
fn confirms_agree_is_quiet_when_publishers_hear_what_the_broker_did() {
    let observations = [
        Obs::Confirmed { id: 1 },
        Obs::Nacked { id: 2 },
        Obs::Returned { id: 3 },
        Obs::Confirmed { id: 3 },
        told(1, Outcome::Confirmed),
        told(2, Outcome::Nacked),
        told(3, Outcome::Returned),
        told(3, Outcome::Confirmed),
    ];
    assert_eq!(feed(&mut ConfirmsAgree::default(), &observations), Ok(()));
}

#[test]
fn confirms_agree_fires_when_a_confirm_or_nack_lands_on_the_wrong_message() {
    let shifted = [
        Obs::Nacked { id: 5 },
        Obs::Confirmed { id: 6 },
        told(6, Outcome::Nacked),
    ];
    let error = feed_from(&mut ConfirmsAgree::default(), 3, &shifted).unwrap_err();
    assert_eq!(
        error,
        "publisher 3 was told Nacked for message 0x6, but the broker did not say so"
    );
    let unheard = [told(7, Outcome::Confirmed)];
    assert!(feed(&mut ConfirmsAgree::default(), &unheard).is_err());
}

#[test]
fn progress_is_quiet_when_live_publishers_finished_or_restarted_and_finished_again() {
    let mut check = Progress::new(vec![1, 2]);
    let first = [
        Obs::Published { id: 1 },
        told(1, Outcome::Confirmed),
        Obs::Finished,
    ];
    feed_from(&mut check, 1, &first).unwrap();
    feed_from(&mut check, 2, &[Obs::Published { id: 2 }]).unwrap();
    Invariant::<World>::on_crash(&mut check, 2);
    let again = [
        Obs::Published { id: 3 },
        Obs::Unconfirmed { id: 3 },
        Obs::Finished,
    ];
    feed_from(&mut check, 2, &again).unwrap();
    assert_eq!(Invariant::<World>::at_end(&mut check, &end(3)), Ok(()));
}

#[test]
fn progress_fires_when_a_live_publisher_never_finishes() {
    let mut check = Progress::new(vec![1]);
    feed_from(&mut check, 1, &[Obs::Published { id: 1 }]).unwrap();
    let error = Invariant::<World>::at_end(&mut check, &end(2)).unwrap_err();
    assert_eq!(
        error,
        "no progress: publisher 1 did not finish (1 publishes without an answer)"
    );
    // A publisher that is down at the end is excused.
    let mut check = Progress::new(vec![1]);
    let down = EndState {
        time_ns: 0,
        up: vec![true, false],
    };
    assert_eq!(Invariant::<World>::at_end(&mut check, &down), Ok(()));
}
