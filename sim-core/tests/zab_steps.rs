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
#[derive(Clone)]
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

#[derive(Clone)]
struct ZabNode(zab::Peer<Total>);

impl Node<Steps> for ZabNode {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Steps>) {
        self.0.on_start(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Steps>, from: NodeId, msg: Segment<ZMsg>) {
        let _ = self.0.take_message(ctx, from, msg);
        // The host's part: a leader proposes the writes its followers forward.
        for txn in self.0.take_forwarded() {
            let _ = self.0.submit(ctx, txn);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Steps>, id: TimerId, timer: StepsTimer) {
        let _ = self.0.take_timer(ctx, id, timer);
    }
}

const MS: u64 = 1_000_000;

fn config() -> zab::Config {
    ensemble(3)
}

fn ensemble(servers: u32) -> zab::Config {
    zab::Config {
        servers: (0..servers).collect(),
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
        Self::of(id, 3, bug)
    }

    /// Peer `id` of servers `0..servers`.
    fn of(id: NodeId, servers: u32, bug: Option<&str>) -> Self {
        let node = ZabNode(zab::Peer::new(id, ensemble(servers), ConnParams::default()));
        let mut harness = Harness::new(id, servers, 1, Box::new(node));
        if let Some(bug) = bug {
            harness = harness.with_bug(bug);
        }
        harness.start();
        let others: Vec<NodeId> = (0..servers).filter(|other| *other != id).collect();
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
        let segment = self.segment(from, msg);
        frames(&self.harness.deliver(from, segment))
    }

    /// The segment that carries `msg` from server `from`, next on its connection.
    fn segment(&mut self, from: NodeId, msg: ZMsg) -> Segment<ZMsg> {
        let remote = self
            .remotes
            .iter_mut()
            .find(|remote| remote.id() == from)
            .expect("one of the other servers");
        remote.frame(msg)
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

#[test]
fn a_proposal_before_newleader_is_fatal_not_logged() {
    // Peer 1 acknowledged epoch 1 and waits for the leader's sync; a PROPOSAL cannot
    // come first on a connection, and taking it would append the new epoch onto a log
    // that may still diverge from the leader's.
    let mut p = following_2(None);
    p.deliver(2, Msg::LeaderInfo { epoch: 1 });
    let text = p.deliver(2, proposal());
    assert_eq!(text[0], "note PROPOSAL before NEWLEADER; electing again");
    assert!(text.contains(&"observe Role { state: Looking, epoch: 0 }".to_string()));
    assert!(
        !text
            .iter()
            .any(|line| line.starts_with("disk") || line.contains("Ack {")),
        "{text:#?}"
    );
}

#[test]
fn a_duplicated_proposal_changes_nothing() {
    let mut p = serving_follower(None);
    let segment = p.segment(2, proposal());
    p.harness.deliver(2, segment.clone());
    // The network delivers it again: the connection drops it and says where it stands.
    let again = p.harness.deliver(2, segment);
    assert_eq!(
        again, "send 2 Ack [#1 ack 6]\n",
        "no disk write, no ZAB ack"
    );
}

/// Peer 2 leading epoch 1 with followers 0 and 1, both synchronised.
fn leading() -> Fixture {
    let mut p = Fixture::new(2, None);
    p.deliver(1, notification(2, 0, 0, 1));
    p.fire(Timer::Finalize);
    for follower in [0, 1] {
        p.deliver(follower, Msg::FollowerInfo { accepted_epoch: 0 });
    }
    for follower in [0, 1] {
        let ack = Msg::AckEpoch {
            current_epoch: 0,
            last_zxid: 0,
        };
        p.deliver(follower, ack);
    }
    for follower in [0, 1] {
        let ack = Msg::AckNewLeader {
            epoch: 1,
            last_zxid: 0,
        };
        p.deliver(follower, ack);
    }
    p
}

#[test]
fn a_leader_drops_a_follower_that_keeps_a_proposal_unacknowledged_past_sync_limit() {
    let mut p = leading();
    // Follower 1 forwards a write; the leader proposes it to both.
    let proposed = p.deliver(1, Msg::Forward { txn: 7 });
    assert!(
        proposed.contains(&"send 1 Proposal { epoch: 1, zxid: 4294967297, txn: 7 }".to_string())
    );
    // Follower 0 acks (a quorum with the leader): committed. Follower 1 never acks, but
    // answers every ping, as a follower whose disk is stuck would.
    p.deliver(
        0,
        Msg::Ack {
            zxid: zab::zxid(1, 1),
        },
    );
    let mut dropped = None;
    for tick in 1..=7 {
        let text = p.fire(Timer::Tick);
        p.deliver(0, Msg::Pong);
        p.deliver(1, Msg::Pong);
        if text.iter().any(|line| line.starts_with("note follower 1")) {
            dropped = Some((tick, text));
            break;
        }
    }
    let (tick, text) = dropped.expect("follower 1 is dropped");
    assert_eq!(tick, 6, "sync_limit is 5 ticks: dropped on the 6th");
    assert_eq!(
        text[0],
        "note follower 1: 0x100000001 unacknowledged for more than 5 ticks; dropping it"
    );
}

#[test]
fn a_follower_that_is_not_serving_within_init_limit_elects_again_despite_pings() {
    // NEWLEADER arrived and was acknowledged, UPTODATE never does; the leader's pings
    // keep coming. Peer 1 gives up after init_limit (10) ticks of following.
    let mut p = following_2(None);
    p.deliver(2, Msg::LeaderInfo { epoch: 1 });
    let sync = Sync::Diff(Vec::new());
    p.deliver(2, Msg::NewLeader { epoch: 1, sync });
    for _ in 0..10 {
        let text = p.fire(Timer::Tick);
        assert!(
            !text.iter().any(|line| line.starts_with("note")),
            "{text:#?}"
        );
        p.deliver(
            2,
            Msg::Ping {
                epoch: 1,
                committed: 0,
            },
        );
    }
    let text = p.fire(Timer::Tick);
    assert_eq!(
        text[0],
        "note not in sync with leader 2 after 10 ticks; electing again"
    );
}

#[test]
fn a_leader_drops_a_follower_that_never_acknowledges_newleader() {
    let mut p = Fixture::new(2, None);
    p.deliver(1, notification(2, 0, 0, 1));
    p.fire(Timer::Finalize);
    for follower in [0, 1] {
        p.deliver(follower, Msg::FollowerInfo { accepted_epoch: 0 });
        let ack = Msg::AckEpoch {
            current_epoch: 0,
            last_zxid: 0,
        };
        p.deliver(follower, ack);
    }
    // Only follower 0 acknowledges NEWLEADER: the epoch is established with it.
    p.deliver(
        0,
        Msg::AckNewLeader {
            epoch: 1,
            last_zxid: 0,
        },
    );
    let mut notes = Vec::new();
    for _ in 0..12 {
        let text = p.fire(Timer::Tick);
        p.deliver(0, Msg::Pong);
        notes.extend(text.into_iter().filter(|line| line.starts_with("note")));
    }
    assert_eq!(
        notes,
        ["note follower 1: not in sync after 10 ticks; dropping it"]
    );
}

/// A notification from a server outside the election (or looking, in `round`).
fn told(leader: NodeId, zxid: Zxid, epoch: u32, round: u64, state: PeerState) -> ZMsg {
    Msg::Notification {
        vote: vote(leader, zxid, epoch),
        round,
        state,
    }
}

fn role_lines(text: &[String]) -> Vec<&String> {
    text.iter()
        .filter(|line| line.starts_with("observe Role"))
        .collect()
}

// ZooKeeper's FLEOutOfElectionTest, played through peer 3 of a 5-server ensemble (a
// quorum is 3). ZooKeeper's cases build the vote sets by hand; here the notifications
// arrive one by one and the peer decides (or not) as the sets grow.

#[test]
fn out_of_election_votes_ignore_zxid_and_round() {
    // testIgnoringZxidElectionEpoch: 0 and 1 follow 4 in epoch 2 with different zxids
    // and rounds, 4 says it leads: peer 3 follows 4 at once, with no finalize wait.
    let mut p = Fixture::of(3, 5, None);
    let following = PeerState::Following;
    assert!(role_lines(&p.deliver(0, told(4, zab::zxid(1, 1), 2, 1, following))).is_empty());
    assert!(role_lines(&p.deliver(1, told(4, zab::zxid(1, 2), 2, 1, following))).is_empty());
    let joined = p.deliver(4, told(4, zab::zxid(2, 1), 2, 2, PeerState::Leading));
    assert_eq!(
        role_lines(&joined),
        ["observe Role { state: Following, epoch: 0 }"]
    );
    assert!(joined.contains(&"send 4 FollowerInfo { accepted_epoch: 0 }".to_string()));
}

#[test]
fn a_quorum_of_followers_without_word_from_the_leader_is_not_enough() {
    // checkLeader: three servers say they follow 4, but 4 itself has not said it leads.
    let mut p = Fixture::of(3, 5, None);
    for from in [0, 1, 2] {
        let text = p.deliver(from, told(4, 9, 2, 1, PeerState::Following));
        assert!(role_lines(&text).is_empty(), "{text:#?}");
    }
    let text = p.deliver(4, told(4, 9, 2, 1, PeerState::Leading));
    assert_eq!(
        role_lines(&text),
        ["observe Role { state: Following, epoch: 0 }"]
    );
}

#[test]
fn followers_of_different_epochs_do_not_make_a_quorum() {
    // Vote.equals outside the election still compares the leader's epoch.
    let mut p = Fixture::of(3, 5, None);
    p.deliver(0, told(4, 9, 1, 1, PeerState::Following));
    p.deliver(1, told(4, 9, 2, 1, PeerState::Following));
    let text = p.deliver(4, told(4, 9, 3, 2, PeerState::Leading));
    assert!(role_lines(&text).is_empty(), "{text:#?}");
}

#[test]
fn looking_votes_of_different_rounds_do_not_make_a_quorum() {
    // testLookingDiffRounds: votes for 4 from rounds 1, 2 and 3; peer 3 moves to each
    // higher round and starts counting again, so no quorum forms and no finalize wait
    // is armed.
    let mut p = Fixture::of(3, 5, None);
    let mut text = Vec::new();
    text.extend(p.deliver(1, told(4, 9, 1, 2, PeerState::Looking)));
    text.extend(p.deliver(0, told(4, 9, 1, 1, PeerState::Looking)));
    text.extend(p.deliver(2, told(4, 9, 1, 3, PeerState::Looking)));
    assert!(
        !text.iter().any(|line| line.starts_with("timer Finalize")),
        "{text:#?}"
    );
    // testLookingNormal: the same votes in one round make a quorum.
    let mut p = Fixture::of(3, 5, None);
    let mut text = Vec::new();
    for from in [0, 1] {
        text.extend(p.deliver(from, told(4, 9, 1, 1, PeerState::Looking)));
    }
    assert!(
        text.contains(&"timer Finalize in 10ms".to_string()),
        "{text:#?}"
    );
}
