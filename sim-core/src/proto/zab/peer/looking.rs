//! A looking server's part: fast leader election in rounds, votes ordered by (epoch,
//! last zxid, id), answers to servers outside the election, and the decision to lead or
//! follow. It never touches the log or the disk beyond the epochs it reads.

use super::*;

impl<S: StateMachine> Peer<S> {
    pub(super) fn look<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        if let Role::Looking {
            finalize: Some(timer),
            ..
        } = self.role
        {
            ctx.cancel_timer(timer);
        }
        // Leaving a leader or followers closes their links, as ZooKeeper closes the
        // sockets: the other side hears of it at once and elects again, or drops us.
        let left: Vec<NodeId> = match &self.role {
            Role::Following { leader, .. } => vec![*leader],
            Role::Leading { links, .. } => links.keys().copied().collect(),
            Role::Looking { .. } => Vec::new(),
        };
        for peer in left {
            self.drop_links(ctx, peer);
        }
        self.round += 1;
        self.vote = self.self_vote();
        let mut votes = BTreeMap::new();
        votes.insert(self.id, (self.vote, PeerState::Looking));
        self.role = Role::Looking {
            votes,
            outside: BTreeMap::new(),
            finalize: None,
            since_tick: self.tick,
        };
        ctx.observe(Obs::Role {
            state: PeerState::Looking,
            epoch: self.current_epoch,
        });
        self.notify_all();
        // A lone server is its own quorum.
        self.arm_finalize_if_quorum(ctx);
    }

    pub(super) fn notify_all(&mut self) {
        let notification = Msg::Notification {
            vote: self.vote,
            round: self.round,
            state: self.peer_state(),
        };
        let others: Vec<NodeId> = self.others().collect();
        for server in others {
            self.outbox.push_to(server, notification.clone());
        }
    }

    pub(super) fn on_notification<H: Host<S>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        vote: Vote,
        round: u64,
        state: PeerState,
    ) {
        let leader_left = matches!(self.role, Role::Following { leader, .. } if leader == from);
        if leader_left && state == PeerState::Looking {
            // Our leader is looking (it restarted or stepped down): where ZooKeeper's
            // TCP connection to it would have broken, we learn it from its notification.
            ctx.note(format!("leader {from} is looking; electing again"));
            self.look(ctx);
        }
        let me = self.peer_state();
        if me != PeerState::Looking {
            // Tell a looking server whom we follow, so it can join.
            if state == PeerState::Looking {
                let answer = Msg::Notification {
                    vote: self.vote,
                    round: self.round,
                    state: me,
                };
                self.outbox.push_to(from, answer);
            }
            return;
        }
        let ignore_epoch = ctx.bug(VOTE_IGNORES_EPOCH);
        let quorum = self.config.quorum();
        if state == PeerState::Looking {
            if round > self.round {
                self.round = round;
                let mine = self.self_vote();
                self.vote = if beats(vote, mine, ignore_epoch) {
                    vote
                } else {
                    mine
                };
                self.reset_votes(ctx);
                self.notify_all();
            } else if round < self.round {
                let answer = Msg::Notification {
                    vote: self.vote,
                    round: self.round,
                    state: me,
                };
                self.outbox.push_to(from, answer);
                return;
            } else if beats(vote, self.vote, ignore_epoch) {
                self.vote = vote;
                if let Role::Looking { votes, .. } = &mut self.role {
                    votes.insert(self.id, (vote, PeerState::Looking));
                }
                self.notify_all();
            }
            if let Role::Looking { votes, .. } = &mut self.role {
                votes.insert(from, (vote, state));
            }
            self.arm_finalize_if_quorum(ctx);
            return;
        }
        // A server outside the election tells us whom it follows or that it leads.
        let current_round = self.round;
        let Role::Looking { votes, outside, .. } = &mut self.role else {
            unreachable!("checked above");
        };
        if round == current_round {
            votes.insert(from, (vote, state));
        }
        outside.insert(from, (vote, round, state));
        // ZooKeeper's `checkLeader`: the leader itself must have said it leads (or, for
        // ourselves, everyone in this round thinks we do).
        let leader_confirmed = if vote.leader == self.id {
            round == current_round
        } else {
            outside
                .get(&vote.leader)
                .is_some_and(|(v, _, s)| *s == PeerState::Leading && v.leader == vote.leader)
        };
        if !leader_confirmed {
            return;
        }
        let told = (vote, state);
        let in_round = round == current_round && has_quorum(votes, quorum, |v| agree(*v, told));
        let outside_quorum = has_quorum(outside, quorum, |(v, _, s)| agree((*v, *s), told));
        if in_round || outside_quorum {
            self.round = round;
            self.decide(ctx, vote);
        }
    }

    pub(super) fn reset_votes<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        let (id, vote) = (self.id, self.vote);
        if let Role::Looking {
            votes, finalize, ..
        } = &mut self.role
        {
            votes.clear();
            votes.insert(id, (vote, PeerState::Looking));
            if let Some(timer) = finalize.take() {
                ctx.cancel_timer(timer);
            }
        }
    }

    pub(super) fn arm_finalize_if_quorum<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        let (vote, quorum, finalize_ns) =
            (self.vote, self.config.quorum(), self.config.finalize_ns);
        if let Role::Looking {
            votes, finalize, ..
        } = &mut self.role
        {
            if finalize.is_none() && has_quorum(votes, quorum, |(v, _)| *v == vote) {
                *finalize = Some(ctx.set_timer(finalize_ns, Timer::Finalize));
            }
        }
    }

    pub(super) fn on_finalize<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>, timer: TimerId) {
        let (vote, quorum) = (self.vote, self.config.quorum());
        let Role::Looking {
            votes, finalize, ..
        } = &mut self.role
        else {
            return;
        };
        if *finalize != Some(timer) {
            return;
        }
        *finalize = None;
        if has_quorum(votes, quorum, |(v, _)| *v == vote) {
            self.decide(ctx, vote);
        }
    }

    pub(super) fn decide<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>, vote: Vote) {
        if let Role::Looking {
            finalize: Some(timer),
            ..
        } = self.role
        {
            ctx.cancel_timer(timer);
        }
        self.vote = vote;
        let tick = self.tick;
        if vote.leader == self.id {
            let mut infos = BTreeMap::new();
            infos.insert(self.id, self.accepted_epoch);
            self.role = Role::Leading {
                epoch: None,
                phase: Phase::Discovery,
                infos,
                links: BTreeMap::new(),
                pending: BTreeMap::new(),
                counter: 0,
                since_tick: tick,
            };
            ctx.observe(Obs::Role {
                state: PeerState::Leading,
                epoch: self.current_epoch,
            });
            self.try_choose_epoch(ctx);
        } else {
            self.role = Role::Following {
                leader: vote.leader,
                epoch: None,
                phase: Phase::Discovery,
                since_tick: tick,
                last_heard_tick: tick,
                commit_to: self.applied,
            };
            ctx.observe(Obs::Role {
                state: PeerState::Following,
                epoch: self.current_epoch,
            });
            let info = Msg::FollowerInfo {
                accepted_epoch: self.accepted_epoch,
            };
            self.outbox.push_to(vote.leader, info);
        }
    }
}
