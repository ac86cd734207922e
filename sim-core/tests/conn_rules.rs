//! Connections keep TCP's promises over a network that does not: frames arrive in order
//! and once, loss and reordering become delay, a long silence breaks the connection and
//! both ends are told, and a restarted peer is noticed. One rule per test, on a two-node
//! cluster whose sender streams numbered frames to a receiver; then a property test over
//! random loss, duplication, reordering and partitions.
#![cfg(not(target_arch = "wasm32"))]

use std::cell::RefCell;
use std::rc::Rc;

use proptest::prelude::*;
use serde::Serialize;
use sim_core::conn::{self, ConnId, ConnParams, Endpoint, Event, Events, Segment};
use sim_core::engine::{run_to_end, Run, Sim, SimConfig};
use sim_core::fault::{Fault, ScheduledFault};
use sim_core::net::{Latency, LinkModel};
use sim_core::testing::Harness;
use sim_core::{host_enum, Ctx, Node, NodeId, Proto, TimerId, Wraps};

const MS: u64 = 1_000_000;

#[derive(Clone)]
struct Wire;

impl Proto for Wire {
    type Msg = Segment<u32>;
    type Obs = ();
    type Timer = WireTimer;
}

/// The sender's next frame is due.
#[derive(Clone, Debug, PartialEq, Serialize)]
struct Tick;

host_enum! {
    #[derive(Clone, PartialEq, Serialize)]
    enum WireTimer {
        Conn(conn::Timer<u32>),
        Tick(Tick),
    }
}

type Log = Rc<RefCell<Vec<String>>>;

/// Node 0 opens a connection to node 1 and sends `frames` numbered frames, one every
/// `interval`; a broken connection is reopened and the stream goes on from the next
/// number (so frames in flight at a break are lost, as with TCP). Node 1 logs everything.
#[derive(Clone)]
struct Streamer {
    endpoint: Endpoint<u32>,
    sender: bool,
    frames: u32,
    interval_ns: u64,
    next: u32,
    conn: Option<ConnId>,
    log: Log,
}

impl Streamer {
    fn record(&self, ctx: &Ctx<'_, Wire>, events: Events<u32>) -> Vec<Event<u32>> {
        let events: Vec<Event<u32>> = events.into_iter().collect();
        for event in &events {
            let line = match event {
                Event::Frame { frame, .. } => format!("{} frame {frame}", ctx.id()),
                other => format!("{} {other:?}", ctx.id()),
            };
            self.log.borrow_mut().push(line);
        }
        events
    }
}

