//! Scenario files: the schema, validation with readable errors, the protocol registry and
//! the built-in catalogue.
//!
//! A scenario is TOML (see `scenarios/*.toml` and the README for the schema). Parsing
//! reports every problem in one pass, each with file:line:column, what was expected and,
//! for a misspelt key, the nearest known one. A valid `Scenario` plus `RunOptions` builds
//! a `Run`. This module never performs I/O: callers hand it text.

mod builtin;
mod parse;
mod protocols;
mod values;

pub use builtin::{builtin, builtin_names, BUILTINS};
pub use parse::parse;
pub use protocols::{
    ping_pong_bench, ping_pong_sim, protocol, ParamKind, ParamSpec, ParamValue, ProtocolSpec,
    PROTOCOLS,
};
pub use values::{format_duration, parse_duration_ns};

use std::collections::BTreeMap;
use std::fmt;

use crate::bugs::BugSet;
use crate::engine::{Limits, Run, SimConfig};
use crate::fault::{NemesisConfig, ScheduledFault};
use crate::net::LinkModel;
use crate::node::NodeId;

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
    pub kind: String,
    pub count: u32,
}

/// A validated scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
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
    /// Invariants to check; all of the protocol's when the file names none.
    pub checks: Vec<String>,
    pub bugs: Vec<String>,
    /// Protocol parameters, validated against the protocol's `ParamSpec`s.
    pub params: BTreeMap<String, ParamValue>,
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

impl Scenario {
    pub fn node_count(&self) -> u32 {
        self.nodes.iter().map(|group| group.count).sum()
    }

    /// The kind of each node, in id order.
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

    /// A protocol parameter: the file's value or the protocol's default.
    pub fn param_value(&self, name: &str) -> ParamValue {
        if let Some(value) = self.params.get(name) {
            return value.clone();
        }
        let spec = protocol(&self.protocol).expect("validated protocol");
        let param = spec.params.iter().find(|p| p.name == name);
        let param = param.unwrap_or_else(|| panic!("{} has no parameter {name}", self.protocol));
        param.kind.default_value()
    }

    /// A count, duration (ns) or flag (0 or 1) parameter.
    pub fn param(&self, name: &str) -> u64 {
        match self.param_value(name) {
            ParamValue::Number(n) => n,
            other => panic!("parameter {name} is not a number: {other:?}"),
        }
    }

    pub fn param_flag(&self, name: &str) -> bool {
        self.param(name) != 0
    }

    pub fn param_text(&self, name: &str) -> String {
        match self.param_value(name) {
            ParamValue::Text(text) => text,
            other => panic!("parameter {name} is not text: {other:?}"),
        }
    }

    pub fn param_list(&self, name: &str) -> Vec<String> {
        match self.param_value(name) {
            ParamValue::List(items) => items,
            other => panic!("parameter {name} is not a list: {other:?}"),
        }
    }

    /// Whether the scenario checks invariant `name`.
    pub fn checks(&self, name: &str) -> bool {
        self.checks.is_empty() || self.checks.iter().any(|check| check == name)
    }

    /// The engine configuration of one run; bug names must already be valid.
    pub fn sim_config(&self, options: &RunOptions) -> SimConfig {
        let mut bugs = options.bugs.clone();
        for name in &self.bugs {
            bugs.enable(name).expect("scenario bugs are validated");
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

    /// Builds a run of this scenario.
    pub fn build(&self, options: &RunOptions) -> Box<dyn Run> {
        let spec = protocol(&self.protocol).expect("validated protocol");
        (spec.build)(self, self.sim_config(options))
    }

    /// Checks that `--bug` names and injected faults fit this scenario; every problem.
    pub fn check_options(&self, options: &RunOptions) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        for name in options.bugs.names() {
            let bug = crate::bugs::find(name).expect("BugSet holds known bugs");
            if bug.protocol != self.protocol {
                problems.push(format!(
                    "bug `{name}` belongs to protocol `{}`, but scenario `{}` runs `{}`",
                    bug.protocol, self.name, self.protocol
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
