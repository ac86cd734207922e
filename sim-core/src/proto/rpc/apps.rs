//! The workloads RPC scenarios run: an `inventory` service (a read safe to repeat, a
//! reservation that is not) and provider nodes that serve it; an `orders` service whose
//! providers serve each call by calling the inventory (a nested call, one trace); and
//! caller nodes that call at a steady pace with a bounded number of calls in flight,
//! either the inventory directly (`consumer`) or both services through the gateway with
//! a credential (`client`). The services are declared with `rpc_service!` like any
//! user's would be.

use std::collections::BTreeMap;

use rand::Rng;

use super::codec::{self, Answer, Request};
use super::provider::Incoming;
use super::runtime::{Output, Runtime};
use super::{CallId, Host, RpcError, Timer};
use crate::node::{Ctx, Node, NodeId, TimerId, Wraps};

crate::rpc_service! {
    /// Stock of items and reservations of them.
    pub mod inventory: Inventory = "inventory" {
        #[idempotent] fn stock(item: String) -> u32;
        fn reserve(item: String, quantity: u32) -> Result<u32, String>;
    }
}

crate::rpc_service! {
    /// Orders, placed by reserving stock in the inventory. Its providers (`OrdersNode`)
    /// answer by calling the inventory, so the trait is served by hand, not by `Server`.
    pub mod orders: Orders = "orders" {
        fn place(item: String, quantity: u32) -> Result<u32, String>;
        #[idempotent] fn status(item: String) -> u32;
    }
}

/// A provider's shelf: every item starts with the same stock.
#[derive(Clone, Debug)]
pub struct Shelf {
    initial: u32,
    reserved: BTreeMap<String, u32>,
}

impl Shelf {
    pub fn new(initial: u32) -> Self {
        Self {
            initial,
            reserved: BTreeMap::new(),
        }
    }
}

impl inventory::Inventory for Shelf {
    fn stock(&mut self, item: String) -> u32 {
        self.initial - self.reserved.get(&item).copied().unwrap_or(0)
    }

    fn reserve(&mut self, item: String, quantity: u32) -> Result<u32, String> {
        let reserved = self.reserved.entry(item).or_insert(0);
        let left = self.initial - *reserved;
        if quantity > left {
            return Err(format!("only {left} left"));
        }
        *reserved += quantity;
        Ok(left - quantity)
    }
}

/// A node that provides the inventory (a handler-served provider in a runtime).
#[derive(Clone)]
pub struct ProviderNode {
    runtime: Runtime,
}

impl ProviderNode {
    pub fn new(runtime: Runtime) -> Self {
        Self { runtime }
    }
}

impl<H: Host> Node<H> for ProviderNode {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.runtime.start(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        // A handler-served provider hands nothing to its node.
        let _ = self.runtime.take_message(ctx, from, msg);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
        let _ = self.runtime.take_timer(ctx, id, timer);
    }

    fn role(&self) -> String {
        "provider".into()
    }

    fn inspect(&self) -> String {
        self.runtime.describe()
    }
}

/// The consumers' traffic.
#[derive(Clone, Debug)]
pub struct Traffic {
    pub calls: u32,
    pub think_ns: u64,
    /// Calls in flight at most.
    pub concurrency: u32,
    /// Every n-th call is a reservation (0: none).
    pub write_every: u32,
    /// Distinct items (the consistent-hash keys).
    pub keys: u32,
}

/// Whom a caller node calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The inventory's providers, found in the registry.
    Direct,
    /// Both services through the gateway, presenting `token` (None: no credential).
    Gateway { token: Option<String> },
}

/// A node that calls at a steady pace with its runtime's one consumer.
#[derive(Clone)]
pub struct ConsumerNode {
    runtime: Runtime,
    traffic: Traffic,
    route: Route,
    issued: u32,
    answered: u32,
    failed: u32,
    in_flight: u32,
}

impl ConsumerNode {
    pub fn new(runtime: Runtime, traffic: Traffic, route: Route) -> Self {
        Self {
            runtime,
            traffic,
            route,
            issued: 0,
            answered: 0,
            failed: 0,
            in_flight: 0,
        }
    }

    fn on_outputs(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            if let Output::Done { result, .. } = output {
                self.in_flight = self.in_flight.saturating_sub(1);
                self.answered += 1;
                self.failed += result.is_err() as u32;
            }
        }
    }

    fn next<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        if self.issued >= self.traffic.calls {
            return;
        }
        ctx.set_timer(self.traffic.think_ns, Timer::Next);
        // The application starts calling once its reference has found a provider (Dubbo's
        // `check`), then calls whatever the registry says.
        let ready = self.issued > 0 || !self.runtime.consumer(0).providers().is_empty();
        if self.in_flight >= self.traffic.concurrency || !ready {
            return;
        }
        self.issued += 1;
        let item = format!(
            "item-{}",
            ctx.rng().random_range(0..self.traffic.keys.max(1))
        );
        let write =
            self.traffic.write_every > 0 && self.issued.is_multiple_of(self.traffic.write_every);
        let request = match &self.route {
            Route::Direct if write => inventory::Client::reserve(item, 1).erase(),
            Route::Direct => inventory::Client::stock(item).erase(),
            Route::Gateway { token } => {
                let request = if write {
                    orders::Client::place(item, 1).erase()
                } else if self.issued % 2 == 1 {
                    orders::Client::status(item).erase()
                } else {
                    inventory::Client::stock(item).erase()
                };
                request.with_token(token.clone())
            }
        };
        self.in_flight += 1;
        let (_, outputs) = self.runtime.invoke(ctx, 0, request);
        self.on_outputs(outputs);
    }
}

