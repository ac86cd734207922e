//! Discovery: a new leader gathers a quorum's accepted epochs, chooses one above them
//! all and persists it; each follower promises it to this leader only, on disk first.
//! Synchronisation is `sync.rs`.

use super::*;

impl<S: StateMachine> Peer<S> {
    pub(super) fn on_follower_info<H: Host<S>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        accepted_epoch: u32,
    ) {
        let tick = self.tick;
        let Role::Leading {
            epoch,
            infos,
            links,
            ..
        } = &mut self.role
        else {
            return;
        };
        links.insert(from, Link::new(tick));
        match *epoch {
            None => {
                infos.insert(from, accepted_epoch);
                self.try_choose_epoch(ctx);
            }
            Some(epoch) => {
                self.outbox.push_to(from, Msg::LeaderInfo { epoch });
            }
        }
    }

    pub(super) fn try_choose_epoch<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        let quorum = self.discovery_quorum(ctx);
        let Role::Leading {
            epoch,
            infos,
            links,
            ..
        } = &mut self.role
        else {
            return;
        };
        if epoch.is_some() || infos.len() < quorum {
            return;
        }
        let chosen = infos.values().max().copied().unwrap_or(0) + 1;
        *epoch = Some(chosen);
        let followers: Vec<NodeId> = links.keys().copied().collect();
        self.accepted_epoch = chosen;
        self.accepted_leader = self.id;
        self.write_epochs(ctx);
        self.sync_disk(ctx);
        for follower in followers {
            self.outbox
                .push_to(follower, Msg::LeaderInfo { epoch: chosen });
        }
        self.try_finish_discovery(ctx);
    }

    pub(super) fn on_leader_info<H: Host<S>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        new_epoch: u32,
    ) {
        let Role::Following {
            leader,
            epoch,
            phase: Phase::Discovery,
            ..
        } = &mut self.role
        else {
            return;
        };
        if *leader != from {
            return;
        }
        if new_epoch < self.accepted_epoch {
            // A leader behind our promises: ZooKeeper's "leader's epoch is less than
            // accepted epoch". Elect again.
            self.look(ctx);
            return;
        }
        if new_epoch == self.accepted_epoch && self.accepted_leader != from {
            // ZooKeeper's follower answers a second leader of an epoch it already acked
            // with epoch -1, which the leader does not count: at most one server
            // establishes each epoch.
            ctx.note(format!(
                "epoch {new_epoch} was promised to server {}",
                self.accepted_leader
            ));
            self.look(ctx);
            return;
        }
        *epoch = Some(new_epoch);
        if let Role::Following { phase, .. } = &mut self.role {
            *phase = Phase::AwaitingNewLeader;
        }
        if new_epoch > self.accepted_epoch {
            self.accepted_epoch = new_epoch;
            self.accepted_leader = from;
            self.write_epochs(ctx);
            self.sync_disk(ctx);
        }
        let ack = Msg::AckEpoch {
            current_epoch: self.current_epoch,
            last_zxid: self.last_zxid(),
        };
        self.outbox.push_to(from, ack);
    }

    pub(super) fn on_ack_epoch<H: Host<S>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        follower_epoch: u32,
        follower_zxid: Zxid,
    ) {
        let ignore_epoch = ctx.bug(VOTE_IGNORES_EPOCH);
        let (my_epoch, my_zxid, tick) = (self.current_epoch, self.last_zxid(), self.tick);
        let Role::Leading {
            epoch: Some(_),
            links,
            ..
        } = &mut self.role
        else {
            return;
        };
        let Some(link) = links.get_mut(&from) else {
            return;
        };
        let ahead = if ignore_epoch {
            counter_of(follower_zxid) > counter_of(my_zxid)
        } else {
            (follower_epoch, follower_zxid) > (my_epoch, my_zxid)
        };
        if ahead {
            // ZooKeeper's "follower is ahead of the leader": this server must not lead.
            ctx.note(format!(
                "follower {from} is ahead ({follower_epoch}, {}); leader gives up",
                show_zxid(follower_zxid)
            ));
            self.look(ctx);
            return;
        }
        link.enter(LinkPhase::EpochAcked, tick);
        link.last_zxid = follower_zxid;
        if let Role::Leading {
            phase: Phase::Discovery,
            ..
        } = self.role
        {
            self.try_finish_discovery(ctx);
        } else {
            self.sync_follower(from);
        }
    }

    /// How many servers (the leader included) must take part in discovery.
    pub(super) fn discovery_quorum<H: Host<S>>(&self, ctx: &Ctx<'_, H>) -> usize {
        // Bug zoo: `zab.discovery-without-quorum` lets a leader choose and establish its
        // epoch on its own.
        if ctx.bug(DISCOVERY_WITHOUT_QUORUM) {
            1
        } else {
            self.config.quorum()
        }
    }

    pub(super) fn try_finish_discovery<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        let quorum = self.discovery_quorum(ctx);
        let Role::Leading {
            phase: phase @ Phase::Discovery,
            epoch: epoch @ Some(_),
            links,
            ..
        } = &mut self.role
        else {
            return;
        };
        let acked: Vec<NodeId> = followers(links, |p| p == LinkPhase::EpochAcked);
        if acked.len() + 1 < quorum {
            return;
        }
        *phase = Phase::Sync;
        let epoch = epoch.expect("matched above");
        ctx.observe(Obs::EpochEstablished { epoch });
        for follower in acked {
            self.sync_follower(follower);
        }
        self.try_establish(ctx);
    }
}
