//! One ZAB server: election, discovery, synchronisation and broadcast around its log and
//! applied state. The hosting node (the registry server) forwards messages and timers
//! here and drains the committed transactions it must answer clients for.
//!
//! Architecture invariant: `applied` only ever holds committed transactions, applied in
//! zxid order; entries after it in `log` are accepted but not known to be committed.
//! Everything a server acknowledges is on its disk first (unless the planted bug
//! `zab.ack-before-persist` is on).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::bugs::{
    ACK_BEFORE_PERSIST, COMMIT_WITHOUT_QUORUM, DISCOVERY_WITHOUT_QUORUM, VOTE_IGNORES_EPOCH,
};
use super::election::{beats, has_quorum};
use super::storage::{self, Snapshot};
use super::{
    chain_digest, counter_of, epoch_of, show_zxid, zxid, Config, Host, Msg, Obs, StateMachine,
    Sync, Timer, Vote, Zxid,
};
use crate::conn::{ConnId, ConnParams, Endpoint, Event as ConnEvent, Events};
use crate::node::{Ctx, NodeId, TimerId, Wraps};

/// The most proposals a leader holds unacknowledged; more submissions are refused.
pub const PENDING_MAX: usize = 1024;
/// The largest ensemble (ZooKeeper ensembles are 3, 5 or 7 servers).
pub const SERVERS_MAX: usize = 9;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
}

impl PeerState {
    pub fn name(self) -> &'static str {
        match self {
            PeerState::Looking => "looking",
            PeerState::Following => "follower",
            PeerState::Leading => "leader",
        }
    }
}

/// Where a leader or follower is in establishing an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Discovery,
    Sync,
    Broadcast,
}

/// A leader's view of one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LinkPhase {
    /// Sent FOLLOWERINFO.
    Info,
    /// Acknowledged the new epoch.
    EpochAcked,
    /// Sent NEWLEADER: in the forwarding set, not yet acknowledged it.
    Syncing,
    /// Acknowledged NEWLEADER: synced.
    Ready,
}

impl LinkPhase {
    /// Syncing or Ready: the follower is in the leader's forwarding set and gets
    /// proposals, commits and pings; its acks count.
    fn forwarded(self) -> bool {
        matches!(self, LinkPhase::Syncing | LinkPhase::Ready)
    }
}

/// The followers whose link phase passes `wanted`, in id order.
fn followers(links: &BTreeMap<NodeId, Link>, wanted: impl Fn(LinkPhase) -> bool) -> Vec<NodeId> {
    links
        .iter()
        .filter(|(_, link)| wanted(link.phase))
        .map(|(id, _)| *id)
        .collect()
}

#[derive(Clone, Copy, Debug)]
struct Link {
    phase: LinkPhase,
    last_zxid: Zxid,
    last_heard_tick: u64,
}

#[derive(Debug)]
enum Role {
    Looking {
        votes: BTreeMap<NodeId, Vote>,
        /// Answers from servers outside the election: their vote, round and state.
        outside: BTreeMap<NodeId, (Vote, u64, PeerState)>,
        finalize: Option<TimerId>,
        since_tick: u64,
    },
    Following {
        leader: NodeId,
        epoch: Option<u32>,
        phase: Phase,
        last_heard_tick: u64,
        commit_to: Zxid,
    },
    Leading {
        epoch: Option<u32>,
        phase: Phase,
        /// Accepted epochs heard in discovery, the leader's own included.
        infos: BTreeMap<NodeId, u32>,
        links: BTreeMap<NodeId, Link>,
        /// Proposals awaiting a quorum: who has acked each.
        pending: BTreeMap<Zxid, BTreeSet<NodeId>>,
        counter: u32,
        since_tick: u64,
    },
}

type ZMsg<S> = Msg<<S as StateMachine>::Txn, S>;

/// A transaction this server applied, with what applying it returned.
pub type Applied<S> = (Zxid, <S as StateMachine>::Txn, <S as StateMachine>::Output);

/// Why a write could not be submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotReady {
    /// No established leader is known here.
    NoLeader,
    /// The leader has `PENDING_MAX` proposals in flight.
    Busy,
}

