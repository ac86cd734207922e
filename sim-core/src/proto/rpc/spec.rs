//! The RPC framework as scenarios run it: `provider`, `consumer`, `orders`, `gateway`
//! and `client` node kinds (beside `registry.server` nodes), their parameters, the
//! whole-scenario check, the builder and the invariants.

use super::apps::{inventory, orders};
use super::apps::{ConsumerNode, OrdersNode, ProviderNode, Route, Shelf, Traffic};
use super::cluster::{Balancer, Mode, Policy};
use super::consumer::Consumer;
use super::gateway::{Gateway, GatewayConfig, RateLimit};
use super::provider::{Provider, ProviderConfig, Serving};
use super::runtime::Runtime;
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
    KindSpec {
        name: "orders",
        doc: "serves the orders service by calling the inventory (nested calls)",
        components: &["rpc", "registry"],
    },
    KindSpec {
        name: "gateway",
        doc: "authenticates, rate-limits, routes and balances callers' requests to the services",
        components: &["rpc", "registry"],
    },
    KindSpec {
        name: "client",
        doc: "calls the orders and inventory services through the gateway, with a credential",
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
    text(
        "gateway_balancer",
        "the gateway's server-side balancing, as nginx's: roundrobin or leastconn",
        "roundrobin",
        &["roundrobin", "leastconn"],
    ),
    list(
        "callers",
        "credentials the gateway accepts, as `name:token`",
        &["alice:alice-secret", "bob:bob-secret"],
    ),
    list(
        "client_tokens",
        "the token each client presents, cycled over the clients; \"\" for none",
        &["alice-secret", "bob-secret"],
    ),
    count(
        "rate",
        "calls per second the gateway admits per caller",
        1,
        1_000_000,
        1_000,
    ),
    count(
        "burst",
        "calls a caller may make at once (its token bucket's size)",
        1,
        1_000_000,
        20,
    ),
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
        ("client_tokens", params.list("client_tokens")),
    ] {
        if key.1.is_empty() {
            return Err(("params", format!("`{}` needs at least one entry", key.0)));
        }
    }
    for caller in params.list("callers") {
        if !caller
            .split_once(':')
            .is_some_and(|(name, token)| !name.is_empty() && !token.is_empty())
        {
            return Err(("params", format!("caller `{caller}` is not `name:token`")));
        }
    }
    let needs_gateway = !layout.ids_of("client").is_empty();
    if needs_gateway && layout.ids_of("gateway").is_empty() {
        return Err((
            "nodes",
            "clients call through a gateway: add a node of kind \"gateway\"".to_string(),
        ));
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
    let clients = layout.ids_of("client");
    let mut part = Part::default();
    let (provider_params, provider_registry) = (params.clone(), registry.clone());
    part.node("provider", move |id| -> Box<dyn Node<H>> {
        let index = providers.iter().position(|p| *p == id).unwrap_or(0);
        let config = provider_config(&provider_params, inventory::NAME, index);
        let handler = Box::new(inventory::Server(Shelf::new(1_000_000)));
        let provider = Provider::new(config, Serving::Handler(handler));
        Box::new(ProviderNode::new(
            Runtime::new(provider_registry.clone(), conn).with_provider(provider),
        ))
    });
    let (orders_params, orders_registry) = (params.clone(), registry.clone());
    part.node("orders", move |_id| -> Box<dyn Node<H>> {
        let config = provider_config(&orders_params, orders::NAME, 0);
        let serving = Serving::App {
            services: Vec::new(),
        };
        let provider = Provider::new(config, serving);
        // Orders call the inventory with the first consumer's policy.
        let inventory =
            Consumer::new(inventory::NAME, policy(&orders_params, 0)).with_local(orders::NAME);
        let runtime = Runtime::new(orders_registry.clone(), conn)
            .with_provider(provider)
            .with_consumer(inventory);
        Box::new(OrdersNode::new(runtime))
    });
    let gateway_config = gateway_config(&params);
    let (gateway_params, gateway_registry) = (params.clone(), registry.clone());
    part.node("gateway", move |_id| -> Box<dyn Node<H>> {
        let config = provider_config(&gateway_params, GATEWAY, 0);
        let serving = Serving::App {
            services: gateway_config.routes.clone(),
        };
        let server = Provider::new(config, serving);
        Box::new(Gateway::new(
            gateway_config.clone(),
            server,
            gateway_registry.clone(),
            conn,
        ))
    });
    let traffic = Traffic {
        calls: params.number("calls") as u32,
        think_ns: params.number("think"),
        concurrency: params.number("concurrency") as u32,
        write_every: params.number("write_every") as u32,
        keys: params.number("keys") as u32,
    };
    let (client_params, client_registry, client_traffic) =
        (params.clone(), registry.clone(), traffic.clone());
    let client_ids = clients.clone();
    part.node("client", move |id| -> Box<dyn Node<H>> {
        let index = client_ids.iter().position(|c| *c == id).unwrap_or(0);
        let token = cycled(&client_params, "client_tokens", index);
        let route = Route::Gateway {
            token: (!token.is_empty()).then(|| token.to_string()),
        };
        // A client reaches the gateway once: failfast, so its refusals are plain.
        let policy = Policy {
            mode: Mode::Failfast,
            ..policy(&client_params, index)
        };
        let consumer = Consumer::new(GATEWAY, policy).with_local("client");
        let runtime = Runtime::new(client_registry.clone(), conn).with_consumer(consumer);
        Box::new(ConsumerNode::new(runtime, client_traffic.clone(), route))
    });
    part.node("consumer", move |id| -> Box<dyn Node<H>> {
        let index = consumers.iter().position(|c| *c == id).unwrap_or(0);
        let consumer = Consumer::new(inventory::NAME, policy(&params, index));
        let runtime = Runtime::new(registry.clone(), conn).with_consumer(consumer);
        Box::new(ConsumerNode::new(runtime, traffic.clone(), Route::Direct))
    });
    let accepted: Vec<String> = layout
        .params
        .list("callers")
        .iter()
        .filter_map(|c| c.split_once(':').map(|(_, token)| token.to_string()))
        .collect();
    part.check(layout, invariants::AnsweredOnce::default());
    part.check(layout, invariants::AtMostOnce::default());
    part.check(layout, invariants::CallsEnd::default());
    part.check(layout, invariants::FreshProviders::default());
    part.check(layout, invariants::RoundRobinReplay::default());
    part.check(layout, invariants::GatewayGuards::new(clients, accepted));
    part.check(
        layout,
        invariants::RateLimitReplay::new(rate_limit(layout.params)),
    );
    part.check(layout, invariants::Load::default());
    part
}

