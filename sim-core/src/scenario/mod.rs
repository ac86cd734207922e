//! Scenario files: the schema, validation with readable errors, building a run from every
//! protocol the scenario names, and the built-in scenarios.
//!
//! A scenario is TOML (see `scenarios/*.toml` and the README for the schema). Parsing
//! reports every problem in one pass, each with file:line:column, what was expected and,
//! for a misspelt key, the nearest known one. A valid `Scenario` plus `RunOptions` builds
//! a `Run`: every protocol with nodes in the scenario builds its part (`catalogue`), and
//! the parts run together in `World`. This module never performs I/O: callers hand it
//! text.

mod builtin;
mod parse;
mod write;

pub use builtin::{builtin, builtin_names, is_large, BUILTINS, LARGE};
pub use parse::parse;
pub use write::to_toml;

use std::collections::BTreeMap;
use std::fmt;

use crate::bugs::BugSet;
use crate::catalogue;
use crate::conn::ConnParams;
use crate::engine::{Factory, Limits, Run, Sim, SimConfig};
use crate::fault::{NemesisConfig, ScheduledFault};
use crate::invariant::Invariant;
use crate::net::LinkModel;
use crate::node::NodeId;
use crate::params::Params;
use crate::proto::spec::{Layout, NodeFactory};
use crate::proto::world::World;
use crate::units::format_duration;

/// The name `faultline run` uses when given none.
pub const DEFAULT_SCENARIO: &str = "registry-tour";

/// One problem in a scenario file, located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeGroup {
    /// As the file writes it: a kind of the scenario's protocol (`server`), or
    /// `protocol.kind` for another protocol's (`registry.server`).
    pub kind: String,
    pub count: u32,
}

/// A validated scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// The scenario's own protocol: unqualified kinds and `[params]` are its.
    pub protocol: String,
    /// The seed a run uses when none is given.
    pub seed: u64,
    pub nodes: Vec<NodeGroup>,
    pub link: LinkModel,
    pub links: Vec<(NodeId, NodeId, LinkModel)>,
    pub faults: Vec<ScheduledFault>,
    pub nemesis: Option<NemesisConfig>,
    /// Length of the fault phase; the quiet phase follows it.
    pub duration_ns: u64,
    pub quiet_ns: u64,
    /// Invariants to check; all of the hosted components' when the file names none.
    pub checks: Vec<String>,
    pub bugs: Vec<String>,
    /// Every protocol with nodes in the scenario, and its parameters (defaults filled).
    pub params: BTreeMap<String, Params>,
    /// How connections behave (`[connections]`; defaults when absent).
    pub conn: ConnParams,
    pub limits: Limits,
}

/// How one run of a scenario differs from the file.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub seed: Option<u64>,
    /// Planted bugs switched on in addition to the scenario's own.
    pub bugs: BugSet,
    /// Keep events for replay, `--trace` and displays (bounded by the limits).
    pub retain_trace: bool,
    /// Faults added by hand (the browser's clicks); they join the schedule.
    pub extra_faults: Vec<ScheduledFault>,
}

/// `kind` as a scenario of `protocol` writes it, qualified: `registry.server`.
pub fn qualify(protocol: &str, kind: &str) -> String {
    if kind.contains('.') {
        kind.to_string()
    } else {
        format!("{protocol}.{kind}")
    }
}

impl Scenario {
    pub fn node_count(&self) -> u32 {
        self.nodes.iter().map(|group| group.count).sum()
    }

