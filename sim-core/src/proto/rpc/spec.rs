//! The RPC framework as scenarios run it: `provider` and `consumer` node kinds (beside
//! `registry.server` nodes), their parameters, the whole-scenario check, the builder and
//! the invariants.

use super::apps::inventory;
use super::apps::{ConsumerNode, ProviderNode, Shelf, Traffic};
use super::cluster::{Balancer, Mode, Policy};
use super::consumer::Consumer;
use super::provider::{Provider, ProviderConfig};
use super::{invariants, Host};
use crate::node::Node;
use crate::params::{count, duration, flag, list, text, ParamSpec, Params, MS};
use crate::proto::registry;
use crate::proto::spec::{KindSpec, Layout, Part, ProtocolSpec};
use crate::units::parse_duration_ns;

pub const KINDS: &[KindSpec] = &[
    KindSpec {
        name: "provider",
        doc: "serves the inventory service and registers it in the registry",
        components: &["rpc", "registry"],
    },
    KindSpec {
        name: "consumer",
        doc: "calls the inventory service, finding providers in the registry",
        components: &["rpc", "registry"],
    },
];

const BALANCERS: &[&str] = &[
    "random",
    "roundrobin",
    "leastactive",
    "consistenthash",
    "shortestresponse",
];
const MODES: &[&str] = &[
    "failover",
    "failfast",
    "failsafe",
    "failback",
    "forking",
    "broadcast",
];

pub const PARAMS: &[ParamSpec] = &[
    list(
        "balancers",
        "load balancer of each consumer, cycled: random, roundrobin, leastactive, \
         consistenthash, shortestresponse",
        &["random"],
    ),
    list(
        "clusters",
        "cluster mode of each consumer, cycled: failover, failfast, failsafe, failback, \
         forking, broadcast",
        &["failover"],
    ),
    count(
        "retries",
        "failover's extra attempts; failback's retries",
        0,
        100,
        2,
    ),
    duration("timeout", "one attempt's timeout", 1_000 * MS),
    duration(
        "deadline",
        "a whole call's deadline, retries included",
        3_500 * MS,
    ),
    count("forks", "forking's parallel attempts", 1, 100, 2),
    duration("failback_period", "failback's retry period", 5_000 * MS),
    count(
        "fail_percent",
        "broadcast stops after this percentage of providers failed (100: never early)",
        0,
        100,
        100,
    ),
    flag(
        "retry_writes",
        "failover and failback also repeat calls not marked idempotent (Dubbo does)",
        false,
    ),
    count(
        "hash_nodes",
        "consistent hashing's virtual nodes per provider",
        1,
        10_000,
        160,
    ),
    text(
        "hash_arguments",
        "consistent hashing's key: argument indexes, comma-separated",
        "0",
        &[],
    ),
    list(
        "weights",
        "provider weights, cycled over the providers",
        &["100"],
    ),
    duration(
        "warmup",
        "providers' warm-up (Dubbo's default is 10 min)",
        0,
    ),
    list(
        "process_times",
        "how long each provider works on a call, cycled over the providers",
        &["2ms"],
    ),
    count("calls", "calls each consumer makes", 0, 1_000_000, 100),
    duration("think", "time between a consumer's calls", 10 * MS),
    count(
        "concurrency",
        "calls a consumer has in flight at most",
        1,
        1_000,
        1,
    ),
    count(
        "write_every",
        "every n-th call reserves (not idempotent); 0: reads only",
        0,
        1_000_000,
        4,
    ),
    count("keys", "distinct items called for", 1, 1_000_000, 20),
];

pub const fn spec<H: Host>() -> ProtocolSpec<H> {
    ProtocolSpec {
        name: "rpc",
        description: "a Dubbo-style RPC framework: providers and consumers of an inventory \
                      service, discovered through the registry",
        kinds: KINDS,
        params: PARAMS,
        check,
        build: build::<H>,
    }
}

