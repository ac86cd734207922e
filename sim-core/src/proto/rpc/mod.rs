//! A Dubbo-style RPC framework on the registry: services declared as Rust traits
//! (`rpc_service!`), arguments and results in a compact binary codec with a size limit
//! (`codec`), providers that register in the registry with Dubbo's URL metadata
//! (`provider`, `url`), consumers that discover them with watches, keep a cache, balance
//! with Dubbo's load balancers (`lb`) and recover with its cluster modes (`consumer`,
//! `cluster`), over the engine's connections. Checkers and planted bugs in `invariants`
//! and `bugs`, the scenario side in `spec` and `apps`.
//!
//! Semantics follow Apache Dubbo 3.3 (`dubbo-cluster`'s `loadbalance` and `support`,
//! `RegistryDirectory`); deviations are listed in the README.

pub mod apps;
pub mod bugs;
pub mod cluster;
pub mod codec;
pub mod consumer;
pub mod gateway;
pub mod invariants;
pub mod lb;
pub mod nginx;
pub mod provider;
pub mod runtime;
pub mod spans;
pub mod spec;
pub mod url;

use serde::{Deserialize, Serialize};

use crate::conn;
use crate::node::{NodeId, Proto, Wraps};
use crate::proto::registry;
use crate::proto::spec::{ComponentSpec, Mark};

pub const COMPONENT: ComponentSpec = ComponentSpec {
    name: "rpc",
    description: "providers and consumers of services, discovered through the registry",
    invariants: &[
        invariants::ANSWERED_ONCE,
        invariants::AT_MOST_ONCE,
        invariants::CALLS_END,
        invariants::FRESH_PROVIDERS,
        invariants::ROUND_ROBIN,
        invariants::GATEWAY_GUARDS,
        invariants::RATE_LIMIT,
    ],
    gauges: &[invariants::LOAD],
    bugs: bugs::BUGS,
    marks: &[
        Mark {
            name: "rpc.failover-retry",
            doc: "failover retried a failed idempotent call on another provider",
            hint: "clusters = [\"failover\"] and crash or pause providers (nemesis crash, pause)",
        },
        Mark {
            name: "rpc.failback-retry",
            doc: "failback retried a failed call in the background",
            hint: "clusters = [\"failback\"] and pause providers (nemesis pause)",
        },
        Mark {
            name: "rpc.fork-failed-another-may-answer",
            doc: "a forking call lost one fork while another was still out",
            hint: "clusters = [\"forking\"] and crash providers (nemesis crash)",
        },
        Mark {
            name: "rpc.broadcast-stops-early",
            doc: "a broadcast stopped once fail_percent of its providers had failed",
            hint: "clusters = [\"broadcast\"] with a fail_percent one failure reaches (34 \
                   of 3 providers) and a provider crash",
        },
        Mark {
            name: "rpc.broadcast-skips-a-removed-provider",
            doc: "a broadcast in progress skipped a provider the registry listing dropped",
            hint: "clusters = [\"broadcast\"] and provider crashes past the session timeout",
        },
        Mark {
            name: "rpc.deadline-exceeded",
            doc: "a call reached its deadline unanswered",
            hint: "pause every provider longer than deadline (nemesis pause with targets = \
                   [\"provider\"])",
        },
        Mark {
            name: "rpc.gateway-rate-limited",
            doc: "the gateway refused a caller over its token bucket",
            hint: "a gateway with a low rate and bursty callers (params rate, burst)",
        },
        Mark {
            name: "rpc.gateway-refused-a-credential",
            doc: "the gateway refused a call without a recognised credential",
            hint: "a gateway with client_tokens that some callers lack (params)",
        },
    ],
};

/// What a node hosting an RPC provider or consumer needs of its host's types: RPC frames
/// over connections, and a registry client beside them.
pub trait Host:
    conn::Host<Frame> + registry::ClientHost + Proto<Obs: Wraps<Obs>, Timer: Wraps<Timer>>
{
}
impl<P: conn::Host<Frame> + registry::ClientHost + Proto<Obs: Wraps<Obs>, Timer: Wraps<Timer>>> Host
    for P
{
}

/// What travels between consumers and providers: frames on connections.
pub type Msg = conn::Segment<Frame>;

/// A call's identity at its consumer.
pub type CallId = u64;

/// One RPC frame. Arguments and results are encoded by `codec`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Frame {
    Request {
        /// The consumer's number for this attempt (answers name it).
        id: u64,
        service: String,
        method: String,
        args: Vec<u8>,
        /// The consumer's call this attempt belongs to (for the provider's checkers).
        call: CallId,
        idempotent: bool,
        /// The attempt's span: the provider serves it as the same span.
        span: Option<spans::SpanContext>,
        /// The caller's credential (a gateway checks it; providers ignore it).
        token: Option<String>,
    },
    Response {
        id: u64,
        result: Result<Vec<u8>, RpcError>,
    },
}

