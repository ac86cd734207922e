//! RabbitMQ's classic-queue semantics, case by case after its own suites
//! (`queue_length_limits_SUITE`, `dead_lettering_SUITE`, `confirms_rejects_SUITE`) and
//! `rabbit_channel`'s rules, played through the real client library against the
//! simulated broker. Where RabbitMQ has no test (max-length 0, drop-head with requeue,
//! TTL 0 with a waiting consumer) the case follows its source.

mod support;

use sim_core::fault::Fault;
use sim_core::proto::broker::{ExchangeKind, Method, Overflow, QueueArgs};
use support::broker::*;

fn declare_with(name: &str, durable: bool, args: QueueArgs) -> Step {
    Step::Call(Method::QueueDeclare {
        name: name.into(),
        durable,
        exclusive: false,
        auto_delete: false,
        args,
    })
}

fn limited(max: u32, overflow: Overflow) -> QueueArgs {
    QueueArgs {
        max_length: Some(max),
        overflow,
        ..QueueArgs::default()
    }
}

/// Dead-lettering through the default exchange: to the queue named `key`, or back to
/// the message's own routing key (its queue) when there is none.
fn to_default(key: Option<&str>) -> QueueArgs {
    QueueArgs {
        dead_letter_exchange: Some(String::new()),
        dead_letter_routing_key: key.map(String::from),
        ..QueueArgs::default()
    }
}

fn qos(prefetch: u32) -> Step {
    Step::Call(Method::BasicQos { prefetch })
}

fn consume_tag(queue: &str, tag: &str) -> Step {
    Step::Call(Method::BasicConsume {
        queue: queue.into(),
        tag: tag.into(),
        auto_ack: false,
    })
}

fn wait(ms: u64) -> Vec<Step> {
    (0..ms / 5).map(|_| Step::Wait).collect()
}

fn script(parts: Vec<Vec<Step>>) -> Vec<Step> {
    parts.into_iter().flatten().collect()
}

fn lines_with<'a>(log: &'a [String], text: &str) -> Vec<&'a String> {
    log.iter().filter(|line| line.contains(text)).collect()
}

// ---- queue_length_limits_SUITE ---------------------------------------------------------

#[test]
fn max_length_drop_head_keeps_the_newest() {
    // max_length_drop_head: max 1, publish 1, 2, 3: only 3 is left.
    let steps = vec![
        declare_with("q", true, limited(1, Overflow::DropHead)),
        publish("", "q", 1),
        publish("", "q", 2),
        publish("", "q", 3),
        consume("q"),
    ];
    let (log, _) = run(vec![steps], vec![]);
    assert_eq!(
        lines_with(&log, "deliver"),
        ["1 deliver 3 from q tag=1 redelivered=false"]
    );
}

#[test]
fn max_length_reject_publish_nacks_what_does_not_fit() {
    // max_length_reject_confirm: max 1, reject-publish, confirms: 1 acked, 2 and 3
    // nacked, 1 is what a consumer gets.
    let steps = vec![
        Step::Call(Method::ConfirmSelect),
        declare_with("q", true, limited(1, Overflow::RejectPublish)),
        publish("", "q", 1),
        publish("", "q", 2),
        publish("", "q", 3),
        consume("q"),
    ];
    let (log, _) = run(vec![steps], vec![]);
    let confirms: Vec<&String> = lines_with(&log, "confirmed");
    assert_eq!(
        confirms,
        [
            "1 confirmed 1 ack=true",
            "1 confirmed 2 ack=false",
            "1 confirmed 3 ack=false"
        ]
    );
    assert_eq!(
        lines_with(&log, "deliver"),
        ["1 deliver 1 from q tag=1 redelivered=false"]
    );
}

#[test]
fn a_requeue_may_take_a_reject_publish_queue_over_its_limit() {
    // max_length_drop_publish_requeue: max 1; 1 is delivered and unacked, 2 is
    // published (one ready), 1 is nacked back: both are in the queue, 1 first.
    let steps = script(vec![
        vec![
            declare_with("q", true, limited(1, Overflow::RejectPublish)),
            qos(1),
            consume("q"),
            publish("", "q", 1),
            publish("", "q", 2),
            Step::Nack {
                delivery: 0,
                requeue: true,
            },
        ],
        wait(20),
        vec![Step::Ack(1)],
        wait(20),
        vec![Step::Ack(2)],
    ]);
    let (log, _) = run(vec![steps], vec![]);
    assert_eq!(
        lines_with(&log, "deliver"),
        [
            "1 deliver 1 from q tag=1 redelivered=false",
            "1 deliver 1 from q tag=2 redelivered=true",
            "1 deliver 2 from q tag=3 redelivered=false",
        ]
    );
}

