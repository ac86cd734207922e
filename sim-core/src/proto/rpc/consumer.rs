//! The consumer side of one service, as a component: it discovers the service's
//! providers through its own registry session (a watch on the providers directory, a
//! cache that stays while the registry is unreachable, a provider dropped when its node
//! goes), chooses among them with a Dubbo load balancer and makes each call under a
//! cluster mode (`cluster::Policy`), over one connection per provider, with an attempt
//! timeout and an overall deadline. The application calls `invoke` and hears `Done`.
//!
//! Dubbo's rules kept: a provider list of one is used as is; a provider already tried by
//! this call is avoided by choosing again among the others (a second balancer call, as
//! `reselect`); failover re-lists before each retry; business errors are never retried;
//! forking answers with the first success; broadcast calls every provider in turn. It
//! never decides what a call means; `apps.rs` does.

use std::collections::{BTreeMap, VecDeque};

use rand::Rng;

use super::bugs::{
    FAILOVER_RETRIES_WRITES, FORKING_ANSWERS_EACH, IGNORES_REMOVALS, NO_DEADLINE,
    ROUND_ROBIN_FORGETS,
};
use super::cluster::{Balancer, Mode, Policy};
use super::codec::{Answer, Request};
use super::lb::{self, ConsistentHashRing, RoundRobin};
use super::spans::{self, SpanContext};
use super::{nginx, url, CallId, Frame, Host, Obs, ProviderInfo, RpcError, Timer};
use crate::node::{Ctx, NodeId, TimerId};

/// Calls in progress at most; `invoke` refuses more.
pub const CALLS_MAX: usize = 10_000;

/// Attempt ids carry their consumer's index above this bit, call ids at this bit (above
/// them, the consumer's life), so a node's runtime routes answers and timers.
const ATTEMPT_SHIFT: u32 = 48;
const CALL_SHIFT: u32 = 32;

/// What the consumer tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Done {
        call: CallId,
        result: Result<Answer, RpcError>,
    },
}

#[derive(Clone, Debug)]
struct Attempt {
    call: CallId,
    provider: NodeId,
    span: SpanContext,
    sent_ns: u64,
    timer: Option<TimerId>,
}

#[derive(Clone, Debug)]
struct CallState {
    request: Request,
    trace_id: u64,
    deadline: Option<TimerId>,
    /// Providers this call has tried, in order (failover avoids them).
    invoked: Vec<NodeId>,
    in_flight: Vec<u64>,
    answered: bool,
    failures: u32,
    /// Forking: how many forks went out. Broadcast: the providers still to call.
    forks: u32,
    queue: VecDeque<NodeId>,
    last_error: Option<RpcError>,
    last_value: Option<Vec<u8>>,
    /// Failback: background retries left, and whether one is pending.
    failback_left: u32,
    failback_timer: Option<TimerId>,
    /// Failback answered this call empty and retries it in the background (a call
    /// answered any other way, say by its deadline, is never retried).
    failing_back: bool,
}

/// A provider's response-time window (shortest response).
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    succeeded: u64,
    elapsed_ns: u64,
}

#[derive(Clone)]
pub struct Consumer {
    service: String,
    /// What this consumer is called in traces (its application's name).
    local: String,
    policy: Policy,
    /// Its place among its node's consumers: call and attempt ids carry it.
    index: u8,
    /// The provider nodes of the latest listing (None before the first).
    listed: Option<Vec<NodeId>>,
    /// The cached providers, by node id (a stable order every balancer depends on).
    providers: Vec<ProviderInfo>,
    /// Attempts to send, for the host (`take_outbox`).
    outbox: Vec<(NodeId, u64, Frame)>,
    round_robin: BTreeMap<String, RoundRobin>,
    /// nginx's current weights per provider (the gateway's balancers).
    nginx: BTreeMap<NodeId, i64>,
    /// The consistent-hash ring and the addresses it was built from.
    ring: Option<(Vec<String>, ConsistentHashRing)>,
    actives: BTreeMap<NodeId, u32>,
    windows: BTreeMap<NodeId, Window>,
    window_start_ns: u64,
    calls: BTreeMap<CallId, CallState>,
    attempts: BTreeMap<u64, Attempt>,
    call_next: u64,
    attempt_next: u64,
}

