//! ZAB, one handler at a time: election, discovery and synchronisation steps of a single
//! peer, driven by the testing harness and compared with the text of what each handler
//! did (sends, timers, disk operations, observations, in order). The rest of the ensemble
//! is played by hand. A peer that acknowledges anything before it is on disk, or votes
//! out of ZooKeeper's order, changes this text.

use serde::{Deserialize, Serialize};
use sim_core::proto::zab::{self, Msg, PeerState, StateMachine, Sync, Timer, Vote, Zxid};
use sim_core::testing::Harness;
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

/// A host whose nodes are ZAB peers and nothing else.
struct Steps;

impl Proto for Steps {
    type Msg = Msg<u64, Total>;
    type Obs = zab::Obs;
    type Timer = Timer;
}

struct ZabNode(zab::Peer<Total>);

impl Node<Steps> for ZabNode {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Steps>) {
        self.0.on_start(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Steps>, from: NodeId, msg: Msg<u64, Total>) {
        self.0.on_message(ctx, from, msg);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Steps>, id: TimerId, timer: Timer) {
        self.0.on_timer(ctx, id, timer);
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

fn peer(id: NodeId) -> Harness<Steps> {
    let node = ZabNode(zab::Peer::new(id, config()));
    Harness::new(id, 3, 1, Box::new(node))
}

fn vote(leader: NodeId, zxid: Zxid, epoch: u32) -> Vote {
    Vote {
        leader,
        zxid,
        epoch,
    }
}

fn notification(leader: NodeId, zxid: Zxid, epoch: u32, round: u64) -> Msg<u64, Total> {
    Msg::Notification {
        vote: vote(leader, zxid, epoch),
        round,
        state: PeerState::Looking,
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn a_booting_peer_votes_for_itself_and_tells_every_other_server() {
    let mut p = peer(1);
    assert_eq!(
        lines(&p.start()),
        [
            "observe Loaded { zxid: 0, digest: 0 }",
            "timer Tick in 20ms",
            "observe Role { state: Looking, epoch: 0 }",
            "send 0 Notification { vote: Vote { leader: 1, zxid: 0, epoch: 0 }, round: 1, state: Looking }",
            "send 2 Notification { vote: Vote { leader: 1, zxid: 0, epoch: 0 }, round: 1, state: Looking }",
        ]
    );
}

#[test]
fn a_better_vote_is_adopted_and_sent_on_and_a_quorum_arms_the_finalize_wait() {
    let mut p = peer(1);
    p.start();
    // Server 2's vote beats ours on the id alone (same epoch, same zxid).
    assert_eq!(
        lines(&p.deliver(2, notification(2, 0, 0, 1))),
        [
            "send 0 Notification { vote: Vote { leader: 2, zxid: 0, epoch: 0 }, round: 1, state: Looking }",
            "send 2 Notification { vote: Vote { leader: 2, zxid: 0, epoch: 0 }, round: 1, state: Looking }",
            "timer Finalize in 10ms",
        ]
    );
    // A worse vote changes nothing.
    assert_eq!(p.deliver(0, notification(0, 0, 0, 1)), "");
    // No better vote came within the wait: follow server 2 and tell it our epoch.
    let decided = p.fire(Timer::Finalize);
    assert_eq!(
        lines(&decided),
        [
            "observe Role { state: Following, epoch: 0 }",
            "send 2 FollowerInfo { accepted_epoch: 0 }",
        ]
    );
}

/// Peer 1 elected with server 2 as leader, in discovery.
fn following_2() -> Harness<Steps> {
    let mut p = peer(1);
    p.start();
    p.deliver(2, notification(2, 0, 0, 1));
    p.fire(Timer::Finalize);
    p
}

#[test]
fn a_follower_persists_the_new_epoch_before_acknowledging_it() {
    let mut p = following_2();
    assert_eq!(
        lines(&p.deliver(2, Msg::LeaderInfo { epoch: 1 })),
        [
            "disk write zab/epochs 11 bytes",
            "disk sync",
            "send 2 AckEpoch { current_epoch: 0, last_zxid: 0 }",
        ]
    );
}

#[test]
fn a_follower_persists_a_diff_and_its_epoch_before_acknowledging_newleader() {
    let mut p = following_2();
    p.deliver(2, Msg::LeaderInfo { epoch: 1 });
    let sync = Sync::Diff(vec![(zab::zxid(1, 1), 5)]);
    let text = p.deliver(2, Msg::NewLeader { epoch: 1, sync });
    let text = lines(&text);
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
fn serving_follower(bug: Option<&str>) -> Harness<Steps> {
    let node = ZabNode(zab::Peer::new(1, config()));
    let mut p = Harness::new(1, 3, 1, Box::new(node));
    if let Some(bug) = bug {
        p = p.with_bug(bug);
    }
    p.start();
    p.deliver(2, notification(2, 0, 0, 1));
    p.fire(Timer::Finalize);
    p.deliver(2, Msg::LeaderInfo { epoch: 1 });
    let sync = Sync::Diff(Vec::new());
    p.deliver(2, Msg::NewLeader { epoch: 1, sync });
    let committed = 0;
    p.deliver(
        2,
        Msg::UpToDate {
            epoch: 1,
            committed,
        },
    );
    p
}

fn proposal() -> Msg<u64, Total> {
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
        lines(&p.deliver(2, proposal())),
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
        lines(&p.deliver(2, proposal())),
        [
            "disk append zab/log 14 bytes",
            "send 2 Ack { zxid: 4294967297 }",
        ]
    );
}

#[test]
fn a_leader_chooses_an_epoch_above_every_one_a_quorum_reported_and_persists_it_first() {
    let mut p = peer(2);
    p.start();
    p.deliver(1, notification(2, 0, 0, 1));
    p.fire(Timer::Finalize);
    assert_eq!(
        lines(&p.deliver(1, Msg::FollowerInfo { accepted_epoch: 4 })),
        [
            "disk write zab/epochs 11 bytes",
            "disk sync",
            "send 1 LeaderInfo { epoch: 5 }",
        ]
    );
}
