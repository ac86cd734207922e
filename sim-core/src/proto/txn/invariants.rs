//! The bank's checkers, fed by what the coordinator and the shards observe and what the
//! bank clients record:
//!
//! - `xa.atomic`: a transaction's branches all commit or all roll back, as the
//!   coordinator decided; only a heuristic decision may break that, and then the
//!   coordinator must report it (within the recovery bound).
//! - `xa.resolved` (liveness): at the end of the quiet phase no shard has held a lock or
//!   a prepared branch for longer than the time recovery needs to resolve it (the
//!   connection timeout, two recovery passes, the orphan safety interval and the
//!   transaction timeout).
//! - `xa.blocking` (a gauge): how long each shard held locks and stayed in doubt: the
//!   blocking window of two-phase commit, in the run's stats.
//! - `bank.conservation`: every read that succeeded names every account, none negative,
//!   and the balances add up to the opening total, plus what reported heuristic outcomes
//!   created or destroyed (an auditor reconciles those; nothing else may move money).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::xa::{account_name, Amount, Gtrid, ShardIndex, Xid};
use super::{Host, Obs};
use crate::check::{HistoryEvent, OpFunction, OpType};
use crate::invariant::{EndState, Invariant};
use crate::node::{NodeId, Wraps};

pub const ATOMIC: &str = "xa.atomic";
pub const RESOLVED: &str = "xa.resolved";
pub const BLOCKING: &str = "xa.blocking";
pub const CONSERVATION: &str = "bank.conservation";

/// What the checkers know of one transaction.
#[derive(Clone, Debug, Default)]
struct Seen {
    /// The coordinator's decision, with the branches it covers.
    decided: Option<(bool, Vec<ShardIndex>)>,
    /// Each completed branch: committed, decided alone.
    applied: BTreeMap<ShardIndex, (bool, bool)>,
    reported: bool,
    /// When a shard first decided alone against the outcome (then it must be reported).
    diverged_ns: Option<u64>,
}

#[derive(Clone)]
pub struct Atomic {
    /// The shards' nodes, by shard index.
    shards: Vec<NodeId>,
    /// How long the coordinator may take to find and report a heuristic outcome.
    bound_ns: u64,
    txs: BTreeMap<Gtrid, Seen>,
}

impl Atomic {
    pub fn new(shards: Vec<NodeId>, bound_ns: u64) -> Self {
        Self {
            shards,
            bound_ns,
            txs: BTreeMap::new(),
        }
    }

    fn shard_of(&self, node: NodeId) -> Option<ShardIndex> {
        self.shards
            .iter()
            .position(|n| *n == node)
            .map(|at| at as ShardIndex)
    }
}

impl<H: Host> Invariant<H> for Atomic {
    fn name(&self) -> &'static str {
        ATOMIC
    }

    fn on_observation(&mut self, time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        match Wraps::<Obs>::part(obs) {
            Some(Obs::Decided {
                gtrid,
                commit,
                participants,
            }) => {
                let seen = self.txs.entry(*gtrid).or_default();
                seen.decided = Some((*commit, participants.clone()));
                for (shard, (applied, heuristic)) in &seen.applied {
                    if applied != commit && !heuristic && participants.contains(shard) {
                        return Err(format!(
                            "{gtrid}: the coordinator decided {} after branch b{shard} {}",
                            verb(*commit),
                            past(*applied)
                        ));
                    }
                }
            }
            Some(Obs::Reported { gtrid, .. }) => {
                self.txs.entry(*gtrid).or_default().reported = true;
            }
            Some(Obs::Applied {
                xid,
                commit,
                heuristic,
                ..
            }) => {
                let shard = self.shard_of(node).unwrap_or(xid.branch);
                let seen = self.txs.entry(xid.gtrid).or_default();
                if !heuristic {
                    if let Some((decided, participants)) = &seen.decided {
                        if decided != commit && participants.contains(&shard) {
                            return Err(format!(
                                "{xid} {} although the coordinator decided {}",
                                past(*commit),
                                verb(*decided)
                            ));
                        }
                    }
                    let other = seen
                        .applied
                        .iter()
                        .find(|(_, (c, h))| c != commit && !h)
                        .map(|(s, _)| *s);
                    if let Some(other) = other {
                        return Err(format!(
                            "{}: branch b{shard} {} but branch b{other} {}, and no shard \
                             decided alone",
                            xid.gtrid,
                            past(*commit),
                            past(!*commit)
                        ));
                    }
                }
                let decided_commit = matches!(seen.decided, Some((true, _)));
                if *heuristic && *commit != decided_commit && seen.diverged_ns.is_none() {
                    seen.diverged_ns = Some(time_ns);
                }
                seen.applied.insert(shard, (*commit, *heuristic));
            }
            _ => {}
        }
        Ok(())
    }

    fn at_end(&mut self, end: &EndState) -> Result<(), String> {
        let up = |node: NodeId| end.up.get(node as usize).copied().unwrap_or(false);
        for (gtrid, seen) in &self.txs {
            let Some(diverged_ns) = seen.diverged_ns else {
                continue;
            };
            let late = end.time_ns.saturating_sub(diverged_ns) > self.bound_ns;
            if late && !seen.reported && up(gtrid.tm) {
                return Err(format!(
                    "{gtrid}: a shard decided alone against the outcome at {}, and the \
                     coordinator never reported the heuristic outcome",
                    format_ns(diverged_ns)
                ));
            }
        }
        Ok(())
    }

    fn stats(&self) -> Vec<(String, u64)> {
        let heuristic = self
            .txs
            .values()
            .filter(|s| s.applied.values().any(|(_, h)| *h))
            .count() as u64;
        let reported = self.txs.values().filter(|s| s.reported).count() as u64;
        let mut stats = Vec::new();
        if heuristic > 0 || reported > 0 {
            stats.push(("xa.heuristic-branches".to_string(), heuristic));
            stats.push(("xa.heuristic-reported".to_string(), reported));
        }
        stats
    }
}

