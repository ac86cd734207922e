//! Broadcast: proposals, acknowledgements after the disk sync, commits in zxid order,
//! applying committed transactions and snapshots. It never elects: a follower that sees
//! something it cannot explain asks `look` to.

use super::*;

impl<S: StateMachine> Peer<S> {
    pub(super) fn propose<H: Host<S>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        txn: S::Txn,
    ) -> Result<(), NotReady> {
        let (id, tick) = (self.id, self.tick);
        let Role::Leading {
            epoch: Some(epoch),
            phase: Phase::Broadcast,
            links,
            pending,
            counter,
            ..
        } = &mut self.role
        else {
            return Err(NotReady::NoLeader);
        };
        if pending.len() >= PENDING_MAX {
            return Err(NotReady::Busy);
        }
        if *counter == u32::MAX {
            // ZooKeeper forces a new election when the counter would roll over.
            self.look(ctx);
            return Err(NotReady::NoLeader);
        }
        *counter += 1;
        let zxid = zxid(*epoch, *counter);
        let epoch = *epoch;
        pending.insert(zxid, BTreeSet::from([id]));
        let targets: Vec<NodeId> = followers(links, LinkPhase::forwarded);
        for follower in &targets {
            links
                .get_mut(follower)
                .expect("listed")
                .acks
                .sent(zxid, tick);
        }
        debug_assert!(self.log.last().is_none_or(|(z, _)| *z < zxid));
        storage::append_entry(ctx.disk(), zxid, &txn);
        self.sync_disk(ctx);
        self.log.push((zxid, txn.clone()));
        for follower in targets {
            let proposal = Msg::Proposal {
                epoch,
                zxid,
                txn: txn.clone(),
            };
            self.outbox.push_to(follower, proposal);
        }
        self.try_commit(ctx);
        Ok(())
    }

    pub(super) fn try_commit<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        let needed = if ctx.bug(COMMIT_WITHOUT_QUORUM) {
            1
        } else {
            self.config.quorum()
        };
        loop {
            let Role::Leading {
                epoch: Some(epoch),
                phase: Phase::Broadcast,
                links,
                pending,
                ..
            } = &mut self.role
            else {
                return;
            };
            let Some(entry) = pending.first_entry() else {
                return;
            };
            if entry.get().len() < needed {
                return;
            }
            let zxid = *entry.key();
            entry.remove();
            let epoch = *epoch;
            let targets: Vec<NodeId> = followers(links, LinkPhase::forwarded);
            let txn = self
                .entry(zxid)
                .expect("pending proposals are logged")
                .clone();
            self.apply(ctx, zxid, txn);
            for follower in targets {
                self.outbox.push_to(follower, Msg::Commit { epoch, zxid });
            }
        }
    }

    pub(super) fn entry(&self, zxid: Zxid) -> Option<&S::Txn> {
        self.log
            .binary_search_by_key(&zxid, |(z, _)| *z)
            .ok()
            .map(|i| &self.log[i].1)
    }

    pub(super) fn on_proposal<H: Host<S>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        epoch: u32,
        zxid: Zxid,
        txn: S::Txn,
    ) {
        if !self.is_from_leader(from, epoch) {
            return;
        }
        let last = self.last_zxid();
        let expected = if epoch_of(last) == epoch {
            last + 1
        } else {
            super::zxid(epoch, 1)
        };
        if zxid != expected {
            ctx.note(format!(
                "gap in the leader's stream: expected {}, got {}",
                show_zxid(expected),
                show_zxid(zxid)
            ));
            self.look(ctx);
            return;
        }
        storage::append_entry(ctx.disk(), zxid, &txn);
        if ctx.bug(ACK_BEFORE_PERSIST) {
            self.dirty = true;
        } else {
            self.sync_disk(ctx);
        }
        self.log.push((zxid, txn));
        self.outbox.push_to(from, Msg::Ack { zxid });
    }

    pub(super) fn on_commit<H: Host<S>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        epoch: u32,
        zxid: Zxid,
    ) {
        if !self.is_from_leader(from, epoch) {
            return;
        }
        let last = self.last_zxid();
        let Role::Following { commit_to, .. } = &mut self.role else {
            return;
        };
        if zxid <= *commit_to {
            return;
        }
        if zxid > last {
            ctx.note(format!("commit of {} not in the log", show_zxid(zxid)));
            self.look(ctx);
            return;
        }
        *commit_to = zxid;
        self.apply_committed(ctx);
    }

    pub(super) fn apply_committed<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        let Role::Following {
            phase: Phase::Broadcast,
            commit_to,
            ..
        } = self.role
        else {
            return;
        };
        let start = self.log.partition_point(|(z, _)| *z <= self.applied);
        let end = self.log.partition_point(|(z, _)| *z <= commit_to);
        if start >= end {
            return;
        }
        let batch: Vec<(Zxid, S::Txn)> = self.log[start..end].to_vec();
        for (zxid, txn) in batch {
            self.apply(ctx, zxid, txn);
        }
    }

    pub(super) fn apply<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>, zxid: Zxid, txn: S::Txn) {
        assert!(zxid > self.applied, "applied out of order");
        let output = self.state.apply(zxid, &txn);
        self.digest = chain_digest(self.digest, zxid, &txn);
        self.applied = zxid;
        ctx.observe(Obs::Applied {
            zxid,
            digest: self.digest,
        });
        self.outputs.push((zxid, txn, output));
        self.applied_since_snapshot += 1;
        if self.applied_since_snapshot >= self.config.snapshot_every {
            self.take_snapshot(ctx);
        }
    }

    pub(super) fn take_snapshot<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        let committed = self.log.partition_point(|(z, _)| *z <= self.applied);
        let keep_from = committed.saturating_sub(self.config.log_retain as usize);
        if keep_from > 0 {
            self.log_base = self.log[keep_from - 1].0;
            self.log.drain(..keep_from);
        }
        self.snapshot_zxid = self.applied;
        self.applied_since_snapshot = 0;
        self.write_snapshot(ctx);
        storage::rewrite_log(ctx.disk(), &self.log);
        self.sync_disk(ctx);
    }

    pub(super) fn write_snapshot<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        let snapshot = Snapshot {
            zxid: self.applied,
            digest: self.digest,
            log_base: self.log_base,
            state: &self.state,
        };
        storage::write_snapshot(ctx.disk(), &snapshot);
    }
}
