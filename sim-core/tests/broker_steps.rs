//! The broker's channel rules, one handler at a time: the testing harness plays the
//! clients frame by frame and shows what the broker answered, wrote and observed, in
//! order. RabbitMQ's reply codes and the confirm-after-sync rule are in this text.

use sim_core::conn::ConnParams;
use sim_core::proto::broker::server::BrokerParams;
use sim_core::proto::broker::{self, Broker, Frame, Message, Method, QueueArgs};
use sim_core::proto::world::World;
use sim_core::testing::{Harness, Remote};
use sim_core::NodeId;

const MS: u64 = 1_000_000;

/// The broker as node 0 of a run with two clients, 1 and 2. A client speaks the
/// connection layer by hand (`testing::Remote`): its `Syn`, then one frame per data
/// segment.
struct Client {
    remote: Remote,
}

impl Client {
    fn new(id: NodeId) -> Self {
        Self {
            remote: Remote::new(id),
        }
    }

    fn syn(&self) -> broker::Msg {
        self.remote.syn()
    }

    fn deliver(&self, broker: &mut Harness<World>, msg: broker::Msg) -> Vec<String> {
        let id = self.remote.id();
        broker.deliver(id, msg).lines().map(String::from).collect()
    }

    fn send(&mut self, broker: &mut Harness<World>, frame: Frame) -> Vec<String> {
        let msg = self.remote.frame(frame);
        self.deliver(broker, msg)
    }

    fn call(&mut self, broker: &mut Harness<World>, method: Method) -> Vec<String> {
        self.send(broker, Frame::Method(method))
    }

    /// Opens the connection, the AMQP connection and its channel.
    fn open(&mut self, broker: &mut Harness<World>) {
        self.deliver(broker, self.syn());
        self.send(broker, Frame::Open);
        self.call(broker, Method::ChannelOpen);
    }
}

fn broker() -> Harness<World> {
    let params = BrokerParams {
        heartbeat_ns: 100 * MS,
        sync_interval_ns: 2 * MS,
        conn: ConnParams::default(),
    };
    let mut harness = Harness::new(0, 3, 1, Box::new(Broker::new(params)));
    harness.start();
    harness
}

fn declare(name: &str, exclusive: bool) -> Method {
    Method::QueueDeclare {
        name: name.into(),
        durable: !exclusive,
        exclusive,
        auto_delete: false,
        args: QueueArgs::default(),
    }
}

fn consume(queue: &str, tag: &str) -> Method {
    Method::BasicConsume {
        queue: queue.into(),
        tag: tag.into(),
        auto_ack: false,
    }
}

fn sent(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter(|line| line.starts_with("send "))
        .map(String::as_str)
        .collect()
}

#[test]
fn opening_a_connection_and_its_channel_is_answered_in_order() {
    let mut b = broker();
    let mut c = Client::new(1);
    assert_eq!(
        c.deliver(&mut b, c.syn()),
        [
            "send 1 SynAck [#1]",
            "annotate conn.state=#1 from 1 open",
            "timer Conn(#1 from 1) in 500ms",
        ]
    );
    assert_eq!(
        sent(&c.send(&mut b, Frame::Open)),
        ["send 1 OpenOk [#1 seq 1 ack 2]"]
    );
    assert_eq!(
        sent(&c.call(&mut b, Method::ChannelOpen)),
        ["send 1 Reply(ChannelOpenOk) [#1 seq 2 ack 3]"]
    );
}

#[test]
fn a_method_on_a_channel_that_is_not_open_is_ignored() {
    let mut b = broker();
    let mut c = Client::new(1);
    c.deliver(&mut b, c.syn());
    c.send(&mut b, Frame::Open);
    assert!(sent(&c.call(&mut b, declare("q", false))).is_empty());
}

#[test]
fn consuming_from_a_missing_queue_closes_the_channel_with_404() {
    let mut b = broker();
    let mut c = Client::new(1);
    c.open(&mut b);
    let lines = c.call(&mut b, consume("nowhere", "t"));
    let sends = sent(&lines);
    assert_eq!(sends.len(), 1, "{lines:?}");
    assert!(sends[0].contains("ChannelClose { code: 404"), "{lines:?}");
}

#[test]
fn another_connections_exclusive_queue_is_405() {
    let mut b = broker();
    let (mut owner, mut other) = (Client::new(1), Client::new(2));
    owner.open(&mut b);
    other.open(&mut b);
    let ok = owner.call(&mut b, declare("mine", true));
    assert!(sent(&ok)[0].contains("QueueDeclareOk"), "{ok:?}");
    let refused = other.call(&mut b, consume("mine", "t"));
    assert!(
        sent(&refused)[0].contains("ChannelClose { code: 405"),
        "{refused:?}"
    );
}

