//! A shard: one resource manager of the bank, holding some accounts.
//!
//! It runs branches as XA says: `xa_start`..`xa_end` (one `Work` frame: locks taken with
//! NOWAIT, a debit checked against the balance), `xa_prepare` (the branch's writes logged
//! and synced before the vote; a branch that wrote nothing votes read-only and is done),
//! `xa_commit` (one- or two-phase), `xa_rollback`, `xa_recover` and `xa_forget`. A
//! prepared branch keeps its locks until the outcome arrives, across crashes: a restart
//! replays the log and locks its prepared branches again (as InnoDB does). An active
//! branch is rolled back when its connection breaks (the session ends) or its timeout
//! expires. With heuristics on, a prepared branch left in doubt too long is completed
//! alone and remembered until the coordinator forgets it.
//!
//! This module never decides a transaction's outcome; only a heuristic completes a
//! prepared branch without the coordinator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::bugs::VOTE_BEFORE_PERSIST;
use super::xa::{Account, Amount, Call, Frame, InDoubt, Op, ShardIndex, Vote, XaCode, Xid};
use super::{Host, Obs, Timer};
use crate::conn::{ConnId, ConnParams, Endpoint, Event, Events};
use crate::node::{Ctx, Node, NodeId, TimerId, Wraps};

const LOG_FILE: &str = "shard.log";
/// Records appended before the log is rewritten as one snapshot.
const RECORDS_BEFORE_SNAPSHOT: u32 = 1_024;
/// How often a shard with prepared branches samples the oldest one's age.
const IN_DOUBT_SAMPLE_NS: u64 = 50_000_000;
/// Branches one shard holds at most; more `Work` is refused (XA_RBROLLBACK).
pub const BRANCHES_MAX: usize = 4_096;

