//! Heartbeats and failure detection, once per tick: election resends, a follower's
//! silence and sync limits, a leader's limits on each follower (ZooKeeper's
//! `LearnerHandler`), its quorum check and pings. It owns no state of its own.

use super::*;

impl<S: StateMachine> Peer<S> {
    pub(super) fn on_tick<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.tick += 1;
        if self.dirty {
            // The planted bug's lazy sync: acked entries reach the disk a tick late.
            self.sync_disk(ctx);
        }
        let tick = self.tick;
        match &self.role {
            Role::Looking { since_tick, .. } => {
                if (tick - since_tick).is_multiple_of(2) {
                    self.notify_all();
                }
            }
            Role::Following { .. } => self.check_leader(ctx),
            Role::Leading { .. } => self.check_followers(ctx),
        }
    }

    /// A follower gives up on its leader after `sync_limit` ticks of silence once
    /// serving, and when it is not serving within `init_limit` ticks of starting to
    /// follow (pings alone do not keep a follower stuck in synchronisation). In
    /// discovery it says FOLLOWERINFO again each tick: the leader drops one that comes
    /// before it has decided to lead (ZooKeeper's learner retries its connection).
    fn check_leader<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        let (init_limit, sync_limit) = self.limits();
        let tick = self.tick;
        let Role::Following {
            leader,
            phase,
            since_tick,
            last_heard_tick,
            ..
        } = &self.role
        else {
            return;
        };
        let leader = *leader;
        if *phase == Phase::Broadcast {
            if tick - last_heard_tick > sync_limit {
                ctx.sometimes("zab.follower-gives-up");
                ctx.note(format!("no word from leader {leader}; electing again"));
                self.look(ctx);
            }
        } else if tick - since_tick > init_limit {
            ctx.note(format!(
                "not in sync with leader {leader} after {init_limit} ticks; electing again"
            ));
            self.look(ctx);
        } else if *phase == Phase::Discovery {
            let info = Msg::FollowerInfo {
                accepted_epoch: self.accepted_epoch,
            };
            self.outbox.push_to(leader, info);
        }
    }

    /// A leader that has not established its epoch within `init_limit` ticks elects
    /// again. Once it has, it drops a follower that has not synchronised within
    /// `init_limit` ticks, or has kept a proposal unacknowledged for more than
    /// `sync_limit` (ZooKeeper's "transaction timeout"); it steps down when fewer than a
    /// quorum are synchronised and heard within `sync_limit`; and it pings the rest.
    fn check_followers<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        let (init_limit, sync_limit) = self.limits();
        let tick = self.tick;
        let Role::Leading {
            epoch,
            phase,
            links,
            since_tick,
            ..
        } = &self.role
        else {
            return;
        };
        if *phase != Phase::Broadcast {
            if tick - since_tick > init_limit {
                ctx.note("no quorum to establish the epoch; electing again");
                self.look(ctx);
            }
            return;
        }
        let epoch = epoch.expect("broadcast has an epoch");
        let mut dropped = Vec::new();
        for (follower, link) in links {
            if link.phase != LinkPhase::Ready && tick - link.since_tick > init_limit {
                dropped.push((*follower, format!("not in sync after {init_limit} ticks")));
            } else if let Some(zxid) = link.acks.overdue(tick, sync_limit) {
                let why = format!(
                    "{} unacknowledged for more than {sync_limit} ticks",
                    show_zxid(zxid)
                );
                dropped.push((*follower, why));
            }
        }
        for (follower, why) in dropped {
            ctx.sometimes("zab.leader-drops-follower");
            ctx.note(format!("follower {follower}: {why}; dropping it"));
            if let Role::Leading { links, .. } = &mut self.role {
                links.remove(&follower);
            }
            self.drop_links(ctx, follower);
        }
        let Role::Leading { links, .. } = &self.role else {
            return;
        };
        let heard = links
            .values()
            .filter(|l| l.phase == LinkPhase::Ready && tick - l.last_heard_tick <= sync_limit)
            .count();
        if heard + 1 < self.config.quorum() {
            ctx.sometimes("zab.leader-steps-down");
            ctx.note("lost the quorum; stepping down");
            self.look(ctx);
            return;
        }
        let ping = Msg::Ping {
            epoch,
            committed: self.applied,
        };
        for follower in followers(links, LinkPhase::forwarded) {
            self.outbox.push_to(follower, ping.clone());
        }
    }

    fn limits(&self) -> (u64, u64) {
        (
            self.config.init_limit_ticks as u64,
            self.config.sync_limit_ticks as u64,
        )
    }
}
