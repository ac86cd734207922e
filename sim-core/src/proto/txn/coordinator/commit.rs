//! Phase two and what it learns: the commit decision (logged first), the answers of
//! each branch combined as Narayana's `updateHeuristic` combines them, the client's
//! answer (`commit()` returns, or throws `RollbackException` or
//! `HeuristicMixedException`), and one-phase commits.

use super::super::bugs::NO_LOG_BEFORE_PHASE_TWO;
use super::super::xa::{Answer, Call, Frame, Gtrid, Heuristic, ShardIndex, Vote, XaCode, Xid};
use super::super::{Host, Obs};
use super::log::{Decision, Record};
use super::{BranchState, Coordinator, Phase, Tx};
use crate::node::Ctx;

/// What phase two learned: branches committed, rolled back heuristically, hazards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Outcome {
    committed: bool,
    rolled_back: bool,
    mixed: bool,
    hazard: bool,
}

impl Outcome {
    pub(super) fn heuristic(self) -> Option<Heuristic> {
        if self.mixed || (self.committed && self.rolled_back) {
            Some(Heuristic::Mixed)
        } else if self.hazard {
            Some(Heuristic::Hazard)
        } else if self.rolled_back {
            Some(Heuristic::Rollback)
        } else {
            None
        }
    }

    pub(super) fn add(&mut self, result: Result<(), XaCode>, recovered: bool) {
        match result {
            Ok(()) | Err(XaCode::HeurCom) => self.committed = true,
            Err(XaCode::NotA) if recovered => self.committed = true,
            Err(XaCode::NotA) | Err(XaCode::HeurHaz) => self.hazard = true,
            Err(XaCode::HeurMix) => self.mixed = true,
            Err(XaCode::RmFail) => {}
            // XA_HEURRB, XA_RB*, XAER_PROTO: Narayana's HEURISTIC_ROLLBACK.
            Err(_) => self.rolled_back = true,
        }
    }
}

