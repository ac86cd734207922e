//! ZAB, one handler at a time: election, discovery and synchronisation steps of a single
//! peer, driven by the testing harness and compared with the text of what each handler
//! did (sends, timers, disk operations, observations, in order). The rest of the ensemble
//! is played by hand, over connections (`testing::Remote`); past the first test, the
//! connections' own bookkeeping is left out of the text so it reads as ZAB. A peer that
//! acknowledges anything before it is on disk, or votes out of ZooKeeper's order, changes
//! this text.

use serde::{Deserialize, Serialize};
use sim_core::conn::{self, ConnParams, Segment};
use sim_core::host_enum;
use sim_core::proto::zab::{self, Msg, PeerState, StateMachine, Sync, Timer, Vote, Zxid};
use sim_core::testing::{Harness, Remote};
use sim_core::{Ctx, Node, NodeId, Proto, TimerId};

/// The smallest state machine: a running total.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Total(u64);

impl StateMachine for Total {
    type Txn = u64;
    type Output = u64;

    fn apply(&mut self, _zxid: Zxid, txn: &u64) -> u64 {
        self.0 += txn;
        self.0
    }
}

type ZMsg = Msg<u64, Total>;

/// A host whose nodes are ZAB peers and nothing else.
struct Steps;

impl Proto for Steps {
    type Msg = Segment<ZMsg>;
    type Obs = zab::Obs;
    type Timer = StepsTimer;
}

host_enum! {
    #[derive(Clone, PartialEq, Serialize)]
    enum StepsTimer {
        Zab(Timer),
        Link(conn::Timer<ZMsg>),
    }
}

struct ZabNode(zab::Peer<Total>);

impl Node<Steps> for ZabNode {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Steps>) {
        self.0.on_start(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Steps>, from: NodeId, msg: Segment<ZMsg>) {
        let _ = self.0.take_message(ctx, from, msg);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Steps>, id: TimerId, timer: StepsTimer) {
        let _ = self.0.take_timer(ctx, id, timer);
    }
}

const MS: u64 = 1_000_000;

fn config() -> zab::Config {
    zab::Config {
        servers: vec![0, 1, 2],
        tick_ns: 20 * MS,
        init_limit_ticks: 10,
        sync_limit_ticks: 5,
        finalize_ns: 10 * MS,
        snapshot_every: 100,
        log_retain: 50,
    }
}

/// Peer `id` of servers 0, 1 and 2 with the other two played by hand, connections open
/// both ways, the peer's first notifications sent.
struct Fixture {
    harness: Harness<Steps>,
    remotes: Vec<Remote>,
}

impl Fixture {
    fn new(id: NodeId, bug: Option<&str>) -> Self {
        let node = ZabNode(zab::Peer::new(id, config(), ConnParams::default()));
        let mut harness = Harness::new(id, 3, 1, Box::new(node));
        if let Some(bug) = bug {
            harness = harness.with_bug(bug);
        }
        harness.start();
        let others: Vec<NodeId> = (0..3).filter(|other| *other != id).collect();
        let mut remotes = Vec::new();
        for (index, other) in others.into_iter().enumerate() {
            let remote = Remote::new(other);
            // The peer numbers its connections in the order it opened them.
            harness.deliver(other, remote.accept::<ZMsg>(index as u32 + 1));
            harness.deliver(other, remote.syn::<ZMsg>());
            remotes.push(remote);
        }
        Self { harness, remotes }
    }

    /// Server `from` sends `msg`; what the peer did, as ZAB.
    fn deliver(&mut self, from: NodeId, msg: ZMsg) -> Vec<String> {
        let remote = self
            .remotes
            .iter_mut()
            .find(|remote| remote.id() == from)
            .expect("one of the other servers");
        let segment = remote.frame(msg);
        frames(&self.harness.deliver(from, segment))
    }

    fn fire(&mut self, timer: Timer) -> Vec<String> {
        frames(&self.harness.fire(timer))
    }
}

/// The handler's text without the connections' bookkeeping: no connection timers or
/// annotations, and each frame without its `[#1 seq 2 ack 1]`.
fn frames(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| {
            !line.starts_with("annotate conn.")
                && !line.starts_with("timer Conn(")
                && !line.starts_with("cancel Conn(")
        })
        .map(|line| match line.rfind(" [#") {
            Some(at) if line.starts_with("send ") => line[..at].to_string(),
            _ => line.to_string(),
        })
        .collect()
}

fn vote(leader: NodeId, zxid: Zxid, epoch: u32) -> Vote {
    Vote {
        leader,
        zxid,
        epoch,
    }
}

fn notification(leader: NodeId, zxid: Zxid, epoch: u32, round: u64) -> ZMsg {
    Msg::Notification {
        vote: vote(leader, zxid, epoch),
        round,
        state: PeerState::Looking,
    }
}

