//! The built-in scenarios, embedded from the repository's `scenarios/` folder so the CLI
//! and the browser carry the same files.

/// Embeds `scenarios/NAME.toml` for each name, so a file and its name cannot drift apart.
macro_rules! builtins {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../scenarios/", $name, ".toml")))),*]
    };
}

/// (name, file text), in the order `faultline list` shows them.
pub const BUILTINS: &[(&str, &str)] = builtins![
    "broadcast",
    "broadcast-calm",
    "broker-work-queue",
    "broker-pubsub",
    "broker-routing",
    "broker-topics",
    "broker-crash-durable",
    "broker-crash-transient",
    "broker-consumer-crash",
    "broker-consumer-crash-auto-ack",
    "broker-peak-shaving",
    "broker-dead-letter",
    "broker-discovery",
    "broker-lossy",
    "broker-dead-letter-crash",
    "broker-publisher-restart",
    "broker-reject-publish",
    "ping-pong",
    "ping-pong-lossy",
    "ping-pong-conn",
    "registry-tour",
    "registry-basic",
    "registry-leader-crash",
    "registry-partition-minority",
    "registry-partition-majority",
    "registry-read-only",
    "registry-read-only-churn",
    "registry-session-expiry",
    "registry-lock",
    "registry-lock-pause",
    "registry-crashes",
    "registry-power-loss",
    "registry-election-race",
    "registry-lossy",
    "registry-duplicates",
    "registry-cut-short",
    "registry-cut-long",
    "registry-short-partitions",
    "registry-one-way",
    "registry-five-nemesis",
    "rpc-basic",
    "rpc-failover",
    "rpc-failfast",
    "rpc-failsafe",
    "rpc-failback",
    "rpc-forking",
    "rpc-broadcast",
    "rpc-registry-outage",
    "rpc-balancers",
    "rpc-warmup",
    "rpc-nemesis",
    "rpc-gateway",
    "rpc-trace-chain",
    "bank",
    "bank-coordinator-crash",
    "bank-shard-crash",
    "bank-partition",
    "bank-heuristic",
    "bank-nemesis",
    "shop",
    "shop-broker-crash",
    "shop-warehouse-crash",
    "shop-nemesis",
    "cap-partition",
    "registry-large",
    "broker-large",
];

/// Built-ins of a million events and more, for the browser benchmark and scale tests.
/// Tests that run every built-in many times (several seeds, retained traces, debug
/// builds) leave these out and test them on their own, once.
pub const LARGE: &[&str] = &["registry-large", "broker-large"];

pub fn is_large(name: &str) -> bool {
    LARGE.contains(&name)
}

/// The text of a built-in scenario.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|(name, _)| *name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses_and_is_named_after_its_file() {
        for (name, text) in BUILTINS {
            let scenario = crate::scenario::parse(&format!("{name}.toml"), text)
                .unwrap_or_else(|errors| panic!("{name}: {errors:?}"));
            assert_eq!(scenario.name, *name);
            assert!(!scenario.description.is_empty());
        }
    }

    #[test]
    fn the_default_scenario_is_built_in() {
        assert!(builtin(crate::scenario::DEFAULT_SCENARIO).is_some());
    }
}