impl<H: Host> Node<H> for ConsumerNode {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.runtime.start(ctx);
        ctx.set_timer(self.traffic.think_ns, Timer::Next);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        if let Ok(outputs) = self.runtime.take_message(ctx, from, msg) {
            self.on_outputs(outputs);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
        match self.runtime.take_timer(ctx, id, timer) {
            Ok(outputs) => self.on_outputs(outputs),
            Err(timer) => {
                if let Ok(Timer::Next) = Wraps::<Timer>::into_part(timer) {
                    self.next(ctx);
                }
            }
        }
    }

    fn role(&self) -> String {
        match self.route {
            Route::Direct => "consumer".into(),
            Route::Gateway { .. } => "client".into(),
        }
    }

    fn inspect(&self) -> String {
        format!(
            "calls issued {} of {}, answered {}, failed {}, in flight {}\n{}",
            self.issued,
            self.traffic.calls,
            self.answered,
            self.failed,
            self.in_flight,
            self.runtime.describe()
        )
    }
}

/// A provider of `orders` that serves each call by calling the inventory within the
/// caller's span: `place` reserves, `status` reads the stock. A failure of the inventory
/// call is the order's business error, never a transport error its callers would retry.
/// Its runtime holds the orders provider and one consumer, of the inventory.
#[derive(Clone)]
pub struct OrdersNode {
    runtime: Runtime,
    /// Inventory calls in progress -> the order request they serve, and whether it is a
    /// write (`place`).
    waiting: BTreeMap<CallId, (u64, bool)>,
}

impl OrdersNode {
    pub fn new(runtime: Runtime) -> Self {
        Self {
            runtime,
            waiting: BTreeMap::new(),
        }
    }

    fn on_outputs<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Incoming(request) => self.on_request(ctx, request),
                Output::Done { call, result, .. } => {
                    let Some((work, write)) = self.waiting.remove(&call) else {
                        continue;
                    };
                    // A placed order is the orders service's own side effect: a `place`
                    // repeated by its callers shows as two (`rpc.at-most-once`).
                    let placed = write
                        && matches!(&result, Ok(Answer::Value(bytes))
                            if matches!(codec::decode::<Result<u32, String>>(bytes), Ok(Ok(_))));
                    // `place` answers what `reserve` answered and `status` what `stock`
                    // did: the same types, so the bytes pass through.
                    let answer = match result {
                        Ok(Answer::Value(bytes)) => Ok(bytes),
                        Ok(Answer::Empty) => {
                            Err(RpcError::Service("inventory answered nothing".into()))
                        }
                        Err(error) => {
                            Err(RpcError::Service(format!("inventory: {}", error.kind())))
                        }
                    };
                    if placed {
                        self.runtime.respond_applied(ctx, work, answer);
                    } else {
                        self.runtime.respond(ctx, work, answer);
                    }
                }
            }
        }
    }

    fn on_request<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, request: Incoming) {
        let call: Result<Request, RpcError> = match request.method.as_str() {
            "place" => codec::decode::<(String, u32)>(&request.args)
                .map(|(item, quantity)| inventory::Client::reserve(item, quantity).erase()),
            "status" => codec::decode::<(String,)>(&request.args)
                .map(|(item,)| inventory::Client::stock(item).erase()),
            other => Err(RpcError::UnknownMethod(other.to_string())),
        };
        match call {
            Ok(call) => {
                let (id, outputs) = self.runtime.invoke(ctx, 0, call.within(request.span));
                self.waiting
                    .insert(id, (request.work, request.method == "place"));
                self.on_outputs(ctx, outputs);
            }
            Err(error) => self.runtime.respond(ctx, request.work, Err(error)),
        }
    }
}

impl OrdersNode {
    pub fn describe(&self) -> String {
        format!(
            "{} orders waiting on the inventory\n{}",
            self.waiting.len(),
            self.runtime.describe()
        )
    }
}

super::runtime::runtime_node!(OrdersNode, "orders");

#[cfg(test)]
mod tests {
    use super::inventory::Inventory;
    use super::*;

    #[test]
    fn a_shelf_reserves_until_it_runs_out() {
        let mut shelf = Shelf::new(3);
        assert_eq!(shelf.reserve("a".into(), 2), Ok(1));
        assert_eq!(shelf.stock("a".into()), 1);
        assert_eq!(shelf.reserve("a".into(), 2), Err("only 1 left".into()));
        assert_eq!(shelf.stock("b".into()), 3);
    }
}