#[derive(Clone, Debug)]
pub struct ShardConfig {
    pub index: ShardIndex,
    pub accounts: Vec<Account>,
    /// Every account's opening balance.
    pub initial: Amount,
    /// XA_RDONLY for branches that wrote nothing (Narayana's `readonlyOptimisation`).
    pub read_only: bool,
    /// How long a prepared branch waits for its outcome before the shard decides alone;
    /// 0: never (the default: heuristics are an operator's last resort).
    pub heuristic_after_ns: u64,
    /// What the shard decides alone: commit, or roll back.
    pub heuristic_commit: bool,
    pub conn: ConnParams,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Record {
    Prepared {
        xid: Xid,
        deltas: Vec<(Account, Amount)>,
    },
    Committed {
        xid: Xid,
    },
    RolledBack {
        xid: Xid,
    },
    OnePhase {
        xid: Xid,
        deltas: Vec<(Account, Amount)>,
    },
    Heuristic {
        xid: Xid,
        committed: bool,
        deltas: Vec<(Account, Amount)>,
    },
    Forgotten {
        xid: Xid,
    },
    Snapshot {
        balances: Vec<(Account, Amount)>,
        prepared: Vec<(Xid, Vec<(Account, Amount)>)>,
        heuristic: Vec<(Xid, bool)>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Lock {
    Shared(Vec<Xid>),
    Exclusive(Xid),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Active,
    Prepared,
    Heuristic { committed: bool },
}

#[derive(Clone, Debug)]
struct Branch {
    /// The connection that started it (an active branch dies with it).
    conn: Option<ConnId>,
    state: State,
    deltas: Vec<(Account, Amount)>,
    locked: Vec<Account>,
    /// Monotonic times: locks taken, prepared.
    locked_ns: u64,
    prepared_ns: Option<u64>,
    timer: Option<TimerId>,
}

#[derive(Clone)]
pub struct Shard {
    cfg: ShardConfig,
    endpoint: Endpoint<Frame>,
    balances: BTreeMap<Account, Amount>,
    locks: BTreeMap<Account, Lock>,
    branches: BTreeMap<Xid, Branch>,
    records: u32,
    /// The last `Holding` observed, so it is reported only when it changes.
    holding: Option<(u32, u32)>,
    /// Whether the in-doubt sample timer is armed, and the last age it reported (ms).
    sampling: bool,
    in_doubt_ms: Option<u64>,
}

impl Shard {
    pub fn new(cfg: ShardConfig) -> Self {
        assert!(!cfg.accounts.is_empty(), "a shard holds accounts");
        let conn = cfg.conn;
        Self {
            cfg,
            endpoint: Endpoint::new(conn),
            balances: BTreeMap::new(),
            locks: BTreeMap::new(),
            branches: BTreeMap::new(),
            records: 0,
            holding: None,
            sampling: false,
            in_doubt_ms: None,
        }
    }

    fn recover<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        for account in &self.cfg.accounts {
            self.balances.insert(*account, self.cfg.initial);
        }
        let (records, torn) = ctx.disk().read_records::<Record>(LOG_FILE);
        if torn {
            ctx.disk().truncate_torn_records(LOG_FILE);
        }
        self.records = records.len() as u32;
        let now = ctx.monotonic_ns();
        for record in records {
            self.replay(record, now);
        }
        let prepared: Vec<Xid> = self
            .branches
            .iter()
            .filter(|(_, b)| b.state == State::Prepared)
            .map(|(xid, _)| *xid)
            .collect();
        for xid in prepared {
            let deltas = self.branches[&xid].deltas.clone();
            for (account, _) in &deltas {
                self.locks.insert(*account, Lock::Exclusive(xid));
            }
            let timer = self.heuristic_timer(ctx, xid);
            let branch = self.branches.get_mut(&xid).expect("listed above");
            branch.locked = deltas.iter().map(|(account, _)| *account).collect();
            branch.timer = timer;
            if !branch.locked.is_empty() {
                ctx.note(format!("{xid} in doubt after restart: locks held again"));
            }
        }
    }

    fn replay(&mut self, record: Record, now: u64) {
        let branch = |state, deltas| Branch {
            conn: None,
            state,
            deltas,
            locked: Vec::new(),
            locked_ns: now,
            prepared_ns: Some(now),
            timer: None,
        };
        match record {
            Record::Prepared { xid, deltas } => {
                self.branches.insert(xid, branch(State::Prepared, deltas));
            }
            Record::Committed { xid } => {
                if let Some(done) = self.branches.remove(&xid) {
                    self.apply(&done.deltas);
                }
            }
            Record::RolledBack { xid } | Record::Forgotten { xid } => {
                self.branches.remove(&xid);
            }
            Record::OnePhase { deltas, .. } => self.apply(&deltas),
            Record::Heuristic {
                xid,
                committed,
                deltas,
            } => {
                self.branches.remove(&xid);
                if committed {
                    self.apply(&deltas);
                }
                let state = State::Heuristic { committed };
                self.branches.insert(xid, branch(state, Vec::new()));
            }
            Record::Snapshot {
                balances,
                prepared,
                heuristic,
            } => {
                self.balances = balances.into_iter().collect();
                self.branches.clear();
                for (xid, deltas) in prepared {
                    self.branches.insert(xid, branch(State::Prepared, deltas));
                }
                for (xid, committed) in heuristic {
                    let state = State::Heuristic { committed };
                    self.branches.insert(xid, branch(state, Vec::new()));
                }
            }
        }
    }

    fn apply(&mut self, deltas: &[(Account, Amount)]) {
        for (account, delta) in deltas {
            *self.balances.entry(*account).or_insert(0) += delta;
        }
    }

    /// Appends `record` and syncs it: every record here decides what a crash keeps.
    fn log<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, record: &Record) {
        self.records += 1;
        if self.records >= RECORDS_BEFORE_SNAPSHOT {
            let snapshot = self.snapshot_after(record);
            ctx.disk()
                .write(LOG_FILE, &crate::disk::frame_record(&snapshot));
            self.records = 1;
        } else {
            ctx.disk().append_record(LOG_FILE, record);
        }
        ctx.disk().sync();
    }

    /// The whole state as one record, as it will be once `record` is applied (the
    /// caller applies it to memory right after logging it).
    fn snapshot_after(&self, record: &Record) -> Record {
        let mut copy = Shard {
            cfg: self.cfg.clone(),
            endpoint: Endpoint::new(self.cfg.conn),
            balances: self.balances.clone(),
            locks: BTreeMap::new(),
            branches: self.branches.clone(),
            records: 0,
            holding: None,
            sampling: false,
            in_doubt_ms: None,
        };
        copy.replay(record.clone(), 0);
        let prepared = copy
            .branches
            .iter()
            .filter(|(_, b)| b.state == State::Prepared)
            .map(|(xid, b)| (*xid, b.deltas.clone()))
            .collect();
        let heuristic = copy
            .branches
            .iter()
            .filter_map(|(xid, b)| match b.state {
                State::Heuristic { committed } => Some((*xid, committed)),
                _ => None,
            })
            .collect();
        Record::Snapshot {
            balances: copy.balances.into_iter().collect(),
            prepared,
            heuristic,
        }
    }

    fn heuristic_timer<H: Host>(&self, ctx: &mut Ctx<'_, H>, xid: Xid) -> Option<TimerId> {
        (self.cfg.heuristic_after_ns > 0)
            .then(|| ctx.set_timer(self.cfg.heuristic_after_ns, Timer::Heuristic(xid)))
    }

    fn reply<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, conn: ConnId, frame: Frame) {
        // A broken connection loses the answer; the coordinator learns the rest from
        // `xa_recover`.
        let _ = self.endpoint.send(ctx, conn, frame);
    }

