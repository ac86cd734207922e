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
//! - `registry.single-system-image`: a client never sees a state older than one it has
//!   seen, across reconnections to other servers (ZooKeeper's guarantee).
//! - `registry.staleness`: never fails; counts reads served from a state older than the
//!   latest committed change of that path (stats, and samples per client for charts).
//! - `lock.fenced`: the resource accepts writes in fencing-token order, so two lock
//!   holders never interleave their critical sections.
//! - `registry.progress`: at the end a quorum serves under one established leader, and
//!   no live client has been stuck for longer than its bound.

use std::collections::{BTreeMap, BTreeSet};

use super::{ClientHost, Obs};
use crate::check::history::Operation;
use crate::check::linearizable::{self, Model, Verdict};
use crate::check::{HistoryEvent, OpType};
use crate::chunked::Chunked;
use crate::invariant::{EndState, Invariant};
use crate::node::{NodeId, Proto, Wraps};
use crate::proto::zab::{self, invariants::Chain, show_zxid, Zxid};

pub const ACKED_DURABLE: &str = "registry.acked-durable";
pub const EPHEMERALS: &str = "registry.ephemerals";
pub const LINEARIZABLE: &str = "registry.linearizable";
pub const SINGLE_SYSTEM_IMAGE: &str = "registry.single-system-image";
pub const STALENESS: &str = "registry.staleness";
pub const FENCED: &str = "lock.fenced";
pub const PROGRESS: &str = "registry.progress";

#[derive(Clone, Default)]
pub struct AckedDurable {
    chain: Chain,
    acked: BTreeSet<Zxid>,
}

impl<H: ClientHost + Proto<Obs: Wraps<zab::Obs>>> Invariant<H> for AckedDurable {
    fn name(&self) -> &'static str {
        ACKED_DURABLE
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        if let Some(Obs::Acked { zxid }) = Wraps::<Obs>::part(obs) {
            self.acked.insert(*zxid);
        }
        match Wraps::<zab::Obs>::part(obs) {
            None => {}
            Some(obs) => {
                if let Err(divergence) = self.chain.on_obs(node, obs) {
                    if let Some(lost) = divergence.lost.iter().find(|z| self.acked.contains(z)) {
                        return Err(format!(
                            "the acknowledged write {} is lost: {}",
                            show_zxid(*lost),
                            divergence.message
                        ));
                    }
                    // Not an acked write: `zab.agreement` reports it. This checker loses
                    // track of the server until its history matches the committed one
                    // again (a SNAP, a restart, a digest that agrees), rather than take
                    // everything before its next apply for lost.
                    self.chain.lose_track(node);
                }
            }
        }
        Ok(())
    }
}

/// The newest state each client has seen, for `registry.single-system-image`.
#[derive(Clone, Default)]
pub struct SingleSystemImage {
    seen: BTreeMap<NodeId, Zxid>,
}

impl<H: ClientHost> Invariant<H> for SingleSystemImage {
    fn name(&self) -> &'static str {
        SINGLE_SYSTEM_IMAGE
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let Some(Obs::Seen { zxid }) = Wraps::<Obs>::part(obs) else {
            return Ok(());
        };
        let newest = self.seen.entry(node).or_insert(0);
        if *zxid < *newest {
            return Err(format!(
                "client {node} was answered from the state at {} after it had seen {}: \
                 it went back in time",
                show_zxid(*zxid),
                show_zxid(*newest)
            ));
        }
        *newest = *zxid;
        Ok(())
    }

    /// A client that restarts is a new client: it remembers nothing it saw.
    fn on_crash(&mut self, node: NodeId) {
        self.seen.remove(&node);
    }
}

#[derive(Clone)]
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

