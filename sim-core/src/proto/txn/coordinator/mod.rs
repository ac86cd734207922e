//! The coordinator: XA's transaction manager, with presumed abort.
//!
//! A transfer or a read becomes one global transaction with a branch per shard it
//! touches. Every branch does its work (`Work`); then either one phase (a single branch,
//! Narayana's `commitOnePhase`: no prepare, no log) or two: every branch is asked to
//! prepare, and when every vote is yes or read-only the decision is logged and synced
//! *before* phase two (with the branches that voted yes); a read-only branch gets no phase
//! two. Any other vote, a lost connection or the transaction timeout before prepare rolls
//! the transaction back, and nothing is logged: no record means rolled back. The record
//! goes when every branch has answered phase two; a heuristic outcome that differs from
//! the decision stays in the log for an operator, as Narayana keeps an `H_*` record.
//!
//! The recovery pass (Narayana's `PeriodicRecovery`: a scan, a backoff, a second scan)
//! re-drives logged decisions, and rolls back a prepared branch of this coordinator that
//! has no record, no live transaction and was seen in two consecutive scans at least the
//! orphan safety interval apart. A restarted coordinator re-drives its log at once.
//!
//! `log.rs` holds the decision log, `commit.rs` phase two and heuristic outcomes,
//! `recovery.rs` the recovery pass. This module never touches a shard's data; it only
//! speaks XA to it.

mod commit;
mod log;
mod recovery;

use std::collections::BTreeMap;

use super::bugs::{NO_PERIODIC_RECOVERY, PRESUME_COMMIT};
use super::xa::{
    shard_of, Account, Amount, Answer, Frame, Gtrid, Op, Scan, ShardIndex, Vote, XaCode, Xid,
};
use super::{Host, Obs, Timer};
use crate::conn::{ConnId, ConnParams, Endpoint, Event, Events};
use crate::node::{Ctx, Node, NodeId, TimerId, Wraps};
use commit::Outcome;
use log::{Decision, Record};

/// Transactions in flight at most; more are refused (`XaCode::Busy`).
pub const TXS_MAX: usize = 1_024;

#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// The shards' nodes, by shard index.
    pub shards: Vec<NodeId>,
    /// The transaction timeout: an active transaction is rolled back after it, and every
    /// branch gets it as its own timeout.
    pub tx_timeout_ns: u64,
    pub one_phase: bool,
    pub recovery_period_ns: u64,
    pub recovery_backoff_ns: u64,
    pub orphan_safety_ns: u64,
    pub conn: ConnParams,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Active,
    Preparing,
    OnePhaseCommit,
    Committing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BranchState {
    Working,
    Idle,
    Voted(Vote),
    /// Rolled back by the shard itself (an XA_RB* answer): no rollback to send.
    Gone,
    /// Phase two answered, or left to recovery.
    Done,
}

#[derive(Clone, Debug)]
struct Branch {
    shard: ShardIndex,
    ops: Vec<Op>,
    state: BranchState,
}

#[derive(Clone, Debug)]
struct Tx {
    /// Who to answer: the client's connection and request.
    client: Option<(ConnId, u64)>,
    read: bool,
    branches: Vec<Branch>,
    phase: Phase,
    timer: Option<TimerId>,
    reads: Vec<(Account, Amount)>,
    /// Phase two's outcomes so far, combined as Narayana's `updateHeuristic` does.
    outcome: Outcome,
}

#[derive(Clone)]
pub struct Coordinator {
    cfg: CoordinatorConfig,
    endpoint: Endpoint<Frame>,
    /// The connection to each shard, while there is one.
    links: Vec<Option<ConnId>>,
    boot: u32,
    seq: u32,
    txs: BTreeMap<Gtrid, Tx>,
    decisions: BTreeMap<Gtrid, Decision>,
    ends: u32,
    scan: Scan,
    /// The scan whose answers may roll orphans back (the pass's second).
    second_scan: Scan,
    /// Per shard: the branches its last answered scan listed, with when first seen.
    sightings: Vec<BTreeMap<Xid, u64>>,
}

