//! What a protocol declares so scenarios can run it, and what it hands back to build a
//! run: node kinds (with the components each hosts), parameters, the check of a whole
//! scenario, and a builder that returns node factories and invariants.
//!
//! A component (ZAB, the registry, the broker...) owns invariants and planted bugs; a
//! protocol owns node kinds that host components. A scenario may mix kinds of several
//! protocols; each protocol present builds its own nodes and invariants from a `Layout`,
//! the scenario as it sees it. This module never names a protocol.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::bugs::BugInfo;
use crate::conn::ConnParams;
use crate::engine::Limits;
use crate::invariant::Invariant;
use crate::node::{Node, NodeId, Proto};
use crate::params::{ParamSpec, Params};

/// A kind of node a protocol offers, and the components it hosts (whose invariants and
/// bugs then apply to a scenario that has it).
#[derive(Clone, Copy, Debug)]
pub struct KindSpec {
    pub name: &'static str,
    pub doc: &'static str,
    pub components: &'static [&'static str],
}

/// A reusable piece that nodes host: its invariants, its gauges and its planted bugs.
#[derive(Clone, Copy, Debug)]
pub struct ComponentSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// Checkers that find violations; each is tripped by at least one planted bug.
    pub invariants: &'static [&'static str],
    /// Checkers that only count (a documented trade-off, such as stale reads from a
    /// read-only server); they never report a finding.
    pub gauges: &'static [&'static str],
    pub bugs: &'static [BugInfo],
    /// Rare paths the component marks with `Ctx::sometimes`; a swarm reports which of
    /// them its seeds reached.
    pub marks: &'static [Mark],
}

/// A rare path worth reaching, and how to reach it when no seed did.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    /// `component.path`, as the code passes it to `Ctx::sometimes`.
    pub name: &'static str,
    pub doc: &'static str,
    /// A scenario setting that reaches it (a nemesis fault kind, a parameter).
    pub hint: &'static str,
}

pub struct ProtocolSpec<P: Proto> {
    pub name: &'static str,
    pub description: &'static str,
    pub kinds: &'static [KindSpec],
    pub params: &'static [ParamSpec],
    /// Checks that need the whole scenario (kinds that must pair up...); an error names
    /// the root key it is about (`nodes` or `params`) for its location.
    pub check: fn(&Layout) -> Result<(), (&'static str, String)>,
    pub build: fn(&Layout) -> Part<P>,
}

impl<P: Proto> ProtocolSpec<P> {
    pub fn kind(&self, name: &str) -> Option<&'static KindSpec> {
        self.kinds.iter().find(|kind| kind.name == name)
    }
}

/// One scenario as one protocol sees it.
pub struct Layout<'a> {
    pub protocol: &'static str,
    /// Every node's kind, qualified: `registry.server`, `broker.publisher`.
    pub kinds: &'a [String],
    /// This protocol's parameters.
    pub params: &'a Params,
    /// Every protocol's parameters, by protocol name (for a protocol that talks to
    /// another's nodes, such as brokers that register in the registry).
    pub all_params: &'a BTreeMap<String, Params>,
    pub limits: Limits,
    /// How the scenario's connections behave (`[connections]`).
    pub conn: ConnParams,
    /// Whether the scenario checks invariant `name`.
    pub checks: &'a dyn Fn(&str) -> bool,
}

impl Layout<'_> {
    /// The ids of this protocol's nodes of `kind`, in id order.
    pub fn ids_of(&self, kind: &str) -> Vec<NodeId> {
        self.ids_of_in(self.protocol, kind)
    }

    /// The ids of `protocol`'s nodes of `kind`, in id order.
    pub fn ids_of_in(&self, protocol: &str, kind: &str) -> Vec<NodeId> {
        (0..self.kinds.len() as NodeId)
            .filter(|id| {
                let full = &self.kinds[*id as usize];
                full.strip_prefix(protocol)
                    .and_then(|rest| rest.strip_prefix('.'))
                    == Some(kind)
            })
            .collect()
    }

    /// Another protocol's parameters, when it has nodes in the scenario.
    pub fn params_of(&self, protocol: &str) -> Option<&Params> {
        self.all_params.get(protocol)
    }

    pub fn count(&self, kind: &str) -> usize {
        self.ids_of(kind).len()
    }

    pub fn node_count(&self) -> u32 {
        self.kinds.len() as u32
    }
}

/// Builds a node of one kind; called at boot and at every restart.
pub type NodeFactory<P> = Rc<dyn Fn(NodeId) -> Box<dyn Node<P>>>;

/// What one protocol contributes to a run: a factory per kind, and its invariants.
pub struct Part<P: Proto> {
    pub factories: Vec<(&'static str, NodeFactory<P>)>,
    pub invariants: Vec<Box<dyn Invariant<P>>>,
}

impl<P: Proto> Default for Part<P> {
    fn default() -> Self {
        Self {
            factories: Vec::new(),
            invariants: Vec::new(),
        }
    }
}

impl<P: Proto> Part<P> {
    pub fn node(
        &mut self,
        kind: &'static str,
        factory: impl Fn(NodeId) -> Box<dyn Node<P>> + 'static,
    ) {
        self.factories.push((kind, Rc::new(factory)));
    }

    /// Adds `invariant` when the scenario checks it.
    pub fn check(&mut self, layout: &Layout, invariant: impl Invariant<P> + 'static) {
        if (layout.checks)(invariant.name()) {
            self.invariants.push(Box::new(invariant));
        }
    }
}