pub struct Peer<S: StateMachine> {
    id: NodeId,
    config: Config,
    accepted_epoch: u32,
    /// Who `accepted_epoch` was promised to (`NodeId::MAX`: nobody yet). ZooKeeper's
    /// follower acks an epoch once; a second leader proposing the same epoch is refused,
    /// so two leaders that both chose it cannot both establish it.
    accepted_leader: NodeId,
    current_epoch: u32,
    state: S,
    applied: Zxid,
    digest: u64,
    snapshot_zxid: Zxid,
    applied_since_snapshot: u32,
    /// The zxid just before `log[0]` (what compaction dropped last); 0 if nothing was.
    log_base: Zxid,
    log: Vec<(Zxid, S::Txn)>,
    round: u64,
    vote: Vote,
    role: Role,
    tick: u64,
    /// Log writes not yet synced: only ever true under `zab.ack-before-persist`.
    dirty: bool,
    outputs: Vec<Applied<S>>,
    /// Writes forwarded to this leader, for the host to check and submit.
    forwarded: Vec<S::Txn>,
    /// Messages to send when the handler is done, in order (see `flush`): handlers hold
    /// the role borrowed while they decide what to send.
    outbox: Outbox<ZMsg<S>>,
    /// The links to the other servers: ZAB runs over connections, as over TCP.
    net: Endpoint<ZMsg<S>>,
    /// The connection this server opened to each other server, while it lasts.
    conns: BTreeMap<NodeId, ConnId>,
}

/// Messages a handler decided to send, in order.
struct Outbox<M> {
    messages: Vec<(NodeId, M)>,
}

impl<M> Outbox<M> {
    fn push_to(&mut self, to: NodeId, msg: M) {
        self.messages.push((to, msg));
    }
}

impl<S: StateMachine> Peer<S> {
    pub fn new(id: NodeId, config: Config, conn: ConnParams) -> Self {
        assert!(
            config.servers.contains(&id),
            "server {id} is not in the ensemble"
        );
        assert!(!config.servers.is_empty() && config.servers.len() <= SERVERS_MAX);
        assert!(config.tick_ns > 0 && config.sync_limit_ticks > 0 && config.init_limit_ticks > 0);
        assert!(config.snapshot_every > 0);
        let vote = Vote {
            leader: id,
            zxid: 0,
            epoch: 0,
        };
        Self {
            id,
            config,
            accepted_epoch: 0,
            accepted_leader: NodeId::MAX,
            current_epoch: 0,
            state: S::default(),
            applied: 0,
            digest: 0,
            snapshot_zxid: 0,
            applied_since_snapshot: 0,
            log_base: 0,
            log: Vec::new(),
            round: 0,
            vote,
            role: Role::Looking {
                votes: BTreeMap::new(),
                outside: BTreeMap::new(),
                finalize: None,
                since_tick: 0,
            },
            tick: 0,
            dirty: false,
            outputs: Vec::new(),
            forwarded: Vec::new(),
            outbox: Outbox {
                messages: Vec::new(),
            },
            net: Endpoint::new(conn),
            conns: BTreeMap::new(),
        }
    }

    /// The committed state, as of `applied()`.
    pub fn state(&self) -> &S {
        &self.state
    }

    pub fn applied(&self) -> Zxid {
        self.applied
    }

    pub fn peer_state(&self) -> PeerState {
        match self.role {
            Role::Looking { .. } => PeerState::Looking,
            Role::Following { .. } => PeerState::Following,
            Role::Leading { .. } => PeerState::Leading,
        }
    }

    /// The leader this server follows (itself when leading), once its epoch is established.
    pub fn leader(&self) -> Option<NodeId> {
        match self.role {
            Role::Following {
                leader,
                phase: Phase::Broadcast,
                ..
            } => Some(leader),
            Role::Leading {
                phase: Phase::Broadcast,
                ..
            } => Some(self.id),
            _ => None,
        }
    }

    /// Whether this server is in an established epoch and may serve clients.
    pub fn is_serving(&self) -> bool {
        self.leader().is_some()
    }

    pub fn is_leading(&self) -> bool {
        self.leader() == Some(self.id)
    }

    /// Ticks spent looking for a leader so far; `None` when not looking.
    pub fn looking_ticks(&self) -> Option<u64> {
        match self.role {
            Role::Looking { since_tick, .. } => Some(self.tick - since_tick),
            _ => None,
        }
    }

    pub fn current_epoch(&self) -> u32 {
        self.current_epoch
    }

    pub fn last_zxid(&self) -> Zxid {
        self.log
            .last()
            .map_or(self.applied, |(z, _)| *z)
            .max(self.applied)
    }

    /// Transactions applied since the last call, in zxid order.
    pub fn take_applied(&mut self) -> Vec<Applied<S>> {
        std::mem::take(&mut self.outputs)
    }

