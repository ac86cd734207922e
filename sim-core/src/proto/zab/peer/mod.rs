//! One ZAB server: election, discovery, synchronisation and broadcast around its log and
//! applied state. The hosting node (the registry server) forwards messages and timers
//! here and drains the committed transactions it must answer clients for.
//!
//! Architecture invariant: `applied` only ever holds committed transactions, applied in
//! zxid order; entries after it in `log` are accepted but not known to be committed.
//! Everything a server acknowledges is on its disk first (unless the planted bug
//! `zab.ack-before-persist` is on).
//!
//! This file holds the peer's state, its public face and the dispatch of frames; each
//! phase's handlers live in their own file (`looking`, `discovery`, `sync`, `broadcast`,
//! `failure`), as further `impl Peer` blocks.

mod broadcast;
mod discovery;
mod failure;
mod looking;
mod sync;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::bugs::{
    ACK_BEFORE_PERSIST, COMMIT_WITHOUT_QUORUM, DISCOVERY_WITHOUT_QUORUM, VOTE_IGNORES_EPOCH,
};
use super::election::{agree, beats, has_quorum};
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
    /// A follower that acknowledged the new epoch and waits for NEWLEADER: nothing else
    /// from the leader can come first (ZooKeeper's `Learner.syncWithLeader` treats any
    /// other first packet as fatal).
    AwaitingNewLeader,
    /// The leader waits for a quorum to acknowledge NEWLEADER; a follower has its sync
    /// and waits for UPTODATE.
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
    /// The tick the link entered `phase`.
    since_tick: u64,
    last_zxid: Zxid,
    last_heard_tick: u64,
    acks: AckClock,
}

impl Link {
    fn new(tick: u64) -> Self {
        Self {
            phase: LinkPhase::Info,
            since_tick: tick,
            last_zxid: 0,
            last_heard_tick: tick,
            acks: AckClock::default(),
        }
    }

    fn enter(&mut self, phase: LinkPhase, tick: u64) {
        self.phase = phase;
        self.since_tick = tick;
    }
}

/// How long a follower has kept a proposal unacknowledged, as ZooKeeper's
/// `LearnerHandler.SyncLimitCheck` tracks it: the oldest proposal awaiting its ack and
/// the latest one sent since, each with the tick it was sent. A follower that answers
/// pings but not proposals (its acks lost, its disk stuck) would otherwise stall every
/// later commit while the leader believes it has a quorum.
#[derive(Clone, Copy, Debug, Default)]
struct AckClock {
    oldest: Option<(Zxid, u64)>,
    latest: Option<(Zxid, u64)>,
}

impl AckClock {
    fn sent(&mut self, zxid: Zxid, tick: u64) {
        if self.oldest.is_none() {
            self.oldest = Some((zxid, tick));
        } else {
            self.latest = Some((zxid, tick));
        }
    }

    /// Acks are cumulative here: a link delivers them in order.
    fn acked(&mut self, zxid: Zxid) {
        let Some((oldest, _)) = self.oldest else {
            return;
        };
        if zxid < oldest {
            return;
        }
        self.oldest = self.latest.filter(|(latest, _)| *latest > zxid);
        self.latest = None;
    }

    /// The proposal kept waiting longer than `limit` ticks, if any.
    fn overdue(&self, tick: u64, limit: u64) -> Option<Zxid> {
        self.oldest
            .filter(|(_, sent)| tick - sent > limit)
            .map(|(zxid, _)| zxid)
    }
}

#[derive(Clone, Debug)]
enum Role {
    Looking {
        /// This round's votes, with their senders' states.
        votes: BTreeMap<NodeId, (Vote, PeerState)>,
        /// Answers from servers outside the election: their vote, round and state.
        outside: BTreeMap<NodeId, (Vote, u64, PeerState)>,
        finalize: Option<TimerId>,
        since_tick: u64,
    },
    Following {
        leader: NodeId,
        epoch: Option<u32>,
        phase: Phase,
        /// The tick this server began to follow `leader`: it must be serving within
        /// `init_limit` ticks, whatever pings keep coming.
        since_tick: u64,
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

#[derive(Clone)]
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
#[derive(Clone)]
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
        if self.accepted_epoch > 0 {
            ctx.sometimes("zab.recovered-from-disk");
        }
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
            Msg::UpToDate { epoch, .. }
            | Msg::Proposal { epoch, .. }
            | Msg::Commit { epoch, .. }
            | Msg::Ping { epoch, .. }
                if self.is_from_leader(from, epoch) && self.before_new_leader(ctx, &msg) => {}
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
                    let Some(link) = links.get_mut(&from).filter(|l| l.phase.forwarded()) else {
                        return;
                    };
                    link.acks.acked(zxid);
                    if let Some(acks) = pending.get_mut(&zxid) {
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

    /// Whether `msg`, from this follower's leader, came before NEWLEADER: then the
    /// follower's log is not synchronised yet and it must not take it. ZooKeeper's learner
    /// treats anything but a sync as its first packet as fatal; so does this one (it
    /// elects again). True when it did.
    fn before_new_leader<H: Host<S>>(&mut self, ctx: &mut Ctx<'_, H>, msg: &ZMsg<S>) -> bool {
        let early = matches!(
            self.role,
            Role::Following {
                phase: Phase::AwaitingNewLeader,
                ..
            }
        );
        if early {
            ctx.note(format!("{} before NEWLEADER; electing again", msg.name()));
            self.look(ctx);
        }
        early
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
}
