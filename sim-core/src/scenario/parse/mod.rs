//! Walks a scenario's TOML tree, checking every key and value and collecting every
//! problem with its location. The TOML parser gives byte spans; this turns them into
//! line:column (1-based, columns counted in characters).

use std::collections::BTreeMap;

use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

use super::{components_of, protocols_of, qualify, NodeGroup, Scenario, ScenarioError};
use crate::bugs::closest;
use crate::catalogue::{self, PROTOCOLS};
use crate::conn::ConnParams;
use crate::disk::DiskFaults;
use crate::engine::{Limits, EVENTS_MAX, NODES_MAX, QUEUE_MAX};
use crate::fault::{Fault, NemesisConfig, NemesisKind, ScheduledFault};
use crate::net::{Latency, LinkModel, LATENCY_NS_MAX, PPM};
use crate::node::NodeId;
use crate::params::{ParamKind, ParamSpec, ParamValue, Params};
use crate::proto::spec::ProtocolSpec;
use crate::proto::world::World;
use crate::units::parse_duration_ns;

mod faults;

type Spec = ProtocolSpec<World>;

const ROOT_KEYS: &[&str] = &[
    "name",
    "description",
    "protocol",
    "seed",
    "duration",
    "quiet",
    "nodes",
    "network",
    "faults",
    "nemesis",
    "checks",
    "bugs",
    "params",
    "connections",
    "limits",
];
/// The keys of a link model: in [network] (with `links`) and in each [[network.links]]
/// (with `from` and `to`).
const LINK_KEYS: &[&str] = &[
    "latency",
    "fifo",
    "loss",
    "duplicate",
    "reorder",
    "reorder_window",
];
const NEMESIS_KEYS: &[&str] = &[
    "faults",
    "interval_min",
    "interval_max",
    "fault_min",
    "fault_max",
    "skew_max",
    "targets",
];
const LIMIT_KEYS: &[&str] = &["events_max", "queue_max", "trace_events_max", "history_max"];
const CONNECTION_KEYS: &[&str] = &[
    "rto_min",
    "rto_max",
    "timeout",
    "window",
    "send_buffer",
    "delayed_ack",
    "keepalive",
];
const FAULT_ACTIONS: &[&str] = &[
    "crash",
    "restart",
    "pause",
    "resume",
    "partition",
    "partition-one-way",
    "heal",
    "clock-skew",
    "disk-fault",
];
const DURATION_NS_MAX: i128 = 24 * 3_600 * 1_000_000_000;
const DRIFT_PPM_MAX: i64 = 100_000;

type Value<'i> = Spanned<DeValue<'i>>;

/// Parses and validates a scenario. `file` only names the source in error messages.
pub fn parse(file: &str, text: &str) -> Result<Scenario, Vec<ScenarioError>> {
    let mut reader = Reader {
        file,
        text,
        errors: Vec::new(),
    };
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    for error in syntax_errors {
        let offset = error.span().map(|span| span.start).unwrap_or(0);
        let message = error.message().trim_end().to_string();
        reader.error(offset, format!("not valid TOML: {message}"));
    }
    if !reader.errors.is_empty() {
        return Err(reader.finish_errors());
    }
    let scenario = reader.scenario(root.get_ref());
    if reader.errors.is_empty() {
        Ok(scenario)
    } else {
        Err(reader.finish_errors())
    }
}

struct Reader<'t> {
    file: &'t str,
    text: &'t str,
    errors: Vec<ScenarioError>,
}

