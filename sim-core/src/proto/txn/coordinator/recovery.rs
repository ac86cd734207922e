//! The recovery pass (Narayana's `PeriodicRecovery` with its `XARecoveryModule`): a scan
//! of every shard (`xa_recover`), a backoff, a second scan. Logged decisions are driven
//! again; a prepared branch of this coordinator with no record and no live transaction,
//! seen in consecutive scans at least the orphan safety interval apart, is rolled back;
//! a heuristic outcome found here is reported and forgotten.

use std::collections::BTreeMap;

use super::super::bugs::PRESUME_COMMIT;
use super::super::xa::{Frame, Heuristic, InDoubt, Scan, ShardIndex, XaCode, Xid};
use super::super::{Host, Timer};
use super::Coordinator;
use crate::node::Ctx;

impl Coordinator {
    /// Phase two again for every logged decision still open.
    pub(super) fn redrive<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let mut open = Vec::new();
        for (gtrid, decision) in &mut self.decisions {
            if decision.heuristic.is_some() || self.txs.contains_key(gtrid) {
                continue;
            }
            decision.recovered = true;
            for (shard, done) in &decision.participants {
                if !done {
                    open.push((*gtrid, decision.commit, *shard));
                }
            }
        }
        if !open.is_empty() {
            ctx.sometimes("xa.decision-redriven");
        }
        for (gtrid, commit, shard) in open {
            let xid = Xid {
                gtrid,
                branch: shard,
            };
            self.send_shard(ctx, shard, phase_two(xid, commit));
        }
    }

    pub(super) fn on_recovery_timer<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, second: bool) {
        self.scan += 1;
        if second {
            self.second_scan = self.scan;
        } else {
            self.redrive(ctx);
        }
        for shard in 0..self.cfg.shards.len() as ShardIndex {
            self.send_shard(ctx, shard, Frame::Recover { scan: self.scan });
        }
        let (delay, next) = if second {
            (self.cfg.recovery_period_ns, false)
        } else {
            (self.cfg.recovery_backoff_ns, true)
        };
        ctx.set_timer(delay, Timer::Recovery { second: next });
    }

    pub(super) fn on_recovered<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        shard: ShardIndex,
        scan: Scan,
        branches: Vec<(Xid, InDoubt)>,
    ) {
        let now = ctx.monotonic_ns();
        let before = std::mem::take(&mut self.sightings[shard as usize]);
        let mut seen = BTreeMap::new();
        for (xid, _) in &branches {
            seen.insert(*xid, before.get(xid).copied().unwrap_or(now));
        }
        self.sightings[shard as usize] = seen;
        if scan != self.second_scan {
            return;
        }
        for (xid, state) in branches {
            if xid.gtrid.tm != ctx.id() || self.txs.contains_key(&xid.gtrid) {
                continue;
            }
            match (self.decisions.get(&xid.gtrid).map(|d| d.commit), state) {
                (Some(commit), InDoubt::Prepared) => {
                    self.send_shard(ctx, shard, phase_two(xid, commit));
                }
                (Some(commit), InDoubt::Heuristic { committed }) => {
                    ctx.sometimes("xa.heuristic-found-by-recovery");
                    let result = if committed {
                        Err(XaCode::HeurCom)
                    } else {
                        Err(XaCode::HeurRb)
                    };
                    self.on_phase_two(ctx, xid, commit, result);
                }
                (None, InDoubt::Prepared) => {
                    let first = self.sightings[shard as usize][&xid];
                    if now.saturating_sub(first) < self.cfg.orphan_safety_ns {
                        continue;
                    }
                    ctx.sometimes("xa.orphan-rolled-back");
                    let presumed_commit = ctx.bug(PRESUME_COMMIT);
                    let presumed = if presumed_commit {
                        "presumed committed"
                    } else {
                        "an orphan, rolled back"
                    };
                    ctx.note(format!("{xid}: no record, {presumed}"));
                    self.send_shard(ctx, shard, phase_two(xid, presumed_commit));
                }
                (None, InDoubt::Heuristic { committed }) => {
                    // Seen twice: not a branch whose forget is on its way.
                    if !before.contains_key(&xid) {
                        continue;
                    }
                    // Presumed abort: a heuristic commit contradicts it.
                    if committed {
                        self.report(ctx, xid.gtrid, Heuristic::Commit);
                    }
                    self.send_shard(ctx, shard, Frame::Forget { xid });
                }
            }
        }
    }
}

/// Phase two's call for a branch: commit (in two phases) or roll back.
fn phase_two(xid: Xid, commit: bool) -> Frame {
    if commit {
        Frame::Commit {
            xid,
            one_phase: false,
        }
    } else {
        Frame::Rollback { xid }
    }
}
