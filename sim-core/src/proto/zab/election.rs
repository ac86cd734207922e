//! Fast leader election's pure parts: how votes are ordered and when a set of votes
//! decides. `peer.rs` drives rounds and messages around them.
//!
//! As ZooKeeper's `FastLeaderElection.totalOrderPredicate` and `termPredicate`: a vote
//! wins by epoch, then by last zxid, then by server id; a vote decides once a quorum of
//! the votes received agree with it.

use std::collections::BTreeMap;

use super::Vote;
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

    // The cases of ZooKeeper's FLEPredicateTest: a higher epoch wins whatever the zxid,
    // then a higher zxid, then a higher id.
    #[test]
    fn votes_are_ordered_by_epoch_then_zxid_then_id() {
        assert!(beats(vote(0, 2, 1), vote(1, 1, 100), false));
        assert!(!beats(vote(1, 1, 100), vote(0, 2, 1), false));
        assert!(beats(vote(0, 1, 5), vote(1, 1, 4), false));
        assert!(beats(vote(2, 1, 5), vote(1, 1, 5), false));
        assert!(
            !beats(vote(1, 1, 5), vote(1, 1, 5), false),
            "a vote never beats itself"
        );
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