impl<'t> Reader<'t> {
    fn error(&mut self, offset: usize, message: String) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() as u32 + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() as u32 + 1;
        self.errors.push(ScenarioError {
            file: self.file.to_string(),
            line,
            column,
            message,
        });
    }

    fn finish_errors(&mut self) -> Vec<ScenarioError> {
        let mut errors = std::mem::take(&mut self.errors);
        errors.sort_by_key(|error| (error.line, error.column));
        errors.dedup();
        errors
    }

    fn scenario(&mut self, root: &DeTable<'_>) -> Scenario {
        self.check_keys(root, ROOT_KEYS, "the scenario");
        let name = self.required_string(root, "name", 0).unwrap_or_default();
        let description = self
            .required_string(root, "description", 0)
            .unwrap_or_default();
        let spec = self.protocol(root);
        let seed = self
            .integer(root, "seed", 0, i64::MAX)
            .map(|s| s as u64)
            .unwrap_or(1);
        let duration_ns = match get(root, "duration") {
            Some(_) => self
                .duration(root, "duration", 1_000, DURATION_NS_MAX)
                .map(|ns| ns as u64),
            None => {
                self.error(
                    0,
                    "missing key `duration` (the length of the fault phase, e.g. \"10s\")".into(),
                );
                None
            }
        };
        let quiet_ns = self
            .duration(root, "quiet", 0, DURATION_NS_MAX)
            .unwrap_or(5_000_000_000) as u64;
        let nodes = self.nodes(root, spec);
        let node_count: u32 = nodes.iter().map(|g| g.count).sum();
        let (link, links) = self.network(root, node_count);
        // Without a valid duration, fault times are only checked against the global bound,
        // so one mistake does not cascade into misleading errors on every fault.
        let faults = self.faults(
            root,
            node_count,
            duration_ns.unwrap_or(DURATION_NS_MAX as u64),
        );
        let duration_ns = duration_ns.unwrap_or(1_000);
        let nemesis = self.nemesis(root, &nodes);
        let protocol = spec.map(|s| s.name).unwrap_or_default();
        let components = components_of(protocol, &nodes);
        let invariants: Vec<&str> = components
            .iter()
            .filter_map(|name| catalogue::component(name))
            .flat_map(|component| component.invariants.iter().chain(component.gauges))
            .copied()
            .collect();
        let checks = self.name_list(root, "checks", Some(&invariants), "invariant");
        let bugs = self.bugs(root, &components);
        let params = self.params(root, protocol, &nodes);
        let conn = self.connections(root);
        let limits = self.limits(root);
        let scenario = Scenario {
            name,
            description,
            protocol: protocol.to_string(),
            seed,
            nodes,
            link,
            links,
            faults,
            nemesis,
            duration_ns,
            quiet_ns,
            checks,
            bugs,
            params,
            conn,
            limits,
        };
        if spec.is_some() && self.errors.is_empty() {
            self.check_protocols(root, &scenario);
        }
        scenario
    }

    /// Each protocol's own check of the whole scenario (kinds that must pair up...).
    fn check_protocols(&mut self, root: &DeTable<'_>, scenario: &Scenario) {
        let qualified = scenario.qualified_kinds();
        for protocol in scenario.protocols() {
            let spec = catalogue::protocol(protocol).expect("validated");
            let layout = scenario.layout(spec.name, &qualified, &|_| true);
            if let Err((key, message)) = (spec.check)(&layout) {
                let offset = get(root, key).map(|v| v.span().start).unwrap_or(0);
                self.error(offset, message);
            }
        }
    }

    fn check_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], context: &str) {
        for (key, _) in table.iter() {
            let key_text: &str = key.get_ref();
            if allowed.contains(&key_text) {
                continue;
            }
            let mut message = format!(
                "unknown key `{key_text}` in {context}; expected one of: {}",
                allowed.join(", ")
            );
            if let Some(close) = closest(key_text, allowed) {
                message.push_str(&format!(" (did you mean `{close}`?)"));
            } else if allowed != ROOT_KEYS && ROOT_KEYS.contains(&key_text) {
                message.push_str(&format!(
                    " (keys after a [table] header belong to that table: move `{key_text}` above the first header)"
                ));
            }
            self.error(key.span().start, message);
        }
    }

    fn required_string(&mut self, table: &DeTable<'_>, key: &str, at: usize) -> Option<String> {
        if get(table, key).is_none() {
            self.error(at, format!("missing key `{key}` (a string)"));
            return None;
        }
        self.string(table, key)
    }

    fn string(&mut self, table: &DeTable<'_>, key: &str) -> Option<String> {
        let value = get(table, key)?;
        match value.get_ref() {
            DeValue::String(text) => Some(text.to_string()),
            other => {
                self.wrong_type(value, key, "a string", other);
                None
            }
        }
    }

    fn wrong_type(&mut self, value: &Value<'_>, key: &str, expected: &str, found: &DeValue<'_>) {
        let found = found.type_str();
        self.error(
            value.span().start,
            format!("`{key}` must be {expected}, found {found}"),
        );
    }

    fn text_choice(
        &mut self,
        table: &DeTable<'_>,
        key: &str,
        choices: &[&str],
    ) -> Option<ParamValue> {
        let text = self.string(table, key)?;
        if !choices.is_empty() && !choices.contains(&text.as_str()) {
            let at = get(table, key).map(|v| v.span().start).unwrap_or(0);
            self.error(at, unknown(&format!("value of `{key}`"), &text, choices));
            return None;
        }
        Some(ParamValue::Text(text))
    }

    fn flag(&mut self, table: &DeTable<'_>, key: &str) -> Option<bool> {
        let value = get(table, key)?;
        match value.get_ref() {
            DeValue::Boolean(flag) => Some(*flag),
            other => {
                self.wrong_type(value, key, "true or false", other);
                None
            }
        }
    }

    fn integer(&mut self, table: &DeTable<'_>, key: &str, min: i64, max: i64) -> Option<i64> {
        let value = get(table, key)?;
        self.integer_value(value, key, min, max)
    }

    fn integer_value(&mut self, value: &Value<'_>, key: &str, min: i64, max: i64) -> Option<i64> {
        let DeValue::Integer(integer) = value.get_ref() else {
            self.wrong_type(value, key, "an integer", value.get_ref());
            return None;
        };
        let parsed = i128::from_str_radix(integer.as_str(), integer.radix()).ok();
        match parsed {
            Some(n) if n >= min as i128 && n <= max as i128 => Some(n as i64),
            _ => {
                let shown = parsed
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| integer.to_string());
                let message = format!("`{key}` must be between {min} and {max}, found {shown}");
                self.error(value.span().start, message);
                None
            }
        }
    }

    fn duration(&mut self, table: &DeTable<'_>, key: &str, min: i128, max: i128) -> Option<i128> {
        let value = get(table, key)?;
        let DeValue::String(text) = value.get_ref() else {
            let found = value.get_ref().type_str();
            let message =
                format!("`{key}` must be a duration string such as \"250ms\", found {found}");
            self.error(value.span().start, message);
            return None;
        };
        match parse_duration_ns(text) {
            Ok(ns) if ns >= min && ns <= max => Some(ns),
            Ok(_) => {
                let (lo, hi) = (show_ns(min), show_ns(max));
                self.error(
                    value.span().start,
                    format!("`{key}` must be between {lo} and {hi}, found \"{text}\""),
                );
                None
            }
            Err(message) => {
                self.error(value.span().start, format!("`{key}`: {message}"));
                None
            }
        }
    }

    /// A probability, a float or integer in [0, 1], as parts per million.
    fn probability(&mut self, table: &DeTable<'_>, key: &str) -> Option<u32> {
        let value = get(table, key)?;
        let number = match value.get_ref() {
            DeValue::Float(float) => float.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Integer(integer) => integer.as_str().parse::<f64>().ok(),
            other => {
                self.wrong_type(value, key, "a probability between 0 and 1", other);
                return None;
            }
        };
        match number {
            // Rounding a product is exact IEEE arithmetic: the same on every target.
            Some(p) if (0.0..=1.0).contains(&p) => Some((p * PPM as f64).round() as u32),
            _ => {
                self.error(
                    value.span().start,
                    format!("`{key}` must be a probability between 0 and 1"),
                );
                None
            }
        }
    }

    fn table<'a, 'i>(
        &mut self,
        table: &'a DeTable<'i>,
        key: &str,
    ) -> Option<(&'a DeTable<'i>, usize)> {
        let value = get(table, key)?;
        match value.get_ref() {
            DeValue::Table(inner) => Some((inner, value.span().start)),
            other => {
                self.wrong_type(value, key, "a table", other);
                None
            }
        }
    }

    fn array<'a, 'i>(&mut self, table: &'a DeTable<'i>, key: &str) -> Option<&'a DeArray<'i>> {
        let value = get(table, key)?;
        match value.get_ref() {
            DeValue::Array(items) => Some(items),
            other => {
                self.wrong_type(value, key, "an array", other);
                None
            }
        }
    }

    /// An array of tables, each with its span start.
    fn tables<'a, 'i>(
        &mut self,
        table: &'a DeTable<'i>,
        key: &str,
    ) -> Vec<(&'a DeTable<'i>, usize)> {
        let Some(items) = self.array(table, key) else {
            return Vec::new();
        };
        let mut tables = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::Table(inner) => tables.push((inner, item.span().start)),
                other => self.wrong_type(item, key, "an array of tables", other),
            }
        }
        tables
    }

    fn protocol(&mut self, root: &DeTable<'_>) -> Option<&'static Spec> {
        let known: Vec<&str> = PROTOCOLS.iter().map(|p| p.name).collect();
        let name = self.required_string(root, "protocol", 0)?;
        let found = catalogue::protocol(&name);
        if found.is_none() {
            let at = get(root, "protocol").map(|v| v.span().start).unwrap_or(0);
            self.error(at, unknown("protocol", &name, &known));
        }
        found
    }

    fn nodes(&mut self, root: &DeTable<'_>, spec: Option<&Spec>) -> Vec<NodeGroup> {
        if get(root, "nodes").is_none() {
            self.error(
                0,
                "missing key `nodes` (an array of tables: [[nodes]] kind = ..., count = ...)"
                    .into(),
            );
            return Vec::new();
        }
        let mut groups = Vec::new();
        for (table, at) in self.tables(root, "nodes") {
            self.check_keys(table, &["kind", "count"], "[[nodes]]");
            let kind = self.required_string(table, "kind", at);
            let count = match get(table, "count") {
                Some(_) => self.integer(table, "count", 1, NODES_MAX as i64),
                None => Some(1),
            };
            if let (Some(kind), Some(spec)) = (&kind, spec) {
                if let Err(message) = known_kind(spec, kind) {
                    let at = get(table, "kind").map(|v| v.span().start).unwrap_or(at);
                    self.error(at, message);
                }
            }
            if let (Some(kind), Some(count)) = (kind, count) {
                groups.push(NodeGroup {
                    kind,
                    count: count as u32,
                });
            }
        }
        let total: u64 = groups.iter().map(|g| g.count as u64).sum();
        if total > NODES_MAX as u64 {
            let at = get(root, "nodes").map(|v| v.span().start).unwrap_or(0);
            self.error(
                at,
                format!("{total} nodes in all; a scenario may have at most {NODES_MAX}"),
            );
            groups.clear();
        }
        groups
    }

    fn network(
        &mut self,
        root: &DeTable<'_>,
        node_count: u32,
    ) -> (LinkModel, Vec<(NodeId, NodeId, LinkModel)>) {
        let Some((table, at)) = self.table(root, "network") else {
            return (LinkModel::default(), Vec::new());
        };
        let network_keys: Vec<&str> = LINK_KEYS.iter().copied().chain(["links"]).collect();
        self.check_keys(table, &network_keys, "[network]");
        let link = self.link_model(table, LinkModel::default(), at);
        let mut links = Vec::new();
        for (entry, at) in self.tables(table, "links") {
            let link_keys: Vec<&str> = ["from", "to"]
                .into_iter()
                .chain(LINK_KEYS.iter().copied())
                .collect();
            self.check_keys(entry, &link_keys, "[[network.links]]");
            let from = self.node_id_key(entry, "from", node_count, at);
            let to = self.node_id_key(entry, "to", node_count, at);
            let model = self.link_model(entry, link, at);
            if let (Some(from), Some(to)) = (from, to) {
                links.push((from, to, model));
            }
        }
        (link, links)
    }

    fn link_model(&mut self, table: &DeTable<'_>, base: LinkModel, at: usize) -> LinkModel {
        let mut model = base;
        if let Some((latency, latency_at)) = self.table(table, "latency") {
            if let Some(parsed) = self.latency(latency, latency_at) {
                model.latency = parsed;
            }
        }
        model.fifo = self.flag(table, "fifo").unwrap_or(base.fifo);
        model.loss_ppm = self.probability(table, "loss").unwrap_or(base.loss_ppm);
        model.duplicate_ppm = self
            .probability(table, "duplicate")
            .unwrap_or(base.duplicate_ppm);
        model.reorder_ppm = self
            .probability(table, "reorder")
            .unwrap_or(base.reorder_ppm);
        model.reorder_ns_max = self
            .duration(table, "reorder_window", 0, LATENCY_NS_MAX as i128)
            .map(|ns| ns as u64)
            .unwrap_or(base.reorder_ns_max);
        if model.reorder_ppm > 0 && model.reorder_ns_max == 0 {
            self.error(
                at,
                "`reorder` needs a `reorder_window` above zero (how late a message may be)".into(),
            );
        }
        model
    }

    fn latency(&mut self, table: &DeTable<'_>, at: usize) -> Option<Latency> {
        let dists = ["fixed", "uniform", "long-tail"];
        let dist = self.required_string(table, "dist", at)?;
        let max = LATENCY_NS_MAX as i128;
        let latency = match dist.as_str() {
            "fixed" => {
                self.check_keys(table, &["dist", "value"], "a fixed latency");
                let ns = self.required_duration(table, "value", 0, max, at)?;
                Latency::Fixed { ns }
            }
            "uniform" | "long-tail" => {
                self.check_keys(
                    table,
                    &["dist", "min", "max"],
                    "a uniform or long-tail latency",
                );
                let min_ns = self.required_duration(table, "min", 0, max, at);
                let max_ns = self.required_duration(table, "max", 0, max, at);
                let (min_ns, max_ns) = (min_ns?, max_ns?);
                if dist == "uniform" {
                    Latency::Uniform { min_ns, max_ns }
                } else {
                    Latency::LongTail { min_ns, max_ns }
                }
            }
            other => {
                let at = get(table, "dist").map(|v| v.span().start).unwrap_or(at);
                self.error(at, unknown("latency distribution", other, &dists));
                return None;
            }
        };
        if let Err(message) = latency.validate() {
            self.error(at, message);
            return None;
        }
        Some(latency)
    }

    fn required_duration(
        &mut self,
        table: &DeTable<'_>,
        key: &str,
        min: i128,
        max: i128,
        at: usize,
    ) -> Option<u64> {
        if get(table, key).is_none() {
            self.error(
                at,
                format!("missing key `{key}` (a duration such as \"5ms\")"),
            );
            return None;
        }
        self.duration(table, key, min, max).map(|ns| ns as u64)
    }

    fn node_id_key(
        &mut self,
        table: &DeTable<'_>,
        key: &str,
        node_count: u32,
        at: usize,
    ) -> Option<NodeId> {
        match get(table, key) {
            Some(value) => self.node_id(value, key, node_count),
            None => {
                self.error(at, format!("missing key `{key}` (a node id)"));
                None
            }
        }
    }

    fn node_id(&mut self, value: &Value<'_>, key: &str, node_count: u32) -> Option<NodeId> {
        let last = node_count.saturating_sub(1) as i64;
        self.integer_value(value, key, 0, last)
            .map(|id| id as NodeId)
    }

    fn node_list(
        &mut self,
        table: &DeTable<'_>,
        key: &str,
        node_count: u32,
        at: usize,
    ) -> Option<Vec<NodeId>> {
        let Some(items) = self.array(table, key) else {
            self.error(at, format!("missing key `{key}` (an array of node ids)"));
            return None;
        };
        let mut nodes = Vec::new();
        for item in items.iter() {
            nodes.push(self.node_id(item, key, node_count)?);
        }
        if nodes.is_empty() {
            self.error(at, format!("`{key}` must name at least one node"));
            return None;
        }
        Some(nodes)
    }

    fn bugs(&mut self, root: &DeTable<'_>, components: &[&str]) -> Vec<String> {
        let Some(items) = self.array(root, "bugs") else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for item in items.iter() {
            let DeValue::String(name) = item.get_ref() else {
                self.wrong_type(item, "bugs", "an array of bug names", item.get_ref());
                continue;
            };
            match catalogue::find_bug(name) {
                None => self.error(item.span().start, catalogue::unknown_bug_message(name)),
                Some(bug) if !components.contains(&bug.protocol) => {
                    let message = format!(
                        "bug `{name}` lives in component `{}`, which no node of this scenario \
                         hosts (its nodes host: {})",
                        bug.protocol,
                        components.join(", ")
                    );
                    self.error(item.span().start, message);
                }
                Some(bug) => names.push(bug.name.to_string()),
            }
        }
        names
    }

    /// `[params]` sets the scenario's own protocol's parameters; a sub-table named
    /// after another protocol with nodes here (`[params.registry]`) sets that one's.
    fn params(
        &mut self,
        root: &DeTable<'_>,
        protocol: &str,
        nodes: &[NodeGroup],
    ) -> BTreeMap<String, Params> {
        let present = protocols_of(protocol, nodes);
        let mut params: BTreeMap<String, Params> = present
            .iter()
            .map(|name| {
                let spec = catalogue::protocol(name).expect("present protocols are known");
                (name.to_string(), Params::defaults(spec.params))
            })
            .collect();
        let Some((table, _)) = self.table(root, "params") else {
            return params;
        };
        let Some(spec) = catalogue::protocol(protocol) else {
            return params;
        };
        let others: Vec<&str> = present.iter().skip(1).copied().collect();
        let mut allowed: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
        allowed.extend(others.iter().copied());
        self.check_keys(
            table,
            &allowed,
            &format!("[params] of protocol `{}`", spec.name),
        );
        self.param_values(table, spec.params, params.get_mut(spec.name).expect("own"));
        for other in others {
            let Some((inner, _)) = self.table(table, other) else {
                continue;
            };
            let other_spec = catalogue::protocol(other).expect("present protocols are known");
            let names: Vec<&str> = other_spec.params.iter().map(|p| p.name).collect();
            self.check_keys(
                inner,
                &names,
                &format!("[params.{other}] of protocol `{other}`"),
            );
            self.param_values(
                inner,
                other_spec.params,
                params.get_mut(other).expect("present"),
            );
        }
        params
    }

    fn param_values(&mut self, table: &DeTable<'_>, specs: &[ParamSpec], params: &mut Params) {
        for param in specs {
            if get(table, param.name).is_none() {
                continue;
            }
            let value = match param.kind {
                ParamKind::Count { min, max, .. } => self
                    .integer(table, param.name, min as i64, max as i64)
                    .map(|n| ParamValue::Number(n as u64)),
                ParamKind::Duration { min_ns, max_ns, .. } => self
                    .duration(table, param.name, min_ns as i128, max_ns as i128)
                    .map(|n| ParamValue::Number(n as u64)),
                ParamKind::Flag { .. } => self
                    .flag(table, param.name)
                    .map(|b| ParamValue::Number(b as u64)),
                ParamKind::Text { choices, .. } => self.text_choice(table, param.name, choices),
                ParamKind::List { .. } => {
                    let items = self.name_list(table, param.name, None, param.name);
                    Some(ParamValue::List(items))
                }
            };
            if let Some(value) = value {
                params.set(param.name, value);
            }
        }
    }

    /// `[connections]`: how every connection in the run behaves (see `conn`).
    fn connections(&mut self, root: &DeTable<'_>) -> ConnParams {
        let mut params = ConnParams::default();
        let Some((table, at)) = self.table(root, "connections") else {
            return params;
        };
        self.check_keys(table, CONNECTION_KEYS, "[connections]");
        let durations: [(&str, &mut u64, i128); 5] = [
            ("rto_min", &mut params.rto_min_ns, 1_000),
            ("rto_max", &mut params.rto_max_ns, 1_000),
            ("timeout", &mut params.timeout_ns, 1_000),
            ("delayed_ack", &mut params.delayed_ack_ns, 0),
            ("keepalive", &mut params.keepalive_ns, 0),
        ];
        for (key, slot, min) in durations {
            if let Some(ns) = self.duration(table, key, min, DURATION_NS_MAX) {
                *slot = ns as u64;
            }
        }
        if let Some(n) = self.integer(table, "window", 1, 4_096) {
            params.window = n as u32;
        }
        if let Some(n) = self.integer(table, "send_buffer", 0, 10_000_000) {
            params.send_buffer = n as u32;
        }
        if let Err((key, problem)) = params.validate() {
            let offset = get(table, key).map(|v| v.span().start).unwrap_or(at);
            self.error(offset, format!("[connections] `{key}` {problem}"));
        }
        params
    }

    fn limits(&mut self, root: &DeTable<'_>) -> Limits {
        let mut limits = Limits::default();
        let Some((table, _)) = self.table(root, "limits") else {
            return limits;
        };
        self.check_keys(table, LIMIT_KEYS, "[limits]");
        if let Some(n) = self.integer(table, "events_max", 1, EVENTS_MAX as i64) {
            limits.events_max = n as u64;
        }
        if let Some(n) = self.integer(table, "queue_max", 16, QUEUE_MAX as i64) {
            limits.queue_max = n as u32;
        }
        if let Some(n) = self.integer(table, "trace_events_max", 0, 10_000_000) {
            limits.trace_events_max = n as u32;
        }
        if let Some(n) = self.integer(table, "history_max", 0, 10_000_000) {
            limits.history_max = n as u32;
        }
        limits
    }
}

