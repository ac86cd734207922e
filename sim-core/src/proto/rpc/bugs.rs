//! The RPC framework's planted bugs; each names the invariant that catches it.

use super::invariants::{
    ANSWERED_ONCE, AT_MOST_ONCE, CALLS_END, FRESH_PROVIDERS, GATEWAY_GUARDS, RATE_LIMIT,
    ROUND_ROBIN,
};
use crate::bugs::BugInfo;

pub const FAILOVER_RETRIES_WRITES: &str = "rpc.failover-retries-writes";
pub const IGNORES_REMOVALS: &str = "rpc.ignores-removals";
pub const ROUND_ROBIN_FORGETS: &str = "rpc.round-robin-forgets";
pub const FORKING_ANSWERS_EACH: &str = "rpc.forking-answers-each";
pub const NO_DEADLINE: &str = "rpc.no-deadline";
pub const GATEWAY_ANONYMOUS: &str = "rpc.gateway-anonymous";
pub const GATEWAY_BUCKET_UNBOUNDED: &str = "rpc.gateway-bucket-unbounded";

pub const BUGS: &[BugInfo] = &[
    BugInfo {
        name: FAILOVER_RETRIES_WRITES,
        protocol: "rpc",
        description: "failover retries a call that is not idempotent after a timeout, so a \
                      provider that was only slow applies it and another applies it again",
        scenario: "rpc-failover",
        caught_by: AT_MOST_ONCE,
    },
    BugInfo {
        name: IGNORES_REMOVALS,
        protocol: "rpc",
        description: "a consumer adds the providers the registry lists but never drops one, so \
                      it keeps calling a provider that is gone",
        scenario: "rpc-failover",
        caught_by: FRESH_PROVIDERS,
    },
    BugInfo {
        name: ROUND_ROBIN_FORGETS,
        protocol: "rpc",
        description: "the round-robin balancer starts from a fresh state on every call, so it \
                      sends every call to the heaviest provider",
        scenario: "rpc-balancers",
        caught_by: ROUND_ROBIN,
    },
    BugInfo {
        name: FORKING_ANSWERS_EACH,
        protocol: "rpc",
        description: "a forking call answers its application once per fork that succeeds, not \
                      once",
        scenario: "rpc-forking",
        caught_by: ANSWERED_ONCE,
    },
    BugInfo {
        name: NO_DEADLINE,
        protocol: "rpc",
        description: "calls arm neither an attempt timeout nor a deadline, so a call to a paused \
                      provider hangs until it resumes",
        scenario: "rpc-failfast",
        caught_by: CALLS_END,
    },
    BugInfo {
        name: GATEWAY_ANONYMOUS,
        protocol: "rpc",
        description: "the gateway lets a caller without a credential in as `anonymous`, so its \
                      calls reach the providers",
        scenario: "rpc-gateway",
        caught_by: GATEWAY_GUARDS,
    },
    BugInfo {
        name: GATEWAY_BUCKET_UNBOUNDED,
        protocol: "rpc",
        description: "the gateway's token bucket is not capped at its burst, so a caller that \
                      was idle saves up and then floods the providers",
        scenario: "rpc-gateway",
        caught_by: RATE_LIMIT,
    },
];