/// Why a call failed. `Service` is the provider's own (business) error, which the
/// cluster modes never retry; the others are the framework's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RpcError {
    /// No provider is known for the service (none registered, or all removed).
    NoProvider,
    /// The provider has no such service or method.
    UnknownService(String),
    UnknownMethod(String),
    /// The arguments or result did not decode as the method's types.
    Decode(String),
    /// An encoded payload above the codec's limit.
    Oversized {
        bytes: usize,
        limit: usize,
    },
    /// The connection to the provider broke with the call in flight.
    ConnectionBroken,
    /// No answer within the attempt's timeout.
    Timeout,
    /// No answer within the call's overall deadline.
    DeadlineExceeded,
    /// The provider's own error.
    Service(String),
    /// A gateway refused the caller: no credential, or one it does not know.
    Unauthenticated(String),
    /// A gateway refused the caller: over its rate limit.
    RateLimited,
    /// A gateway's call to the service behind it failed (nginx's 502 or 504), of this kind.
    Upstream(String),
}

impl RpcError {
    /// A short name of the kind of failure, for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            RpcError::NoProvider => "no-provider",
            RpcError::UnknownService(_) => "unknown-service",
            RpcError::UnknownMethod(_) => "unknown-method",
            RpcError::Decode(_) => "decode",
            RpcError::Oversized { .. } => "oversized",
            RpcError::ConnectionBroken => "connection-broken",
            RpcError::Timeout => "timeout",
            RpcError::DeadlineExceeded => "deadline-exceeded",
            RpcError::Service(_) => "service",
            RpcError::Unauthenticated(_) => "unauthenticated",
            RpcError::RateLimited => "rate-limited",
            RpcError::Upstream(_) => "upstream",
        }
    }

    /// A transport failure: the provider may not have acted on it (or may have), and
    /// another provider may answer. Business and codec errors are final.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            RpcError::ConnectionBroken | RpcError::Timeout | RpcError::NoProvider
        )
    }
}

/// The RPC components' timers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Timer {
    /// A provider finished working on its request number `work`.
    Serve { work: u64 },
    /// Attempt `id`'s timeout.
    Attempt { id: u64 },
    /// Call `call`'s overall deadline.
    Deadline { call: CallId },
    /// A failback call's next retry.
    Failback { call: CallId },
    /// A workload's next call.
    Next,
}

/// What consumers and providers report to the checkers.
#[derive(Clone, Debug, PartialEq)]
pub enum Obs {
    /// A consumer started call `call`; it must end by `deadline_ns` (virtual time).
    Invoked {
        call: CallId,
        /// The trace the call belongs to, and whether it started it.
        trace_id: u64,
        root: bool,
        /// The credential it carries (gateway callers).
        token: Option<String>,
        service: String,
        method: String,
        idempotent: bool,
        /// Forking or broadcast: the call is meant to reach several providers.
        fanout: bool,
        deadline_ns: u64,
    },
    /// A consumer sent an attempt of `call` to `provider`, chosen by `balancer`.
    Attempt {
        call: CallId,
        service: String,
        provider: NodeId,
        balancer: &'static str,
    },
    /// A consumer's round robin chose `chosen` among `providers` (identity, weight) at
    /// `now_ms`: for `rpc.round-robin` to replay.
    RoundRobin {
        key: String,
        now_ms: u64,
        providers: Vec<(String, u32)>,
        chosen: usize,
    },
    /// A consumer answered call `call` to its application: with `error`, or empty (a
    /// failure that failsafe or failback swallowed), or with a value.
    Done {
        call: CallId,
        error: Option<RpcError>,
        empty: bool,
    },
    /// A consumer's registry listing of `service`'s providers (what it may call).
    Listed {
        service: String,
        providers: Vec<NodeId>,
    },
    /// A provider applied a non-idempotent call's side effect.
    Applied { consumer: NodeId, call: CallId },
    /// A provider served an attempt, of trace `trace_id`.
    Served {
        consumer: NodeId,
        method: String,
        trace_id: u64,
    },
    /// A gateway refused a request of trace `trace_id` for its credential.
    Refused { trace_id: u64, reason: String },
    /// A gateway refused `caller`'s request for its rate limit.
    Limited { caller: String, clock_ns: u64 },
    /// A gateway let `caller`'s request through at `clock_ns` on its monotonic clock.
    Admitted {
        caller: String,
        clock_ns: u64,
        trace_id: u64,
    },
}

/// A provider as the registry lists it (`url::ProviderUrl` is its text form).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderInfo {
    pub node: NodeId,
    pub port: u16,
    pub service: String,
    pub weight: u32,
    pub warmup_ms: u32,
    /// When the provider started, on its wall clock, in ms (Dubbo's `timestamp`).
    pub timestamp_ms: u64,
    pub version: String,
    pub group: String,
}

impl ProviderInfo {
    /// `host:port`, as Dubbo's `URL.getAddress` (the consistent-hash ring's input).
    pub fn address(&self) -> String {
        format!("n{}:{}", self.node, self.port)
    }

    /// `protocol://host:port/path`, as Dubbo's `toIdentityString` (round robin's key).
    pub fn identity(&self) -> String {
        format!("dubbo://n{}:{}/{}", self.node, self.port, self.service)
    }
}