impl Node<Wire> for Streamer {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Wire>) {
        self.endpoint.start(ctx);
        if self.sender {
            ctx.set_timer(self.interval_ns, Tick);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Wire>, from: NodeId, msg: Segment<u32>) {
        let events = self.endpoint.on_segment(ctx, from, msg);
        for event in self.record(ctx, events) {
            if let Event::Broken { conn, .. } = event {
                if self.conn == Some(conn) {
                    self.conn = None;
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Wire>, id: TimerId, timer: WireTimer) {
        match Wraps::<conn::Timer<u32>>::into_part(timer) {
            Ok(timer) => {
                let events = self.endpoint.on_timer(ctx, id, timer);
                for event in self.record(ctx, events) {
                    if let Event::Broken { conn, .. } = event {
                        if self.conn == Some(conn) {
                            self.conn = None;
                        }
                    }
                }
            }
            Err(_) => {
                if self.next >= self.frames {
                    return;
                }
                let conn = match self.conn {
                    Some(conn) => conn,
                    None => {
                        let conn = self.endpoint.open(ctx, 1).expect("one connection");
                        self.conn = Some(conn);
                        conn
                    }
                };
                self.endpoint
                    .send(ctx, conn, self.next)
                    .expect("the buffer holds the whole stream");
                self.next += 1;
                ctx.set_timer(self.interval_ns, Tick);
            }
        }
    }
}

struct Setup {
    link: LinkModel,
    faults: Vec<(u64, Fault)>,
    params: ConnParams,
    frames: u32,
    interval_ns: u64,
    duration_ns: u64,
    seed: u64,
}

impl Setup {
    fn new(frames: u32) -> Self {
        Self {
            link: LinkModel {
                latency: Latency::Fixed { ns: 5 * MS },
                ..LinkModel::default()
            },
            faults: Vec::new(),
            params: ConnParams::default(),
            frames,
            interval_ns: MS,
            duration_ns: 10_000 * MS,
            seed: 1,
        }
    }

    fn run(self) -> (Vec<String>, Sim<Wire>) {
        let log: Log = Rc::default();
        let node_log = log.clone();
        let mut config = SimConfig::new("conn-rules", self.seed, vec!["node".into(); 2]);
        config.link = self.link;
        config.fault_phase_ns = self.duration_ns;
        config.quiet_ns = 0;
        config.retain_trace = true;
        config.faults = self
            .faults
            .into_iter()
            .map(|(at_ns, fault)| ScheduledFault { at_ns, fault })
            .collect();
        let (params, frames, interval_ns) = (self.params, self.frames, self.interval_ns);
        let factory = std::rc::Rc::new(move |id: NodeId, _: &str| -> Box<dyn Node<Wire>> {
            Box::new(Streamer {
                endpoint: Endpoint::new(params),
                sender: id == 0,
                frames,
                interval_ns,
                next: 0,
                conn: None,
                log: node_log.clone(),
            })
        });
        let mut sim = Sim::new(config, factory, Vec::new());
        let report = run_to_end(&mut sim);
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        let lines = log.borrow().clone();
        (lines, sim)
    }
}

/// The frames node 1 received, in order.
fn received(log: &[String]) -> Vec<u32> {
    log.iter()
        .filter_map(|line| line.strip_prefix("1 frame "))
        .map(|n| n.parse().expect("a number"))
        .collect()
}

fn breaks(log: &[String], node: NodeId) -> Vec<String> {
    let prefix = format!("{node} Broken");
    log.iter()
        .filter(|line| line.starts_with(&prefix))
        .cloned()
        .collect()
}

/// Every frame of one connection arrives once and in order: the stream is the
/// concatenation of increasing runs, each run a connection's frames.
fn assert_in_order_and_once(got: &[u32]) {
    for pair in got.windows(2) {
        assert!(pair[0] < pair[1], "out of order or twice: {got:?}");
    }
}

#[test]
fn frames_arrive_in_order_on_a_clean_network() {
    let (log, _) = Setup::new(100).run();
    assert_eq!(received(&log), (0..100).collect::<Vec<u32>>());
    assert!(
        log.contains(&"0 Opened { conn: ConnId { peer: 1, mine: true, number: 1 } }".to_string())
    );
    assert!(log
        .contains(&"1 Accepted { conn: ConnId { peer: 0, mine: false, number: 1 } }".to_string()));
}

#[test]
fn loss_duplication_and_reordering_become_delay() {
    let mut setup = Setup::new(300);
    setup.link = LinkModel {
        latency: Latency::Uniform {
            min_ns: MS,
            max_ns: 8 * MS,
        },
        loss_ppm: 200_000,
        duplicate_ppm: 100_000,
        reorder_ppm: 200_000,
        reorder_ns_max: 20 * MS,
        fifo: false,
    };
    let (log, _) = setup.run();
    assert_eq!(
        received(&log),
        (0..300).collect::<Vec<u32>>(),
        "{:?}",
        breaks(&log, 0)
    );
    assert!(breaks(&log, 0).is_empty());
}

#[test]
fn a_partition_shorter_than_the_timeout_only_delays() {
    let mut setup = Setup::new(200);
    setup.faults = vec![
        (
            50 * MS,
            Fault::Partition {
                groups: vec![vec![0], vec![1]],
            },
        ),
        (50 * MS + 1_500 * MS, Fault::Heal),
    ];
    let (log, _) = setup.run();
    assert_eq!(received(&log), (0..200).collect::<Vec<u32>>());
    assert!(breaks(&log, 0).is_empty() && breaks(&log, 1).is_empty());
}

#[test]
fn a_partition_longer_than_the_timeout_breaks_both_ends_and_only_then() {
    // Frames every 10 ms for 4 s; the cut lasts 3 s from 100 ms.
    let mut setup = Setup::new(400);
    setup.interval_ns = 10 * MS;
    setup.faults = vec![
        (
            100 * MS,
            Fault::Partition {
                groups: vec![vec![0], vec![1]],
            },
        ),
        (100 * MS + 3_000 * MS, Fault::Heal),
    ];
    let (log, sim) = setup.run();
    let (sender, receiver) = (breaks(&log, 0), breaks(&log, 1));
    assert_eq!(sender.len(), 1, "{sender:?}");
    assert!(sender[0].contains("Timeout"), "{sender:?}");
    assert_eq!(
        receiver.len(),
        1,
        "the idle receiver is told too: {receiver:?}"
    );
    assert!(receiver[0].contains("Timeout"), "{receiver:?}");
    // No break before the timeout: the first one comes 2 s after the last segment that
    // crossed before the cut (sent at most one latency, 5 ms, before it).
    let first_break = sim
        .trace()
        .retained()
        .iter()
        .find(|e| e.label == "conn.state" && e.detail.contains("broken"))
        .expect("a break is in the trace");
    assert!(
        first_break.time_ns >= 95 * MS + 2_000 * MS,
        "{first_break:?}"
    );
    let got = received(&log);
    assert_in_order_and_once(&got);
    assert_eq!(
        got.last(),
        Some(&399),
        "the stream resumes on a new connection"
    );
}

#[test]
fn a_restarted_receiver_is_noticed_and_the_sender_is_told() {
    let mut setup = Setup::new(300);
    setup.faults = vec![
        (100 * MS, Fault::Crash { node: 1 }),
        (120 * MS, Fault::Restart { node: 1 }),
    ];
    let (log, _) = setup.run();
    let sender = breaks(&log, 0);
    assert_eq!(sender.len(), 1, "{sender:?}");
    assert!(
        sender[0].contains("PeerRestarted"),
        "the new life resets the old connection: {sender:?}"
    );
    let got = received(&log);
    assert_in_order_and_once(&got);
    assert_eq!(got.last(), Some(&299));
}

#[test]
fn a_restarted_sender_is_noticed_by_the_receiver() {
    let mut setup = Setup::new(300);
    setup.faults = vec![
        (100 * MS, Fault::Crash { node: 0 }),
        (120 * MS, Fault::Restart { node: 0 }),
    ];
    let (log, _) = setup.run();
    let receiver = breaks(&log, 1);
    assert_eq!(receiver.len(), 1, "{receiver:?}");
    assert!(receiver[0].contains("PeerRestarted"), "{receiver:?}");
}

fn harness() -> Harness<Wire> {
    let node = Streamer {
        endpoint: Endpoint::new(ConnParams::default()),
        sender: true,
        frames: 3,
        interval_ns: MS,
        next: 0,
        conn: None,
        log: Rc::default(),
    };
    Harness::new(0, 2, 1, Box::new(node))
}

fn syn_ack(boot: u32) -> Segment<u32> {
    Segment::SynAck {
        number: 1,
        boot,
        to_boot: own_boot(),
    }
}

/// Node 0's boot id in `harness()`: its first life's.
fn own_boot() -> u32 {
    1
}

#[test]
fn handler_by_handler_a_frame_waits_for_the_open_then_goes_with_its_timer() {
    let mut h = harness();
    assert_eq!(h.start(), "timer Tick in 1ms\n");
    assert_eq!(
        h.fire(Tick),
        "send 1 Syn [#1]\nannotate conn.state=#1 to 1 opening\ntimer Conn(#1 to 1) in 20ms\ntimer Tick in 1ms\n"
    );
    let answer = syn_ack(77);
    assert_eq!(
        h.deliver(1, answer),
        "annotate conn.state=#1 to 1 open\nsend 1 0 [#1 seq 1 ack 1]\n"
    );
}

#[test]
fn handler_by_handler_an_unanswered_segment_is_sent_again_with_backoff() {
    let mut h = harness();
    h.start();
    h.fire(Tick);
    let answer = syn_ack(77);
    h.deliver(1, answer);
    let first = h.fire(conn::Timer::<u32>::new(ConnId {
        peer: 1,
        mine: true,
        number: 1,
    }));
    assert_eq!(
        first,
        "annotate conn.state=#1 to 1 retransmitting\nsend 1 0 [#1 seq 1 ack 1]\ntimer Conn(#1 to 1) in 40ms\n"
    );
}

fn ack(ack: u32) -> Segment<u32> {
    let route = conn::Route {
        opener: false,
        number: 1,
        from_boot: 77,
        to_boot: own_boot(),
    };
    Segment::Ack { route, ack }
}

#[test]
fn handler_by_handler_repeated_acks_resend_the_missing_segment_at_once() {
    let mut h = harness();
    h.start();
    h.fire(Tick);
    h.deliver(1, syn_ack(77));
    // Frames 1 and 2 follow frame 0; the receiver got 1 and 2 but not 0, and says so
    // twice (its ack still asks for sequence number 1).
    h.fire(Tick);
    h.fire(Tick);
    assert_eq!(h.deliver(1, ack(1)), "", "one repeated ack is not enough");
    assert_eq!(
        h.deliver(1, ack(1)),
        "send 1 0 [#1 seq 1 ack 1]\n",
        "with three in flight the second repeat resends the oldest, before its timer"
    );
    assert_eq!(h.deliver(1, ack(1)), "", "once per loss");
    // An ack that moves on ends the episode; the next loss counts afresh.
    h.deliver(1, ack(2));
    assert_eq!(h.deliver(1, ack(2)), "send 1 1 [#1 seq 2 ack 1]\n");
}

proptest! {
    // A fixed seed: the same cases on every run, so CI never flakes; PROPTEST_RNG_SEED
    // or a new seed here explores others.
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_201),
        ..ProptestConfig::default()
    })]

    /// Whatever the network does, the receiver never sees a frame twice or out of
    /// order; with loss at most 20% and no partition longer than the timeout, it sees
    /// them all.
    #[test]
    fn any_network_gives_order_and_once_and_a_clean_one_gives_everything(
        seed in 0u64..1_000,
        loss in 0u32..=200_000,
        duplicate in 0u32..=200_000,
        reorder in 0u32..=300_000,
        fifo in any::<bool>(),
        cut_ms in prop::option::of((10u64..2_000, 10u64..4_000)),
    ) {
        let mut setup = Setup::new(150);
        setup.seed = seed;
        setup.link = LinkModel {
            latency: Latency::Uniform { min_ns: MS, max_ns: 10 * MS },
            loss_ppm: loss,
            duplicate_ppm: duplicate,
            reorder_ppm: reorder,
            reorder_ns_max: 30 * MS,
            fifo,
        };
        // A cut eats into the time a stalled segment has before the timeout: after a heal
        // the first retransmission may wait a full backoff (`rto_max`), and at 20% loss
        // each try fails one time in three. A cut up to a quarter of the timeout leaves
        // enough tries that a break is vanishingly rare; a longer one may break the
        // connection, as it would a TCP one.
        let long_cut = cut_ms.is_some_and(|(_, length)| length * MS > setup.params.timeout_ns / 4);
        if let Some((at, length)) = cut_ms {
            setup.faults = vec![
                (at * MS, Fault::Partition { groups: vec![vec![0], vec![1]] }),
                ((at + length) * MS, Fault::Heal),
            ];
        }
        let (log, _) = setup.run();
        let got = received(&log);
        for pair in got.windows(2) {
            prop_assert!(pair[0] < pair[1], "out of order or twice: {:?}", got);
        }
        // After a long cut, frames queued on the broken connection are lost, as a TCP
        // socket's send buffer is: only their order is promised.
        if !long_cut {
            prop_assert_eq!(got, (0..150).collect::<Vec<u32>>(), "breaks: {:?}", breaks(&log, 0));
        }
    }
}
