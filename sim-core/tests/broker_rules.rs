//! RabbitMQ's rules, one test each, checked against the simulated broker through the
//! real client library. A scripted client runs one step every 5 ms and logs every event
//! the library hands it; the broker's own report (`inspect`) shows its queues.

mod support;

use sim_core::fault::Fault;
use sim_core::proto::broker::{ExchangeKind, Method, Overflow, QueueArgs};
use support::broker::*;

#[test]
fn the_default_exchange_routes_by_queue_name() {
    let (log, _) = run(
        vec![vec![queue("q", true), consume("q"), publish("", "q", 7)]],
        vec![],
    );
    assert!(
        has(&log, "1 deliver 7 from q tag=1 redelivered=false"),
        "{log:#?}"
    );
}

#[test]
fn synchronous_calls_are_answered_one_at_a_time_in_order() {
    let steps = vec![
        Step::Call(Method::ConfirmSelect),
        exchange("x", ExchangeKind::Direct),
        queue("q", true),
        bind("q", "x", "k"),
    ];
    let (log, sim) = run(vec![steps], vec![]);
    let replies: Vec<&String> = log.iter().filter(|l| l.contains(" reply ")).collect();
    assert_eq!(
        replies,
        [
            "1 reply ConfirmSelectOk",
            "1 reply ExchangeDeclareOk",
            "1 reply QueueDeclareOk { name: \"q\", messages: 0, consumers: 0 }",
            "1 reply QueueBindOk"
        ]
    );
    // Never two synchronous methods on the wire at once: each send follows a reply.
    let mut outstanding = 0;
    for event in sim.trace().retained() {
        let synchronous = [
            "Method(ChannelOpen",
            "Method(ConfirmSelect",
            "Method(ExchangeDeclare",
            "Method(QueueDeclare",
            "Method(QueueBind",
        ];
        if event.node == 1
            && event.kind == sim_core::trace::EventKind::Send
            && synchronous.iter().any(|m| event.detail.contains(m))
        {
            outstanding += 1;
            assert!(outstanding <= 1, "two RPCs in flight at {}", event.index);
        }
        if event.node == 1
            && event.kind == sim_core::trace::EventKind::Deliver
            && event.detail.starts_with("Reply(")
        {
            outstanding -= 1;
        }
    }
}

#[test]
fn acking_an_unknown_delivery_tag_closes_the_channel_with_406() {
    let (log, _) = run(vec![vec![queue("q", true), Step::AckTag(99)]], vec![]);
    assert!(
        has(
            &log,
            "1 channel closed 406 PRECONDITION_FAILED - unknown delivery tag 99"
        ),
        "{log:#?}"
    );
}

#[test]
fn consuming_from_a_missing_queue_is_404() {
    let (log, _) = run(vec![vec![consume("nowhere")]], vec![]);
    assert!(
        has(&log, "1 channel closed 404 NOT_FOUND - no queue 'nowhere'"),
        "{log:#?}"
    );
}

#[test]
fn binding_to_the_default_exchange_is_403() {
    let (log, _) = run(vec![vec![queue("q", true), bind("q", "", "q")]], vec![]);
    assert!(
        has(
            &log,
            "1 channel closed 403 ACCESS_REFUSED - operation not permitted on the default exchange"
        ),
        "{log:#?}"
    );
}

#[test]
fn redeclaring_an_exchange_as_another_type_is_406() {
    let steps = vec![
        exchange("x", ExchangeKind::Direct),
        exchange("x", ExchangeKind::Topic),
    ];
    let (log, _) = run(vec![steps], vec![]);
    assert!(
        log.iter()
            .any(|l| l.starts_with("1 channel closed 406 PRECONDITION_FAILED - inequivalent arg")),
        "{log:#?}"
    );
}

#[test]
fn an_exclusive_queue_is_locked_to_its_connection() {
    let owner = vec![Step::Call(Method::QueueDeclare {
        name: "mine".into(),
        durable: false,
        exclusive: true,
        auto_delete: false,
        args: QueueArgs::default(),
    })];
    let other = vec![Step::AckTag(0), Step::AckTag(0), consume("mine")];
    let (log, _) = run(vec![owner, other], vec![]);
    assert!(
        log.iter()
            .any(|l| l.starts_with("2 channel closed 405 RESOURCE_LOCKED")),
        "{log:#?}"
    );
}