impl Consumer {
    /// A consumer of `service`; its host (`runtime::Runtime`) gives it listings, sends its
    /// frames and hands it their answers.
    pub fn new(service: &str, policy: Policy) -> Self {
        Self {
            service: service.to_string(),
            local: "consumer".to_string(),
            policy,
            index: 0,
            listed: None,
            providers: Vec::new(),
            outbox: Vec::new(),
            round_robin: BTreeMap::new(),
            nginx: BTreeMap::new(),
            ring: None,
            actives: BTreeMap::new(),
            windows: BTreeMap::new(),
            window_start_ns: 0,
            calls: BTreeMap::new(),
            attempts: BTreeMap::new(),
            call_next: 0,
            attempt_next: 0,
        }
    }

    /// Names this consumer's application in traces.
    pub fn with_local(mut self, local: &str) -> Self {
        self.local = local.to_string();
        self
    }

    pub fn start<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.window_start_ns = ctx.monotonic_ns();
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The providers the consumer would call now.
    pub fn providers(&self) -> &[ProviderInfo] {
        &self.providers
    }

    pub fn calls_in_progress(&self) -> usize {
        self.calls.values().filter(|c| !c.answered).count()
    }

    /// Starts a call. An answer may come at once (no provider, arguments that do not
    /// encode): it is in the events returned.
    pub fn invoke<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        request: Request,
    ) -> (CallId, Vec<Event>) {
        self.call_next += 1;
        // Calls of every life of this consumer have their own ids.
        let call =
            (ctx.incarnation() as u64) << 40 | (self.index as u64) << CALL_SHIFT | self.call_next;
        let trace_id = match request.parent {
            Some(parent) => parent.trace_id,
            None => ctx.rng().random(),
        };
        ctx.observe(Obs::Invoked {
            call,
            trace_id,
            root: request.parent.is_none(),
            token: request.token.clone(),
            service: request.service.clone(),
            method: request.method.to_string(),
            idempotent: request.idempotent,
            fanout: matches!(self.policy.mode, Mode::Forking | Mode::Broadcast),
            deadline_ns: self.policy.deadline_ns,
        });
        let mut state = CallState {
            request,
            trace_id,
            deadline: None,
            invoked: Vec::new(),
            in_flight: Vec::new(),
            answered: false,
            failures: 0,
            forks: 0,
            queue: VecDeque::new(),
            last_error: None,
            last_value: None,
            failback_left: self.policy.retries,
            failback_timer: None,
            failing_back: false,
        };
        let mut events = Vec::new();
        let refused = match &state.request.args {
            Err(error) => Some(error.clone()),
            Ok(_) if self.calls.len() >= CALLS_MAX => {
                Some(RpcError::Service("consumer overloaded".into()))
            }
            Ok(_) if self.providers.is_empty() => Some(RpcError::NoProvider),
            Ok(_) => None,
        };
        if let Some(error) = refused {
            state.answered = true;
            ctx.observe(Obs::Done {
                call,
                error: Some(error.clone()),
                empty: false,
            });
            events.push(Event::Done {
                call,
                result: Err(error),
            });
            return (call, events);
        }
        // Bug zoo: `rpc.no-deadline` never arms the call's deadline.
        if !ctx.bug(NO_DEADLINE) {
            state.deadline = Some(ctx.set_timer(self.policy.deadline_ns, Timer::Deadline { call }));
        }
        self.calls.insert(call, state);
        match self.policy.mode {
            Mode::Forking => {
                let forks = if self.policy.forks == 0
                    || self.policy.forks as usize >= self.providers.len()
                {
                    self.providers.len()
                } else {
                    self.policy.forks as usize
                };
                let mut chosen: Vec<NodeId> = Vec::new();
                while chosen.len() < forks {
                    let Some(provider) = self.select(ctx, call, &chosen) else {
                        break;
                    };
                    if !chosen.contains(&provider) {
                        chosen.push(provider);
                    }
                }
                self.calls.get_mut(&call).expect("inserted").forks = chosen.len() as u32;
                for provider in chosen {
                    self.send(ctx, call, provider, &mut events);
                }
            }
            Mode::Broadcast => {
                let all: VecDeque<NodeId> = self.providers.iter().map(|p| p.node).collect();
                self.calls.get_mut(&call).expect("inserted").queue = all;
                self.broadcast_next(ctx, call, &mut events);
            }
            _ => {
                if let Some(provider) = self.select(ctx, call, &[]) {
                    self.send(ctx, call, provider, &mut events);
                }
            }
        }
        (call, events)
    }

    /// Runs one of this consumer's timers.
    pub fn on_timer<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, timer: Timer) -> Vec<Event> {
        let mut events = Vec::new();
        match timer {
            Timer::Attempt { id } => self.fail_attempt(ctx, id, RpcError::Timeout, &mut events),
            Timer::Deadline { call } => self.on_deadline(ctx, call, &mut events),
            Timer::Failback { call } => self.on_failback(ctx, call, &mut events),
            Timer::Serve { .. } | Timer::Next => {}
        }
        events
    }

    /// The registry's latest listing of this service's directory: the cache becomes it
    /// (Dubbo replaces its whole invoker list).
    pub fn refresh<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, names: &[String]) {
        let mut listed: Vec<ProviderInfo> = names
            .iter()
            .filter_map(|name| url::parse_node_name(name))
            .filter(|info| info.service == self.service)
            .collect();
        listed.sort_by_key(|info| info.node);
        listed.dedup_by_key(|info| info.node);
        let nodes: Vec<NodeId> = listed.iter().map(|p| p.node).collect();
        if self.listed.as_ref() == Some(&nodes) && self.providers == listed {
            return;
        }
        if self.listed.as_ref() != Some(&nodes) {
            // nginx starts its weights afresh when the upstream list changes (a reload).
            self.nginx.clear();
        }
        self.listed = Some(nodes.clone());
        ctx.observe(Obs::Listed {
            service: self.service.clone(),
            providers: nodes,
        });
        // Bug zoo: `rpc.ignores-removals` adds what the listing names, never removes.
        if ctx.bug(IGNORES_REMOVALS) {
            for info in listed {
                if !self.providers.iter().any(|p| p.node == info.node) {
                    self.providers.push(info);
                }
            }
            self.providers.sort_by_key(|info| info.node);
        } else {
            self.providers = listed;
        }
        // Broadcast calls in progress skip the providers that went (Dubbo snapshots the
        // list per call; calling a provider known to be gone only adds a failure).
        let providers = &self.providers;
        for state in self.calls.values_mut() {
            let before = state.queue.len();
            state
                .queue
                .retain(|node| providers.iter().any(|p| p.node == *node));
            if state.queue.len() < before {
                ctx.sometimes("rpc.broadcast-skips-a-removed-provider");
            }
        }
    }

    /// The connection to `peer` broke or closed: its attempts fail.
    pub fn on_broken<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, peer: NodeId) -> Vec<Event> {
        let mut out = Vec::new();
        let lost: Vec<u64> = self
            .attempts
            .iter()
            .filter(|(_, a)| a.provider == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            self.fail_attempt(ctx, id, RpcError::ConnectionBroken, &mut out);
        }
        out
    }

    /// Frames to send: (provider, attempt id, frame). The host sends them and reports
    /// those it could not send with `unsent`.
    pub fn take_outbox(&mut self) -> Vec<(NodeId, u64, Frame)> {
        std::mem::take(&mut self.outbox)
    }

    /// Attempt `id` could not be sent (no connection to its provider).
    pub fn unsent<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, id: u64) -> Vec<Event> {
        let mut out = Vec::new();
        self.fail_attempt(ctx, id, RpcError::ConnectionBroken, &mut out);
        out
    }

    /// Whether attempt `id` or call `call` is this consumer's (ids carry its index).
    pub fn owns_attempt(&self, id: u64) -> bool {
        id >> ATTEMPT_SHIFT == self.index as u64
    }

    pub fn owns_call(&self, call: CallId) -> bool {
        (call >> CALL_SHIFT) & 0xff == self.index as u64
    }

    /// The directory this consumer's providers register in.
    pub fn providers_dir(&self) -> String {
        url::providers_dir(&self.service)
    }

    pub fn set_index(&mut self, index: u8) {
        self.index = index;
    }

    // ---- Choosing a provider -------------------------------------------------------------

    /// Dubbo's `select`: the balancer's choice; one already tried by this call is avoided
    /// by choosing again among the untried (a second balancer call); when all were
    /// tried, among all. A list of one is used as is.
    fn select<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        call: CallId,
        avoid: &[NodeId],
    ) -> Option<NodeId> {
        if self.providers.is_empty() {
            return None;
        }
        if self.providers.len() == 1 {
            return Some(self.providers[0].node);
        }
        // Lent out while the balancer runs (it needs `&mut self`), not cloned per call.
        let all = std::mem::take(&mut self.providers);
        let mut chosen = self.choose(ctx, call, &all);
        if avoid.contains(&chosen) {
            let untried: Vec<ProviderInfo> = all
                .iter()
                .filter(|p| !avoid.contains(&p.node))
                .cloned()
                .collect();
            let candidates = if untried.is_empty() { &all } else { &untried };
            chosen = self.choose(ctx, call, candidates);
        }
        self.providers = all;
        Some(chosen)
    }

    /// One balancer call over `candidates` (two or more).
    fn choose<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        call: CallId,
        candidates: &[ProviderInfo],
    ) -> NodeId {
        let now_ms = ctx.now_ns() / 1_000_000;
        let weights: Vec<u32> = candidates
            .iter()
            .map(|p| {
                lb::warmup_weight(now_ms as i64 - p.timestamp_ms as i64, p.warmup_ms, p.weight)
            })
            .collect();
        let method = self.calls[&call].request.method.clone();
        let index = match self.policy.balancer {
            Balancer::Random => lb::random(&weights, &mut |n| ctx.rng().random_range(0..n)),
            Balancer::RoundRobin => {
                let key = format!("{}.{}", self.service, method);
                let providers: Vec<(String, u32)> = candidates
                    .iter()
                    .map(|p| p.identity())
                    .zip(weights.iter().copied())
                    .collect();
                let borrowed: Vec<(&str, u32)> =
                    providers.iter().map(|(i, w)| (i.as_str(), *w)).collect();
                // Bug zoo: `rpc.round-robin-forgets` starts from a fresh state each time.
                if ctx.bug(ROUND_ROBIN_FORGETS) {
                    self.round_robin.remove(&key);
                }
                let state = self.round_robin.entry(key.clone()).or_default();
                let index = state
                    .select(now_ms, &borrowed)
                    .expect("two or more providers");
                ctx.observe(Obs::RoundRobin {
                    key,
                    now_ms,
                    providers,
                    chosen: index,
                });
                index
            }
            Balancer::LeastActive => {
                let actives: Vec<u32> = candidates
                    .iter()
                    .map(|p| self.actives.get(&p.node).copied().unwrap_or(0))
                    .collect();
                lb::least_active(&actives, &weights, &mut |n| ctx.rng().random_range(0..n))
            }
            Balancer::ConsistentHash => {
                let addresses: Vec<String> = candidates.iter().map(ProviderInfo::address).collect();
                let stale = self
                    .ring
                    .as_ref()
                    .is_none_or(|(built, _)| *built != addresses);
                if stale {
                    let borrowed: Vec<&str> = addresses.iter().map(String::as_str).collect();
                    let ring = ConsistentHashRing::new(&borrowed, self.policy.hash_nodes);
                    self.ring = Some((addresses, ring));
                }
                let keys: Vec<&str> = self.calls[&call]
                    .request
                    .keys
                    .iter()
                    .map(String::as_str)
                    .collect();
                let key = lb::hash_key(&keys, &self.policy.hash_arguments);
                self.ring.as_ref().expect("built").1.select(&key)
            }
            Balancer::ShortestResponse => {
                let now = ctx.monotonic_ns();
                if now.saturating_sub(self.window_start_ns) > self.policy.slide_ns {
                    self.windows.clear();
                    self.window_start_ns = now;
                }
                let estimates: Vec<u64> = candidates
                    .iter()
                    .map(|p| {
                        let window = self.windows.get(&p.node).copied().unwrap_or_default();
                        let active = self.actives.get(&p.node).copied().unwrap_or(0);
                        lb::estimated_response(window.succeeded, window.elapsed_ns, active)
                    })
                    .collect();
                lb::shortest_response(&estimates, &weights, &mut |n| ctx.rng().random_range(0..n))
            }
            Balancer::NginxRoundRobin | Balancer::NginxLeastConn => {
                let mut current: Vec<i64> = candidates
                    .iter()
                    .map(|p| self.nginx.get(&p.node).copied().unwrap_or(0))
                    .collect();
                let index = if self.policy.balancer == Balancer::NginxRoundRobin {
                    nginx::round_robin(&weights, &mut current)
                } else {
                    let conns: Vec<u32> = candidates
                        .iter()
                        .map(|p| self.actives.get(&p.node).copied().unwrap_or(0))
                        .collect();
                    nginx::least_conn(&conns, &weights, &mut current)
                };
                for (provider, weight) in candidates.iter().zip(current) {
                    self.nginx.insert(provider.node, weight);
                }
                index
            }
        };
        candidates[index].node
    }

    // ---- Attempts ------------------------------------------------------------------------

    /// Sends one attempt of `call` to `provider`.
    fn send<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        call: CallId,
        provider: NodeId,
        events: &mut Vec<Event>,
    ) {
        self.attempt_next += 1;
        let id = (self.index as u64) << ATTEMPT_SHIFT | self.attempt_next;
        let span = SpanContext {
            trace_id: self.calls[&call].trace_id,
            span_id: ctx.rng().random(),
            parent_id: self.calls[&call].request.parent.map(|p| p.span_id),
        };
        let state = self.calls.get_mut(&call).expect("a live call");
        state.invoked.push(provider);
        state.in_flight.push(id);
        let request = state.request.clone();
        let name = format!("{}.{}", request.service, request.method);
        ctx.annotate(
            spans::CLIENT_SEND,
            spans::start_text(&span, &self.local, &name, provider),
        );
        let frame = Frame::Request {
            id,
            service: request.service,
            method: request.method,
            args: request.args.clone().unwrap_or_default(),
            call,
            idempotent: request.idempotent,
            span: Some(span),
            token: request.token,
        };
        ctx.observe(Obs::Attempt {
            call,
            service: self.service.clone(),
            provider,
            // Broadcast calls every provider: no balancer chose.
            balancer: match self.policy.mode {
                Mode::Broadcast => "broadcast",
                _ => self.policy.balancer.name(),
            },
        });
        let timer = (!ctx.bug(NO_DEADLINE))
            .then(|| ctx.set_timer(self.policy.timeout_ns, Timer::Attempt { id }));
        let attempt = Attempt {
            call,
            provider,
            span,
            sent_ns: ctx.monotonic_ns(),
            timer,
        };
        self.attempts.insert(id, attempt);
        *self.actives.entry(provider).or_insert(0) += 1;
        self.outbox.push((provider, id, frame));
        let _ = events;
    }

    /// Attempt `id`'s answer arrived.
    pub fn on_answer<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        id: u64,
        result: Result<Vec<u8>, RpcError>,
    ) -> Vec<Event> {
        let mut out = Vec::new();
        self.on_response(ctx, id, result, &mut out);
        out
    }

    fn on_response<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        id: u64,
        result: Result<Vec<u8>, RpcError>,
        events: &mut Vec<Event>,
    ) {
        let Some(attempt) = self.end_attempt(ctx, id, result.as_ref().err()) else {
            return; // Timed out already: a late answer.
        };
        if result.is_ok() {
            let window = self.windows.entry(attempt.provider).or_default();
            window.succeeded += 1;
            window.elapsed_ns += ctx.monotonic_ns().saturating_sub(attempt.sent_ns);
        }
        self.on_attempt_done(ctx, attempt.call, result, events);
    }

    fn fail_attempt<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        id: u64,
        error: RpcError,
        events: &mut Vec<Event>,
    ) {
        if let Some(attempt) = self.end_attempt(ctx, id, Some(&error)) {
            self.on_attempt_done(ctx, attempt.call, Err(error), events);
        }
    }

    fn end_attempt<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        id: u64,
        error: Option<&RpcError>,
    ) -> Option<Attempt> {
        let attempt = self.attempts.remove(&id)?;
        ctx.annotate(spans::CLIENT_RECEIVE, spans::end_text(&attempt.span, error));
        if let Some(timer) = attempt.timer {
            ctx.cancel_timer(timer);
        }
        if let Some(active) = self.actives.get_mut(&attempt.provider) {
            *active = active.saturating_sub(1);
        }
        if let Some(state) = self.calls.get_mut(&attempt.call) {
            state.in_flight.retain(|a| *a != id);
        }
        Some(attempt)
    }

    /// What the cluster mode does with one attempt's outcome.
    fn on_attempt_done<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        call: CallId,
        result: Result<Vec<u8>, RpcError>,
        events: &mut Vec<Event>,
    ) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        let idempotent = state.request.idempotent;
        if state.answered {
            // A fork, a broadcast or a timed-out attempt finishing after the answer, or a
            // failback retry in the background: nothing to tell the application.
            if self.policy.mode == Mode::Forking && result.is_ok() && ctx.bug(FORKING_ANSWERS_EACH)
            {
                // Bug zoo: `rpc.forking-answers-each` answers every fork that succeeds.
                self.answer(ctx, call, result.map(Answer::Value), events);
            } else if state.failing_back && result.as_ref().is_err_and(RpcError::is_transport) {
                self.arm_failback(ctx, call);
            }
            self.forget_if_done(call);
            return;
        }
        match self.policy.mode {
            Mode::Forking => match result {
                Ok(value) => self.finish(ctx, call, Ok(Answer::Value(value)), events),
                Err(error) => {
                    state.failures += 1;
                    if state.failures >= state.forks {
                        self.finish(ctx, call, Err(error), events);
                    } else {
                        ctx.sometimes("rpc.fork-failed-another-may-answer");
                    }
                }
            },
            Mode::Broadcast => {
                match result {
                    Ok(value) => state.last_value = Some(value),
                    Err(error) => {
                        state.failures += 1;
                        state.last_error = Some(error);
                    }
                }
                let stop = self
                    .policy
                    .broadcast_stop(state.invoked.len() + state.queue.len());
                if stop > 0 && state.failures as usize >= stop && !state.queue.is_empty() {
                    ctx.sometimes("rpc.broadcast-stops-early");
                    state.queue.clear();
                }
                self.broadcast_next(ctx, call, events);
            }
            _ => match result {
                Ok(value) => self.finish(ctx, call, Ok(Answer::Value(value)), events),
                Err(error) => {
                    let made = state.invoked.len() as u32;
                    // Bug zoo: `rpc.failover-retries-writes` retries every call.
                    let writes = ctx.bug(FAILOVER_RETRIES_WRITES);
                    let retry = self.policy.retry_after(&error, made, idempotent || writes);
                    match self.policy.mode {
                        Mode::Failover if retry => {
                            ctx.sometimes("rpc.failover-retry");
                            let tried = state.invoked.clone();
                            match self.select(ctx, call, &tried) {
                                Some(provider) => self.send(ctx, call, provider, events),
                                None => self.finish(ctx, call, Err(RpcError::NoProvider), events),
                            }
                        }
                        Mode::Failsafe if error.is_transport() => {
                            self.finish(ctx, call, Ok(Answer::Empty), events)
                        }
                        Mode::Failback if error.is_transport() => {
                            // Armed first: an answered call with nothing pending is forgotten.
                            if self.policy.fails_back(idempotent) {
                                state.failing_back = true;
                                self.arm_failback(ctx, call);
                            }
                            self.finish(ctx, call, Ok(Answer::Empty), events);
                        }
                        _ => self.finish(ctx, call, Err(error), events),
                    }
                }
            },
        }
    }

    /// Broadcast: the next provider in list order, or the answer when none is left.
    fn broadcast_next<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        call: CallId,
        events: &mut Vec<Event>,
    ) {
        let state = self.calls.get_mut(&call).expect("a live call");
        if !state.in_flight.is_empty() || state.answered {
            return;
        }
        match state.queue.pop_front() {
            Some(provider) => self.send(ctx, call, provider, events),
            None => {
                let result = match (state.last_error.take(), state.last_value.take()) {
                    (Some(error), _) => Err(error),
                    (None, Some(value)) => Ok(Answer::Value(value)),
                    (None, None) => Err(RpcError::NoProvider),
                };
                self.finish(ctx, call, result, events);
            }
        }
    }

    fn arm_failback<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, call: CallId) {
        let pending = self
            .calls
            .values()
            .filter(|c| c.failback_timer.is_some())
            .count();
        let state = self.calls.get_mut(&call).expect("a live call");
        if state.failback_left == 0 || pending >= self.policy.failback_max {
            self.forget_if_done(call);
            return;
        }
        state.failback_left -= 1;
        state.failback_timer =
            Some(ctx.set_timer(self.policy.failback_ns, Timer::Failback { call }));
    }

    /// A failback retry: another provider than the last, if there is one.
    fn on_failback<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        call: CallId,
        events: &mut Vec<Event>,
    ) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        state.failback_timer = None;
        ctx.sometimes("rpc.failback-retry");
        let last: Vec<NodeId> = state.invoked.last().copied().into_iter().collect();
        match self.select(ctx, call, &last) {
            Some(provider) => self.send(ctx, call, provider, events),
            None => self.arm_failback(ctx, call),
        }
    }

    fn on_deadline<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        call: CallId,
        events: &mut Vec<Event>,
    ) {
        if let Some(state) = self.calls.get_mut(&call) {
            state.deadline = None;
            if !state.answered {
                ctx.sometimes("rpc.deadline-exceeded");
                self.finish(ctx, call, Err(RpcError::DeadlineExceeded), events);
            }
        }
    }

    /// Answers the application, once.
    fn finish<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        call: CallId,
        result: Result<Answer, RpcError>,
        events: &mut Vec<Event>,
    ) {
        if self.calls.get(&call).is_some_and(|c| !c.answered) {
            self.answer(ctx, call, result, events);
        }
        self.forget_if_done(call);
    }

    /// Tells the application `result` (`finish` makes it once).
    fn answer<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        call: CallId,
        result: Result<Answer, RpcError>,
        events: &mut Vec<Event>,
    ) {
        let state = self.calls.get_mut(&call).expect("a live call");
        state.answered = true;
        // A broadcast answered early (its deadline) calls no one else.
        state.queue.clear();
        if let Some(timer) = state.deadline.take() {
            ctx.cancel_timer(timer);
        }
        ctx.observe(Obs::Done {
            call,
            error: result.as_ref().err().cloned(),
            empty: result == Ok(Answer::Empty),
        });
        events.push(Event::Done { call, result });
    }

    /// Drops an answered call once nothing of it is left in flight or pending.
    fn forget_if_done(&mut self, call: CallId) {
        let done = self.calls.get(&call).is_some_and(|c| {
            c.answered && c.in_flight.is_empty() && c.failback_timer.is_none() && c.queue.is_empty()
        });
        if done {
            self.calls.remove(&call);
        }
    }

    pub fn describe(&self) -> String {
        let providers: Vec<String> = self
            .providers
            .iter()
            .map(|p| {
                format!(
                    "{} (weight {}, {} active)",
                    p.address(),
                    p.weight,
                    self.actives.get(&p.node).copied().unwrap_or(0)
                )
            })
            .collect();
        format!(
            "service {} via {} / {}: providers [{}], {} calls in progress",
            self.service,
            self.policy.balancer.name(),
            self.policy.mode.name(),
            providers.join(", "),
            self.calls_in_progress(),
        )
    }
}