/// Whether `kind` names a node kind in a scenario of `spec`: one of its own, or
/// `protocol.kind` of any protocol.
fn known_kind(spec: &Spec, kind: &str) -> Result<(), String> {
    let qualified = qualify(spec.name, kind);
    let (protocol, name) = qualified.split_once('.').expect("qualified");
    if let Some(kind_spec) = catalogue::protocol(protocol).and_then(|other| other.kind(name)) {
        debug_assert_eq!(kind_spec.name, name);
        return Ok(());
    }
    let own: Vec<&str> = spec.kinds.iter().map(|k| k.name).collect();
    let mut message = format!(
        "unknown node kind for protocol `{}`: `{kind}`; expected one of: {} (another \
         protocol's kind is written `protocol.kind`, e.g. `registry.server`)",
        spec.name,
        own.join(", ")
    );
    let elsewhere = PROTOCOLS
        .iter()
        .find(|other| other.name != spec.name && other.kind(kind).is_some());
    if let Some(close) = closest(kind, &own) {
        message.push_str(&format!(" (did you mean `{close}`?)"));
    } else if let Some(other) = elsewhere {
        message.push_str(&format!(" (did you mean `{}.{kind}`?)", other.name));
    }
    Err(message)
}

fn get<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<&'a Value<'i>> {
    table
        .iter()
        .find(|(k, _)| {
            let k: &str = k.get_ref();
            k == key
        })
        .map(|(_, v)| v)
}

fn unknown(what: &str, name: &str, known: &[&str]) -> String {
    let mut message = format!(
        "unknown {what}: `{name}`; expected one of: {}",
        known.join(", ")
    );
    if let Some(close) = closest(name, known) {
        message.push_str(&format!(" (did you mean `{close}`?)"));
    }
    message
}

fn show_ns(ns: i128) -> String {
    if ns < 0 {
        format!("-{}", super::format_duration(ns.unsigned_abs() as u64))
    } else {
        super::format_duration(ns as u64)
    }
}