#[test]
fn a_persistent_message_in_a_durable_queue_is_confirmed_only_after_the_log_is_synced() {
    let mut b = broker();
    let mut c = Client::new(1);
    c.open(&mut b);
    c.call(&mut b, declare("q", false));
    c.call(&mut b, Method::ConfirmSelect);
    let publish = Method::BasicPublish {
        exchange: String::new(),
        routing_key: "q".into(),
        mandatory: false,
        message: Message::new(7, true, 7),
    };
    let published = c.call(&mut b, publish);
    assert!(
        !published.iter().any(|line| line.contains("Confirm")),
        "no confirm before the sync: {published:?}"
    );
    assert!(
        published
            .iter()
            .any(|line| line.starts_with("disk append broker.log")),
        "{published:?}"
    );
    assert!(
        published.contains(&"timer ServerSync in 2ms".to_string()),
        "{published:?}"
    );
    let synced = b.fire(broker::Timer::ServerSync);
    let synced: Vec<&str> = synced.lines().collect();
    let sync_at = synced
        .iter()
        .position(|l| *l == "disk sync")
        .expect("a sync");
    let confirm_at = synced
        .iter()
        .position(|l| l.contains("Confirm { seq: 1, ack: true }"))
        .expect("a confirm");
    assert!(sync_at < confirm_at, "{synced:#?}");
}

#[test]
fn a_confirm_owed_by_a_closed_channel_is_not_sent_on_its_successor() {
    // The message waits for the group commit; meanwhile the channel closes (an ack of a
    // tag never delivered: 406) and the client opens a new one. The new channel's
    // publish numbering starts again at 1: the old confirm, seq 1, would land on the new
    // channel's first message.
    let mut b = broker();
    let mut c = Client::new(1);
    c.open(&mut b);
    c.call(&mut b, declare("q", false));
    c.call(&mut b, Method::ConfirmSelect);
    let publish = Method::BasicPublish {
        exchange: String::new(),
        routing_key: "q".into(),
        mandatory: false,
        message: Message::new(7, true, 7),
    };
    c.call(&mut b, publish);
    let closed = c.call(
        &mut b,
        Method::BasicAck {
            delivery_tag: 42,
            multiple: false,
        },
    );
    assert!(
        sent(&closed)[0].contains("ChannelClose { code: 406"),
        "{closed:?}"
    );
    c.call(&mut b, Method::ChannelOpen);
    let synced = b.fire(broker::Timer::ServerSync);
    assert!(synced.contains("disk sync"), "{synced}");
    assert!(!synced.contains("Confirm"), "{synced}");
}

#[test]
fn a_dead_lettered_message_moves_in_one_log_record() {
    // A torn write keeps a prefix of what was appended. Enqueue-in-target and
    // remove-from-source go in one record, so a crash leaves the message in exactly one
    // queue: two records could keep the copy and lose the removal (a duplicate).
    let mut b = broker();
    let mut c = Client::new(1);
    c.open(&mut b);
    c.call(&mut b, declare("dlq", false));
    let to_dlq = QueueArgs {
        dead_letter_exchange: Some(String::new()),
        dead_letter_routing_key: Some("dlq".into()),
        ..QueueArgs::default()
    };
    c.call(
        &mut b,
        Method::QueueDeclare {
            name: "q".into(),
            durable: true,
            exclusive: false,
            auto_delete: false,
            args: to_dlq,
        },
    );
    c.call(&mut b, consume("q", "t"));
    let publish = Method::BasicPublish {
        exchange: String::new(),
        routing_key: "q".into(),
        mandatory: false,
        message: Message::new(7, true, 7),
    };
    let published = c.call(&mut b, publish);
    let rejected = c.call(
        &mut b,
        Method::BasicReject {
            delivery_tag: 1,
            requeue: false,
        },
    );
    let appends = |lines: &[String]| -> Vec<u64> {
        lines
            .iter()
            .filter_map(|line| line.strip_prefix("disk append broker.log "))
            .map(|rest| rest.trim_end_matches(" bytes").parse().expect("a size"))
            .collect()
    };
    let (enqueue, moved) = (appends(&published), appends(&rejected));
    assert_eq!(enqueue.len(), 1, "{published:#?}");
    assert_eq!(moved.len(), 1, "one record for the move: {rejected:#?}");
    assert!(
        moved[0] > enqueue[0],
        "the move carries the message and the removal: {rejected:#?}"
    );
}
