//! What RPC runs are checked for, from what consumers and providers observe.
//!
//! - `rpc.answered-once`: a consumer answers each call to its application once.
//! - `rpc.at-most-once`: a call that is not idempotent has its side effect applied by at
//!   most one provider, once, whatever the retries.
//! - `rpc.calls-end`: every call ends (an answer, an error, a timeout) by its deadline
//!   (allowing for the consumer's clock drift); a call of a consumer that crashed is
//!   excused.
//! - `rpc.fresh-providers`: a consumer only sends to providers its latest registry listing
//!   names (a provider the registry dropped may be in flight, never chosen again).
//! - `rpc.round-robin`: a round-robin consumer's choices are the smooth weighted round
//!   robin's over the providers and weights it saw, call after call.
//! - `rpc.gateway-guards`: a call a gateway's caller made without a valid credential is
//!   never served by anyone.
//! - `rpc.rate-limit`: a gateway admits a caller's calls only as its token bucket allows,
//!   replayed on the gateway's own clock readings.
//! - `rpc.load` (a gauge): attempts per balancer and provider, calls, failures and call
//!   latency percentiles, for the balancer comparison and the run summary.

use std::collections::{BTreeMap, BTreeSet};

use super::gateway::{Bucket, RateLimit};
use super::lb::RoundRobin;
use super::{CallId, Host, Obs};
use crate::invariant::{EndState, Invariant};
use crate::node::{NodeId, Wraps};

pub const ANSWERED_ONCE: &str = "rpc.answered-once";
pub const AT_MOST_ONCE: &str = "rpc.at-most-once";
pub const CALLS_END: &str = "rpc.calls-end";
pub const FRESH_PROVIDERS: &str = "rpc.fresh-providers";
pub const ROUND_ROBIN: &str = "rpc.round-robin";
pub const LOAD: &str = "rpc.load";
pub const GATEWAY_GUARDS: &str = "rpc.gateway-guards";
pub const RATE_LIMIT: &str = "rpc.rate-limit";

#[derive(Clone, Default)]
pub struct AnsweredOnce {
    answered: BTreeSet<(NodeId, CallId)>,
}

impl<H: Host> Invariant<H> for AnsweredOnce {
    fn name(&self) -> &'static str {
        ANSWERED_ONCE
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        if let Some(Obs::Done { call, .. }) = Wraps::<Obs>::part(obs) {
            if !self.answered.insert((node, *call)) {
                return Err(format!("consumer {node} answered call {call:#x} twice"));
            }
        }
        Ok(())
    }
}

/// Calls meant to reach several providers (forking, broadcast) may be applied once by
/// each; any other call once in all.
#[derive(Clone, Default)]
pub struct AtMostOnce {
    fanout: BTreeSet<(NodeId, CallId)>,
    applied: BTreeMap<(NodeId, CallId), Vec<NodeId>>,
}

