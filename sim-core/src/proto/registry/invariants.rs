//! What registry runs are checked for, from the observations servers and clients make.
//!
//! - `zab.one-leader-per-epoch`: no two servers establish the same epoch.
//! - `zab.agreement`: every server applies one global sequence of committed
//!   transactions: the same transactions in the same order, none skipped, none undone
//!   (checked by running digests, so a snapshot or restart is checked too).
//! - `registry.acked-durable`: a write a client was told succeeded is never lost.
//! - `registry.ephemerals`: after a session closes, no server lists its ephemeral nodes;
//!   the sessions of crashed clients do close within their bound.
//! - `registry.linearizable`: where the scenario promises linearizable reads, the
//!   client history is linearizable (per key, register model).
//! - `registry.staleness`: never fails; counts reads served from a state older than the
//!   latest committed change of that path (stats, and samples per client for charts).
//! - `lock.fenced`: the resource accepts writes in fencing-token order, so two lock
//!   holders never interleave their critical sections.
//! - `registry.progress`: at the end a quorum serves under one established leader, and
//!   no live client has been stuck for longer than its bound.

use std::collections::{BTreeMap, BTreeSet};

use super::apps::PROCESSES_PER_NODE;
use super::{Obs, RegistryProto};
use crate::check::history::Operation;
use crate::check::linearizable::{self, Model, Verdict};
use crate::check::{EndState, HistoryEvent, Invariant, OpType};
use crate::node::NodeId;
use crate::proto::zab::{self, show_zxid, Zxid};

/// The global committed sequence, as the first server to apply each transaction saw it,
/// and where each server stands in it.
#[derive(Default)]
struct Chain {
    entries: Vec<(Zxid, u64)>,
    index: BTreeMap<Zxid, usize>,
    position: BTreeMap<NodeId, Option<usize>>,
}

/// How a server's applied sequence left the global one.
struct Divergence {
    message: String,
    /// Global entries the server skipped or undid.
    lost: Vec<Zxid>,
}

impl Chain {
    fn on_obs(&mut self, node: NodeId, obs: &zab::Obs) -> Result<(), Divergence> {
        match *obs {
            zab::Obs::Loaded { zxid, digest } => self.on_loaded(node, zxid, digest),
            zab::Obs::Applied { zxid, digest } => self.on_applied(node, zxid, digest),
            zab::Obs::Truncated { to, applied } => {
                let lost = self.zxids_in(to, applied);
                Err(Divergence {
                    message: format!(
                        "server {node} truncated committed transactions after {} (it had applied up to {})",
                        show_zxid(to),
                        show_zxid(applied)
                    ),
                    lost,
                })
            }
            _ => Ok(()),
        }
    }

    fn zxids_in(&self, after: Zxid, up_to: Zxid) -> Vec<Zxid> {
        self.index
            .range(after + 1..=up_to)
            .map(|(z, _)| *z)
            .collect()
    }

    fn on_loaded(&mut self, node: NodeId, zxid: Zxid, digest: u64) -> Result<(), Divergence> {
        if zxid == 0 {
            self.position.insert(node, None);
            return Ok(());
        }
        let Some(&pos) = self.index.get(&zxid) else {
            return Err(Divergence {
                message: format!(
                    "server {node} loaded a state at {} that was never committed",
                    show_zxid(zxid)
                ),
                lost: Vec::new(),
            });
        };
        if self.entries[pos].1 != digest {
            return Err(Divergence {
                message: format!(
                    "server {node} loaded a state at {} with a different history",
                    show_zxid(zxid)
                ),
                lost: Vec::new(),
            });
        }
        self.position.insert(node, Some(pos));
        Ok(())
    }

