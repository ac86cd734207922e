//! How a consumer makes a call against a cluster of providers: which load balancer
//! chooses (`Balancer`) and which of Dubbo's fault-tolerance modes recovers from a
//! failure (`Mode`), with their parameters (`Policy`). Pure: the names, defaults and the
//! rules that decide what happens after an attempt; `consumer.rs` does the sending.

use super::RpcError;

/// Dubbo's load balancers (`lb` holds their choices).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balancer {
    Random,
    RoundRobin,
    LeastActive,
    ConsistentHash,
    ShortestResponse,
    /// nginx's smooth weighted round robin (the gateway's server-side balancing).
    NginxRoundRobin,
    /// nginx's `least_conn`.
    NginxLeastConn,
}

impl Balancer {
    pub const ALL: [Balancer; 5] = [
        Balancer::Random,
        Balancer::RoundRobin,
        Balancer::LeastActive,
        Balancer::ConsistentHash,
        Balancer::ShortestResponse,
    ];

    /// Dubbo's extension name (`loadbalance=...`).
    pub fn name(self) -> &'static str {
        match self {
            Balancer::Random => "random",
            Balancer::RoundRobin => "roundrobin",
            Balancer::LeastActive => "leastactive",
            Balancer::ConsistentHash => "consistenthash",
            Balancer::ShortestResponse => "shortestresponse",
            Balancer::NginxRoundRobin => "nginx-roundrobin",
            Balancer::NginxLeastConn => "nginx-leastconn",
        }
    }

    /// A consumer's (Dubbo's) balancer by name; the nginx ones are the gateway's.
    pub fn parse(name: &str) -> Option<Balancer> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The gateway's balancer by nginx's directive name: `roundrobin` or `leastconn`.
    pub fn parse_nginx(name: &str) -> Option<Balancer> {
        match name {
            "roundrobin" => Some(Balancer::NginxRoundRobin),
            "leastconn" => Some(Balancer::NginxLeastConn),
            _ => None,
        }
    }
}

/// Dubbo's cluster fault-tolerance modes (`cluster=...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// On a transport failure, try another provider, up to `retries` more times.
    Failover,
    /// One attempt; its failure is the call's.
    Failfast,
    /// One attempt; a failure is swallowed (an empty answer).
    Failsafe,
    /// One attempt; a failure is answered empty at once and retried in the background,
    /// every `failback_period`, up to `retries` times.
    Failback,
    /// `forks` providers at once; the first success answers, or the last failure.
    Forking,
    /// Every provider in turn; any failure fails the call (the last one's).
    Broadcast,
}

impl Mode {
    pub const ALL: [Mode; 6] = [
        Mode::Failover,
        Mode::Failfast,
        Mode::Failsafe,
        Mode::Failback,
        Mode::Forking,
        Mode::Broadcast,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Failover => "failover",
            Mode::Failfast => "failfast",
            Mode::Failsafe => "failsafe",
            Mode::Failback => "failback",
            Mode::Forking => "forking",
            Mode::Broadcast => "broadcast",
        }
    }

    pub fn parse(name: &str) -> Option<Mode> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// A consumer's calling policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub balancer: Balancer,
    pub mode: Mode,
    /// Failover's extra attempts (Dubbo's `retries`, default 2); failback's retries.
    pub retries: u32,
    /// One attempt's timeout (Dubbo's `timeout`, default 1 s).
    pub timeout_ns: u64,
    /// The whole call's deadline, retries included.
    pub deadline_ns: u64,
    /// Forking's parallel attempts (default 2).
    pub forks: u32,
    /// Failback's retry period (Dubbo: 5 s).
    pub failback_ns: u64,
    /// Failback's pending retries at most (Dubbo's `failbacktasks`, 100).
    pub failback_max: usize,
    /// Broadcast stops after this percentage of providers failed (100: never early).
    pub fail_percent: u32,
    /// Whether failover and failback may repeat a call not marked idempotent (Dubbo
    /// repeats any call; here only idempotent ones unless this is on).
    pub retry_writes: bool,
    /// Consistent hashing: virtual nodes per provider and the arguments that key it.
    pub hash_nodes: u32,
    pub hash_arguments: String,
    /// Shortest response: the window after which the response statistics restart.
    pub slide_ns: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            balancer: Balancer::Random,
            mode: Mode::Failover,
            retries: 2,
            timeout_ns: 1_000_000_000,
            deadline_ns: 3_500_000_000,
            forks: 2,
            failback_ns: 5_000_000_000,
            failback_max: 100,
            fail_percent: 100,
            retry_writes: false,
            hash_nodes: 160,
            hash_arguments: "0".into(),
            slide_ns: 30_000_000_000,
        }
    }
}

impl Policy {
    /// How many attempts a call may make in all.
    pub fn attempts(&self, idempotent: bool) -> u32 {
        match self.mode {
            Mode::Failover if idempotent || self.retry_writes => self.retries + 1,
            _ => 1,
        }
    }

    /// Whether failover may try again after `error` on attempt number `made` (1-based).
    pub fn retry_after(&self, error: &RpcError, made: u32, idempotent: bool) -> bool {
        self.mode == Mode::Failover && error.is_transport() && made < self.attempts(idempotent)
    }

    /// Whether failback retries a failed call in the background.
    pub fn fails_back(&self, idempotent: bool) -> bool {
        self.mode == Mode::Failback && self.retries > 0 && (idempotent || self.retry_writes)
    }

    /// Broadcast's early stop: after this many failures (Dubbo: providers × percent /
    /// 100, integer; 0 never stops early).
    pub fn broadcast_stop(&self, providers: usize) -> usize {
        providers * self.fail_percent.min(100) as usize / 100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for balancer in Balancer::ALL {
            assert_eq!(Balancer::parse(balancer.name()), Some(balancer));
        }
        for mode in Mode::ALL {
            assert_eq!(Mode::parse(mode.name()), Some(mode));
        }
        assert_eq!(Mode::parse("failwhale"), None);
    }

    #[test]
    fn failover_retries_transport_failures_of_idempotent_calls_only() {
        let policy = Policy::default();
        assert_eq!(policy.attempts(true), 3, "Dubbo's default: two retries");
        assert_eq!(policy.attempts(false), 1);
        assert!(policy.retry_after(&RpcError::Timeout, 1, true));
        assert!(policy.retry_after(&RpcError::ConnectionBroken, 2, true));
        assert!(
            !policy.retry_after(&RpcError::Timeout, 3, true),
            "out of attempts"
        );
        assert!(!policy.retry_after(&RpcError::Service("no".into()), 1, true));
        assert!(!policy.retry_after(&RpcError::Timeout, 1, false));
        let writes = Policy {
            retry_writes: true,
            ..Policy::default()
        };
        assert!(writes.retry_after(&RpcError::Timeout, 1, false));
    }

    #[test]
    fn broadcast_stops_early_only_below_100_percent() {
        let mut policy = Policy {
            mode: Mode::Broadcast,
            ..Policy::default()
        };
        assert_eq!(policy.broadcast_stop(4), 4);
        policy.fail_percent = 75;
        assert_eq!(policy.broadcast_stop(4), 3);
        policy.fail_percent = 0;
        assert_eq!(policy.broadcast_stop(4), 0, "0: the count never reaches it");
    }
}