impl<H: Host> Invariant<H> for AtMostOnce {
    fn name(&self) -> &'static str {
        AT_MOST_ONCE
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        match Wraps::<Obs>::part(obs) {
            Some(Obs::Invoked {
                call, fanout: true, ..
            }) => {
                self.fanout.insert((node, *call));
            }
            Some(Obs::Applied { consumer, call }) => {
                let key = (*consumer, *call);
                let by = self.applied.entry(key).or_default();
                let again = if self.fanout.contains(&key) {
                    by.iter().find(|p| **p == node)
                } else {
                    by.first()
                };
                if let Some(first) = again {
                    return Err(format!(
                        "call {call:#x} of consumer {consumer}, not idempotent, was applied by \
                         provider {first} and again by provider {node}"
                    ));
                }
                by.push(node);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Calls open at a consumer, by when they must have ended. A paused consumer's calls are
/// not due while it is paused (it keeps their deadlines, and its application is paused
/// with it); their due times move on by the pause when it resumes.
#[derive(Clone, Default)]
pub struct CallsEnd {
    open: BTreeMap<(NodeId, CallId), u64>,
    /// (due, node, call), earliest first.
    due: BTreeSet<(u64, NodeId, CallId)>,
    /// Paused nodes, since when.
    paused: BTreeMap<NodeId, u64>,
}

impl CallsEnd {
    /// A deadline of `delay_ns` set at `now_ns` on a clock that may run up to 10% slow
    /// (the scenario language's drift bound), plus a millisecond.
    fn due_at(now_ns: u64, delay_ns: u64) -> u64 {
        now_ns + delay_ns + delay_ns / 8 + 1_000_000
    }

    fn overdue(&self, now_ns: u64) -> Option<String> {
        let (due, node, call) = self
            .due
            .iter()
            .take_while(|(due, _, _)| *due < now_ns)
            .find(|(_, node, _)| !self.paused.contains_key(node))?;
        (*due < now_ns).then(|| {
            format!(
                "call {call:#x} of consumer {node} has not ended {} ms after its deadline",
                (now_ns - due) / 1_000_000
            )
        })
    }
}

impl<H: Host> Invariant<H> for CallsEnd {
    fn name(&self) -> &'static str {
        CALLS_END
    }

    fn on_observation(&mut self, time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        // First: a late answer must not excuse itself.
        if let Some(message) = self.overdue(time_ns) {
            return Err(message);
        }
        match Wraps::<Obs>::part(obs) {
            Some(Obs::Invoked {
                call, deadline_ns, ..
            }) => {
                let due = Self::due_at(time_ns, *deadline_ns);
                self.open.insert((node, *call), due);
                self.due.insert((due, node, *call));
            }
            Some(Obs::Done { call, .. }) => {
                if let Some(due) = self.open.remove(&(node, *call)) {
                    self.due.remove(&(due, node, *call));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_crash(&mut self, node: NodeId) {
        self.paused.remove(&node);
        let gone: Vec<(NodeId, CallId)> = self
            .open
            .keys()
            .filter(|(n, _)| *n == node)
            .copied()
            .collect();
        for key in gone {
            let due = self.open.remove(&key).expect("listed");
            self.due.remove(&(due, key.0, key.1));
        }
    }

    fn on_pause(&mut self, node: NodeId, time_ns: u64) {
        self.paused.insert(node, time_ns);
    }

    fn on_resume(&mut self, node: NodeId, time_ns: u64) {
        let Some(since) = self.paused.remove(&node) else {
            return;
        };
        let pause = time_ns.saturating_sub(since);
        for ((n, call), due) in self.open.iter_mut().filter(|((n, _), _)| *n == node) {
            self.due.remove(&(*due, *n, *call));
            *due += pause;
            self.due.insert((*due, *n, *call));
        }
    }

    fn at_end(&mut self, end: &EndState) -> Result<(), String> {
        match self.overdue(end.time_ns) {
            Some(message) => Err(format!("no progress: {message}")),
            None => Ok(()),
        }
    }
}

/// The latest listing of each consumer, by node and the service it consumes (a node may
/// consume several: the gateway, an orders provider).
#[derive(Clone, Default)]
pub struct FreshProviders {
    listed: BTreeMap<(NodeId, String), Vec<NodeId>>,
}

impl<H: Host> Invariant<H> for FreshProviders {
    fn name(&self) -> &'static str {
        FRESH_PROVIDERS
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        match Wraps::<Obs>::part(obs) {
            Some(Obs::Listed { service, providers }) => {
                self.listed
                    .insert((node, service.clone()), providers.clone());
            }
            Some(Obs::Attempt {
                call,
                service,
                provider,
                ..
            }) => {
                let key = (node, service.clone());
                let listed = self.listed.get(&key).is_some_and(|l| l.contains(provider));
                if !listed {
                    return Err(format!(
                        "consumer {node} sent call {call:#x} to provider {provider}, which its \
                         latest registry listing does not name"
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_crash(&mut self, node: NodeId) {
        self.listed.retain(|(n, _), _| *n != node);
    }
}

/// Replays each consumer's round robin with its own state and compares.
#[derive(Clone, Default)]
pub struct RoundRobinReplay {
    states: BTreeMap<(NodeId, String), RoundRobin>,
}

impl<H: Host> Invariant<H> for RoundRobinReplay {
    fn name(&self) -> &'static str {
        ROUND_ROBIN
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let Some(Obs::RoundRobin {
            key,
            now_ms,
            providers,
            chosen,
        }) = Wraps::<Obs>::part(obs)
        else {
            return Ok(());
        };
        let state = self.states.entry((node, key.clone())).or_default();
        let borrowed: Vec<(&str, u32)> = providers.iter().map(|(i, w)| (i.as_str(), *w)).collect();
        let expected = state.select(*now_ms, &borrowed);
        if expected != Some(*chosen) {
            return Err(format!(
                "consumer {node}'s round robin for {key} chose {} where the smooth weighted \
                 round robin chooses {}",
                providers[*chosen].0,
                expected.map_or("nothing".to_string(), |i| providers[i].0.clone())
            ));
        }
        Ok(())
    }

    fn on_crash(&mut self, node: NodeId) {
        self.states.retain(|(n, _), _| *n != node);
    }
}

/// Remembers the traces that gateway callers started without a valid credential.
#[derive(Clone)]
pub struct GatewayGuards {
    callers: BTreeSet<NodeId>,
    accepted: BTreeSet<String>,
    /// Trace -> the caller that started it without a valid credential.
    refused: BTreeMap<u64, NodeId>,
}

impl GatewayGuards {
    /// `callers` are the nodes that call through a gateway, `accepted` its credentials.
    pub fn new(
        callers: impl IntoIterator<Item = NodeId>,
        accepted: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            callers: callers.into_iter().collect(),
            accepted: accepted.into_iter().collect(),
            refused: BTreeMap::new(),
        }
    }
}

impl<H: Host> Invariant<H> for GatewayGuards {
    fn name(&self) -> &'static str {
        GATEWAY_GUARDS
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        match Wraps::<Obs>::part(obs) {
            Some(Obs::Invoked {
                trace_id,
                root: true,
                token,
                ..
            }) if self.callers.contains(&node)
                && !token.as_ref().is_some_and(|t| self.accepted.contains(t)) =>
            {
                self.refused.insert(*trace_id, node);
            }
            Some(Obs::Served {
                consumer, trace_id, ..
            }) => {
                if let Some(caller) = self.refused.get(trace_id) {
                    return Err(format!(
                        "node {node} served trace {trace_id:016x} (from {consumer}), which caller \
                         {caller} started without a valid credential"
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Replays each gateway's token buckets on the clock readings it reports.
#[derive(Clone)]
pub struct RateLimitReplay {
    limit: RateLimit,
    buckets: BTreeMap<(NodeId, String), Bucket>,
}

impl RateLimitReplay {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: BTreeMap::new(),
        }
    }
}

impl<H: Host> Invariant<H> for RateLimitReplay {
    fn name(&self) -> &'static str {
        RATE_LIMIT
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        let (caller, clock_ns, admitted) = match Wraps::<Obs>::part(obs) {
            Some(Obs::Admitted {
                caller, clock_ns, ..
            }) => (caller, *clock_ns, true),
            Some(Obs::Limited { caller, clock_ns }) => (caller, *clock_ns, false),
            _ => return Ok(()),
        };
        let limit = self.limit;
        let bucket = self
            .buckets
            .entry((node, caller.clone()))
            .or_insert_with(|| limit.bucket(clock_ns));
        let allowed = limit.take(bucket, clock_ns, true);
        if admitted && !allowed {
            return Err(format!(
                "gateway {node} admitted a call of {caller} beyond its rate limit ({} per second, \
                 burst {})",
                limit.rate_per_s, limit.burst
            ));
        }
        Ok(())
    }

    fn on_crash(&mut self, node: NodeId) {
        self.buckets.retain(|(n, _), _| *n != node);
    }
}

/// Counts for the run summary: who served how much under which balancer, how calls
/// failed and how long they took, per service.
#[derive(Clone, Default)]
pub struct Load {
    attempts: BTreeMap<(&'static str, NodeId), u64>,
    /// Open calls: service, start time, idempotent.
    started: BTreeMap<(NodeId, CallId), (String, u64, bool)>,
    attempts_total: u64,
    failed_idempotent: u64,
    latencies_us: BTreeMap<String, Vec<u64>>,
    failures: BTreeMap<&'static str, u64>,
    calls: u64,
    failed: u64,
    swallowed: u64,
}

/// Latencies kept per service for the percentiles at most (the rest are counted, not
/// kept).
const LATENCIES_MAX: usize = 1_000_000;

/// The value at `per_mille` of `sorted` (nearest rank).
fn percentile(sorted: &[u64], per_mille: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[(sorted.len() * per_mille / 1000).min(sorted.len() - 1)]
}

impl<H: Host> Invariant<H> for Load {
    fn name(&self) -> &'static str {
        LOAD
    }

    fn on_observation(&mut self, time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        match Wraps::<Obs>::part(obs) {
            Some(Obs::Attempt {
                provider, balancer, ..
            }) => {
                self.attempts_total += 1;
                *self.attempts.entry((balancer, *provider)).or_insert(0) += 1;
            }
            Some(Obs::Invoked {
                call,
                service,
                idempotent,
                ..
            }) => {
                self.started
                    .insert((node, *call), (service.clone(), time_ns, *idempotent));
            }
            Some(Obs::Done { call, error, empty }) => {
                self.calls += 1;
                self.swallowed += *empty as u64;
                let started = self.started.remove(&(node, *call));
                if let Some(error) = error {
                    self.failed += 1;
                    *self.failures.entry(error.kind()).or_insert(0) += 1;
                    self.failed_idempotent += started
                        .as_ref()
                        .is_some_and(|(_, _, idempotent)| *idempotent)
                        as u64;
                }
                if let Some((service, start, _)) = started {
                    let latencies = self.latencies_us.entry(service).or_default();
                    if latencies.len() < LATENCIES_MAX {
                        latencies.push((time_ns - start) / 1_000);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_crash(&mut self, node: NodeId) {
        self.started.retain(|(n, _), _| *n != node);
    }

    fn stats(&self) -> Vec<(String, u64)> {
        let mut stats = vec![
            ("rpc.calls".to_string(), self.calls),
            ("rpc.failed".to_string(), self.failed),
            ("rpc.failed-idempotent".to_string(), self.failed_idempotent),
            ("rpc.swallowed".to_string(), self.swallowed),
            ("rpc.attempts".to_string(), self.attempts_total),
        ];
        for (kind, count) in &self.failures {
            stats.push((format!("rpc.failed.{kind}"), *count));
        }
        for (service, latencies) in &self.latencies_us {
            let mut sorted = latencies.clone();
            sorted.sort_unstable();
            for (name, per_mille) in [("p50", 500), ("p90", 900), ("p99", 990)] {
                stats.push((
                    format!("rpc.latency-us.{service}.{name}"),
                    percentile(&sorted, per_mille),
                ));
            }
        }
        for ((balancer, provider), count) in &self.attempts {
            stats.push((format!("rpc.load.{balancer}.n{provider}"), *count));
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 500), 51);
        assert_eq!(percentile(&sorted, 990), 100);
        assert_eq!(percentile(&[7], 900), 7);
        assert_eq!(percentile(&[], 500), 0);
    }
}