    fn on_applied(&mut self, node: NodeId, zxid: Zxid, digest: u64) -> Result<(), Divergence> {
        let last = self.position.get(&node).copied().flatten();
        let expected = last.map_or(0, |p| p + 1);
        let after = last.map_or("the empty state".to_string(), |p| {
            show_zxid(self.entries[p].0)
        });
        let pos = match self.index.get(&zxid) {
            Some(&pos) => pos,
            None => {
                if expected != self.entries.len() {
                    let lost: Vec<Zxid> =
                        self.entries[expected..].iter().map(|(z, _)| *z).collect();
                    return Err(Divergence {
                        message: format!(
                            "server {node} applied {} after {after}, but {} was committed there first",
                            show_zxid(zxid),
                            show_zxid(lost[0])
                        ),
                        lost,
                    });
                }
                self.entries.push((zxid, digest));
                self.index.insert(zxid, expected);
                expected
            }
        };
        if pos != expected {
            let lost = if pos > expected {
                self.entries[expected..pos]
                    .iter()
                    .map(|(z, _)| *z)
                    .collect()
            } else {
                Vec::new()
            };
            return Err(Divergence {
                message: format!(
                    "server {node} applied {} out of order, after {after}",
                    show_zxid(zxid)
                ),
                lost,
            });
        }
        if self.entries[pos].1 != digest {
            return Err(Divergence {
                message: format!(
                    "server {node} applied {} with a history that differs from the committed one",
                    show_zxid(zxid)
                ),
                lost: vec![zxid],
            });
        }
        self.position.insert(node, Some(pos));
        Ok(())
    }
}

#[derive(Default)]
pub struct OneLeaderPerEpoch {
    chosen: BTreeMap<u32, NodeId>,
}

