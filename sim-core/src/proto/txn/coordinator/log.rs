//! The coordinator's decision log: a commit decision is appended and synced before phase
//! two, an end appended (unsynced: a lost end only re-drives a finished commit) when
//! every branch has answered, and now and then the file is rewritten with only the open
//! decisions. Presumed abort: no record means rolled back.

use serde::{Deserialize, Serialize};

use super::super::xa::{Gtrid, Heuristic, ShardIndex};
use super::super::Host;
use super::Coordinator;
use crate::node::Ctx;

const LOG_FILE: &str = "tm.log";
/// Finished records appended before the log is rewritten with only the open ones.
const ENDS_BEFORE_REWRITE: u32 = 256;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) enum Record {
    /// The decision, with the branches that must hear it. Only commits are logged
    /// (presumed abort), unless the planted bug logs aborts too.
    Decision {
        gtrid: Gtrid,
        commit: bool,
        participants: Vec<ShardIndex>,
    },
    /// Phase two ended with a heuristic outcome: kept for an operator.
    Heuristic {
        gtrid: Gtrid,
        heuristic: Heuristic,
    },
    End {
        gtrid: Gtrid,
    },
}

/// A logged decision whose phase two is not over.
#[derive(Clone, Debug)]
pub(super) struct Decision {
    pub(super) commit: bool,
    /// Each participant and whether it answered phase two.
    pub(super) participants: Vec<(ShardIndex, bool)>,
    /// A heuristic outcome kept for an operator: nothing more to drive.
    pub(super) heuristic: Option<Heuristic>,
    /// Re-driven by recovery (or read back after a restart): XAER_NOTA then means the
    /// branch was completed before.
    pub(super) recovered: bool,
}

impl Coordinator {
    pub(super) fn read_log<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let (records, torn) = ctx.disk().read_records::<Record>(LOG_FILE);
        if torn {
            ctx.disk().truncate_torn_records(LOG_FILE);
        }
        for record in records {
            match record {
                Record::Decision {
                    gtrid,
                    commit,
                    participants,
                } => {
                    let decision = Decision {
                        commit,
                        participants: participants.into_iter().map(|s| (s, false)).collect(),
                        heuristic: None,
                        recovered: true,
                    };
                    self.decisions.insert(gtrid, decision);
                }
                Record::Heuristic { gtrid, heuristic } => {
                    if let Some(decision) = self.decisions.get_mut(&gtrid) {
                        decision.heuristic = Some(heuristic);
                    }
                }
                Record::End { gtrid } => {
                    self.decisions.remove(&gtrid);
                }
            }
        }
        if !self.decisions.is_empty() {
            ctx.note(format!(
                "{} decisions read back from the log",
                self.decisions.len()
            ));
        }
    }

    pub(super) fn append<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, record: &Record, sync: bool) {
        ctx.disk().append_record(LOG_FILE, record);
        if sync {
            ctx.disk().sync();
        }
    }

    /// Logs that `gtrid`'s phase two is over; now and then rewrites the log with only
    /// the open decisions (as a whole-file replace, so a crash keeps one or the other).
    pub(super) fn end<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, gtrid: Gtrid) {
        self.decisions.remove(&gtrid);
        self.ends += 1;
        if self.ends < ENDS_BEFORE_REWRITE {
            self.append(ctx, &Record::End { gtrid }, false);
            return;
        }
        self.ends = 0;
        let mut bytes = Vec::new();
        for (gtrid, decision) in &self.decisions {
            let record = Record::Decision {
                gtrid: *gtrid,
                commit: decision.commit,
                participants: decision.participants.iter().map(|(s, _)| *s).collect(),
            };
            bytes.extend(crate::disk::frame_record(&record));
            if let Some(heuristic) = decision.heuristic {
                let record = Record::Heuristic {
                    gtrid: *gtrid,
                    heuristic,
                };
                bytes.extend(crate::disk::frame_record(&record));
            }
        }
        ctx.disk().write(LOG_FILE, &bytes);
        ctx.disk().sync();
    }
}
