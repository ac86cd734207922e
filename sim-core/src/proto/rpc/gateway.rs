//! The gateway: one node that is both an RPC server (callers outside the cluster reach
//! it, found through the registry as the `gateway` service) and a consumer of the services
//! behind it. For each request it authenticates the caller by its credential (a bad or
//! missing one is refused with `Unauthenticated` and never forwarded), rate-limits the
//! caller with a token bucket (excess is refused with `RateLimited`), routes by service
//! name and balances over that service's providers server-side, as nginx does (smooth
//! weighted round robin or least connections), then relays the answer. The call it makes
//! joins the caller's trace as a child span. It never answers for a provider.

use std::collections::BTreeMap;

use super::bugs::{GATEWAY_ANONYMOUS, GATEWAY_BUCKET_UNBOUNDED};
use super::cluster::{Balancer, Mode, Policy};
use super::codec::Answer;
use super::consumer::Consumer;
use super::provider::{Incoming, Provider};
use super::runtime::{Output, Runtime};
use super::{CallId, Host, Obs, RpcError};
use crate::conn::ConnParams;
use crate::node::Ctx;
use crate::proto::registry::client::ClientConfig;

/// Requests the gateway relays at once at most; more are refused as overload.
pub const RELAYED_MAX: usize = 10_000;

/// A caller's token bucket: `burst` tokens at most, refilled at `rate_per_s`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Tokens in millionths, so refills of a fraction of a token are kept exactly.
    micro_tokens: u64,
    refilled_ns: u64,
}

/// The rate limit every caller gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub rate_per_s: u64,
    pub burst: u64,
}

impl RateLimit {
    /// A full bucket at `now_ns`.
    pub fn bucket(&self, now_ns: u64) -> Bucket {
        Bucket {
            micro_tokens: self.burst * 1_000_000,
            refilled_ns: now_ns,
        }
    }

    /// Refills `bucket` up to `now_ns` and takes one token if there is one. `cap` off lets
    /// the bucket grow past `burst` (the planted bug `rpc.gateway-bucket-unbounded`).
    pub fn take(&self, bucket: &mut Bucket, now_ns: u64, cap: bool) -> bool {
        let elapsed_ns = now_ns.saturating_sub(bucket.refilled_ns);
        // rate tokens per second = rate micro-tokens per microsecond.
        let refill = (elapsed_ns / 1_000).saturating_mul(self.rate_per_s);
        bucket.micro_tokens = bucket.micro_tokens.saturating_add(refill);
        if cap {
            bucket.micro_tokens = bucket.micro_tokens.min(self.burst * 1_000_000);
        }
        bucket.refilled_ns = now_ns;
        if bucket.micro_tokens >= 1_000_000 {
            bucket.micro_tokens -= 1_000_000;
            true
        } else {
            false
        }
    }
}

/// How the gateway is set up.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Credential -> caller name.
    pub callers: BTreeMap<String, String>,
    pub limit: RateLimit,
    /// nginx's balancer for the upstreams: `NginxRoundRobin` or `NginxLeastConn`.
    pub balancer: Balancer,
    /// The services it routes.
    pub routes: Vec<String>,
    pub timeout_ns: u64,
    pub deadline_ns: u64,
    pub retries: u32,
}

impl GatewayConfig {
    /// The policy of each upstream: nginx's `proxy_next_upstream error timeout`, which
    /// retries only idempotent requests on the next server.
    fn policy(&self) -> Policy {
        Policy {
            balancer: self.balancer,
            mode: Mode::Failover,
            retries: self.retries,
            timeout_ns: self.timeout_ns,
            deadline_ns: self.deadline_ns,
            ..Policy::default()
        }
    }
}

#[derive(Clone)]
pub struct Gateway {
    config: GatewayConfig,
    /// The gateway's server and one consumer per route, in `config.routes` order.
    runtime: Runtime,
    buckets: BTreeMap<String, Bucket>,
    /// Upstream calls -> the caller's request being relayed.
    relayed: BTreeMap<CallId, u64>,
    admitted: u64,
    refused: u64,
    limited: u64,
}

impl Gateway {
    /// A gateway serving `server` (a `Serving::App` provider of the routes) in a runtime
    /// with `registry` and `conn`.
    pub fn new(
        config: GatewayConfig,
        server: Provider,
        registry: ClientConfig,
        conn: ConnParams,
    ) -> Self {
        let policy = config.policy();
        let mut runtime = Runtime::new(registry, conn).with_provider(server);
        for service in &config.routes {
            runtime =
                runtime.with_consumer(Consumer::new(service, policy.clone()).with_local("gateway"));
        }
        Self {
            config,
            runtime,
            buckets: BTreeMap::new(),
            relayed: BTreeMap::new(),
            admitted: 0,
            refused: 0,
            limited: 0,
        }
    }