    pub fn inspect(&self) -> String {
        let mut text = format!(
            "{} round={} vote=(leader {}, zxid {}, epoch {})\naccepted_epoch={} current_epoch={}\n\
             applied={} last_zxid={} log={} entries snapshot={}",
            self.peer_state().name(),
            self.round,
            self.vote.leader,
            show_zxid(self.vote.zxid),
            self.vote.epoch,
            self.accepted_epoch,
            self.current_epoch,
            show_zxid(self.applied),
            show_zxid(self.last_zxid()),
            self.log.len(),
            show_zxid(self.snapshot_zxid),
        );
        match &self.role {
            Role::Following {
                leader,
                epoch,
                phase,
                ..
            } => text.push_str(&format!(
                "\nfollowing {leader} epoch={epoch:?} phase={phase:?}"
            )),
            Role::Leading {
                epoch,
                phase,
                links,
                pending,
                ..
            } => {
                let followers: Vec<String> = links
                    .iter()
                    .map(|(id, link)| format!("{id}:{:?}", link.phase))
                    .collect();
                text.push_str(&format!(
                    "\nleading epoch={epoch:?} phase={phase:?} followers=[{}] pending={}",
                    followers.join(", "),
                    pending.len()
                ));
            }
            Role::Looking { votes, .. } => {
                text.push_str(&format!("\nvotes received this round: {}", votes.len()))
            }
        }
        text
    }

