//! Writes a `Scenario` back as a scenario file that `parse` reads to the same value: what
//! `faultline shrink` saves and the browser's URL can carry. Parameters, connection
//! settings and limits are written only where they differ from their defaults, so a
//! small run gives a small file. This module never reads a file and never validates:
//! what it is given was validated when it was parsed or built from a parsed scenario.

use std::fmt::Write as _;

use super::Scenario;
use crate::catalogue;
use crate::conn::ConnParams;
use crate::engine::Limits;
use crate::fault::{Fault, NemesisConfig, ScheduledFault};
use crate::net::{Latency, LinkModel};
use crate::params::{ParamKind, ParamValue, Params};
use crate::units::{format_duration, format_ppm};

/// The scenario as TOML; `parse(to_toml(s)) == s` for every valid scenario.
pub fn to_toml(scenario: &Scenario) -> String {
    let mut out = String::new();
    let line = |out: &mut String, key: &str, value: String| {
        writeln!(out, "{key} = {value}").expect("writing to a String");
    };
    line(&mut out, "name", quote(&scenario.name));
    line(&mut out, "description", quote(&scenario.description));
    line(&mut out, "protocol", quote(&scenario.protocol));
    line(&mut out, "seed", scenario.seed.to_string());
    line(&mut out, "duration", duration(scenario.duration_ns));
    line(&mut out, "quiet", duration(scenario.quiet_ns));
    if !scenario.checks.is_empty() {
        line(&mut out, "checks", strings(&scenario.checks));
    }
    if !scenario.bugs.is_empty() {
        line(&mut out, "bugs", strings(&scenario.bugs));
    }
    for group in &scenario.nodes {
        out.push_str("\n[[nodes]]\n");
        line(&mut out, "kind", quote(&group.kind));
        line(&mut out, "count", group.count.to_string());
    }
    out.push_str("\n[network]\n");
    link_model(&mut out, &scenario.link);
    for (from, to, model) in &scenario.links {
        out.push_str("\n[[network.links]]\n");
        line(&mut out, "from", from.to_string());
        line(&mut out, "to", to.to_string());
        link_model(&mut out, model);
    }
    for fault in &scenario.faults {
        out.push_str("\n[[faults]]\n");
        fault_table(&mut out, fault);
    }
    if let Some(nemesis) = &scenario.nemesis {
        nemesis_table(&mut out, nemesis);
    }
    params(&mut out, scenario);
    connections(&mut out, &scenario.conn);
    limits(&mut out, &scenario.limits);
    out
}

/// A TOML basic string.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => {
                write!(quoted, "\\u{:04X}", c as u32).expect("writing to a String")
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| quote(item)).collect();
    format!("[{}]", quoted.join(", "))
}

fn ids(items: &[u32]) -> String {
    let ids: Vec<String> = items.iter().map(u32::to_string).collect();
    format!("[{}]", ids.join(", "))
}

fn duration(ns: u64) -> String {
    quote(&format_duration(ns))
}

fn link_model(out: &mut String, model: &LinkModel) {
    let latency = match model.latency {
        Latency::Fixed { ns } => format!("{{ dist = \"fixed\", value = {} }}", duration(ns)),
        Latency::Uniform { min_ns, max_ns } => format!(
            "{{ dist = \"uniform\", min = {}, max = {} }}",
            duration(min_ns),
            duration(max_ns)
        ),
        Latency::LongTail { min_ns, max_ns } => format!(
            "{{ dist = \"long-tail\", min = {}, max = {} }}",
            duration(min_ns),
            duration(max_ns)
        ),
    };
    let _ = writeln!(out, "latency = {latency}");
    let _ = writeln!(out, "fifo = {}", model.fifo);
    let _ = writeln!(out, "loss = {}", format_ppm(model.loss_ppm));
    let _ = writeln!(out, "duplicate = {}", format_ppm(model.duplicate_ppm));
    let _ = writeln!(out, "reorder = {}", format_ppm(model.reorder_ppm));
    let _ = writeln!(out, "reorder_window = {}", duration(model.reorder_ns_max));
}