    fn on_outputs<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Incoming(request) => self.on_request(ctx, request),
                Output::Done { call, result, .. } => {
                    let Some(work) = self.relayed.remove(&call) else {
                        continue;
                    };
                    let answer = match result {
                        Ok(Answer::Value(bytes)) => Ok(bytes),
                        Ok(Answer::Empty) => Err(RpcError::Service("empty answer".into())),
                        // The upstream's failure is the gateway's answer (nginx's 502/504).
                        Err(error) => Err(RpcError::Upstream(error.kind().to_string())),
                    };
                    self.runtime.respond(ctx, work, answer);
                }
            }
        }
    }

    fn on_request<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, request: Incoming) {
        let trace_id = request.span.map_or(0, |s| s.trace_id);
        // Bug zoo: `rpc.gateway-anonymous` lets a caller without a credential in.
        let anonymous = request.token.is_none() && ctx.bug(GATEWAY_ANONYMOUS);
        let caller = match request
            .token
            .as_ref()
            .and_then(|t| self.config.callers.get(t))
        {
            Some(caller) => caller.clone(),
            None if anonymous => "anonymous".to_string(),
            None => {
                self.refused += 1;
                ctx.sometimes("rpc.gateway-refused-a-credential");
                let reason = match request.token {
                    Some(_) => "credential not recognised",
                    None => "no credential",
                };
                ctx.observe(Obs::Refused {
                    trace_id,
                    reason: reason.to_string(),
                });
                self.runtime
                    .refuse(ctx, request.work, RpcError::Unauthenticated(reason.into()));
                return;
            }
        };
        let now = ctx.monotonic_ns();
        let limit = self.config.limit;
        let bucket = self
            .buckets
            .entry(caller.clone())
            .or_insert_with(|| limit.bucket(now));
        let cap = !ctx.bug(GATEWAY_BUCKET_UNBOUNDED);
        if !limit.take(bucket, now, cap) {
            ctx.sometimes("rpc.gateway-rate-limited");
            self.limited += 1;
            ctx.observe(Obs::Limited {
                caller,
                clock_ns: now,
            });
            self.runtime
                .refuse(ctx, request.work, RpcError::RateLimited);
            return;
        }
        self.admitted += 1;
        ctx.observe(Obs::Admitted {
            caller,
            clock_ns: now,
            trace_id,
        });
        let Some(route) = self
            .config
            .routes
            .iter()
            .position(|s| *s == request.service)
        else {
            self.runtime.refuse(
                ctx,
                request.work,
                RpcError::UnknownService(request.service.clone()),
            );
            return;
        };
        if self.relayed.len() >= RELAYED_MAX {
            self.runtime.refuse(
                ctx,
                request.work,
                RpcError::Service("gateway overloaded".into()),
            );
            return;
        }
        let (call, outputs) = self.runtime.invoke(ctx, route, request.forward());
        self.relayed.insert(call, request.work);
        self.on_outputs(ctx, outputs);
    }

    pub fn describe(&self) -> String {
        format!(
            "gateway via {}: {} admitted, {} refused, {} rate-limited, {} relaying\n{}",
            self.config.balancer.name(),
            self.admitted,
            self.refused,
            self.limited,
            self.relayed.len(),
            self.runtime.describe()
        )
    }
}

super::runtime::runtime_node!(Gateway, "gateway");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_a_burst_then_the_rate() {
        let limit = RateLimit {
            rate_per_s: 10,
            burst: 3,
        };
        let mut bucket = limit.bucket(0);
        let taken: Vec<bool> = (0..4).map(|_| limit.take(&mut bucket, 0, true)).collect();
        assert_eq!(taken, vec![true, true, true, false]);
        // 10 per second: one token back after 100 ms, not before.
        assert!(!limit.take(&mut bucket, 99_000_000, true));
        assert!(limit.take(&mut bucket, 100_000_000, true));
        // A long idle refills up to the burst only.
        let taken = (0..4)
            .filter(|_| limit.take(&mut bucket, 60_000_000_000, true))
            .count();
        assert_eq!(taken, 3);
    }

    #[test]
    fn an_uncapped_bucket_hoards_what_an_idle_caller_did_not_use() {
        let limit = RateLimit {
            rate_per_s: 10,
            burst: 3,
        };
        let mut bucket = limit.bucket(0);
        let taken = (0..100)
            .filter(|_| limit.take(&mut bucket, 5_000_000_000, false))
            .count();
        assert_eq!(taken, 53, "3 + 5 s x 10/s");
    }
}
