//! Synchronisation: the leader tells each follower how to reach its history (DIFF,
//! TRUNC or SNAP, carried by NEWLEADER), the follower persists it before it acknowledges,
//! and a quorum's acknowledgements establish the epoch.

use super::*;

impl<S: StateMachine> Peer<S> {
    /// How a follower whose history ends at `follower_zxid` catches up with this leader.
    pub(super) fn sync_for(&self, follower_zxid: Zxid) -> Sync<S::Txn, S> {
        let last = self.last_zxid();
        if follower_zxid == last {
            return Sync::Diff(Vec::new());
        }
        if follower_zxid > last && last != 0 && epoch_of(follower_zxid) == epoch_of(last) {
            // The same epoch's leader sent both histories in order: the follower's extra
            // entries were never committed.
            return Sync::Trunc(last);
        }
        let in_log = self.log.iter().position(|(z, _)| *z == follower_zxid);
        if follower_zxid == self.log_base || in_log.is_some() {
            let start = in_log.map_or(0, |i| i + 1);
            return Sync::Diff(self.log[start..].to_vec());
        }
        Sync::Snap {
            zxid: self.applied,
            digest: self.digest,
            state: Box::new(self.state.clone()),
            entries: self
                .log
                .iter()
                .filter(|(z, _)| *z > self.applied)
                .cloned()
                .collect(),
        }
    }

    pub(super) fn sync_follower(&mut self, follower: NodeId) {
        let Role::Leading {
            epoch: Some(epoch),
            links,
            ..
        } = &self.role
        else {
            return;
        };
        let epoch = *epoch;
        let Some(link) = links.get(&follower) else {
            return;
        };
        let sync = self.sync_for(link.last_zxid);
        let tick = self.tick;
        if let Role::Leading { links, .. } = &mut self.role {
            let link = links.get_mut(&follower).expect("checked");
            link.enter(LinkPhase::Syncing, tick);
        }
        self.outbox
            .push_to(follower, Msg::NewLeader { epoch, sync });
    }