fn check(layout: &Layout) -> Result<(), (&'static str, String)> {
    if registry::spec::client_config(layout).is_none() {
        return Err((
            "nodes",
            "RPC finds providers through the registry: add registry servers ([[nodes]] kind = \
             \"registry.server\")"
                .to_string(),
        ));
    }
    let params = layout.params;
    for name in params.list("balancers") {
        if Balancer::parse(name).is_none() {
            return Err((
                "params",
                format!(
                    "unknown balancer `{name}`; expected one of: {}",
                    BALANCERS.join(", ")
                ),
            ));
        }
    }
    for name in params.list("clusters") {
        if Mode::parse(name).is_none() {
            return Err((
                "params",
                format!(
                    "unknown cluster mode `{name}`; expected one of: {}",
                    MODES.join(", ")
                ),
            ));
        }
    }
    for weight in params.list("weights") {
        weight
            .parse::<u32>()
            .map_err(|_| ("params", format!("weight `{weight}` is not a whole number")))?;
    }
    for time in params.list("process_times") {
        let ns = parse_duration_ns(time).map_err(|e| ("params", format!("process_times: {e}")))?;
        if ns < 0 {
            return Err(("params", format!("process_times: `{time}` is negative")));
        }
    }
    for key in [
        ("balancers", params.list("balancers")),
        ("clusters", params.list("clusters")),
        ("weights", params.list("weights")),
        ("process_times", params.list("process_times")),
    ] {
        if key.1.is_empty() {
            return Err(("params", format!("`{}` needs at least one entry", key.0)));
        }
    }
    if params.number("deadline") < params.number("timeout") {
        return Err((
            "params",
            "`deadline` must be at least `timeout`".to_string(),
        ));
    }
    Ok(())
}

/// Entry `index` of list parameter `name`, cycled.
fn cycled<'a>(params: &'a Params, name: &str, index: usize) -> &'a str {
    let list = params.list(name);
    &list[index % list.len()]
}

fn policy(params: &Params, index: usize) -> Policy {
    Policy {
        balancer: Balancer::parse(cycled(params, "balancers", index)).expect("checked"),
        mode: Mode::parse(cycled(params, "clusters", index)).expect("checked"),
        retries: params.number("retries") as u32,
        timeout_ns: params.number("timeout"),
        deadline_ns: params.number("deadline"),
        forks: params.number("forks") as u32,
        failback_ns: params.number("failback_period"),
        fail_percent: params.number("fail_percent") as u32,
        retry_writes: params.flag("retry_writes"),
        hash_nodes: params.number("hash_nodes") as u32,
        hash_arguments: params.text("hash_arguments").to_string(),
        ..Policy::default()
    }
}

fn build<H: Host>(layout: &Layout) -> Part<H> {
    let params = layout.params.clone();
    let registry = registry::spec::client_config(layout).expect("checked");
    let conn = layout.conn;
    let providers = layout.ids_of("provider");
    let consumers = layout.ids_of("consumer");
    let mut part = Part::default();
    let (provider_params, provider_registry) = (params.clone(), registry.clone());
    part.node("provider", move |id| -> Box<dyn Node<H>> {
        let index = providers.iter().position(|p| *p == id).unwrap_or(0);
        let process =
            parse_duration_ns(cycled(&provider_params, "process_times", index)).expect("checked");
        let config = ProviderConfig {
            service: inventory::NAME.to_string(),
            port: 20880,
            weight: cycled(&provider_params, "weights", index)
                .parse()
                .expect("checked"),
            warmup_ms: (provider_params.number("warmup") / 1_000_000) as u32,
            version: "1.0.0".into(),
            group: String::new(),
            process_ns: process as u64,
        };
        let handler = Box::new(inventory::Server(Shelf::new(1_000_000)));
        Box::new(ProviderNode::new(Provider::new(
            config,
            handler,
            provider_registry.clone(),
            conn,
        )))
    });
    let traffic = Traffic {
        calls: params.number("calls") as u32,
        think_ns: params.number("think"),
        concurrency: params.number("concurrency") as u32,
        write_every: params.number("write_every") as u32,
        keys: params.number("keys") as u32,
    };
    part.node("consumer", move |id| -> Box<dyn Node<H>> {
        let index = consumers.iter().position(|c| *c == id).unwrap_or(0);
        let consumer = Consumer::new(
            inventory::NAME,
            policy(&params, index),
            registry.clone(),
            conn,
        );
        Box::new(ConsumerNode::new(consumer, traffic.clone()))
    });
    part.check(layout, invariants::AnsweredOnce::default());
    part.check(layout, invariants::AtMostOnce::default());
    part.check(layout, invariants::CallsEnd::default());
    part.check(layout, invariants::FreshProviders::default());
    part.check(layout, invariants::RoundRobinReplay::default());
    part.check(layout, invariants::Load::default());
    part
}