#[test]
fn a_requeue_into_a_full_drop_head_queue_sheds_the_oldest() {
    // No upstream test; `requeue_and_run` runs `maybe_drop_head` after the requeue: the
    // requeued message, back at the head, is the one dropped.
    let steps = script(vec![
        vec![
            declare_with("q", true, limited(1, Overflow::DropHead)),
            qos(1),
            consume("q"),
            publish("", "q", 1),
            publish("", "q", 2),
            Step::Nack {
                delivery: 0,
                requeue: true,
            },
        ],
        wait(20),
    ]);
    let (log, _) = run(vec![steps], vec![]);
    assert_eq!(
        lines_with(&log, "deliver"),
        [
            "1 deliver 1 from q tag=1 redelivered=false",
            "1 deliver 2 from q tag=2 redelivered=false",
        ]
    );
}

#[test]
fn max_length_zero_delivers_to_a_waiting_consumer_or_drops_and_reject_publish_refuses_all() {
    // No upstream test; from `deliver_or_enqueue`: drop-head offers the message to a
    // waiting consumer first, then drops it (acked); reject-publish refuses every
    // publish, consumer or not. The old broker panicked on max-length 0.
    let steps = vec![
        Step::Call(Method::ConfirmSelect),
        declare_with("waiting", true, limited(0, Overflow::DropHead)),
        declare_with("nobody", true, limited(0, Overflow::DropHead)),
        declare_with("refusing", true, limited(0, Overflow::RejectPublish)),
        consume("waiting"),
        consume("refusing"),
        publish("", "waiting", 1),
        publish("", "nobody", 2),
        publish("", "refusing", 3),
    ];
    let (log, sim) = run(vec![steps], vec![]);
    assert_eq!(
        lines_with(&log, "deliver"),
        ["1 deliver 1 from waiting tag=1 redelivered=false"]
    );
    assert!(has(&log, "1 confirmed 2 ack=true"), "{log:#?}");
    assert!(has(&log, "1 confirmed 3 ack=false"), "{log:#?}");
    assert!(broker_state(sim.as_ref()).contains("queue nobody (durable): 0 ready"));
}

// ---- TTL ---------------------------------------------------------------------------------

#[test]
fn ttl_zero_delivers_to_a_waiting_consumer_and_expires_otherwise() {
    let zero = QueueArgs {
        message_ttl_ns: Some(0),
        ..QueueArgs::default()
    };
    let steps = vec![
        declare_with("waiting", true, zero.clone()),
        declare_with("nobody", true, zero),
        consume("waiting"),
        publish("", "waiting", 1),
        publish("", "nobody", 2),
        Step::Wait,
        consume("nobody"),
    ];
    let (log, _) = run(vec![steps], vec![]);
    assert_eq!(
        lines_with(&log, "deliver"),
        ["1 deliver 1 from waiting tag=1 redelivered=false"]
    );
}

#[test]
fn a_ttl_is_an_absolute_deadline_that_a_restart_does_not_reset() {
    // The message expires 300 ms after it was published; the broker is down from 100 ms
    // to 500 ms. Downtime counts: nothing is left to deliver after the restart.
    let ttl = QueueArgs {
        message_ttl_ns: Some(300 * MS),
        ..QueueArgs::default()
    };
    let steps = script(vec![
        vec![declare_with("q", true, ttl), publish("", "q", 1)],
        wait(600),
        vec![consume("q")],
    ]);
    let faults = vec![
        (100 * MS, Fault::Crash { node: 0 }),
        (500 * MS, Fault::Restart { node: 0 }),
    ];
    let (log, sim) = run(vec![steps], faults);
    assert!(lines_with(&log, "deliver").is_empty(), "{log:#?}");
    assert!(broker_state(sim.as_ref()).contains("queue q (durable): 0 ready"));
}

// ---- dead_lettering_SUITE ----------------------------------------------------------------