    pub(super) fn on_new_leader<H: Host<S>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        epoch: u32,
        sync: Sync<S::Txn, S>,
    ) {
        if !self.is_from_leader(from, epoch) {
            return;
        }
        let Role::Following { phase, .. } = &mut self.role else {
            return;
        };
        if *phase != Phase::AwaitingNewLeader {
            ctx.sometimes("zab.second-newleader");
            ctx.note("a second NEWLEADER; electing again");
            self.look(ctx);
            return;
        }
        *phase = Phase::Sync;
        match sync {
            Sync::Diff(entries) => {
                if !entries.is_empty() {
                    ctx.sometimes("zab.sync-diff");
                }
                for (zxid, txn) in entries {
                    if zxid <= self.last_zxid() {
                        continue;
                    }
                    storage::append_entry(ctx.disk(), zxid, &txn);
                    self.log.push((zxid, txn));
                }
            }
            Sync::Trunc(to) => {
                ctx.sometimes("zab.sync-trunc");
                if self.applied > to {
                    self.discard_everything(ctx, to);
                    return;
                }
                self.log.retain(|(z, _)| *z <= to);
                storage::rewrite_log(ctx.disk(), &self.log);
            }
            Sync::Snap {
                zxid,
                digest,
                state,
                entries,
            } => {
                ctx.sometimes("zab.sync-snap");
                self.state = *state;
                self.applied = zxid;
                self.digest = digest;
                self.snapshot_zxid = zxid;
                self.log_base = zxid;
                self.log = entries;
                self.applied_since_snapshot = 0;
                self.write_snapshot(ctx);
                storage::rewrite_log(ctx.disk(), &self.log);
                ctx.observe(Obs::Loaded { zxid, digest });
            }
        }
        self.current_epoch = epoch;
        // ZooKeeper's `updateElectionVote`: whoever joined when, every member now
        // answers a looking server with the same leader and epoch.
        self.vote.epoch = epoch;
        self.write_epochs(ctx);
        if ctx.bug(ACK_BEFORE_PERSIST) {
            self.dirty = true;
        } else {
            self.sync_disk(ctx);
        }
        let ack = Msg::AckNewLeader {
            epoch,
            last_zxid: self.last_zxid(),
        };
        self.outbox.push_to(from, ack);
    }

    /// A TRUNC below what this server applied: only a broken leader sends one. The
    /// checkers see it; the server drops its history and resynchronises from scratch.
    pub(super) fn discard_everything<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>, to: Zxid) {
        ctx.observe(Obs::Truncated {
            to,
            applied: self.applied,
        });
        self.state = S::default();
        self.applied = 0;
        self.digest = 0;
        self.snapshot_zxid = 0;
        self.log_base = 0;
        self.log.clear();
        self.applied_since_snapshot = 0;
        self.write_snapshot(ctx);
        storage::rewrite_log(ctx.disk(), &self.log);
        self.sync_disk(ctx);
        ctx.observe(Obs::Loaded { zxid: 0, digest: 0 });
        self.look(ctx);
    }

    pub(super) fn on_ack_new_leader<H: Host<S>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        epoch: u32,
        last_zxid: Zxid,
    ) {
        let (applied, tick) = (self.applied, self.tick);
        let Role::Leading {
            epoch: Some(my_epoch),
            phase,
            links,
            pending,
            ..
        } = &mut self.role
        else {
            return;
        };
        if *my_epoch != epoch {
            return;
        }
        let Some(link) = links.get_mut(&from) else {
            return;
        };
        if link.phase != LinkPhase::Syncing {
            return;
        }
        link.enter(LinkPhase::Ready, tick);
        link.last_zxid = last_zxid;
        link.acks.acked(last_zxid);
        for (_, acks) in pending.range_mut(..=last_zxid) {
            acks.insert(from);
        }
        if *phase == Phase::Broadcast {
            let up_to_date = Msg::UpToDate {
                epoch,
                committed: applied,
            };
            self.outbox.push_to(from, up_to_date);
            self.try_commit(ctx);
        } else {
            self.try_establish(ctx);
        }
    }

    pub(super) fn try_establish<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        let quorum = self.config.quorum();
        let Role::Leading {
            epoch: Some(epoch),
            phase: phase @ Phase::Sync,
            links,
            counter,
            ..
        } = &mut self.role
        else {
            return;
        };
        let ready: Vec<NodeId> = followers(links, |p| p == LinkPhase::Ready);
        if ready.len() + 1 < quorum {
            return;
        }
        let epoch = *epoch;
        *phase = Phase::Broadcast;
        *counter = 0;
        self.current_epoch = epoch;
        self.vote.epoch = epoch;
        self.write_epochs(ctx);
        self.sync_disk(ctx);
        // A quorum now holds the leader's whole history: all of it is committed.
        let to_apply: Vec<(Zxid, S::Txn)> = self
            .log
            .iter()
            .filter(|(z, _)| *z > self.applied)
            .cloned()
            .collect();
        for (zxid, txn) in to_apply {
            self.apply(ctx, zxid, txn);
        }
        ctx.observe(Obs::Serving {
            leader: self.id,
            epoch,
        });
        let committed = self.applied;
        for follower in ready {
            self.outbox
                .push_to(follower, Msg::UpToDate { epoch, committed });
        }
    }
}