#[test]
fn an_unroutable_mandatory_message_is_returned_then_confirmed() {
    let steps = vec![
        Step::Call(Method::ConfirmSelect),
        exchange("x", ExchangeKind::Direct),
        Step::Publish {
            exchange: "x",
            key: "nobody",
            mandatory: true,
            id: 5,
            persistent: true,
        },
    ];
    let (log, _) = run(vec![steps], vec![]);
    let returned = log
        .iter()
        .position(|l| l == "1 returned 5 code=312")
        .expect("returned");
    let confirmed = log
        .iter()
        .position(|l| l == "1 confirmed 5 ack=true")
        .expect("confirmed");
    assert!(
        returned < confirmed,
        "basic.return comes before the confirm"
    );
}

#[test]
fn overlapping_topic_bindings_deliver_a_message_once_per_queue() {
    let steps = vec![
        exchange("t", ExchangeKind::Topic),
        queue("q", true),
        bind("q", "t", "*.critical"),
        bind("q", "t", "kern.*"),
        consume("q"),
        publish("t", "kern.critical", 1),
    ];
    let (log, _) = run(vec![steps], vec![]);
    let deliveries = log.iter().filter(|l| l.contains(" deliver 1 ")).count();
    assert_eq!(deliveries, 1, "{log:#?}");
}

#[test]
fn a_nack_with_requeue_redelivers_with_the_redelivered_flag() {
    let steps = vec![
        queue("q", true),
        consume("q"),
        publish("", "q", 3),
        Step::Nack {
            delivery: 0,
            requeue: true,
        },
    ];
    let (log, _) = run(vec![steps], vec![]);
    assert!(
        has(&log, "1 deliver 3 from q tag=1 redelivered=false"),
        "{log:#?}"
    );
    assert!(
        has(&log, "1 deliver 3 from q tag=2 redelivered=true"),
        "{log:#?}"
    );
}

#[test]
fn a_full_queue_with_reject_publish_nacks_the_publisher() {
    let args = QueueArgs {
        max_length: Some(1),
        overflow: Overflow::RejectPublish,
        ..QueueArgs::default()
    };
    let steps = vec![
        Step::Call(Method::ConfirmSelect),
        Step::Call(Method::QueueDeclare {
            name: "small".into(),
            durable: false,
            exclusive: false,
            auto_delete: false,
            args,
        }),
        publish("", "small", 1),
        publish("", "small", 2),
    ];
    let (log, _) = run(vec![steps], vec![]);
    assert!(has(&log, "1 confirmed 1 ack=true"), "{log:#?}");
    assert!(has(&log, "1 confirmed 2 ack=false"), "{log:#?}");
}

#[test]
fn a_restart_keeps_durable_queues_and_persistent_messages_only() {
    let steps = vec![
        Step::Call(Method::ConfirmSelect),
        queue("durable-q", true),
        queue("transient-q", false),
        publish("", "durable-q", 1),
        Step::Publish {
            exchange: "",
            key: "durable-q",
            mandatory: false,
            id: 2,
            persistent: false,
        },
        publish("", "transient-q", 3),
    ];
    let faults = vec![
        (200 * MS, Fault::Crash { node: 0 }),
        (250 * MS, Fault::Restart { node: 0 }),
    ];
    let (log, sim) = run(vec![steps], faults);
    assert!(
        has(&log, "1 confirmed 1 ack=true"),
        "persistent: confirmed after the sync"
    );
    let state = broker_state(sim.as_ref());
    assert!(
        state.contains("queue durable-q (durable): 1 ready"),
        "{state}"
    );
    // The recovering client declared the transient queue again: it exists, empty.
    assert!(state.contains("queue transient-q: 0 ready"), "{state}");
    assert!(
        log.iter().any(|l| l.starts_with("1 lost")),
        "the client saw its connection die"
    );
    assert!(
        has(&log, "1 ready recovered=true"),
        "and recovered its topology: {log:#?}"
    );
}