impl<H: ClientHost> Invariant<H> for Ephemerals {
    fn name(&self) -> &'static str {
        EPHEMERALS
    }

    fn on_observation(&mut self, time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let Some(obs) = Wraps::<Obs>::part(obs) else {
            return Ok(());
        };
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

#[derive(Clone)]
pub struct Linearizable {
    /// The kv clients whose histories are checked (other nodes may record their own).
    clients: BTreeSet<NodeId>,
    /// Chunked like the run's own history: a copy of the run (a checkpoint) shares them.
    events: Chunked<HistoryEvent>,
    events_max: usize,
}

impl Linearizable {
    pub fn new(clients: Vec<NodeId>, events_max: usize) -> Self {
        Self {
            clients: clients.into_iter().collect(),
            events: Chunked::default(),
            events_max,
        }
    }
}

impl<H: ClientHost> Invariant<H> for Linearizable {
    fn name(&self) -> &'static str {
        LINEARIZABLE
    }

    fn on_history(
        &mut self,
        _time_ns: u64,
        node: NodeId,
        event: &HistoryEvent,
    ) -> Result<(), String> {
        if self.clients.contains(&node) && self.events.len() < self.events_max {
            self.events.push(event.clone());
        }
        Ok(())
    }

    fn at_end(&mut self, _end: &EndState) -> Result<(), String> {
        let operations: Vec<Operation> = crate::check::history::from_events(&self.events.to_vec())
            .map_err(|errors| {
                format!("the run's own history is malformed: {:?}", errors.first())
            })?;
        match linearizable::check(Model::Register, &operations) {
            Verdict::Linearizable => Ok(()),
            Verdict::NotLinearizable { key, failing, .. } => {
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

#[derive(Clone, Default)]
pub struct Staleness {
    last_change: BTreeMap<String, Zxid>,
    reads: BTreeMap<NodeId, (u64, u64)>,
    dirty: BTreeSet<NodeId>,
}

impl<H: ClientHost> Invariant<H> for Staleness {
    fn name(&self) -> &'static str {
        STALENESS
    }

    fn on_observation(&mut self, _time_ns: u64, _node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let Some(obs) = Wraps::<Obs>::part(obs) else {
            return Ok(());
        };
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

#[derive(Clone, Default)]
pub struct Fenced {
    last: Option<(u64, NodeId)>,
    accepted: u64,
    refused: u64,
}

impl<H: ClientHost> Invariant<H> for Fenced {
    fn name(&self) -> &'static str {
        FENCED
    }

    fn on_observation(&mut self, _time_ns: u64, _node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let Some(obs) = Wraps::<Obs>::part(obs) else {
            return Ok(());
        };
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

#[derive(Clone)]
pub struct Progress {
    servers: Vec<NodeId>,
    /// The workload clients whose history shows progress.
    clients: BTreeSet<NodeId>,
    stall_ns: u64,
    serving: BTreeMap<NodeId, Option<(NodeId, u32)>>,
    last_progress: BTreeMap<NodeId, u64>,
    finished: BTreeSet<NodeId>,
}

impl Progress {
    pub fn new(servers: Vec<NodeId>, clients: Vec<NodeId>, stall_ns: u64) -> Self {
        Self {
            servers,
            clients: clients.into_iter().collect(),
            stall_ns,
            serving: BTreeMap::new(),
            last_progress: BTreeMap::new(),
            finished: BTreeSet::new(),
        }
    }
}

impl<H: ClientHost + Proto<Obs: Wraps<zab::Obs>>> Invariant<H> for Progress {
    fn name(&self) -> &'static str {
        PROGRESS
    }

    fn on_history(
        &mut self,
        time_ns: u64,
        node: NodeId,
        event: &HistoryEvent,
    ) -> Result<(), String> {
        if self.clients.contains(&node) && event.kind != OpType::Invoke {
            self.last_progress.insert(node, time_ns);
        }
        Ok(())
    }

    fn on_observation(&mut self, time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        match Wraps::<zab::Obs>::part(obs) {
            Some(zab::Obs::Serving { leader, epoch }) => {
                self.serving.insert(node, Some((*leader, *epoch)));
            }
            Some(zab::Obs::Role { .. }) => {
                self.serving.insert(node, None);
            }
            _ => {}
        }
        let Some(obs) = Wraps::<Obs>::part(obs) else {
            return Ok(());
        };
        match obs {
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