fn verb(commit: bool) -> &'static str {
    if commit {
        "commit"
    } else {
        "rollback"
    }
}

fn past(commit: bool) -> &'static str {
    if commit {
        "committed"
    } else {
        "rolled back"
    }
}

/// Liveness: no lock held and no branch in doubt for longer than `bound_ns` at the end.
/// A branch younger than that may belong to work still in flight when the run stops.
#[derive(Clone)]
pub struct Resolved {
    bound_ns: u64,
    /// Per shard node: each branch holding locks or prepared, since when, and whether it
    /// is prepared (durable: it survives the shard's crash).
    held: BTreeMap<NodeId, BTreeMap<Xid, (u64, bool)>>,
}

impl Resolved {
    pub fn new(bound_ns: u64) -> Self {
        Self {
            bound_ns,
            held: BTreeMap::new(),
        }
    }
}

impl<H: Host> Invariant<H> for Resolved {
    fn name(&self) -> &'static str {
        RESOLVED
    }

    fn on_observation(&mut self, time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let held = self.held.entry(node).or_default();
        match Wraps::<Obs>::part(obs) {
            Some(Obs::Locked { xid }) => {
                held.entry(*xid).or_insert((time_ns, false));
            }
            Some(Obs::Prepared { xid }) => {
                held.entry(*xid).or_insert((time_ns, true)).1 = true;
            }
            Some(Obs::Applied { xid, .. }) | Some(Obs::Released { xid, .. }) => {
                held.remove(xid);
            }
            _ => {}
        }
        Ok(())
    }

    fn on_crash(&mut self, node: NodeId) {
        // Active branches die with the shard; prepared ones come back with their locks.
        if let Some(held) = self.held.get_mut(&node) {
            held.retain(|_, (_, prepared)| *prepared);
        }
    }

    fn at_end(&mut self, end: &EndState) -> Result<(), String> {
        let up = |node: NodeId| end.up.get(node as usize).copied().unwrap_or(false);
        for (node, held) in &self.held {
            if !up(*node) {
                continue;
            }
            let stuck = held
                .iter()
                .find(|(_, (since, _))| end.time_ns.saturating_sub(*since) > self.bound_ns);
            if let Some((xid, (since, prepared))) = stuck {
                let what = if *prepared {
                    "in doubt"
                } else {
                    "holding locks"
                };
                return Err(format!(
                    "no progress: shard node {node} has {xid} {what} since {}, {} before \
                     the end (bound {})",
                    format_ns(*since),
                    format_ns(end.time_ns - since),
                    format_ns(self.bound_ns)
                ));
            }
        }
        Ok(())
    }
}

fn format_ns(ns: u64) -> String {
    crate::units::format_duration(ns)
}

/// The blocking window, per shard: the longest lock hold and the longest stay in doubt;
/// and how transactions ended: two-phase and one-phase commits, aborts, branches
/// prepared (read-only branches are never prepared when the optimisation is on).
#[derive(Clone, Default)]
pub struct Blocking {
    per_shard: BTreeMap<NodeId, (u64, u64, u64)>,
    prepared: BTreeSet<Xid>,
    two_phase: u64,
    aborts: u64,
    one_phase: u64,
}