#[test]
fn an_acked_message_leaves_the_queue_and_an_unacked_one_stays_held() {
    let acked = vec![
        queue("q", true),
        consume("q"),
        publish("", "q", 1),
        Step::Ack(0),
    ];
    let (_, sim) = run(vec![acked], vec![]);
    assert!(broker_state(sim.as_ref()).contains("queue q (durable): 0 ready, 0 unacked"));
    let unacked = vec![queue("q", true), consume("q"), publish("", "q", 1)];
    let (_, sim) = run(vec![unacked], vec![]);
    assert!(broker_state(sim.as_ref()).contains("queue q (durable): 0 ready, 1 unacked"));
}

fn declare(name: &str, auto_delete: bool, args: QueueArgs) -> Step {
    Step::Call(Method::QueueDeclare {
        name: name.into(),
        durable: false,
        exclusive: false,
        auto_delete,
        args,
    })
}

#[test]
fn prefetch_limits_a_consumers_unacked_deliveries() {
    let steps = vec![
        queue("q", true),
        Step::Call(Method::BasicQos { prefetch: 2 }),
        consume("q"),
        publish("", "q", 1),
        publish("", "q", 2),
        publish("", "q", 3),
    ];
    let (log, sim) = run(vec![steps], vec![]);
    assert_eq!(
        log.iter().filter(|l| l.contains(" deliver ")).count(),
        2,
        "{log:#?}"
    );
    assert!(broker_state(sim.as_ref()).contains("queue q (durable): 1 ready, 2 unacked"));
}

#[test]
fn drop_head_overflow_dead_letters_the_oldest_message() {
    let args = QueueArgs {
        max_length: Some(2),
        dead_letter_exchange: Some("dead".into()),
        ..QueueArgs::default()
    };
    let steps = vec![
        exchange("dead", ExchangeKind::Fanout),
        queue("graveyard", true),
        bind("graveyard", "dead", ""),
        declare("small", false, args),
        publish("", "small", 1),
        publish("", "small", 2),
        publish("", "small", 3),
        consume("graveyard"),
    ];
    let (log, sim) = run(vec![steps], vec![]);
    assert!(
        has(
            &log,
            "1 deliver 1 from graveyard tag=1 redelivered=false deaths=[small:MaxLengthx1]"
        ),
        "{log:#?}"
    );
    assert!(broker_state(sim.as_ref()).contains("queue small: 2 ready"));
}

#[test]
fn an_expired_message_is_dead_lettered_and_never_delivered() {
    let args = QueueArgs {
        message_ttl_ns: Some(20 * MS),
        dead_letter_exchange: Some("dead".into()),
        ..QueueArgs::default()
    };
    let steps = vec![
        exchange("dead", ExchangeKind::Fanout),
        queue("graveyard", true),
        bind("graveyard", "dead", ""),
        declare("short-lived", false, args),
        publish("", "short-lived", 9),
        Step::Wait,
        Step::Wait,
        Step::Wait,
        Step::Wait,
        consume("graveyard"),
        consume("short-lived"),
    ];
    let (log, _) = run(vec![steps], vec![]);
    assert!(
        has(
            &log,
            "1 deliver 9 from graveyard tag=1 redelivered=false deaths=[short-lived:Expiredx1]"
        ),
        "{log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("from short-lived")),
        "{log:#?}"
    );
}

#[test]
fn an_auto_delete_queue_goes_when_its_last_consumer_cancels() {
    let steps = vec![
        declare("temp", true, QueueArgs::default()),
        Step::Call(Method::BasicConsume {
            queue: "temp".into(),
            tag: "c".into(),
            auto_ack: false,
        }),
        Step::Call(Method::BasicCancel { tag: "c".into() }),
    ];
    let (log, sim) = run(vec![steps], vec![]);
    assert!(
        has(&log, "1 reply BasicCancelOk { tag: \"c\" }"),
        "{log:#?}"
    );
    assert!(
        !broker_state(sim.as_ref()).contains("temp"),
        "{}",
        broker_state(sim.as_ref())
    );
}
