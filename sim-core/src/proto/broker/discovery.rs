//! Finding the broker through the registry, as services find each other in a platform:
//! the broker registers itself as an ephemeral node under `/services/amqp/providers`,
//! and publishers and consumers list that directory (with a watch) and connect to the
//! broker they find there. Both sides host a registry client beside their broker role,
//! so this is where the broker and registry components compose in one node.
//!
//! `Announced` wraps the broker node; `Discovering` wraps a workload node and builds it
//! only once a broker is known. Neither changes what the broker or the workload does.

use std::rc::Rc;

use super::Host;
use crate::node::{Ctx, Node, NodeId, TimerId, Wraps};
use crate::proto::registry::client::{self as registry_client, Client, ClientConfig, Event};
use crate::proto::registry::recipes::Registration;
use crate::proto::registry::ClientHost;

/// The interface brokers register under.
pub const INTERFACE: &str = "amqp";

/// What a node that talks to both the broker and the registry needs of its host.
pub trait DiscoveryHost: Host + ClientHost {}
impl<P: Host + ClientHost> DiscoveryHost for P {}

/// The address a broker registers: `node-<id>`.
pub fn address_of(node: NodeId) -> String {
    format!("node-{node}")
}

/// The broker a registered address names, if it is one.
pub fn node_of(address: &str) -> Option<NodeId> {
    address.strip_prefix("node-")?.parse().ok()
}

/// A registry session with one registration (announce) or one watched directory
/// (discover).
struct Directory {
    client: Client,
    registration: Registration,
    announce: bool,
}

impl Directory {
    fn new(config: ClientConfig, node: NodeId, announce: bool) -> Self {
        Self {
            client: Client::new(config),
            registration: Registration::new(INTERFACE, &address_of(node)),
            announce,
        }
    }

    /// The brokers the latest listing showed, in the registry's order.
    fn brokers(&self) -> Vec<NodeId> {
        let found = self.registration.providers().iter();
        found.filter_map(|address| node_of(address)).collect()
    }

    fn handle<H: ClientHost>(&mut self, ctx: &mut Ctx<'_, H>, events: Vec<Event>) {
        for event in events {
            if event == Event::Expired {
                self.client.new_session(ctx);
                continue;
            }
            let connected = matches!(event, Event::Connected { .. });
            let changed = self.registration.on_event(ctx, &mut self.client, &event);
            if self.client.is_busy() {
                continue;
            }
            if connected && self.announce && !self.registration.is_registered() {
                self.registration.register(ctx, &mut self.client);
            } else if connected || changed {
                self.registration.discover(ctx, &mut self.client);
            }
        }
    }

    /// Takes `msg` if it is the registry client's.
    fn take_message<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        msg: H::Msg,
    ) -> Result<(), H::Msg> {
        let events = self.client.take_message(ctx, from, msg)?;
        self.handle(ctx, events);
        Ok(())
    }

    /// The client's tick also retries what failed: a registration cut short by a lost
    /// connection, or a listing of a directory no broker has created yet (a `NoNode`
    /// listing sets no watch, so nothing else would wake us).
    fn take_timer<H: ClientHost>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        id: TimerId,
        timer: H::Timer,
    ) -> Result<(), H::Timer> {
        let tick =
            Wraps::<registry_client::Timer>::part(&timer) == Some(&registry_client::Timer::Tick);
        let events = self.client.take_timer(ctx, id, timer)?;
        self.handle(ctx, events);
        if !tick || !self.client.is_connected() || self.client.is_busy() {
            return Ok(());
        }
        if self.announce && !self.registration.is_registered() {
            self.registration.register(ctx, &mut self.client);
        } else if !self.announce && self.brokers().is_empty() {
            self.registration.discover(ctx, &mut self.client);
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "registry session={:#x} state={:?} registered={} brokers seen={:?}",
            self.client.session(),
            self.client.state(),
            self.registration.is_registered(),
            self.registration.providers()
        )
    }
}