#[test]
fn an_expiry_cycle_back_to_the_same_queue_is_dropped() {
    // dead_letter_routing_key_cycle_ttl: the queue dead-letters to itself on expiry;
    // both messages vanish.
    let args = QueueArgs {
        message_ttl_ns: Some(MS),
        ..to_default(None)
    };
    let steps = script(vec![
        vec![
            declare_with("q", true, args),
            publish("", "q", 1),
            publish("", "q", 2),
        ],
        wait(30),
        vec![consume("q")],
    ]);
    let (log, sim) = run(vec![steps], vec![]);
    assert!(lines_with(&log, "deliver").is_empty(), "{log:#?}");
    assert!(broker_state(sim.as_ref()).contains("queue q (durable): 0 ready"));
}

#[test]
fn a_rejection_back_to_the_same_queue_is_no_cycle_and_counts_its_deaths() {
    // dead_letter_routing_key_cycle_with_reject and dead_letter_headers_cycle: the
    // message comes back each time, with one x-death entry counting 1, then 2.
    let steps = script(vec![
        vec![declare_with("q", true, to_default(None)), consume("q")],
        vec![publish("", "q", 1)],
        wait(10),
        vec![Step::Nack {
            delivery: 0,
            requeue: false,
        }],
        wait(10),
        vec![Step::Nack {
            delivery: 1,
            requeue: false,
        }],
        wait(10),
    ]);
    let (log, _) = run(vec![steps], vec![]);
    assert_eq!(
        lines_with(&log, "deliver"),
        [
            "1 deliver 1 from q tag=1 redelivered=false",
            "1 deliver 1 from q tag=2 redelivered=false deaths=[q:Rejectedx1]",
            "1 deliver 1 from q tag=3 redelivered=false deaths=[q:Rejectedx2]",
        ]
    );
}

#[test]
fn a_loop_with_a_rejection_in_it_delivers_round_after_round() {
    // dead_letter_reject_expire_expire: q1 (rejected) -> q2 (expired) -> q3 (expired)
    // -> q1 again: not a cycle, because the loop holds a rejection.
    let expire_to = |next: &str| QueueArgs {
        message_ttl_ns: Some(5 * MS),
        ..to_default(Some(next))
    };
    let steps = script(vec![
        vec![
            declare_with("q1", true, to_default(Some("q2"))),
            declare_with("q2", true, expire_to("q3")),
            declare_with("q3", true, expire_to("q1")),
            consume("q1"),
            publish("", "q1", 1),
        ],
        wait(10),
        vec![Step::Nack {
            delivery: 0,
            requeue: false,
        }],
        wait(50),
    ]);
    let (log, _) = run(vec![steps], vec![]);
    assert_eq!(
        lines_with(&log, "deliver"),
        [
            "1 deliver 1 from q1 tag=1 redelivered=false",
            "1 deliver 1 from q1 tag=2 redelivered=false \
             deaths=[q3:Expiredx1 q2:Expiredx1 q1:Rejectedx1]",
        ]
    );
}

#[test]
fn a_multiple_nack_dead_letters_in_delivery_tag_order_at_once() {
    // dead_letter_multiple_nack: nack(3, multiple) sends 1, 2, 3 to the dead-letter
    // queue, whose consumer gets them at once (no tick later).
    let steps = script(vec![
        vec![
            declare_with("q", true, to_default(Some("dlq"))),
            queue("dlq", true),
            consume("q"),
            publish("", "q", 1),
            publish("", "q", 2),
            publish("", "q", 3),
        ],
        wait(10),
        vec![
            consume("dlq"),
            Step::Raw(Method::BasicNack {
                delivery_tag: 3,
                multiple: true,
                requeue: false,
            }),
        ],
        wait(10),
    ]);
    let (log, _) = run(vec![steps], vec![]);
    let dead: Vec<&String> = lines_with(&log, "from dlq");
    assert_eq!(
        dead,
        [
            "1 deliver 1 from dlq tag=4 redelivered=false deaths=[q:Rejectedx1]",
            "1 deliver 2 from dlq tag=5 redelivered=false deaths=[q:Rejectedx1]",
            "1 deliver 3 from dlq tag=6 redelivered=false deaths=[q:Rejectedx1]",
        ]
    );
}

// ---- confirms_rejects_SUITE ----------------------------------------------------------------

#[test]
fn a_publish_one_of_whose_queues_refuses_it_is_nacked_though_the_other_took_it() {
    // mixed_dead_alive_queues_reject, with a full reject-publish queue for the dead one.
    let steps = vec![
        Step::Call(Method::ConfirmSelect),
        exchange("fan", ExchangeKind::Fanout),
        declare_with("full", true, limited(0, Overflow::RejectPublish)),
        queue("open", true),
        bind("full", "fan", ""),
        bind("open", "fan", ""),
        consume("open"),
        publish("fan", "", 1),
    ];
    let (log, _) = run(vec![steps], vec![]);
    assert!(has(&log, "1 confirmed 1 ack=false"), "{log:#?}");
    assert!(
        has(&log, "1 deliver 1 from open tag=1 redelivered=false"),
        "{log:#?}"
    );
}