    /// Boot or restart: recover from disk, then look for a leader.
    pub fn on_start<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.net.start(ctx);
        let recovered = storage::recover::<S>(ctx.disk());
        self.accepted_epoch = recovered.accepted_epoch;
        self.accepted_leader = recovered.accepted_leader;
        self.current_epoch = recovered.current_epoch;
        self.state = recovered.snapshot.state;
        self.applied = recovered.snapshot.zxid;
        self.digest = recovered.snapshot.digest;
        self.snapshot_zxid = recovered.snapshot.zxid;
        self.log_base = recovered.snapshot.log_base;
        self.log = recovered.log;
        assert!(self.current_epoch <= self.accepted_epoch);
        assert!(
            self.log.windows(2).all(|w| w[0].0 < w[1].0),
            "log out of order"
        );
        ctx.observe(Obs::Loaded {
            zxid: self.applied,
            digest: self.digest,
        });
        ctx.set_timer(self.config.tick_ns, Timer::Tick);
        self.look(ctx);
        self.flush(ctx);
    }

    /// Takes `timer` if it is ZAB's (its own, or one of its links'), or hands it back.
    pub fn take_timer<H: Host<S>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        id: TimerId,
        timer: H::Timer,
    ) -> Result<(), H::Timer> {
        let timer = match self.net.take_timer(ctx, id, timer) {
            Ok(events) => {
                self.on_link_events(ctx, events);
                self.flush(ctx);
                return Ok(());
            }
            Err(timer) => timer,
        };
        match Wraps::<Timer>::into_part(timer)? {
            Timer::Tick => {
                self.on_tick(ctx);
                ctx.set_timer(self.config.tick_ns, Timer::Tick);
            }
            Timer::Finalize => self.on_finalize(ctx, id),
        }
        self.flush(ctx);
        Ok(())
    }

    /// Takes `msg` if it is a segment of ZAB's links, or hands it back.
    pub fn take_message<H: Host<S>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        msg: H::Msg,
    ) -> Result<(), H::Msg> {
        let events = self.net.take_message(ctx, from, msg)?;
        self.on_link_events(ctx, events);
        self.flush(ctx);
        Ok(())
    }

    /// Writes followers forwarded to this leader since the last call: the host checks
    /// them (sessions that moved...) and `submit`s what it accepts.
    pub fn take_forwarded(&mut self) -> Vec<S::Txn> {
        std::mem::take(&mut self.forwarded)
    }

    /// The links to the other servers, one line each, for inspectors.
    pub fn links(&self) -> String {
        self.net.describe()
    }

    /// Sends what the handler decided, each message over this server's connection to
    /// its destination (opened when there is none).
    fn flush<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        for (to, msg) in std::mem::take(&mut self.outbox.messages) {
            let conn = match self.conns.get(&to) {
                Some(conn) => *conn,
                None => match self.net.open(ctx, to) {
                    Ok(conn) => {
                        self.conns.insert(to, conn);
                        conn
                    }
                    Err(_) => continue, // Unreachable: one connection per server.
                },
            };
            if self.net.send(ctx, conn, msg).is_err() {
                self.conns.remove(&to);
            }
        }
    }

    fn on_link_events<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>, events: Events<ZMsg<S>>) {
        for event in events {
            match event {
                ConnEvent::Frame { conn, frame } => self.on_frame(ctx, conn.peer, frame),
                ConnEvent::Broken { conn, .. } | ConnEvent::Closed { conn } => {
                    if self.conns.get(&conn.peer) == Some(&conn) {
                        self.conns.remove(&conn.peer);
                    }
                    self.on_link_broken(ctx, conn.peer);
                }
                ConnEvent::Opened { .. } | ConnEvent::Accepted { .. } => {}
            }
        }
    }

    /// A link to `peer` broke, as a TCP connection would: a follower whose leader it was
    /// elects again; a leader drops the follower (ZooKeeper's `LearnerHandler` dies).
    fn on_link_broken<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>, peer: NodeId) {
        match &mut self.role {
            Role::Following { leader, .. } if *leader == peer => {
                ctx.note(format!("link to leader {peer} broke; electing again"));
                self.look(ctx);
            }
            // Its acknowledgements stand: they say what it has on disk.
            Role::Leading { links, .. } if links.contains_key(&peer) => {
                links.remove(&peer);
                ctx.note(format!("link to follower {peer} broke; dropping it"));
            }
            _ => {}
        }
    }

    /// Closes every connection with `peer`, both ways, as ZooKeeper closes a socket: the
    /// peer hears of it at once.
    fn drop_links<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>, peer: NodeId) {
        self.conns.remove(&peer);
        for conn in self.net.conns_with(peer) {
            self.net.abort(ctx, conn);
        }
    }

    fn on_frame<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: ZMsg<S>) {
        if !self.config.servers.contains(&from) || from == self.id {
            return;
        }
        // Election notifications say nothing about a working leader or follower link:
        // a restarted leader sends them too.
        if !matches!(msg, Msg::Notification { .. }) {
            self.heard_from(from);
        }
        match msg {
            Msg::Notification { vote, round, state } => {
                self.on_notification(ctx, from, vote, round, state)
            }
            Msg::FollowerInfo { accepted_epoch } => {
                self.on_follower_info(ctx, from, accepted_epoch)
            }
            Msg::LeaderInfo { epoch } => self.on_leader_info(ctx, from, epoch),
            Msg::AckEpoch {
                current_epoch,
                last_zxid,
            } => self.on_ack_epoch(ctx, from, current_epoch, last_zxid),
            Msg::NewLeader { epoch, sync } => self.on_new_leader(ctx, from, epoch, sync),
            Msg::AckNewLeader { epoch, last_zxid } => {
                self.on_ack_new_leader(ctx, from, epoch, last_zxid)
            }
            Msg::UpToDate { epoch, committed } => {
                if self.is_from_leader(from, epoch) {
                    if let Role::Following {
                        phase, commit_to, ..
                    } = &mut self.role
                    {
                        *phase = Phase::Broadcast;
                        *commit_to = (*commit_to).max(committed);
                    }
                    ctx.observe(Obs::Serving {
                        leader: from,
                        epoch,
                    });
                    self.apply_committed(ctx);
                }
            }
            Msg::Proposal { epoch, zxid, txn } => self.on_proposal(ctx, from, epoch, zxid, txn),
            Msg::Ack { zxid } => {
                if let Role::Leading { links, pending, .. } = &mut self.role {
                    let counts = links.get(&from).is_some_and(|l| l.phase.forwarded());
                    if let (true, Some(acks)) = (counts, pending.get_mut(&zxid)) {
                        acks.insert(from);
                    }
                    self.try_commit(ctx);
                }
            }
            Msg::Commit { epoch, zxid } => self.on_commit(ctx, from, epoch, zxid),
            Msg::Ping { epoch, committed } => {
                if self.is_from_leader(from, epoch) {
                    self.outbox.push_to(from, Msg::Pong);
                    self.on_commit(ctx, from, epoch, committed.min(self.last_zxid()));
                }
            }
            Msg::Pong => {}
            Msg::Forward { txn } => {
                if self.is_leading() {
                    // The host checks it, then submits it (see `take_forwarded`).
                    self.forwarded.push(txn);
                }
            }
        }
    }

    /// Submits a write: the leader proposes it, a follower forwards it to its leader.
    pub fn submit<H: Host<S>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        txn: S::Txn,
    ) -> Result<(), NotReady> {
        let result = match self.leader() {
            None => Err(NotReady::NoLeader),
            Some(leader) if leader == self.id => self.propose(ctx, txn),
            Some(leader) => {
                self.outbox.push_to(leader, Msg::Forward { txn });
                Ok(())
            }
        };
        self.flush(ctx);
        result
    }

    fn heard_from(&mut self, from: NodeId) {
        let tick = self.tick;
        match &mut self.role {
            Role::Following {
                leader,
                last_heard_tick,
                ..
            } if *leader == from => *last_heard_tick = tick,
            Role::Leading { links, .. } => {
                if let Some(link) = links.get_mut(&from) {
                    link.last_heard_tick = tick;
                }
            }
            _ => {}
        }
    }

    fn is_from_leader(&self, from: NodeId, msg_epoch: u32) -> bool {
        matches!(self.role, Role::Following { leader, epoch: Some(epoch), .. }
            if leader == from && epoch == msg_epoch)
    }

    fn self_vote(&self) -> Vote {
        Vote {
            leader: self.id,
            zxid: self.last_zxid(),
            epoch: self.current_epoch,
        }
    }

    fn others(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.config
            .servers
            .iter()
            .copied()
            .filter(move |s| *s != self.id)
    }

    fn write_epochs<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        let (accepted, leader, current) = (
            self.accepted_epoch,
            self.accepted_leader,
            self.current_epoch,
        );
        storage::write_epochs(ctx.disk(), accepted, leader, current);
    }

    fn sync_disk<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        ctx.disk().sync();
        self.dirty = false;
    }

    // ---- Election -------------------------------------------------------------------

    fn look<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
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
        votes.insert(self.id, self.vote);
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

    fn notify_all(&mut self) {
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

    fn on_notification<H: Host<S>>(
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
                    votes.insert(self.id, vote);
                }
                self.notify_all();
            }
            if let Role::Looking { votes, .. } = &mut self.role {
                votes.insert(from, vote);
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
            votes.insert(from, vote);
        }
        outside.insert(from, (vote, round, state));
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
        let in_round = round == current_round && has_quorum(votes, quorum, |v| *v == vote);
        let outside_quorum = has_quorum(outside, quorum, |(v, _, _)| *v == vote);
        if in_round || outside_quorum {
            self.round = round;
            self.decide(ctx, vote);
        }
    }

    fn reset_votes<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        let (id, vote) = (self.id, self.vote);
        if let Role::Looking {
            votes, finalize, ..
        } = &mut self.role
        {
            votes.clear();
            votes.insert(id, vote);
            if let Some(timer) = finalize.take() {
                ctx.cancel_timer(timer);
            }
        }
    }

    fn arm_finalize_if_quorum<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        let (vote, quorum, finalize_ns) =
            (self.vote, self.config.quorum(), self.config.finalize_ns);
        if let Role::Looking {
            votes, finalize, ..
        } = &mut self.role
        {
            if finalize.is_none() && has_quorum(votes, quorum, |v| *v == vote) {
                *finalize = Some(ctx.set_timer(finalize_ns, Timer::Finalize));
            }
        }
    }

    fn on_finalize<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>, timer: TimerId) {
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
        if has_quorum(votes, quorum, |v| *v == vote) {
            self.decide(ctx, vote);
        }
    }

    fn decide<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>, vote: Vote) {
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

    // ---- Discovery and synchronisation ------------------------------------------------

    fn on_follower_info<H: Host<S>>(
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
        links.insert(
            from,
            Link {
                phase: LinkPhase::Info,
                last_zxid: 0,
                last_heard_tick: tick,
            },
        );
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

    fn try_choose_epoch<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
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

    fn on_leader_info<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, new_epoch: u32) {
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
            *phase = Phase::Sync;
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

    fn on_ack_epoch<H: Host<S>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        follower_epoch: u32,
        follower_zxid: Zxid,
    ) {
        let ignore_epoch = ctx.bug(VOTE_IGNORES_EPOCH);
        let (my_epoch, my_zxid) = (self.current_epoch, self.last_zxid());
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
        link.phase = LinkPhase::EpochAcked;
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
    fn discovery_quorum<H: Host<S>>(&self, ctx: &Ctx<'_, H>) -> usize {
        // Bug zoo: `zab.discovery-without-quorum` lets a leader choose and establish its
        // epoch on its own.
        if ctx.bug(DISCOVERY_WITHOUT_QUORUM) {
            1
        } else {
            self.config.quorum()
        }
    }

    fn try_finish_discovery<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
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

    /// How a follower whose history ends at `follower_zxid` catches up with this leader.
    fn sync_for(&self, follower_zxid: Zxid) -> Sync<S::Txn, S> {
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

    fn sync_follower(&mut self, follower: NodeId) {
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
        if let Role::Leading { links, .. } = &mut self.role {
            links.get_mut(&follower).expect("checked").phase = LinkPhase::Syncing;
        }
        self.outbox
            .push_to(follower, Msg::NewLeader { epoch, sync });
    }

    fn on_new_leader<H: Host<S>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        epoch: u32,
        sync: Sync<S::Txn, S>,
    ) {
        if !self.is_from_leader(from, epoch) {
            return;
        }
        match sync {
            Sync::Diff(entries) => {
                for (zxid, txn) in entries {
                    if zxid <= self.last_zxid() {
                        continue;
                    }
                    storage::append_entry(ctx.disk(), zxid, &txn);
                    self.log.push((zxid, txn));
                }
            }
            Sync::Trunc(to) => {
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
    fn discard_everything<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>, to: Zxid) {
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

    fn on_ack_new_leader<H: Host<S>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        epoch: u32,
        last_zxid: Zxid,
    ) {
        let applied = self.applied;
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
        link.phase = LinkPhase::Ready;
        link.last_zxid = last_zxid;
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

    fn try_establish<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
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

    // ---- Broadcast --------------------------------------------------------------------

    fn propose<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>, txn: S::Txn) -> Result<(), NotReady> {
        let id = self.id;
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

    fn try_commit<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
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

    fn entry(&self, zxid: Zxid) -> Option<&S::Txn> {
        self.log
            .binary_search_by_key(&zxid, |(z, _)| *z)
            .ok()
            .map(|i| &self.log[i].1)
    }

    fn on_proposal<H: Host<S>>(
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

    fn on_commit<H: Host<S>>(
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

    fn apply_committed<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
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

    fn apply<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>, zxid: Zxid, txn: S::Txn) {
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

    fn take_snapshot<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
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

    fn write_snapshot<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        let snapshot = Snapshot {
            zxid: self.applied,
            digest: self.digest,
            log_base: self.log_base,
            state: &self.state,
        };
        storage::write_snapshot(ctx.disk(), &snapshot);
    }

    // ---- Heartbeats and failure detection ---------------------------------------------

    fn on_tick<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.tick += 1;
        if self.dirty {
            // The planted bug's lazy sync: acked entries reach the disk a tick late.
            self.sync_disk(ctx);
        }
        let tick = self.tick;
        let (init_limit, sync_limit) = (
            self.config.init_limit_ticks as u64,
            self.config.sync_limit_ticks as u64,
        );
        match &self.role {
            Role::Looking { since_tick, .. } => {
                if (tick - since_tick).is_multiple_of(2) {
                    self.notify_all();
                }
            }
            Role::Following {
                leader,
                phase,
                last_heard_tick,
                ..
            } => {
                let limit = if *phase == Phase::Broadcast {
                    sync_limit
                } else {
                    init_limit
                };
                if tick - last_heard_tick > limit {
                    ctx.note(format!("no word from leader {leader}; electing again"));
                    self.look(ctx);
                } else if *phase == Phase::Discovery {
                    let info = Msg::FollowerInfo {
                        accepted_epoch: self.accepted_epoch,
                    };
                    self.outbox.push_to(*leader, info);
                }
            }
            Role::Leading {
                epoch,
                phase,
                links,
                since_tick,
                ..
            } => {
                if *phase != Phase::Broadcast {
                    if tick - since_tick > init_limit {
                        ctx.note("no quorum to establish the epoch; electing again");
                        self.look(ctx);
                    }
                    return;
                }
                let epoch = epoch.expect("broadcast has an epoch");
                let heard = links
                    .values()
                    .filter(|l| {
                        l.phase == LinkPhase::Ready && tick - l.last_heard_tick <= sync_limit
                    })
                    .count();
                if heard + 1 < self.config.quorum() {
                    ctx.note("lost the quorum; stepping down");
                    self.look(ctx);
                    return;
                }
                let ping = Msg::Ping {
                    epoch,
                    committed: self.applied,
                };
                let targets: Vec<NodeId> = followers(links, LinkPhase::forwarded);
                for follower in targets {
                    self.outbox.push_to(follower, ping.clone());
                }
            }
        }
    }
}