/// A broker node that registers itself in the registry.
pub struct Announced<H: DiscoveryHost> {
    broker: Box<dyn Node<H>>,
    directory: Directory,
}

impl<H: DiscoveryHost> Announced<H> {
    pub fn new(id: NodeId, broker: Box<dyn Node<H>>, registry: ClientConfig) -> Self {
        Self {
            broker,
            directory: Directory::new(registry, id, true),
        }
    }
}

impl<H: DiscoveryHost> Node<H> for Announced<H> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.directory.client.start(ctx);
        self.broker.on_start(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        if let Err(msg) = self.directory.take_message(ctx, from, msg) {
            self.broker.on_message(ctx, from, msg);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
        if let Err(timer) = self.directory.take_timer(ctx, id, timer) {
            self.broker.on_timer(ctx, id, timer);
        }
    }

    fn role(&self) -> String {
        self.broker.role()
    }

    fn inspect(&self) -> String {
        format!("{}\n{}", self.broker.inspect(), self.directory.describe())
    }
}

/// Builds a workload node once the broker it should use is known.
pub type WorkloadFactory<H> = Rc<dyn Fn(NodeId) -> Box<dyn Node<H>>>;

/// A publisher or consumer that finds its broker through the registry first.
pub struct Discovering<H: DiscoveryHost> {
    directory: Directory,
    build: WorkloadFactory<H>,
    /// The workload and the broker it was built for, once one was found.
    workload: Option<(NodeId, Box<dyn Node<H>>)>,
}

impl<H: DiscoveryHost> Discovering<H> {
    pub fn new(id: NodeId, registry: ClientConfig, build: WorkloadFactory<H>) -> Self {
        Self {
            directory: Directory::new(registry, id, false),
            build,
            workload: None,
        }
    }

    /// Starts the workload once the directory names a broker. A later change of broker
    /// is only noted: the broker client reconnects to the broker it knows, which
    /// restarts with the same node id.
    fn after_directory(&mut self, ctx: &mut Ctx<'_, H>) {
        let Some(&broker) = self.directory.brokers().first() else {
            return;
        };
        match &self.workload {
            None => {
                ctx.annotate("discovery.broker", broker);
                let mut workload = (self.build)(broker);
                workload.on_start(ctx);
                self.workload = Some((broker, workload));
            }
            Some((known, _)) if *known != broker => {
                ctx.note(format!(
                    "the registry names broker {broker}; staying with {known}"
                ));
            }
            Some(_) => {}
        }
    }
}

impl<H: DiscoveryHost> Node<H> for Discovering<H> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.directory.client.start(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        match self.directory.take_message(ctx, from, msg) {
            Ok(()) => self.after_directory(ctx),
            Err(msg) => {
                if let Some((_, workload)) = &mut self.workload {
                    workload.on_message(ctx, from, msg);
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
        match self.directory.take_timer(ctx, id, timer) {
            Ok(()) => self.after_directory(ctx),
            Err(timer) => {
                if let Some((_, workload)) = &mut self.workload {
                    workload.on_timer(ctx, id, timer);
                }
            }
        }
    }

    fn role(&self) -> String {
        match &self.workload {
            Some((_, workload)) => workload.role(),
            None => "discovering".to_string(),
        }
    }

    fn inspect(&self) -> String {
        match &self.workload {
            Some((broker, workload)) => format!(
                "broker {broker} (found in the registry)\n{}\n{}",
                workload.inspect(),
                self.directory.describe()
            ),
            None => format!("looking for a broker\n{}", self.directory.describe()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_their_node() {
        assert_eq!(address_of(7), "node-7");
        assert_eq!(node_of("node-7"), Some(7));
        assert_eq!(node_of("10.0.0.1:20880"), None);
        assert_eq!(node_of("node-x"), None);
    }
}