    /// The kind of each node as the file writes it, in id order.
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds = Vec::with_capacity(self.node_count() as usize);
        for group in &self.nodes {
            kinds.extend(std::iter::repeat_n(
                group.kind.clone(),
                group.count as usize,
            ));
        }
        kinds
    }

    /// The kind of each node, qualified with its protocol, in id order.
    pub fn qualified_kinds(&self) -> Vec<String> {
        self.kinds()
            .iter()
            .map(|kind| qualify(&self.protocol, kind))
            .collect()
    }

    /// The protocols with nodes in this scenario, the scenario's own first.
    pub fn protocols(&self) -> Vec<&'static str> {
        protocols_of(&self.protocol, &self.nodes)
    }

    /// The components the scenario's nodes host, in catalogue order.
    pub fn components(&self) -> Vec<&'static str> {
        components_of(&self.protocol, &self.nodes)
    }

    /// Whether the scenario checks invariant `name`.
    pub fn checks(&self, name: &str) -> bool {
        self.checks.is_empty() || self.checks.iter().any(|check| check == name)
    }

    /// The engine configuration of one run; bug names must already be valid.
    pub fn sim_config(&self, options: &RunOptions) -> SimConfig {
        let mut bugs = options.bugs.clone();
        for name in &self.bugs {
            catalogue::enable_bug(&mut bugs, name).expect("scenario bugs are validated");
        }
        let mut faults = self.faults.clone();
        faults.extend(options.extra_faults.iter().cloned());
        SimConfig {
            scenario: self.name.clone(),
            seed: options.seed.unwrap_or(self.seed),
            kinds: self.kinds(),
            link: self.link,
            links: self.links.clone(),
            faults,
            nemesis: self.nemesis.clone(),
            fault_phase_ns: self.duration_ns,
            quiet_ns: self.quiet_ns,
            limits: self.limits,
            bugs,
            retain_trace: options.retain_trace,
        }
    }

    /// Builds a run of this scenario: each protocol present builds its nodes and
    /// invariants, and they run together.
    pub fn build(&self, options: &RunOptions) -> Box<dyn Run> {
        let qualified = self.qualified_kinds();
        let checks = |name: &str| self.checks(name);
        let mut factories: Vec<Option<NodeFactory<World>>> = vec![None; qualified.len()];
        let mut invariants: Vec<Box<dyn Invariant<World>>> = Vec::new();
        for protocol in self.protocols() {
            let spec = catalogue::protocol(protocol).expect("validated protocol");
            let layout = self.layout(spec.name, &qualified, &checks);
            let part = (spec.build)(&layout);
            for (kind, factory) in part.factories {
                for id in layout.ids_of(kind) {
                    factories[id as usize] = Some(factory.clone());
                }
            }
            invariants.extend(part.invariants);
        }
        let factories: Vec<NodeFactory<World>> = factories
            .into_iter()
            .map(|factory| factory.expect("every validated kind has a factory"))
            .collect();
        let factory: Factory<World> = std::rc::Rc::new(move |id, _kind| factories[id as usize](id));
        Box::new(Sim::new(self.sim_config(options), factory, invariants))
    }

    /// The scenario as `protocol` sees it; `qualified` is `qualified_kinds()`.
    pub fn layout<'a>(
        &'a self,
        protocol: &'static str,
        qualified: &'a [String],
        checks: &'a dyn Fn(&str) -> bool,
    ) -> Layout<'a> {
        Layout {
            protocol,
            kinds: qualified,
            params: &self.params[protocol],
            all_params: &self.params,
            limits: self.limits,
            conn: self.conn,
            checks,
        }
    }

    /// Checks that `--bug` names and injected faults fit this scenario; every problem.
    pub fn check_options(&self, options: &RunOptions) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let components = self.components();
        for name in options.bugs.names() {
            let bug = catalogue::find_bug(name).expect("BugSet holds known bugs");
            if !components.contains(&bug.protocol) {
                problems.push(format!(
                    "bug `{name}` lives in component `{}`, which no node of scenario `{}` hosts \
                     (its nodes host: {})",
                    bug.protocol,
                    self.name,
                    components.join(", ")
                ));
            }
        }
        for fault in &options.extra_faults {
            if fault.at_ns >= self.duration_ns {
                problems.push(format!(
                    "fault `{}` at {} is not inside the fault phase (0..{})",
                    fault.fault.describe(),
                    format_duration(fault.at_ns),
                    format_duration(self.duration_ns)
                ));
            }
            for node in fault.fault.nodes() {
                if node >= self.node_count() {
                    problems.push(format!(
                        "fault `{}` names node {node}; the scenario has nodes 0..{}",
                        fault.fault.describe(),
                        self.node_count()
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// The protocol of each group's kind, the scenario's own first, each once.
fn protocols_of(protocol: &str, nodes: &[NodeGroup]) -> Vec<&'static str> {
    let mut found: Vec<&'static str> = Vec::new();
    let own = catalogue::protocol(protocol).map(|spec| spec.name);
    found.extend(own);
    for group in nodes {
        let qualified = qualify(protocol, &group.kind);
        let name = qualified.split_once('.').map_or("", |(p, _)| p);
        if let Some(spec) = catalogue::protocol(name) {
            if !found.contains(&spec.name) {
                found.push(spec.name);
            }
        }
    }
    found
}

/// The components the groups' kinds host, in catalogue order.
fn components_of(protocol: &str, nodes: &[NodeGroup]) -> Vec<&'static str> {
    let mut hosted: Vec<&'static str> = Vec::new();
    for group in nodes {
        let qualified = qualify(protocol, &group.kind);
        let Some((name, kind)) = qualified.split_once('.') else {
            continue;
        };
        let Some(kind) = catalogue::protocol(name).and_then(|spec| spec.kind(kind)) else {
            continue;
        };
        hosted.extend(kind.components.iter().copied());
    }
    catalogue::COMPONENTS
        .iter()
        .map(|component| component.name)
        .filter(|name| hosted.contains(name))
        .collect()
}