fn fault_table(out: &mut String, scheduled: &ScheduledFault) {
    let _ = writeln!(out, "at = {}", duration(scheduled.at_ns));
    let node = |out: &mut String, action: &str, node: u32| {
        let _ = writeln!(out, "action = \"{action}\"\nnode = {node}");
    };
    match &scheduled.fault {
        Fault::Crash { node: n } => node(out, "crash", *n),
        Fault::Restart { node: n } => node(out, "restart", *n),
        Fault::Pause { node: n } => node(out, "pause", *n),
        Fault::Resume { node: n } => node(out, "resume", *n),
        Fault::Heal => out.push_str("action = \"heal\"\n"),
        Fault::Partition { groups } => {
            let groups: Vec<String> = groups.iter().map(|group| ids(group)).collect();
            let _ = writeln!(
                out,
                "action = \"partition\"\ngroups = [{}]",
                groups.join(", ")
            );
        }
        Fault::PartitionOneWay { from, to } => {
            let _ = writeln!(
                out,
                "action = \"partition-one-way\"\nfrom = {}\nto = {}",
                ids(from),
                ids(to)
            );
        }
        Fault::ClockSkew {
            node: n,
            offset_ns,
            drift_ppm,
        } => {
            node(out, "clock-skew", *n);
            let sign = if *offset_ns < 0 { "-" } else { "" };
            let offset = format_duration(offset_ns.unsigned_abs());
            let _ = writeln!(out, "offset = \"{sign}{offset}\"\ndrift_ppm = {drift_ppm}");
        }
        Fault::DiskFault { node: n, faults } => {
            node(out, "disk-fault", *n);
            let _ = writeln!(
                out,
                "torn_writes = {}\nlost_syncs = {}",
                format_ppm(faults.torn_write_ppm),
                format_ppm(faults.lost_sync_ppm)
            );
        }
    }
}

fn nemesis_table(out: &mut String, nemesis: &NemesisConfig) {
    out.push_str("\n[nemesis]\n");
    let kinds: Vec<String> = nemesis
        .kinds
        .iter()
        .map(|kind| kind.name().to_string())
        .collect();
    let _ = writeln!(out, "faults = {}", strings(&kinds));
    for (key, ns) in [
        ("interval_min", nemesis.interval_ns_min),
        ("interval_max", nemesis.interval_ns_max),
        ("fault_min", nemesis.fault_ns_min),
        ("fault_max", nemesis.fault_ns_max),
        ("skew_max", nemesis.skew_ns_max),
    ] {
        let _ = writeln!(out, "{key} = {}", duration(ns));
    }
    if !nemesis.targets.is_empty() {
        let _ = writeln!(out, "targets = {}", strings(&nemesis.targets));
    }
}

/// `[params]` for the scenario's own protocol and `[params.NAME]` for the others, each
/// with the values that differ from the defaults.
fn params(out: &mut String, scenario: &Scenario) {
    let mut own = String::new();
    let mut others = String::new();
    for (protocol, values) in &scenario.params {
        let set = changed(protocol, values);
        if set.is_empty() {
            continue;
        }
        if *protocol == scenario.protocol {
            own = set;
        } else {
            let _ = write!(others, "\n[params.{protocol}]\n{set}");
        }
    }
    if !own.is_empty() || !others.is_empty() {
        let _ = write!(out, "\n[params]\n{own}{others}");
    }
}

/// `key = value` lines for a protocol's parameters that differ from their defaults.
fn changed(protocol: &str, values: &Params) -> String {
    let spec = catalogue::protocol(protocol).expect("validated protocol");
    let mut lines = String::new();
    for param in spec.params {
        let value = values.value(param.name);
        if *value == param.kind.default_value() {
            continue;
        }
        let text = match (param.kind, value) {
            (ParamKind::Duration { .. }, ParamValue::Number(ns)) => duration(*ns),
            (ParamKind::Flag { .. }, ParamValue::Number(flag)) => (*flag != 0).to_string(),
            (_, ParamValue::Number(n)) => n.to_string(),
            (_, ParamValue::Text(text)) => quote(text),
            (_, ParamValue::List(items)) => strings(items),
        };
        let _ = writeln!(lines, "{} = {text}", param.name);
    }
    lines
}