impl Coordinator {
    pub fn new(cfg: CoordinatorConfig) -> Self {
        assert!(!cfg.shards.is_empty());
        let shards = cfg.shards.len();
        let conn = cfg.conn;
        Self {
            cfg,
            endpoint: Endpoint::new(conn),
            links: vec![None; shards],
            boot: 0,
            seq: 0,
            txs: BTreeMap::new(),
            decisions: BTreeMap::new(),
            ends: 0,
            scan: 0,
            second_scan: 0,
            sightings: vec![BTreeMap::new(); shards],
        }
    }

    /// The connection to shard `shard`, opened if there is none.
    fn link<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, shard: ShardIndex) -> Option<ConnId> {
        let slot = &mut self.links[shard as usize];
        if slot.is_none() {
            *slot = self
                .endpoint
                .open(ctx, self.cfg.shards[shard as usize])
                .ok();
        }
        *slot
    }

    /// Sends `frame` to shard `shard`; false when it cannot go (no connection).
    fn send_shard<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        shard: ShardIndex,
        frame: Frame,
    ) -> bool {
        let Some(conn) = self.link(ctx, shard) else {
            return false;
        };
        if self.endpoint.send(ctx, conn, frame).is_err() {
            self.links[shard as usize] = None;
            return false;
        }
        true
    }

    fn answer<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: Option<(ConnId, u64)>,
        answer: Answer,
    ) {
        if let Some((conn, req)) = client {
            let _ = self.endpoint.send(ctx, conn, Frame::Answer { req, answer });
        }
    }

    fn begin<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        client: (ConnId, u64),
        read: bool,
        mut branches: Vec<Branch>,
    ) {
        if self.txs.len() >= TXS_MAX {
            self.answer(ctx, Some(client), Answer::RolledBack(XaCode::Busy));
            return;
        }
        branches.sort_by_key(|b| b.shard);
        self.seq += 1;
        let gtrid = Gtrid {
            tm: ctx.id(),
            boot: self.boot,
            seq: self.seq,
        };
        let timer = ctx.set_timer(self.cfg.tx_timeout_ns, Timer::TxTimeout(gtrid));
        let tx = Tx {
            client: Some(client),
            read,
            branches: branches.clone(),
            phase: Phase::Active,
            timer: Some(timer),
            reads: Vec::new(),
            outcome: Outcome::default(),
        };
        self.txs.insert(gtrid, tx);
        for branch in branches {
            let xid = Xid {
                gtrid,
                branch: branch.shard,
            };
            let frame = Frame::Work {
                xid,
                ops: branch.ops,
                timeout_ns: self.cfg.tx_timeout_ns,
            };
            if !self.send_shard(ctx, branch.shard, frame) {
                self.abort(ctx, gtrid, XaCode::RmFail);
                return;
            }
        }
    }

    fn branch_mut(&mut self, xid: Xid) -> Option<(&mut Tx, usize)> {
        let tx = self.txs.get_mut(&xid.gtrid)?;
        let at = tx.branches.iter().position(|b| b.shard == xid.branch)?;
        Some((tx, at))
    }

    fn on_worked<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        xid: Xid,
        result: Result<Vec<(Account, Amount)>, XaCode>,
    ) {
        let Some((tx, at)) = self.branch_mut(xid) else {
            return;
        };
        if tx.phase != Phase::Active || tx.branches[at].state != BranchState::Working {
            return;
        }
        match result {
            Ok(reads) => {
                tx.reads.extend(reads);
                tx.branches[at].state = BranchState::Idle;
            }
            Err(code) => {
                tx.branches[at].state = if code.is_rollback() {
                    BranchState::Gone
                } else {
                    BranchState::Idle
                };
                self.abort(ctx, xid.gtrid, code);
                return;
            }
        }
        if tx.branches.iter().any(|b| b.state != BranchState::Idle) {
            return;
        }
        if let Some(timer) = tx.timer.take() {
            ctx.cancel_timer(timer);
        }
        let gtrid = xid.gtrid;
        let one_phase = self.cfg.one_phase;
        let Some(tx) = self.txs.get_mut(&gtrid) else {
            return;
        };
        if tx.branches.len() == 1 && one_phase {
            tx.phase = Phase::OnePhaseCommit;
            let shard = tx.branches[0].shard;
            let commit = Frame::Commit {
                xid: Xid {
                    gtrid,
                    branch: shard,
                },
                one_phase: true,
            };
            if !self.send_shard(ctx, shard, commit) {
                self.one_phase_lost(ctx, gtrid);
            }
            return;
        }
        tx.phase = Phase::Preparing;
        let shards: Vec<ShardIndex> = tx.branches.iter().map(|b| b.shard).collect();
        for shard in shards {
            let xid = Xid {
                gtrid,
                branch: shard,
            };
            if !self.send_shard(ctx, shard, Frame::Prepare { xid }) {
                self.abort(ctx, gtrid, XaCode::RmFail);
                return;
            }
        }
    }

    fn on_voted<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, xid: Xid, vote: Vote) {
        let Some((tx, at)) = self.branch_mut(xid) else {
            return;
        };
        if tx.phase != Phase::Preparing || tx.branches[at].state != BranchState::Idle {
            return;
        }
        tx.branches[at].state = BranchState::Voted(vote);
        if let Vote::Rollback(code) = vote {
            // XA_RB* and XAER_NOTA: the branch is already gone; others get a rollback.
            if code.is_rollback() || code == XaCode::NotA {
                tx.branches[at].state = BranchState::Gone;
            }
            self.abort(ctx, xid.gtrid, code);
            return;
        }
        let all_voted = tx
            .branches
            .iter()
            .all(|b| matches!(b.state, BranchState::Voted(_)));
        if all_voted {
            self.decide_commit(ctx, xid.gtrid);
        }
    }

    /// Rolls `gtrid` back before any decision was logged, and tells its client.
    fn abort<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, gtrid: Gtrid, code: XaCode) {
        let Some(tx) = self.txs.remove(&gtrid) else {
            return;
        };
        if let Some(timer) = tx.timer {
            ctx.cancel_timer(timer);
        }
        let rollback: Vec<ShardIndex> = tx
            .branches
            .iter()
            .filter(|b| b.state != BranchState::Gone)
            .map(|b| b.shard)
            .collect();
        let presume_commit = ctx.bug(PRESUME_COMMIT);
        if presume_commit {
            let record = Record::Decision {
                gtrid,
                commit: false,
                participants: rollback.clone(),
            };
            self.append(ctx, &record, true);
        }
        ctx.observe(Obs::Decided {
            gtrid,
            commit: false,
            participants: tx.branches.iter().map(|b| b.shard).collect(),
        });
        for shard in rollback {
            let xid = Xid {
                gtrid,
                branch: shard,
            };
            // A rollback that cannot go leaves an orphan for recovery (or the shard's
            // own branch timeout) to roll back.
            self.send_shard(ctx, shard, Frame::Rollback { xid });
        }
        if presume_commit {
            self.end(ctx, gtrid);
        }
        self.answer(ctx, tx.client, Answer::RolledBack(code));
    }

    /// The connection to shard `shard` broke: what it was doing for each transaction.
    fn shard_lost<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, shard: ShardIndex) {
        self.links[shard as usize] = None;
        let touched: Vec<(Gtrid, Phase)> = self
            .txs
            .iter()
            .filter(|(_, tx)| {
                tx.branches
                    .iter()
                    .any(|b| b.shard == shard && b.state != BranchState::Done)
            })
            .map(|(gtrid, tx)| (*gtrid, tx.phase))
            .collect();
        for (gtrid, phase) in touched {
            let xid = Xid {
                gtrid,
                branch: shard,
            };
            match phase {
                // The shard rolls back an active branch whose session ended.
                Phase::Active | Phase::Preparing => self.abort(ctx, gtrid, XaCode::RmFail),
                Phase::OnePhaseCommit => self.one_phase_lost(ctx, gtrid),
                Phase::Committing => self.leave_to_recovery(ctx, xid),
            }
        }
    }

    fn on_timeout<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, gtrid: Gtrid) {
        let Some(tx) = self.txs.get_mut(&gtrid) else {
            return;
        };
        tx.timer = None;
        // The reaper rolls back only what is still active; once prepare has begun, two
        // phase commit or recovery finishes it.
        if tx.phase == Phase::Active {
            ctx.sometimes("xa.reaper-rolled-back");
            ctx.note(format!("{gtrid} timed out while active: rolled back"));
            self.abort(ctx, gtrid, XaCode::RbTimeout);
        }
    }

    fn on_frame<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, conn: ConnId, frame: Frame) {
        let shard = self
            .links
            .iter()
            .position(|link| *link == Some(conn))
            .map(|at| at as ShardIndex);
        match (frame, shard) {
            (
                Frame::Transfer {
                    req,
                    from,
                    to,
                    amount,
                },
                None,
            ) => {
                let shards = self.cfg.shards.len() as u32;
                let (debit, credit) = (shard_of(from, shards), shard_of(to, shards));
                let mut branches = vec![Branch {
                    shard: debit,
                    ops: vec![Op::Debit {
                        account: from,
                        amount,
                    }],
                    state: BranchState::Working,
                }];
                let op = Op::Credit {
                    account: to,
                    amount,
                };
                if credit == debit {
                    branches[0].ops.push(op);
                } else {
                    branches.push(Branch {
                        shard: credit,
                        ops: vec![op],
                        state: BranchState::Working,
                    });
                }
                self.begin(ctx, (conn, req), false, branches);
            }
            (Frame::ReadAll { req }, None) => {
                let branches = (0..self.cfg.shards.len() as ShardIndex)
                    .map(|shard| Branch {
                        shard,
                        ops: vec![Op::ReadAll],
                        state: BranchState::Working,
                    })
                    .collect();
                self.begin(ctx, (conn, req), true, branches);
            }
            (Frame::Worked { xid, result }, Some(from)) if xid.branch == from => {
                self.on_worked(ctx, xid, result)
            }
            (Frame::Voted { xid, vote }, Some(from)) if xid.branch == from => {
                self.on_voted(ctx, xid, vote)
            }
            (Frame::Completed { xid, call, result }, Some(from)) if xid.branch == from => {
                self.on_completed(ctx, xid, call, result)
            }
            (Frame::Recovered { scan, branches }, Some(from)) => {
                self.on_recovered(ctx, from, scan, branches)
            }
            _ => {}
        }
    }

    fn handle<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, events: Events<Frame>) {
        for event in events {
            match event {
                Event::Frame { conn, frame } => self.on_frame(ctx, conn, frame),
                Event::Broken { conn, .. } | Event::Closed { conn } => {
                    let shard = self.links.iter().position(|link| *link == Some(conn));
                    match shard {
                        Some(shard) => self.shard_lost(ctx, shard as ShardIndex),
                        None => {
                            for tx in self.txs.values_mut() {
                                if tx.client.is_some_and(|(c, _)| c == conn) {
                                    tx.client = None;
                                }
                            }
                        }
                    }
                }
                Event::Opened { .. } | Event::Accepted { .. } => {}
            }
        }
    }
}