// ---- rabbit_channel: errors, acks, qos ------------------------------------------------------

#[test]
fn reusing_a_consumer_tag_closes_the_connection_with_530() {
    let steps = script(vec![
        vec![
            queue("q", true),
            consume_tag("q", "c"),
            consume_tag("q", "c"),
        ],
        wait(40),
        vec![publish("", "q", 1)],
    ]);
    let (log, _) = run(vec![steps], vec![]);
    assert!(
        has(
            &log,
            "1 connection closed 530 NOT_ALLOWED - attempt to reuse consumer tag 'c'"
        ),
        "{log:#?}"
    );
    // The client recovers with the first consumer, not the failed second one.
    assert!(has(&log, "1 ready recovered=true"), "{log:#?}");
    assert!(
        has(&log, "1 deliver 1 from q tag=1 redelivered=false"),
        "{log:#?}"
    );
}

#[test]
fn a_second_channel_open_closes_the_connection_with_504() {
    let steps = vec![queue("q", true), Step::Call(Method::ChannelOpen)];
    let (log, _) = run(vec![steps], vec![]);
    assert!(
        has(
            &log,
            "1 connection closed 504 CHANNEL_ERROR - second 'channel.open' seen"
        ),
        "{log:#?}"
    );
}

#[test]
fn a_multiple_ack_of_tag_zero_acks_everything_outstanding() {
    let steps = script(vec![
        vec![
            queue("q", true),
            consume("q"),
            publish("", "q", 1),
            publish("", "q", 2),
        ],
        wait(10),
        vec![Step::Raw(Method::BasicAck {
            delivery_tag: 0,
            multiple: true,
        })],
        wait(10),
    ]);
    let (log, sim) = run(vec![steps], vec![]);
    assert!(lines_with(&log, "channel closed").is_empty(), "{log:#?}");
    assert!(broker_state(sim.as_ref()).contains("queue q (durable): 0 ready, 0 unacked"));
}

#[test]
fn a_multiple_ack_naming_a_tag_not_outstanding_is_406() {
    let steps = script(vec![
        vec![queue("q", true), consume("q"), publish("", "q", 1)],
        wait(10),
        vec![Step::Raw(Method::BasicAck {
            delivery_tag: 5,
            multiple: true,
        })],
        wait(10),
    ]);
    let (log, _) = run(vec![steps], vec![]);
    assert!(
        has(
            &log,
            "1 channel closed 406 PRECONDITION_FAILED - unknown delivery tag 5"
        ),
        "{log:#?}"
    );
}

#[test]
fn an_ack_for_a_delivery_of_a_deleted_queue_is_accepted() {
    let steps = script(vec![
        vec![queue("q", true), consume("q"), publish("", "q", 1)],
        wait(10),
        vec![Step::Call(Method::QueueDelete { name: "q".into() })],
        wait(10),
        vec![Step::Ack(0)],
        wait(10),
    ]);
    let (log, _) = run(vec![steps], vec![]);
    assert!(has(&log, "1 ack sent=true"), "{log:#?}");
    assert!(lines_with(&log, "channel closed").is_empty(), "{log:#?}");
}

#[test]
fn a_reused_tag_after_a_cancel_starts_with_its_own_unacked_count() {
    // The old consumer's unacked delivery, acked after the tag was reused, must not
    // count against the new consumer (the old broker's count wrapped and the new
    // consumer was never served again).
    let steps = script(vec![
        vec![
            queue("q", true),
            qos(1),
            consume_tag("q", "c"),
            publish("", "q", 1),
        ],
        wait(10),
        vec![
            Step::Call(Method::BasicCancel { tag: "c".into() }),
            consume_tag("q", "c"),
            Step::Ack(0),
            publish("", "q", 2),
        ],
        wait(10),
        vec![Step::Ack(1), publish("", "q", 3)],
        wait(10),
    ]);
    let (log, _) = run(vec![steps], vec![]);
    assert_eq!(
        lines_with(&log, "deliver"),
        [
            "1 deliver 1 from q tag=1 redelivered=false",
            "1 deliver 2 from q tag=2 redelivered=false",
            "1 deliver 3 from q tag=3 redelivered=false",
        ]
    );
}