impl Coordinator {
    /// Every vote is yes or read-only: log the decision, then phase two.
    pub(super) fn decide_commit<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, gtrid: Gtrid) {
        let tx = self
            .txs
            .get_mut(&gtrid)
            .expect("deciding a live transaction");
        let participants: Vec<ShardIndex> = tx
            .branches
            .iter()
            .filter(|b| b.state == BranchState::Voted(Vote::Commit))
            .map(|b| b.shard)
            .collect();
        for branch in &mut tx.branches {
            if branch.state == BranchState::Voted(Vote::ReadOnly) {
                branch.state = BranchState::Done;
            }
        }
        if participants.is_empty() {
            // Every branch was read-only: nothing to log, nothing to commit.
            self.finish(ctx, gtrid);
            return;
        }
        tx.phase = Phase::Committing;
        if !ctx.bug(NO_LOG_BEFORE_PHASE_TWO) {
            let record = Record::Decision {
                gtrid,
                commit: true,
                participants: participants.clone(),
            };
            self.append(ctx, &record, true);
        }
        let decision = Decision {
            commit: true,
            participants: participants.iter().map(|s| (*s, false)).collect(),
            heuristic: None,
            recovered: false,
        };
        self.decisions.insert(gtrid, decision);
        ctx.observe(Obs::Decided {
            gtrid,
            commit: true,
            participants: participants.clone(),
        });
        for shard in participants {
            let xid = Xid {
                gtrid,
                branch: shard,
            };
            let commit = Frame::Commit {
                xid,
                one_phase: false,
            };
            if !self.send_shard(ctx, shard, commit) {
                self.leave_to_recovery(ctx, xid);
            }
        }
    }

    pub(super) fn on_completed<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        xid: Xid,
        call: Call,
        result: Result<(), XaCode>,
    ) {
        match call {
            Call::OnePhase => self.on_one_phase(ctx, xid, result),
            Call::Commit => self.on_phase_two(ctx, xid, true, result),
            Call::Rollback => {
                if self.decisions.get(&xid.gtrid).is_some_and(|d| !d.commit) {
                    self.on_phase_two(ctx, xid, false, result);
                    return;
                }
                // A presumed-abort rollback: only a heuristic commit needs telling.
                let heuristic = match result {
                    Err(XaCode::HeurCom) => Some(Heuristic::Commit),
                    Err(XaCode::HeurMix) => Some(Heuristic::Mixed),
                    Err(XaCode::HeurHaz) => Some(Heuristic::Hazard),
                    _ => None,
                };
                if let Some(heuristic) = heuristic {
                    self.report(ctx, xid.gtrid, heuristic);
                    self.send_shard(ctx, xid.branch, Frame::Forget { xid });
                }
            }
            Call::Forget => {}
        }
    }

    pub(super) fn on_one_phase<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        xid: Xid,
        result: Result<(), XaCode>,
    ) {
        let Some(tx) = self.txs.get(&xid.gtrid) else {
            return;
        };
        if tx.phase != Phase::OnePhaseCommit {
            return;
        }
        let tx = self.txs.remove(&xid.gtrid).expect("found above");
        let answer = match result {
            Ok(()) | Err(XaCode::HeurCom) => {
                if result.is_err() {
                    self.send_shard(ctx, xid.branch, Frame::Forget { xid });
                }
                self.committed_answer(&tx)
            }
            Err(code) if code.is_rollback() => Answer::RolledBack(code),
            Err(XaCode::HeurRb) => {
                self.send_shard(ctx, xid.branch, Frame::Forget { xid });
                Answer::RolledBack(XaCode::HeurRb)
            }
            Err(_) => {
                self.report(ctx, xid.gtrid, Heuristic::Hazard);
                Answer::Heuristic(Heuristic::Hazard)
            }
        };
        self.answer(ctx, tx.client, answer);
    }

    /// A one-phase commit whose shard is unreachable: the outcome is unknown, which
    /// Narayana reports as a heuristic hazard.
    pub(super) fn one_phase_lost<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, gtrid: Gtrid) {
        if let Some(tx) = self.txs.remove(&gtrid) {
            ctx.sometimes("xa.one-phase-outcome-unknown");
            self.report(ctx, gtrid, Heuristic::Hazard);
            self.answer(ctx, tx.client, Answer::Heuristic(Heuristic::Hazard));
        }
    }

    pub(super) fn committed_answer(&self, tx: &Tx) -> Answer {
        if tx.read {
            let mut reads = tx.reads.clone();
            reads.sort_unstable();
            Answer::Balances(reads)
        } else {
            Answer::Committed
        }
    }

    /// A branch answered phase two (a logged decision's commit, or the planted bug's
    /// logged rollback).
    pub(super) fn on_phase_two<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        xid: Xid,
        commit: bool,
        result: Result<(), XaCode>,
    ) {
        let Some(decision) = self.decisions.get_mut(&xid.gtrid) else {
            return;
        };
        let Some(slot) = decision
            .participants
            .iter_mut()
            .find(|(shard, _)| *shard == xid.branch)
        else {
            return;
        };
        if slot.1 || result == Err(XaCode::RmFail) {
            return;
        }
        slot.1 = true;
        let recovered = decision.recovered;
        let mut outcome = Outcome::default();
        if commit {
            outcome.add(result, recovered);
        } else if result == Err(XaCode::HeurCom) {
            outcome.committed = true;
        }
        if matches!(result, Err(XaCode::HeurCom) | Err(XaCode::HeurRb)) {
            // The shard remembers its heuristic until told to forget it.
            self.send_shard(ctx, xid.branch, Frame::Forget { xid });
        }
        if let Some(tx) = self.txs.get_mut(&xid.gtrid) {
            let branch = tx.branches.iter_mut().find(|b| b.shard == xid.branch);
            if let Some(branch) = branch {
                branch.state = BranchState::Done;
            }
            let o = &mut tx.outcome;
            o.committed |= outcome.committed;
            o.rolled_back |= outcome.rolled_back;
            o.mixed |= outcome.mixed;
            o.hazard |= outcome.hazard;
        } else if let Some(heuristic) = outcome.heuristic() {
            // Found by recovery after the client had its answer: reported to the log. A
            // branch rolled back against a commit leaves the others committed: mixed.
            let decision = self.decisions.get_mut(&xid.gtrid).expect("found above");
            let heuristic = match heuristic {
                Heuristic::Rollback if decision.participants.len() > 1 => Heuristic::Mixed,
                other => other,
            };
            decision.heuristic = Some(heuristic);
            self.report(ctx, xid.gtrid, heuristic);
        }
        self.maybe_finish(ctx, xid.gtrid);
    }

    /// Phase two of `gtrid` may be over: answer the client, end or keep the record.
    pub(super) fn maybe_finish<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, gtrid: Gtrid) {
        if let Some(tx) = self.txs.get(&gtrid) {
            if tx.branches.iter().any(|b| b.state != BranchState::Done) {
                return;
            }
            self.finish(ctx, gtrid);
        }
        let Some(decision) = self.decisions.get(&gtrid) else {
            return;
        };
        if decision.participants.iter().all(|(_, done)| *done) {
            match decision.heuristic {
                None => self.end(ctx, gtrid),
                Some(heuristic) => {
                    // Kept for an operator, no longer driven.
                    self.append(ctx, &Record::Heuristic { gtrid, heuristic }, true);
                    self.decisions.remove(&gtrid);
                }
            }
        }
    }

    /// Answers the client of a transaction whose branches are all done.
    pub(super) fn finish<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, gtrid: Gtrid) {
        let tx = self
            .txs
            .remove(&gtrid)
            .expect("finishing a live transaction");
        let answer = match tx.outcome.heuristic() {
            None => self.committed_answer(&tx),
            Some(heuristic) => {
                self.report(ctx, gtrid, heuristic);
                if let Some(decision) = self.decisions.get_mut(&gtrid) {
                    decision.heuristic = Some(heuristic);
                }
                match heuristic {
                    // Narayana: every branch rolled back is a `RollbackException`.
                    Heuristic::Rollback if !tx.outcome.committed => {
                        Answer::RolledBack(XaCode::HeurRb)
                    }
                    Heuristic::Rollback => Answer::Heuristic(Heuristic::Mixed),
                    other => Answer::Heuristic(other),
                }
            }
        };
        self.answer(ctx, tx.client, answer);
    }

    pub(super) fn report<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        gtrid: Gtrid,
        heuristic: Heuristic,
    ) {
        ctx.note(format!("{gtrid}: heuristic outcome {heuristic:?}"));
        ctx.observe(Obs::Reported { gtrid, heuristic });
    }

    /// A participant of a logged commit is unreachable: its branch waits for recovery.
    pub(super) fn leave_to_recovery<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, xid: Xid) {
        if let Some((tx, at)) = self.branch_mut(xid) {
            tx.branches[at].state = BranchState::Done;
        }
        if let Some(tx) = self.txs.get(&xid.gtrid) {
            if tx.branches.iter().all(|b| b.state == BranchState::Done) {
                self.finish(ctx, xid.gtrid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(results: &[Result<(), XaCode>], recovered: bool) -> Option<Heuristic> {
        let mut outcome = Outcome::default();
        for result in results {
            outcome.add(*result, recovered);
        }
        outcome.heuristic()
    }

    /// Narayana's `XAResourceRecord.topLevelCommit` and `BasicAction.updateHeuristic`.
    #[test]
    fn phase_two_answers_combine_as_narayana_combines_them() {
        assert_eq!(outcome(&[Ok(()), Ok(())], false), None);
        // XA_HEURCOM on commit is what was decided: no heuristic outcome.
        assert_eq!(outcome(&[Ok(()), Err(XaCode::HeurCom)], false), None);
        // A branch rolled back against a commit: mixed when another committed.
        assert_eq!(
            outcome(&[Ok(()), Err(XaCode::HeurRb)], false),
            Some(Heuristic::Mixed)
        );
        assert_eq!(
            outcome(&[Err(XaCode::HeurRb), Err(XaCode::RbTimeout)], false),
            Some(Heuristic::Rollback)
        );
        assert_eq!(
            outcome(&[Ok(()), Err(XaCode::HeurMix)], false),
            Some(Heuristic::Mixed)
        );
        // Hazard overrides a plain outcome; mixed overrides hazard.
        assert_eq!(
            outcome(&[Ok(()), Err(XaCode::HeurHaz)], false),
            Some(Heuristic::Hazard)
        );
        assert_eq!(
            outcome(&[Err(XaCode::HeurHaz), Err(XaCode::HeurMix)], false),
            Some(Heuristic::Mixed)
        );
        // XAER_NOTA: a hazard the first time, the branch's earlier completion in recovery.
        assert_eq!(
            outcome(&[Ok(()), Err(XaCode::NotA)], false),
            Some(Heuristic::Hazard)
        );
        assert_eq!(outcome(&[Ok(()), Err(XaCode::NotA)], true), None);
    }
}