    fn on_frame<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, conn: ConnId, frame: Frame) {
        match frame {
            Frame::Work {
                xid,
                ops,
                timeout_ns,
            } => {
                let result = self.work(ctx, conn, xid, &ops, timeout_ns);
                self.reply(ctx, conn, Frame::Worked { xid, result });
            }
            Frame::Prepare { xid } => {
                let vote = self.prepare(ctx, xid);
                self.reply(ctx, conn, Frame::Voted { xid, vote });
            }
            Frame::Commit { xid, one_phase } => {
                let result = self.commit(ctx, xid, one_phase);
                let call = if one_phase {
                    Call::OnePhase
                } else {
                    Call::Commit
                };
                self.reply(ctx, conn, Frame::Completed { xid, call, result });
            }
            Frame::Rollback { xid } => {
                let result = self.rollback(ctx, xid);
                let call = Call::Rollback;
                self.reply(ctx, conn, Frame::Completed { xid, call, result });
            }
            Frame::Forget { xid } => {
                let result = self.forget(ctx, xid);
                let call = Call::Forget;
                self.reply(ctx, conn, Frame::Completed { xid, call, result });
            }
            Frame::Recover { scan } => {
                let branches = self
                    .branches
                    .iter()
                    .filter_map(|(xid, b)| match b.state {
                        State::Active => None,
                        State::Prepared => Some((*xid, InDoubt::Prepared)),
                        State::Heuristic { committed } => {
                            Some((*xid, InDoubt::Heuristic { committed }))
                        }
                    })
                    .collect();
                self.reply(ctx, conn, Frame::Recovered { scan, branches });
            }
            // Frames for coordinators and clients: a shard ignores them.
            _ => {}
        }
    }

    /// `xa_start`, the operations, `xa_end`: the balances read, or why it rolled back.
    fn work<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        conn: ConnId,
        xid: Xid,
        ops: &[Op],
        timeout_ns: u64,
    ) -> Result<Vec<(Account, Amount)>, XaCode> {
        if self.branches.contains_key(&xid) {
            return Err(XaCode::DupId);
        }
        if self.branches.len() >= BRANCHES_MAX {
            return Err(XaCode::RbRollback);
        }
        let mut exclusive = Vec::new();
        let mut shared = false;
        let mut deltas: Vec<(Account, Amount)> = Vec::new();
        for op in ops {
            match *op {
                Op::Debit { account, amount } => {
                    exclusive.push(account);
                    deltas.push((account, -amount));
                }
                Op::Credit { account, amount } => {
                    exclusive.push(account);
                    deltas.push((account, amount));
                }
                Op::ReadAll => shared = true,
            }
        }
        if exclusive.iter().any(|a| !self.balances.contains_key(a)) {
            return Err(XaCode::Proto);
        }
        // NOWAIT: a lock held by another branch fails the branch at once.
        let free = |lock: Option<&Lock>, exclusive: bool| match lock {
            None => true,
            Some(Lock::Shared(_)) => !exclusive,
            Some(Lock::Exclusive(_)) => false,
        };
        if exclusive.iter().any(|a| !free(self.locks.get(a), true))
            || (shared
                && self
                    .cfg
                    .accounts
                    .iter()
                    .any(|a| !free(self.locks.get(a), false)))
        {
            return Err(XaCode::RbDeadlock);
        }
        // The CHECK (balance >= 0) constraint, on what the branch would leave.
        for (account, _) in &deltas {
            let after: Amount = self.balances[account]
                + deltas
                    .iter()
                    .filter(|(a, _)| a == account)
                    .map(|(_, d)| d)
                    .sum::<Amount>();
            if after < 0 {
                return Err(XaCode::RbIntegrity);
            }
        }
        let mut locked = Vec::new();
        for account in exclusive {
            self.locks.insert(account, Lock::Exclusive(xid));
            if !locked.contains(&account) {
                locked.push(account);
            }
        }
        let mut reads = Vec::new();
        if shared {
            for account in &self.cfg.accounts {
                reads.push((*account, self.balances[account]));
                match self.locks.get_mut(account) {
                    Some(Lock::Shared(holders)) => holders.push(xid),
                    Some(Lock::Exclusive(_)) => {} // This branch's own write lock.
                    None => {
                        self.locks.insert(*account, Lock::Shared(vec![xid]));
                    }
                }
                if !locked.contains(account) {
                    locked.push(*account);
                }
            }
        }
        if !locked.is_empty() {
            ctx.observe(Obs::Locked { xid });
        }
        let timer = ctx.set_timer(timeout_ns, Timer::BranchTimeout(xid));
        self.branches.insert(
            xid,
            Branch {
                conn: Some(conn),
                state: State::Active,
                deltas,
                locked,
                locked_ns: ctx.monotonic_ns(),
                prepared_ns: None,
                timer: Some(timer),
            },
        );
        Ok(reads)
    }

    fn prepare<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, xid: Xid) -> Vote {
        let Some(branch) = self.branches.get(&xid) else {
            return Vote::Rollback(XaCode::NotA);
        };
        match branch.state {
            State::Prepared => return Vote::Commit,
            State::Heuristic { .. } => return Vote::Rollback(XaCode::Proto),
            State::Active => {}
        }
        if let Some(timer) = branch.timer {
            ctx.cancel_timer(timer);
        }
        if branch.deltas.is_empty() && self.cfg.read_only {
            let branch = self.branches.remove(&xid).expect("found above");
            self.release(ctx, xid, &branch);
            return Vote::ReadOnly;
        }
        let deltas = branch.deltas.clone();
        if !ctx.bug(VOTE_BEFORE_PERSIST) {
            self.log(ctx, &Record::Prepared { xid, deltas });
        }
        let timer = self.heuristic_timer(ctx, xid);
        let now = ctx.monotonic_ns();
        let branch = self.branches.get_mut(&xid).expect("found above");
        branch.state = State::Prepared;
        branch.prepared_ns = Some(now);
        branch.timer = timer;
        ctx.observe(Obs::Prepared { xid });
        Vote::Commit
    }

    fn commit<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        xid: Xid,
        one_phase: bool,
    ) -> Result<(), XaCode> {
        let Some(branch) = self.branches.get(&xid) else {
            return Err(XaCode::NotA);
        };
        let record = match (branch.state, one_phase) {
            (State::Heuristic { committed: true }, _) => return Err(XaCode::HeurCom),
            (State::Heuristic { committed: false }, _) => return Err(XaCode::HeurRb),
            (State::Active, false) => return Err(XaCode::Proto),
            (State::Active, true) => Record::OnePhase {
                xid,
                deltas: branch.deltas.clone(),
            },
            (State::Prepared, _) => Record::Committed { xid },
        };
        self.log(ctx, &record);
        let branch = self.branches.remove(&xid).expect("found above");
        self.apply(&branch.deltas);
        self.complete(ctx, xid, branch, true, false);
        Ok(())
    }

    fn rollback<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, xid: Xid) -> Result<(), XaCode> {
        let Some(branch) = self.branches.get(&xid) else {
            return Err(XaCode::NotA);
        };
        match branch.state {
            State::Heuristic { committed: true } => return Err(XaCode::HeurCom),
            State::Heuristic { committed: false } => return Err(XaCode::HeurRb),
            State::Prepared => self.log(ctx, &Record::RolledBack { xid }),
            State::Active => {}
        }
        let branch = self.branches.remove(&xid).expect("found above");
        self.complete(ctx, xid, branch, false, false);
        Ok(())
    }

    fn forget<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, xid: Xid) -> Result<(), XaCode> {
        match self.branches.get(&xid).map(|b| b.state) {
            Some(State::Heuristic { .. }) => {
                self.log(ctx, &Record::Forgotten { xid });
                self.branches.remove(&xid);
                Ok(())
            }
            Some(_) => Err(XaCode::Proto),
            None => Err(XaCode::NotA),
        }
    }

    /// Rolls back an active branch the shard gave up on (its session ended, or it
    /// timed out): nothing was logged for it, so nothing is.
    fn abandon<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, xid: Xid, why: &str) {
        if self.branches.get(&xid).map(|b| b.state) != Some(State::Active) {
            return;
        }
        let branch = self.branches.remove(&xid).expect("checked above");
        ctx.note(format!("{xid} rolled back: {why}"));
        self.complete(ctx, xid, branch, false, false);
    }

    /// A prepared branch waited too long: the shard decides alone and remembers it.
    fn decide_alone<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, xid: Xid) {
        if self.branches.get(&xid).map(|b| b.state) != Some(State::Prepared) {
            return;
        }
        ctx.sometimes("xa.heuristic-decision");
        let committed = self.cfg.heuristic_commit;
        let deltas = self.branches[&xid].deltas.clone();
        self.log(
            ctx,
            &Record::Heuristic {
                xid,
                committed,
                deltas: deltas.clone(),
            },
        );
        if committed {
            self.apply(&deltas);
        }
        let verb = if committed {
            "committed"
        } else {
            "rolled back"
        };
        ctx.note(format!("{xid} {verb} heuristically: no outcome came"));
        let branch = self.branches.get(&xid).expect("checked above").clone();
        self.complete(ctx, xid, branch, committed, true);
        let kept = self.branches.get_mut(&xid).expect("checked above");
        kept.state = State::Heuristic { committed };
        kept.locked.clear();
        kept.timer = None;
    }

    /// The branch is done (removed, or kept as heuristic by the caller): locks go.
    fn complete<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        xid: Xid,
        branch: Branch,
        commit: bool,
        heuristic: bool,
    ) {
        if let Some(timer) = branch.timer {
            ctx.cancel_timer(timer);
        }
        let delta = if commit {
            branch.deltas.iter().map(|(_, d)| d).sum()
        } else {
            0
        };
        ctx.observe(Obs::Applied {
            xid,
            commit,
            heuristic,
            delta,
        });
        self.release(ctx, xid, &branch);
    }

    fn release<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, xid: Xid, branch: &Branch) {
        for account in &branch.locked {
            let empty = match self.locks.get_mut(account) {
                Some(Lock::Exclusive(holder)) => *holder == xid,
                Some(Lock::Shared(holders)) => {
                    holders.retain(|h| *h != xid);
                    holders.is_empty()
                }
                None => false,
            };
            if empty {
                self.locks.remove(account);
            }
        }
        if !branch.locked.is_empty() {
            let now = ctx.monotonic_ns();
            let held_ns = now.saturating_sub(branch.locked_ns);
            ctx.observe(Obs::Released {
                xid,
                held_ns,
                in_doubt_ns: branch.prepared_ns.map_or(0, |p| now.saturating_sub(p)),
            });
            ctx.metric("lock_held_ms", held_ns / 1_000_000);
        }
    }

    /// Reports locks and prepared branches when they changed (observation and metrics),
    /// and keeps the in-doubt sampling going while a branch is prepared.
    fn report_holding<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let locks = self.locks.len() as u32;
        let prepared = self
            .branches
            .values()
            .filter(|b| b.state == State::Prepared)
            .count() as u32;
        if prepared > 0 && !self.sampling {
            self.sampling = true;
            ctx.set_timer(IN_DOUBT_SAMPLE_NS, Timer::InDoubtSample);
        }
        if prepared == 0 {
            self.sample_in_doubt(ctx);
        }
        if self.holding == Some((locks, prepared)) {
            return;
        }
        self.holding = Some((locks, prepared));
        ctx.observe(Obs::Holding { locks, prepared });
        ctx.metric("locked", locks as u64);
        ctx.metric("in_doubt", prepared as u64);
    }

    /// The metric `in_doubt_ms`: how long the oldest prepared branch has waited for its
    /// outcome (0 with none), when it changed.
    fn sample_in_doubt<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let now = ctx.monotonic_ns();
        let oldest_ms = self
            .branches
            .values()
            .filter(|b| b.state == State::Prepared)
            .filter_map(|b| b.prepared_ns)
            .map(|prepared| now.saturating_sub(prepared) / 1_000_000)
            .max()
            .unwrap_or(0);
        if self.in_doubt_ms != Some(oldest_ms) {
            self.in_doubt_ms = Some(oldest_ms);
            ctx.metric("in_doubt_ms", oldest_ms);
        }
    }

    fn handle<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, events: Events<Frame>) {
        for event in events {
            match event {
                Event::Frame { conn, frame } => self.on_frame(ctx, conn, frame),
                Event::Broken { conn, .. } | Event::Closed { conn } => {
                    let active: Vec<Xid> = self
                        .branches
                        .iter()
                        .filter(|(_, b)| b.state == State::Active && b.conn == Some(conn))
                        .map(|(xid, _)| *xid)
                        .collect();
                    for xid in active {
                        self.abandon(ctx, xid, "its connection closed");
                    }
                }
                Event::Opened { .. } | Event::Accepted { .. } => {}
            }
        }
    }
}