impl<H: Host> Node<H> for Coordinator {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.endpoint.start(ctx);
        self.boot = ctx.incarnation();
        self.read_log(ctx);
        self.redrive(ctx);
        if !ctx.bug(NO_PERIODIC_RECOVERY) {
            ctx.set_timer(
                self.cfg.recovery_period_ns,
                Timer::Recovery { second: false },
            );
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        if let Ok(events) = self.endpoint.take_message(ctx, from, msg) {
            self.handle(ctx, events);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
        let timer = match self.endpoint.take_timer(ctx, id, timer) {
            Ok(events) => {
                self.handle(ctx, events);
                return;
            }
            Err(timer) => timer,
        };
        match timer.into_part() {
            Ok(Timer::TxTimeout(gtrid)) => self.on_timeout(ctx, gtrid),
            Ok(Timer::Recovery { second }) => self.on_recovery_timer(ctx, second),
            _ => {}
        }
    }

    fn role(&self) -> String {
        "coordinator".into()
    }

    fn inspect(&self) -> String {
        let txs: Vec<String> = self
            .txs
            .iter()
            .map(|(g, tx)| format!("{g} {:?}", tx.phase))
            .collect();
        let decisions: Vec<String> = self
            .decisions
            .iter()
            .map(|(g, d)| format!("{g} commit={} {:?}", d.commit, d.participants))
            .collect();
        format!(
            "in flight: {}\nlogged: {}\n{}",
            txs.join("; "),
            decisions.join("; "),
            self.endpoint.describe()
        )
    }
}
