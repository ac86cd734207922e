//! Fast leader election's pure parts: how votes are ordered and when a set of votes
//! decides. `peer.rs` drives rounds and messages around them.
//!
//! As ZooKeeper's `FastLeaderElection.totalOrderPredicate` and `termPredicate`: a vote
//! wins by epoch, then by last zxid, then by server id; a vote decides once a quorum of
//! the votes received agree with it.

use std::collections::BTreeMap;

use super::{PeerState, Vote};
use crate::node::NodeId;

/// Whether `new` beats `current`. `ignore_epoch` is the planted bug
/// `zab.vote-ignores-epoch`: only the zxids' counters are compared.
pub fn beats(new: Vote, current: Vote, ignore_epoch: bool) -> bool {
    if ignore_epoch {
        let (new_counter, current_counter) = (new.zxid as u32, current.zxid as u32);
        return new_counter > current_counter
            || (new_counter == current_counter && new.leader > current.leader);
    }
    (new.epoch, new.zxid, new.leader) > (current.epoch, current.zxid, current.leader)
}

/// Whether two notifications' votes agree, as ZooKeeper's `Vote.equals`: while either
/// sender is looking, every field must match; between servers outside the election only
/// the leader and its epoch do (their zxids and rounds differ with when each joined,
/// ZOOKEEPER-1805). (ZooKeeper's mixed-version rule has no counterpart: one version.)
pub fn agree(a: (Vote, PeerState), b: (Vote, PeerState)) -> bool {
    if a.1 == PeerState::Looking || b.1 == PeerState::Looking {
        a.0 == b.0
    } else {
        a.0.leader == b.0.leader && a.0.epoch == b.0.epoch
    }
}

/// Whether a quorum of `votes` agree with `vote`.
pub fn has_quorum<V>(
    votes: &BTreeMap<NodeId, V>,
    quorum: usize,
    agrees: impl Fn(&V) -> bool,
) -> bool {
    votes.values().filter(|v| agrees(v)).count() >= quorum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(leader: NodeId, epoch: u32, zxid: u64) -> Vote {
        Vote {
            leader,
            zxid,
            epoch,
        }
    }

    /// ZooKeeper's `FLEPredicateTest.testPredicate`, case by case: (new id, new zxid,
    /// new epoch) against (current id, current zxid, current epoch).
    #[test]
    fn votes_are_ordered_as_zookeepers_fle_predicate_test_orders_them() {
        let cases = [
            // A lower epoch loses despite a higher id.
            ((4, 0, 0), (3, 0, 2), false),
            // A later epoch wins.
            ((0, 0, 1), (1, 0, 0), true),
            // The same epoch and a higher zxid wins.
            ((0, 1, 0), (1, 0, 0), true),
            // The same epoch and zxid and a higher id wins.
            ((1, 1, 0), (0, 1, 0), true),
        ];
        for ((new_id, new_zxid, new_epoch), (id, zxid, epoch), expected) in cases {
            let new = vote(new_id, new_epoch, new_zxid);
            let current = vote(id, epoch, zxid);
            assert_eq!(
                beats(new, current, false),
                expected,
                "{new:?} vs {current:?}"
            );
        }
        assert!(
            !beats(vote(1, 1, 5), vote(1, 1, 5), false),
            "a vote never beats itself"
        );
    }

    /// `FLEOutOfElectionTest.testIgnoringZxidElectionEpoch` and `testLookingNormal`, at
    /// the level of one comparison (the harness tests in `tests/zab_steps.rs` play them
    /// through a peer).
    #[test]
    fn outside_the_election_only_the_leader_and_its_epoch_must_agree() {
        let following = |zxid| (vote(4, 2, zxid), PeerState::Following);
        let leading = (
            vote(4, 2, crate::proto::zab::zxid(2, 1)),
            PeerState::Leading,
        );
        let one = crate::proto::zab::zxid(1, 1);
        let two = crate::proto::zab::zxid(1, 2);
        assert!(agree(following(one), following(two)));
        assert!(agree(following(one), leading));
        assert!(!agree(
            following(one),
            (vote(4, 3, one), PeerState::Following)
        ));
        assert!(!agree(
            following(one),
            (vote(3, 2, one), PeerState::Following)
        ));
        let looking = |zxid| (vote(4, 1, zxid), PeerState::Looking);
        assert!(agree(looking(one), looking(one)));
        assert!(
            !agree(looking(one), looking(two)),
            "looking votes match in full"
        );
        assert!(!agree(
            looking(one),
            (vote(4, 1, two), PeerState::Following)
        ));
    }

    #[test]
    fn the_planted_bug_lets_an_old_long_history_beat_a_new_short_one() {
        let old_long = vote(0, 1, super::super::zxid(1, 50));
        let new_short = vote(1, 2, super::super::zxid(2, 3));
        assert!(!beats(old_long, new_short, false));
        assert!(beats(old_long, new_short, true));
    }

    #[test]
    fn a_quorum_of_agreeing_votes_decides() {
        let mut votes = BTreeMap::new();
        votes.insert(0, 7);
        votes.insert(1, 7);
        votes.insert(2, 8);
        assert!(has_quorum(&votes, 2, |v| *v == 7));
        assert!(!has_quorum(&votes, 2, |v| *v == 8));
    }
}