impl Invariant<RegistryProto> for OneLeaderPerEpoch {
    fn name(&self) -> &'static str {
        "zab.one-leader-per-epoch"
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &Obs) -> Result<(), String> {
        if let Obs::Zab(zab::Obs::EpochEstablished { epoch }) = obs {
            if let Some(other) = self.chosen.insert(*epoch, node) {
                if other != node {
                    return Err(format!(
                        "servers {other} and {node} both lead epoch {epoch}"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct Agreement {
    chain: Chain,
}

impl Invariant<RegistryProto> for Agreement {
    fn name(&self) -> &'static str {
        "zab.agreement"
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &Obs) -> Result<(), String> {
        match obs {
            Obs::Zab(obs) => self.chain.on_obs(node, obs).map_err(|d| d.message),
            _ => Ok(()),
        }
    }

    fn stats(&self) -> Vec<(String, u64)> {
        vec![("zab.committed".to_string(), self.chain.entries.len() as u64)]
    }
}

#[derive(Default)]
pub struct AckedDurable {
    chain: Chain,
    acked: BTreeSet<Zxid>,
}

impl Invariant<RegistryProto> for AckedDurable {
    fn name(&self) -> &'static str {
        "registry.acked-durable"
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &Obs) -> Result<(), String> {
        match obs {
            Obs::Acked { zxid } => {
                self.acked.insert(*zxid);
            }
            Obs::Zab(obs) => {
                if let Err(divergence) = self.chain.on_obs(node, obs) {
                    if let Some(lost) = divergence.lost.iter().find(|z| self.acked.contains(z)) {
                        return Err(format!(
                            "the acknowledged write {} is lost: {}",
                            show_zxid(*lost),
                            divergence.message
                        ));
                    }
                    // Not an acked write: `zab.agreement` reports it. Follow the server on.
                    self.chain.position.remove(&node);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

pub struct Ephemerals {
    expiry_bound_ns: u64,
    /// The latest observation's time: crashes come without one.
    now_ns: u64,
    /// Session -> (client, when it opened).
    session_client: BTreeMap<u64, (NodeId, u64)>,
    closed_at: BTreeMap<u64, Zxid>,
    owner: BTreeMap<String, u64>,
    crashed_at: BTreeMap<NodeId, u64>,
}

impl Ephemerals {
    /// `expiry_bound_ns`: how long after its client crashes a session must be closed
    /// (its timeout plus the time to elect a leader and commit the close).
    pub fn new(expiry_bound_ns: u64) -> Self {
        Self {
            expiry_bound_ns,
            now_ns: 0,
            session_client: BTreeMap::new(),
            closed_at: BTreeMap::new(),
            owner: BTreeMap::new(),
            crashed_at: BTreeMap::new(),
        }
    }
}

impl Invariant<RegistryProto> for Ephemerals {
    fn name(&self) -> &'static str {
        "registry.ephemerals"
    }

    fn on_observation(&mut self, time_ns: u64, node: NodeId, obs: &Obs) -> Result<(), String> {
        self.now_ns = time_ns;
        match obs {
            Obs::SessionOpened {
                session, client, ..
            } => {
                self.session_client
                    .entry(*session)
                    .or_insert((*client, time_ns));
            }
            Obs::SessionClosed { session, zxid } => {
                let at = self.closed_at.entry(*session).or_insert(*zxid);
                *at = (*at).min(*zxid);
            }
            Obs::EphemeralCreated { path, session } => {
                self.owner.insert(path.clone(), *session);
            }
            Obs::Children {
                path,
                zxid,
                children,
            } => {
                for child in children {
                    let full = if path == "/" {
                        format!("/{child}")
                    } else {
                        format!("{path}/{child}")
                    };
                    let Some(session) = self.owner.get(&full) else {
                        continue;
                    };
                    if let Some(closed) = self.closed_at.get(session).filter(|c| **c <= *zxid) {
                        return Err(format!(
                            "server {node} listed {full} at {}, but its session {session:#x} closed at {} (t={time_ns})",
                            show_zxid(*zxid),
                            show_zxid(*closed)
                        ));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_crash(&mut self, node: NodeId) {
        self.crashed_at.insert(node, self.now_ns);
    }

    fn at_end(&mut self, end: &EndState) -> Result<(), String> {
        for (session, (client, opened_ns)) in &self.session_client {
            let Some(crashed_ns) = self.crashed_at.get(client) else {
                continue;
            };
            let due = *opened_ns <= *crashed_ns && end.time_ns >= crashed_ns + self.expiry_bound_ns;
            if due && !self.closed_at.contains_key(session) {
                return Err(format!(
                    "session {session:#x} of client {client}, which crashed at {crashed_ns} ns, never \
                     expired; its ephemeral nodes linger"
                ));
            }
        }
        Ok(())
    }
}

pub struct Linearizable {
    events: Vec<HistoryEvent>,
    events_max: usize,
}

impl Linearizable {
    pub fn new(events_max: usize) -> Self {
        Self {
            events: Vec::new(),
            events_max,
        }
    }
}

impl Invariant<RegistryProto> for Linearizable {
    fn name(&self) -> &'static str {
        "registry.linearizable"
    }

    fn on_observation(&mut self, time_ns: u64, _node: NodeId, obs: &Obs) -> Result<(), String> {
        if let Obs::History(event) = obs {
            if self.events.len() < self.events_max {
                let mut event = event.clone();
                event.time = Some(time_ns);
                self.events.push(event);
            }
        }
        Ok(())
    }

    fn at_end(&mut self, _end: &EndState) -> Result<(), String> {
        let operations: Vec<Operation> =
            crate::check::history::from_events(&self.events).map_err(|errors| {
                format!("the run's own history is malformed: {:?}", errors.first())
            })?;
        match linearizable::check(Model::Register, &operations) {
            Verdict::Linearizable => Ok(()),
            Verdict::NotLinearizable { key, failing } => {
                let ops: Vec<String> = failing
                    .iter()
                    .map(|op| {
                        format!(
                            "process {} {:?} {} -> {} [{}..{}]",
                            op.process,
                            op.f,
                            op.input,
                            op.output.clone().unwrap_or(serde_json::Value::Null),
                            op.invoke_time,
                            if op.return_time == u64::MAX {
                                "never".to_string()
                            } else {
                                op.return_time.to_string()
                            }
                        )
                    })
                    .collect();
                Err(format!(
                    "the client history is not linearizable on key {}: {}",
                    key.unwrap_or_default(),
                    ops.join("; ")
                ))
            }
            Verdict::Unknown { reason, .. } => Err(format!("linearizability unknown: {reason}")),
        }
    }
}

#[derive(Default)]
pub struct Staleness {
    last_change: BTreeMap<String, Zxid>,
    reads: BTreeMap<NodeId, (u64, u64)>,
    dirty: BTreeSet<NodeId>,
}

impl Invariant<RegistryProto> for Staleness {
    fn name(&self) -> &'static str {
        "registry.staleness"
    }

    fn on_observation(&mut self, _time_ns: u64, _node: NodeId, obs: &Obs) -> Result<(), String> {
        match obs {
            Obs::Changed { zxid, paths } => {
                for path in paths {
                    let last = self.last_change.entry(path.clone()).or_insert(0);
                    *last = (*last).max(*zxid);
                }
            }
            Obs::Read { client, path, zxid } => {
                let stale = self.last_change.get(path).is_some_and(|last| last > zxid);
                let counts = self.reads.entry(*client).or_default();
                counts.0 += 1;
                counts.1 += stale as u64;
                self.dirty.insert(*client);
            }
            _ => {}
        }
        Ok(())
    }

    fn stats(&self) -> Vec<(String, u64)> {
        let reads = self.reads.values().map(|c| c.0).sum();
        let stale = self.reads.values().map(|c| c.1).sum();
        vec![
            ("registry.reads".to_string(), reads),
            ("registry.stale-reads".to_string(), stale),
        ]
    }

    fn take_samples(&mut self, out: &mut Vec<(NodeId, &'static str, u64)>) {
        for client in std::mem::take(&mut self.dirty) {
            let (reads, stale) = self.reads[&client];
            out.push((client, "reads", reads));
            out.push((client, "stale_reads", stale));
        }
    }
}

#[derive(Default)]
pub struct Fenced {
    last: Option<(u64, NodeId)>,
    accepted: u64,
    refused: u64,
}

impl Invariant<RegistryProto> for Fenced {
    fn name(&self) -> &'static str {
        "lock.fenced"
    }

    fn on_observation(&mut self, _time_ns: u64, _node: NodeId, obs: &Obs) -> Result<(), String> {
        let Obs::ResourceWrite {
            client,
            token,
            accepted,
        } = obs
        else {
            return Ok(());
        };
        if !accepted {
            self.refused += 1;
            return Ok(());
        }
        self.accepted += 1;
        if let Some((last, holder)) = self.last {
            if *token < last {
                return Err(format!(
                    "client {client} wrote with lock token {token} after client {holder} wrote with \
                     token {last}: two clients held the lock at once"
                ));
            }
        }
        self.last = Some((*token, *client));
        Ok(())
    }

    fn stats(&self) -> Vec<(String, u64)> {
        vec![
            ("lock.writes-accepted".to_string(), self.accepted),
            ("lock.writes-fenced-off".to_string(), self.refused),
        ]
    }
}

pub struct Progress {
    servers: Vec<NodeId>,
    stall_ns: u64,
    serving: BTreeMap<NodeId, Option<(NodeId, u32)>>,
    last_progress: BTreeMap<NodeId, u64>,
    finished: BTreeSet<NodeId>,
}

impl Progress {
    pub fn new(servers: Vec<NodeId>, stall_ns: u64) -> Self {
        Self {
            servers,
            stall_ns,
            serving: BTreeMap::new(),
            last_progress: BTreeMap::new(),
            finished: BTreeSet::new(),
        }
    }
}

impl Invariant<RegistryProto> for Progress {
    fn name(&self) -> &'static str {
        "registry.progress"
    }

    fn on_observation(&mut self, time_ns: u64, node: NodeId, obs: &Obs) -> Result<(), String> {
        match obs {
            Obs::Zab(zab::Obs::Serving { leader, epoch }) => {
                self.serving.insert(node, Some((*leader, *epoch)));
            }
            Obs::Zab(zab::Obs::Role { .. }) => {
                self.serving.insert(node, None);
            }
            Obs::History(event) if event.kind != OpType::Invoke => {
                let client = (event.process / PROCESSES_PER_NODE) as NodeId;
                self.last_progress.insert(client, time_ns);
            }
            Obs::ResourceWrite { client, .. } => {
                self.last_progress.insert(*client, time_ns);
            }
            Obs::Finished => {
                self.finished.insert(node);
            }
            _ => {}
        }
        Ok(())
    }

    fn on_crash(&mut self, node: NodeId) {
        self.serving.insert(node, None);
    }

    fn at_end(&mut self, end: &EndState) -> Result<(), String> {
        let quorum = self.servers.len() / 2 + 1;
        let mut groups: BTreeMap<(NodeId, u32), usize> = BTreeMap::new();
        for server in &self.servers {
            if let Some(Some(group)) = self.serving.get(server) {
                if end.up[*server as usize] {
                    *groups.entry(*group).or_default() += 1;
                }
            }
        }
        if !groups.values().any(|count| *count >= quorum) {
            return Err(format!(
                "no progress: no quorum of servers serves under one established leader at the end ({groups:?})"
            ));
        }
        for (client, last) in &self.last_progress {
            let up = end.up.get(*client as usize).copied().unwrap_or(false);
            if up
                && !self.finished.contains(client)
                && end.time_ns.saturating_sub(*last) > self.stall_ns
            {
                return Err(format!(
                    "no progress: client {client} completed nothing in the last {} ms",
                    (end.time_ns - last) / 1_000_000
                ));
            }
        }
        Ok(())
    }
}
