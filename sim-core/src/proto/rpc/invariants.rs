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
//! - `rpc.load` (a gauge): attempts per balancer and provider, calls, failures and call
//!   latency percentiles, for the balancer comparison and the run summary.

use std::collections::{BTreeMap, BTreeSet};

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

#[derive(Default)]
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
#[derive(Default)]
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

/// Calls open at a consumer, by when they must have ended.
#[derive(Default)]
pub struct CallsEnd {
    open: BTreeMap<(NodeId, CallId), u64>,
    /// (due, node, call), earliest first.
    due: BTreeSet<(u64, NodeId, CallId)>,
}

impl CallsEnd {
    /// A deadline of `delay_ns` set at `now_ns` on a clock that may run up to 10% slow
    /// (the scenario language's drift bound), plus a millisecond.
    fn due_at(now_ns: u64, delay_ns: u64) -> u64 {
        now_ns + delay_ns + delay_ns / 8 + 1_000_000
    }

    fn overdue(&self, now_ns: u64) -> Option<String> {
        let (due, node, call) = self.due.first()?;
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

    fn at_end(&mut self, end: &EndState) -> Result<(), String> {
        match self.overdue(end.time_ns) {
            Some(message) => Err(format!("no progress: {message}")),
            None => Ok(()),
        }
    }
}

#[derive(Default)]
pub struct FreshProviders {
    listed: BTreeMap<NodeId, Vec<NodeId>>,
}

impl<H: Host> Invariant<H> for FreshProviders {
    fn name(&self) -> &'static str {
        FRESH_PROVIDERS
    }

    fn on_observation(&mut self, _time_ns: u64, node: NodeId, obs: &H::Obs) -> Result<(), String> {
        match Wraps::<Obs>::part(obs) {
            Some(Obs::Listed { providers, .. }) => {
                self.listed.insert(node, providers.clone());
            }
            Some(Obs::Attempt { call, provider, .. }) => {
                let listed = self.listed.get(&node).is_some_and(|l| l.contains(provider));
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
        self.listed.remove(&node);
    }
}

/// Replays each consumer's round robin with its own state and compares.
#[derive(Default)]
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

/// Counts for the run summary: who served how much under which balancer, how calls
/// failed and how long they took, per service.
#[derive(Default)]
pub struct Load {
    attempts: BTreeMap<(&'static str, NodeId), u64>,
    /// Open calls: service, start time, idempotent.
    started: BTreeMap<(NodeId, CallId), (&'static str, u64, bool)>,
    attempts_total: u64,
    failed_idempotent: u64,
    latencies_us: BTreeMap<&'static str, Vec<u64>>,
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
                    .insert((node, *call), (service, time_ns, *idempotent));
            }
            Some(Obs::Done { call, error, empty }) => {
                self.calls += 1;
                self.swallowed += *empty as u64;
                let started = self.started.remove(&(node, *call));
                if let Some(error) = error {
                    self.failed += 1;
                    *self.failures.entry(error.kind()).or_insert(0) += 1;
                    self.failed_idempotent +=
                        started.is_some_and(|(_, _, idempotent)| idempotent) as u64;
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