fn connections(out: &mut String, conn: &ConnParams) {
    let base = ConnParams::default();
    let mut lines = String::new();
    for (key, value, default) in [
        ("rto_min", conn.rto_min_ns, base.rto_min_ns),
        ("rto_max", conn.rto_max_ns, base.rto_max_ns),
        ("timeout", conn.timeout_ns, base.timeout_ns),
        ("delayed_ack", conn.delayed_ack_ns, base.delayed_ack_ns),
        ("keepalive", conn.keepalive_ns, base.keepalive_ns),
    ] {
        if value != default {
            let _ = writeln!(lines, "{key} = {}", duration(value));
        }
    }
    for (key, value, default) in [
        ("window", conn.window, base.window),
        ("send_buffer", conn.send_buffer, base.send_buffer),
    ] {
        if value != default {
            let _ = writeln!(lines, "{key} = {value}");
        }
    }
    if !lines.is_empty() {
        let _ = write!(out, "\n[connections]\n{lines}");
    }
}

fn limits(out: &mut String, limits: &Limits) {
    let base = Limits::default();
    let mut lines = String::new();
    for (key, value, default) in [
        ("events_max", limits.events_max, base.events_max),
        ("queue_max", limits.queue_max as u64, base.queue_max as u64),
        (
            "trace_events_max",
            limits.trace_events_max as u64,
            base.trace_events_max as u64,
        ),
        (
            "history_max",
            limits.history_max as u64,
            base.history_max as u64,
        ),
    ] {
        if value != default {
            let _ = writeln!(lines, "{key} = {value}");
        }
    }
    if !lines.is_empty() {
        let _ = write!(out, "\n[limits]\n{lines}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{builtin, builtin_names, parse};

    #[test]
    fn every_built_in_scenario_reads_back_as_itself() {
        for name in builtin_names() {
            let file = format!("{name}.toml");
            let scenario = parse(&file, builtin(name).expect("built-in")).expect("valid");
            let text = to_toml(&scenario);
            let again =
                parse(&file, &text).unwrap_or_else(|errors| panic!("{name}: {errors:?}\n{text}"));
            assert_eq!(again, scenario, "{name}:\n{text}");
        }
    }

    #[test]
    fn every_fault_kind_and_awkward_text_read_back() {
        let text = r#"
            name = "odd \"name\" \\ é"
            description = "tabs\tand\nnewlines"
            protocol = "ping-pong"
            duration = "1s"
            [[nodes]]
            kind = "client"
            count = 2
            [[nodes]]
            kind = "server"
            count = 2
            [network]
            latency = { dist = "long-tail", min = "1ms", max = "1s" }
            loss = 0.000001
            reorder = 0.5
            reorder_window = "3ms"
            [[network.links]]
            from = 0
            to = 1
            loss = 1
            [[faults]]
            at = "1ms"
            action = "clock-skew"
            node = 1
            offset = "-1.5ms"
            drift_ppm = -40
            [[faults]]
            at = "2ms"
            action = "disk-fault"
            node = 2
            torn_writes = 0.25
            [[faults]]
            at = "3ms"
            action = "partition-one-way"
            from = [0]
            to = [1, 2]
            [[faults]]
            at = "4ms"
            action = "partition"
            groups = [[0], [1]]
            [nemesis]
            faults = ["crash", "pause"]
            targets = ["server"]
            [connections]
            window = 8
            timeout = "1s"
            [limits]
            events_max = 1000
        "#;
        let scenario = parse("odd.toml", text).unwrap();
        let written = to_toml(&scenario);
        assert_eq!(
            parse("again.toml", &written).unwrap(),
            scenario,
            "{written}"
        );
        assert!(written.contains("window = 8") && !written.contains("rto_min"));
    }
}
