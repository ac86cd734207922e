//! The workloads RPC scenarios run: an `inventory` service (a read safe to repeat, a
//! reservation that is not), provider nodes that serve it and consumer nodes that call
//! it at a steady pace, a bounded number of calls in flight. The service is declared with
//! `rpc_service!` like any user's would be.

use std::collections::BTreeMap;

use rand::Rng;

use super::consumer::{Consumer, Event};
use super::provider::Provider;
use super::{Host, Timer};
use crate::node::{Ctx, Node, NodeId, TimerId, Wraps};

crate::rpc_service! {
    /// Stock of items and reservations of them.
    pub mod inventory: Inventory = "inventory" {
        #[idempotent] fn stock(item: String) -> u32;
        fn reserve(item: String, quantity: u32) -> Result<u32, String>;
    }
}

/// A provider's shelf: every item starts with the same stock.
#[derive(Debug)]
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

/// A node that provides the service.
pub struct ProviderNode {
    provider: Provider,
}

impl ProviderNode {
    pub fn new(provider: Provider) -> Self {
        Self { provider }
    }
}

impl<H: Host> Node<H> for ProviderNode {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.provider.start(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        let _ = self.provider.take_message(ctx, from, msg);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
        let _ = self.provider.take_timer(ctx, id, timer);
    }

    fn role(&self) -> String {
        "provider".into()
    }

    fn inspect(&self) -> String {
        self.provider.describe()
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

/// A node that calls the service.
pub struct ConsumerNode {
    consumer: Consumer,
    traffic: Traffic,
    issued: u32,
    answered: u32,
    failed: u32,
    in_flight: u32,
}

impl ConsumerNode {
    pub fn new(consumer: Consumer, traffic: Traffic) -> Self {
        Self {
            consumer,
            traffic,
            issued: 0,
            answered: 0,
            failed: 0,
            in_flight: 0,
        }
    }

    fn on_events<H: Host>(&mut self, events: Vec<Event>, _ctx: &mut Ctx<'_, H>) {
        for Event::Done { result, .. } in events {
            self.in_flight = self.in_flight.saturating_sub(1);
            self.answered += 1;
            self.failed += result.is_err() as u32;
        }
    }

    fn next<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        if self.issued >= self.traffic.calls {
            return;
        }
        ctx.set_timer(self.traffic.think_ns, Timer::Next);
        // The application starts calling once its reference has found a provider (Dubbo's
        // `check`), then calls whatever the registry says.
        let ready = self.issued > 0 || !self.consumer.providers().is_empty();
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
        let request = if write {
            inventory::Client::reserve(item, 1).erase()
        } else {
            inventory::Client::stock(item).erase()
        };
        self.in_flight += 1;
        let (_, events) = self.consumer.invoke(ctx, request);
        self.on_events(events, ctx);
    }
}

impl<H: Host> Node<H> for ConsumerNode {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.consumer.start(ctx);
        ctx.set_timer(self.traffic.think_ns, Timer::Next);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        if let Ok(events) = self.consumer.take_message(ctx, from, msg) {
            self.on_events(events, ctx);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
        match self.consumer.take_timer(ctx, id, timer) {
            Ok(events) => self.on_events(events, ctx),
            Err(timer) => {
                if let Ok(Timer::Next) = Wraps::<Timer>::into_part(timer) {
                    self.next(ctx);
                }
            }
        }
    }

    fn role(&self) -> String {
        "consumer".into()
    }

    fn inspect(&self) -> String {
        format!(
            "calls issued {} of {}, answered {}, failed {}, in flight {}\n{}",
            self.issued,
            self.traffic.calls,
            self.answered,
            self.failed,
            self.in_flight,
            self.consumer.describe()
        )
    }
}

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