/// The service name the gateway registers under: clients find it as a provider.
pub const GATEWAY: &str = "gateway";

fn provider_config(params: &Params, service: &str, index: usize) -> ProviderConfig {
    let process = parse_duration_ns(cycled(params, "process_times", index)).expect("checked");
    ProviderConfig {
        service: service.to_string(),
        port: 20880,
        weight: cycled(params, "weights", index).parse().expect("checked"),
        warmup_ms: (params.number("warmup") / 1_000_000) as u32,
        version: "1.0.0".into(),
        group: String::new(),
        process_ns: process as u64,
    }
}

fn rate_limit(params: &Params) -> RateLimit {
    RateLimit {
        rate_per_s: params.number("rate"),
        burst: params.number("burst"),
    }
}

fn gateway_config(params: &Params) -> GatewayConfig {
    GatewayConfig {
        callers: params
            .list("callers")
            .iter()
            .filter_map(|c| c.split_once(':'))
            .map(|(name, token)| (token.to_string(), name.to_string()))
            .collect(),
        limit: rate_limit(params),
        balancer: Balancer::parse_nginx(params.text("gateway_balancer")).expect("checked"),
        routes: vec![inventory::NAME.to_string(), orders::NAME.to_string()],
        timeout_ns: params.number("timeout"),
        deadline_ns: params.number("deadline"),
        retries: params.number("retries") as u32,
    }
}