/// The leader's sync decision against ZooKeeper's `LearnerHandlerTest`, case by case.
/// ZooKeeper's leader keeps a committed log and a transaction log; ours keeps one log of
/// what it has after a snapshot. Where ZooKeeper can send TRUNC to an older zxid and then
/// a DIFF (a follower whose last zxid falls between two of the leader's, or lies in a
/// later epoch), this leader answers SNAP: correct, only larger.
#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::super::Peer;
    use crate::conn::ConnParams;
    use crate::proto::zab::{zxid, Config, StateMachine, Sync, Zxid};

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

    /// A leader whose log holds `log` after `log_base`, applied up to `applied`.
    fn leader(log_base: Zxid, log: &[Zxid], applied: Zxid) -> Peer<Total> {
        let config = Config {
            servers: vec![0, 1, 2],
            tick_ns: 1,
            init_limit_ticks: 10,
            sync_limit_ticks: 5,
            finalize_ns: 1,
            snapshot_every: 100,
            log_retain: 50,
        };
        let mut peer = Peer::new(0, config, ConnParams::default());
        peer.log_base = log_base;
        peer.log = log.iter().map(|z| (*z, 1)).collect();
        peer.applied = applied;
        peer
    }

    /// What the follower gets, in short: `DIFF [..]`, `TRUNC z` or `SNAP`.
    fn decision(peer: &Peer<Total>, follower: Zxid) -> String {
        match peer.sync_for(follower) {
            Sync::Diff(entries) => {
                let zxids: Vec<Zxid> = entries.iter().map(|(z, _)| *z).collect();
                format!("DIFF {zxids:?}")
            }
            Sync::Trunc(to) => format!("TRUNC {to}"),
            Sync::Snap { .. } => "SNAP".to_string(),
        }
    }

    #[test]
    fn an_empty_log_truncates_a_follower_ahead_diffs_an_equal_one_and_snaps_one_behind() {
        // testEmptyCommittedLog: last processed 1, nothing in the log.
        let peer = leader(1, &[], 1);
        assert_eq!(decision(&peer, 3), "TRUNC 1");
        assert_eq!(decision(&peer, 1), "DIFF []");
        assert_eq!(decision(&peer, 0), "SNAP");
    }

    #[test]
    fn a_follower_on_the_log_gets_the_rest_of_it() {
        // testCommittedLog b: log 2, 3, 5 (and 6), the follower at 2.
        let peer = leader(0, &[2, 3, 5, 6], 6);
        assert_eq!(decision(&peer, 2), "DIFF [3, 5, 6]");
        // testTxnLogOnly b, with the snapshot's zxid as the follower's: all of the log.
        let peer = leader(2, &[3, 5, 6, 7], 7);
        assert_eq!(decision(&peer, 2), "DIFF [3, 5, 6, 7]");
    }

    #[test]
    fn a_follower_between_two_entries_or_before_the_log_gets_a_snapshot() {
        // testCommittedLog a: ZooKeeper sends TRUNC 3 then 5; we send SNAP.
        let peer = leader(0, &[2, 3, 5, 6], 6);
        assert_eq!(decision(&peer, 4), "SNAP");
        // testCommittedLog c and testTxnLogOnly c: before the log, no txn log to go on.
        assert_eq!(decision(&peer, 1), "SNAP");
        // testTxnLogGap: the follower's history ends before a gap in the leader's.
        let peer = leader(7, &[8], 8);
        assert_eq!(decision(&peer, 3), "SNAP");
    }

    #[test]
    fn a_follower_ahead_in_the_leaders_epoch_is_truncated_but_not_across_epochs() {
        let peer = leader(0, &[zxid(1, 1), zxid(1, 2), zxid(1, 5)], zxid(1, 5));
        assert_eq!(
            decision(&peer, zxid(1, 7)),
            format!("TRUNC {}", zxid(1, 5)),
            "the same leader sent both, so the extra entries were never committed"
        );
        // testCrossEpochTrunc: the follower's last zxid is in an epoch the leader never
        // saw: SNAP, as ZooKeeper (which will not TRUNC across epochs either).
        let peer = leader(
            0,
            &[zxid(1, 1), zxid(2, 1), zxid(2, 2), zxid(4, 1)],
            zxid(4, 1),
        );
        assert_eq!(decision(&peer, zxid(3, 1)), "SNAP");
        // A follower ahead in a later epoch: ZooKeeper truncates it to the leader's
        // last zxid; we send SNAP.
        assert_eq!(decision(&peer, zxid(5, 2)), "SNAP");
    }

    #[test]
    fn a_follower_in_step_gets_an_empty_diff() {
        // testNewEpochZxid c: nothing to send.
        let peer = leader(0, &[zxid(1, 1), zxid(1, 2)], zxid(1, 2));
        assert_eq!(decision(&peer, zxid(1, 2)), "DIFF []");
        // testNewEpochZxid b: the follower has nothing of epoch 1 yet. ZooKeeper sends
        // everything of epoch 1 as a DIFF; with nothing before epoch 1 in our log's base,
        // so do we.
        assert_eq!(decision(&peer, 0), "DIFF [4294967297, 4294967298]");
    }
}