impl<H: Host> Node<H> for Shard {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.endpoint.start(ctx);
        self.recover(ctx);
        self.report_holding(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        if let Ok(events) = self.endpoint.take_message(ctx, from, msg) {
            self.handle(ctx, events);
            self.report_holding(ctx);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
        let timer = match self.endpoint.take_timer(ctx, id, timer) {
            Ok(events) => {
                self.handle(ctx, events);
                self.report_holding(ctx);
                return;
            }
            Err(timer) => timer,
        };
        match timer.into_part() {
            Ok(Timer::BranchTimeout(xid)) => self.abandon(ctx, xid, "its timeout expired"),
            Ok(Timer::Heuristic(xid)) => self.decide_alone(ctx, xid),
            Ok(Timer::InDoubtSample) => {
                self.sampling = false;
                self.sample_in_doubt(ctx);
            }
            _ => {}
        }
        self.report_holding(ctx);
    }

    fn role(&self) -> String {
        format!("shard {}", self.cfg.index)
    }

    fn inspect(&self) -> String {
        let balances: Vec<String> = self
            .balances
            .iter()
            .map(|(a, b)| format!("a{a}={b}"))
            .collect();
        let branches: Vec<String> = self
            .branches
            .iter()
            .map(|(xid, b)| format!("{xid} {:?} locks {:?}", b.state, b.locked))
            .collect();
        format!(
            "balances {}\nbranches {}\n{}",
            balances.join(" "),
            branches.join("; "),
            self.endpoint.describe()
        )
    }
}
