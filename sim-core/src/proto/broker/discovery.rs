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
use crate::node::{Ctx, Node, NodeId, TimerId};
use crate::proto::registry::client::ClientConfig;
use crate::proto::registry::recipes::Directory;
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

/// The brokers a directory listing names, in the registry's order.
fn brokers(directory: &Directory) -> Vec<NodeId> {
    let found = directory.listing().iter();
    found.filter_map(|address| node_of(address)).collect()
}

/// The directory brokers announce themselves in.
fn providers_dir() -> String {
    format!("/services/{INTERFACE}/providers")
}

/// A broker node that registers itself in the registry.
#[derive(Clone)]
pub struct Announced<H: DiscoveryHost> {
    broker: Box<dyn Node<H>>,
    directory: Directory,
}

impl<H: DiscoveryHost> Announced<H> {
    pub fn new(id: NodeId, broker: Box<dyn Node<H>>, registry: ClientConfig) -> Self {
        Self {
            broker,
            directory: Directory::announcing(registry, &providers_dir(), &address_of(id)),
        }
    }
}

impl<H: DiscoveryHost> Node<H> for Announced<H> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.directory.start(ctx);
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
#[derive(Clone)]
pub struct Discovering<H: DiscoveryHost> {
    directory: Directory,
    build: WorkloadFactory<H>,
    /// The workload and the broker it was built for, once one was found.
    workload: Option<(NodeId, Box<dyn Node<H>>)>,
}

impl<H: DiscoveryHost> Discovering<H> {
    pub fn new(registry: ClientConfig, build: WorkloadFactory<H>) -> Self {
        Self {
            directory: Directory::watching(registry, &providers_dir()),
            build,
            workload: None,
        }
    }

    /// Starts the workload once the directory names a broker. A later change of broker
    /// is only noted: the broker client reconnects to the broker it knows, which
    /// restarts with the same node id.
    fn after_directory(&mut self, ctx: &mut Ctx<'_, H>) {
        let Some(&broker) = brokers(&self.directory).first() else {
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
        self.directory.start(ctx);
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