#[test]
fn qos_applies_to_consumers_created_after_it_only() {
    // Consumer a, unlimited, was created before qos 1: it gets all three; consumer b,
    // created after, gets one until it acks.
    let steps = script(vec![
        vec![
            queue("qa", true),
            queue("qb", true),
            consume("qa"),
            qos(1),
            consume("qb"),
        ],
        (1..=3).map(|id| publish("", "qa", id)).collect(),
        (4..=6).map(|id| publish("", "qb", id)).collect(),
        wait(10),
    ]);
    let (log, _) = run(vec![steps], vec![]);
    assert_eq!(lines_with(&log, "from qa").len(), 3, "{log:#?}");
    assert_eq!(lines_with(&log, "from qb").len(), 1, "{log:#?}");
}

// ---- queue.declare and queue.delete ---------------------------------------------------------

fn declare_exclusive(name: &str, exclusive: bool, durable: bool) -> Step {
    Step::Call(Method::QueueDeclare {
        name: name.into(),
        durable,
        exclusive,
        auto_delete: false,
        args: QueueArgs::default(),
    })
}

#[test]
fn an_exclusive_queue_is_never_durable_and_a_flag_mismatch_is_405() {
    let steps = vec![
        declare_exclusive("mine", true, true),
        declare_exclusive("mine", false, false),
    ];
    let (log, sim) = run(vec![steps], vec![]);
    // Declared durable, made transient: the queue line shows no "(durable)".
    assert!(
        broker_state(sim.as_ref()).contains("queue mine: "),
        "{log:#?}"
    );
    assert!(
        lines_with(&log, "channel closed 405 RESOURCE_LOCKED").len() == 1,
        "{log:#?}"
    );
}

#[test]
fn deleting_a_missing_queue_is_ok_with_zero_and_another_connections_exclusive_queue_is_405() {
    let owner = vec![declare_exclusive("mine", true, false), Step::Wait];
    let other = script(vec![
        wait(20),
        vec![
            Step::Call(Method::QueueDelete {
                name: "never-declared".into(),
            }),
            Step::Call(Method::QueueDelete {
                name: "mine".into(),
            }),
        ],
    ]);
    let (log, _) = run(vec![owner, other], vec![]);
    assert!(
        has(&log, "2 reply QueueDeleteOk { messages: 0 }"),
        "{log:#?}"
    );
    assert!(
        lines_with(&log, "2 channel closed 405 RESOURCE_LOCKED").len() == 1,
        "{log:#?}"
    );
}

#[test]
fn a_queue_name_with_the_reserved_prefix_is_403() {
    let steps = vec![queue("amq.mine", true)];
    let (log, _) = run(vec![steps], vec![]);
    assert!(
        has(
            &log,
            "1 channel closed 403 ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'"
        ),
        "{log:#?}"
    );
}

// ---- the client library's channels ------------------------------------------------------------

#[test]
fn a_delivery_of_a_closed_channel_is_not_acked_on_the_next_one() {
    let steps = script(vec![
        vec![queue("q", true), consume("q"), publish("", "q", 1)],
        wait(10),
        vec![Step::AckTag(99)],
        wait(20),
        vec![Step::Ack(0)],
        wait(20),
    ]);
    let (log, _) = run(vec![steps], vec![]);
    assert!(has(&log, "1 ack sent=false"), "{log:#?}");
    assert_eq!(lines_with(&log, "channel closed").len(), 1, "{log:#?}");
    // The message went back to the queue with the channel and comes again.
    assert!(
        has(&log, "1 deliver 1 from q tag=1 redelivered=true"),
        "{log:#?}"
    );
}

#[test]
fn channel_errors_far_apart_never_exhaust_the_reopen_budget() {
    // Seventeen channel errors, one every 1.1 s (ten heartbeats of health between
    // them): the old client gave up for good after sixteen over a whole run.
    let mut steps = vec![queue("q", true), consume("q")];
    for _ in 0..17 {
        steps.push(Step::AckTag(99));
        steps.extend(wait(1_100));
    }
    steps.push(publish("", "q", 1));
    steps.extend(wait(20));
    let (log, _) = run_for(vec![steps], vec![], 20_000);
    assert_eq!(lines_with(&log, "channel closed 406").len(), 17);
    assert!(
        has(&log, "1 deliver 1 from q tag=1 redelivered=false"),
        "{log:#?}"
    );
}