impl<H: Host> Invariant<H> for Blocking {
    fn name(&self) -> &'static str {
        BLOCKING
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        match Wraps::<Obs>::part(obs) {
            Some(Obs::Released {
                held_ns,
                in_doubt_ns,
                ..
            }) => {
                let entry = self.per_shard.entry(node).or_default();
                entry.0 = entry.0.max(*held_ns);
                entry.1 = entry.1.max(*in_doubt_ns);
                entry.2 += held_ns;
            }
            Some(Obs::Decided { commit: true, .. }) => self.two_phase += 1,
            Some(Obs::Decided { commit: false, .. }) => self.aborts += 1,
            Some(Obs::Prepared { xid }) => {
                self.prepared.insert(*xid);
            }
            Some(Obs::Applied {
                xid,
                commit: true,
                heuristic: false,
                ..
            }) if !self.prepared.contains(xid) => self.one_phase += 1,
            _ => {}
        }
        Ok(())
    }

    fn stats(&self) -> Vec<(String, u64)> {
        let mut stats = vec![
            ("xa.two-phase-commits".to_string(), self.two_phase),
            ("xa.one-phase-commits".to_string(), self.one_phase),
            ("xa.aborts".to_string(), self.aborts),
            (
                "xa.branches-prepared".to_string(),
                self.prepared.len() as u64,
            ),
        ];
        for (node, (held, doubt, total)) in &self.per_shard {
            stats.push((format!("xa.lock-held-max-ms n{node}"), held / 1_000_000));
            stats.push((format!("xa.in-doubt-max-ms n{node}"), doubt / 1_000_000));
            stats.push((format!("xa.lock-held-total-ms n{node}"), total / 1_000_000));
        }
        stats
    }
}

/// Jepsen's bank checker, run on the clients' reads as they complete.
#[derive(Clone)]
pub struct Conservation {
    accounts: u32,
    opening: Amount,
    /// Committed deltas of transactions in which some shard decided alone.
    damage: Amount,
    heuristic: BTreeSet<Gtrid>,
    /// Committed deltas so far, per transaction.
    committed: BTreeMap<Gtrid, Amount>,
    reads: u64,
}

impl Conservation {
    pub fn new(accounts: u32, initial: Amount) -> Self {
        Self {
            accounts,
            opening: accounts as Amount * initial,
            damage: 0,
            heuristic: BTreeSet::new(),
            committed: BTreeMap::new(),
            reads: 0,
        }
    }
}

impl<H: Host> Invariant<H> for Conservation {
    fn name(&self) -> &'static str {
        CONSERVATION
    }

    fn on_observation(&mut self, _time_ns: u64, _node: NodeId, obs: &H::Obs) -> Result<(), String> {
        if let Some(Obs::Applied {
            xid,
            commit,
            heuristic,
            delta,
        }) = Wraps::<Obs>::part(obs)
        {
            let gtrid = xid.gtrid;
            let delta = if *commit { *delta } else { 0 };
            let total = self.committed.entry(gtrid).or_default();
            *total += delta;
            if *heuristic && self.heuristic.insert(gtrid) {
                self.damage += *total;
            } else if self.heuristic.contains(&gtrid) {
                self.damage += delta;
            }
        }
        Ok(())
    }

    fn on_history(
        &mut self,
        _time_ns: u64,
        _node: NodeId,
        event: &HistoryEvent,
    ) -> Result<(), String> {
        if event.kind != OpType::Ok || event.f != OpFunction::Read {
            return Ok(());
        }
        self.reads += 1;
        let Value::Object(balances) = &event.value else {
            return Err(format!("a read returned {}, not balances", event.value));
        };
        let mut sum: Amount = 0;
        for account in 0..self.accounts {
            let name = account_name(account);
            let Some(balance) = balances.get(&name).and_then(Value::as_i64) else {
                return Err(format!("a read is missing account {name}: {}", event.value));
            };
            if balance < 0 {
                return Err(format!("{name} is negative in a read: {}", event.value));
            }
            sum += balance;
        }
        if balances.len() as u32 != self.accounts {
            return Err(format!("a read names unknown accounts: {}", event.value));
        }
        let expected = self.opening + self.damage;
        if sum != expected {
            return Err(format!(
                "a read adds up to {sum}, not {expected} ({} opening{}): {}",
                self.opening,
                if self.damage != 0 {
                    format!(", {:+} from reported heuristic outcomes", self.damage)
                } else {
                    String::new()
                },
                event.value
            ));
        }
        Ok(())
    }

    fn stats(&self) -> Vec<(String, u64)> {
        vec![("bank.reads-checked".to_string(), self.reads)]
    }
}