#[test]
fn a_booting_peer_opens_a_connection_to_every_other_server_and_votes_for_itself_on_it() {
    let node = ZabNode(zab::Peer::new(1, config(), ConnParams::default()));
    let mut p = Harness::new(1, 3, 1, Box::new(node));
    let start = p.start();
    assert_eq!(
        start.lines().collect::<Vec<_>>(),
        [
            "observe Loaded { zxid: 0, digest: 0 }",
            "timer Tick in 20ms",
            "observe Role { state: Looking, epoch: 0 }",
            "send 0 Syn [#1]",
            "annotate conn.state=#1 to 0 opening",
            "timer Conn(#1 to 0) in 20ms",
            "send 2 Syn [#2]",
            "annotate conn.state=#2 to 2 opening",
            "timer Conn(#2 to 2) in 20ms",
        ]
    );
    // The vote waits in the connection until server 2 accepts it.
    let accepted = p.deliver(2, Remote::new(2).accept::<ZMsg>(2));
    assert_eq!(
        accepted.lines().collect::<Vec<_>>(),
        [
            "annotate conn.state=#2 to 2 open",
            "send 2 Notification { vote: Vote { leader: 1, zxid: 0, epoch: 0 }, round: 1, state: Looking } [#2 seq 1 ack 1]",
        ]
    );
}

#[test]
fn a_better_vote_is_adopted_and_sent_on_and_a_quorum_arms_the_finalize_wait() {
    let mut p = Fixture::new(1, None);
    // Server 2's vote beats ours on the id alone (same epoch, same zxid).
    assert_eq!(
        p.deliver(2, notification(2, 0, 0, 1)),
        [
            "timer Finalize in 10ms",
            "send 0 Notification { vote: Vote { leader: 2, zxid: 0, epoch: 0 }, round: 1, state: Looking }",
            "send 2 Notification { vote: Vote { leader: 2, zxid: 0, epoch: 0 }, round: 1, state: Looking }",
        ]
    );
    // A worse vote changes nothing.
    assert_eq!(p.deliver(0, notification(0, 0, 0, 1)), Vec::<String>::new());
    // No better vote came within the wait: follow server 2 and tell it our epoch.
    assert_eq!(
        p.fire(Timer::Finalize),
        [
            "observe Role { state: Following, epoch: 0 }",
            "send 2 FollowerInfo { accepted_epoch: 0 }",
        ]
    );
}

/// Peer 1 elected with server 2 as leader, in discovery.
fn following_2(bug: Option<&str>) -> Fixture {
    let mut p = Fixture::new(1, bug);
    p.deliver(2, notification(2, 0, 0, 1));
    p.fire(Timer::Finalize);
    p
}

#[test]
fn a_follower_persists_the_new_epoch_before_acknowledging_it() {
    let mut p = following_2(None);
    assert_eq!(
        p.deliver(2, Msg::LeaderInfo { epoch: 1 }),
        [
            "disk write zab/epochs 11 bytes",
            "disk sync",
            "send 2 AckEpoch { current_epoch: 0, last_zxid: 0 }",
        ]
    );
}

#[test]
fn a_follower_persists_a_diff_and_its_epoch_before_acknowledging_newleader() {
    let mut p = following_2(None);
    p.deliver(2, Msg::LeaderInfo { epoch: 1 });
    let sync = Sync::Diff(vec![(zab::zxid(1, 1), 5)]);
    let text = p.deliver(2, Msg::NewLeader { epoch: 1, sync });
    let ack = text
        .iter()
        .position(|line| line.starts_with("send 2 AckNewLeader"))
        .expect("NEWLEADER is acknowledged");
    let sync_at = text
        .iter()
        .rposition(|line| *line == "disk sync")
        .expect("the sync is persisted");
    assert!(sync_at < ack, "persist, then acknowledge: {text:#?}");
    assert_eq!(
        text[ack],
        "send 2 AckNewLeader { epoch: 1, last_zxid: 4294967297 }"
    );
}

/// Peer 1 serving as server 2's follower in epoch 1, with the planted bug `bug` on.
fn serving_follower(bug: Option<&str>) -> Fixture {
    let mut p = following_2(bug);
    p.deliver(2, Msg::LeaderInfo { epoch: 1 });
    let sync = Sync::Diff(Vec::new());
    p.deliver(2, Msg::NewLeader { epoch: 1, sync });
    p.deliver(
        2,
        Msg::UpToDate {
            epoch: 1,
            committed: 0,
        },
    );
    p
}

fn proposal() -> ZMsg {
    Msg::Proposal {
        epoch: 1,
        zxid: zab::zxid(1, 1),
        txn: 7,
    }
}

#[test]
fn a_follower_logs_a_proposal_and_syncs_before_it_acks() {
    let mut p = serving_follower(None);
    assert_eq!(
        p.deliver(2, proposal()),
        [
            "disk append zab/log 14 bytes",
            "disk sync",
            "send 2 Ack { zxid: 4294967297 }",
        ]
    );
}

#[test]
fn a_follower_with_ack_before_persist_acks_before_any_sync() {
    let mut p = serving_follower(Some("zab.ack-before-persist"));
    assert_eq!(
        p.deliver(2, proposal()),
        [
            "disk append zab/log 14 bytes",
            "send 2 Ack { zxid: 4294967297 }",
        ]
    );
}

#[test]
fn a_leader_chooses_an_epoch_above_every_one_a_quorum_reported_and_persists_it_first() {
    let mut p = Fixture::new(2, None);
    p.deliver(1, notification(2, 0, 0, 1));
    p.fire(Timer::Finalize);
    assert_eq!(
        p.deliver(1, Msg::FollowerInfo { accepted_epoch: 4 }),
        [
            "disk write zab/epochs 11 bytes",
            "disk sync",
            "send 1 LeaderInfo { epoch: 5 }",
        ]
    );
}
