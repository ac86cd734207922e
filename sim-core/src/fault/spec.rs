//! The one spelling of every fault, `ACTION[:ARGS]@TIME`, which `faultline run --fault`,
//! the browser's URL, the trace, the run report and the shrinker share:
//!
//! - `crash:3@1.2s`, `restart:3@2s`, `pause:4@1s`, `resume:4@1.5s`;
//! - `partition:0,4@2.2s`: the listed nodes cut off from the rest; several groups are
//!   separated by `/`: `partition:0,1/2,3@1s`;
//! - `oneway:0,1>2@1s`: messages from 0 and 1 to 2 are dropped (one-way cuts add up, so
//!   two cut one link both ways); `heal@3s` removes every cut;
//! - `skew:2,-300ms,50ppm@1s`: node 2's clock set 300 ms behind, drifting 50 parts per
//!   million fast (the drift is optional; `skew:2,0ns@2s` puts the clock right);
//! - `disk:1,torn=0.1,lost=0.01@0s`: a tenth of node 1's writes torn by a crash and a
//!   hundredth of its syncs lost (either key may be left out, meaning 0).
//!
//! The scenario file's action names (`partition-one-way`, `clock-skew`, `disk-fault`)
//! are read too. Parsing never panics and every error says what is expected.

use super::{Fault, ScheduledFault, DRIFT_PPM_MAX, SKEW_NS_MAX};
use crate::disk::DiskFaults;
use crate::ids::NodeId;
use crate::net::PPM;
use crate::units::{format_duration, format_ppm, parse_duration_ns};

/// The most nodes one fault spec may name (bounds the parsing work of a URL).
pub const SPEC_NODES_MAX: usize = 64;

const EXPECTED: &str = "expected ACTION[:ARGS]@TIME, e.g. `crash:3@1.2s`, `partition:0,4@2s`, \
                        `oneway:0>1@1s`, `skew:2,-300ms,50ppm@1s`, `disk:1,torn=0.1@0s`, \
                        `heal@3s` (actions: crash, restart, pause, resume, partition, oneway, \
                        heal, skew, disk)";

/// The action and arguments of `fault`, without its time.
pub(super) fn action(fault: &Fault) -> String {
    let ids = |group: &[NodeId]| -> String {
        let ids: Vec<String> = group.iter().map(u32::to_string).collect();
        ids.join(",")
    };
    match fault {
        Fault::Crash { node } => format!("crash:{node}"),
        Fault::Restart { node } => format!("restart:{node}"),
        Fault::Pause { node } => format!("pause:{node}"),
        Fault::Resume { node } => format!("resume:{node}"),
        Fault::Heal => "heal".to_string(),
        Fault::Partition { groups } => {
            let groups: Vec<String> = groups.iter().map(|group| ids(group)).collect();
            format!("partition:{}", groups.join("/"))
        }
        Fault::PartitionOneWay { from, to } => format!("oneway:{}>{}", ids(from), ids(to)),
        Fault::ClockSkew {
            node,
            offset_ns,
            drift_ppm,
        } => {
            let sign = if *offset_ns < 0 { "-" } else { "" };
            let offset = format_duration(offset_ns.unsigned_abs());
            if *drift_ppm == 0 {
                format!("skew:{node},{sign}{offset}")
            } else {
                format!("skew:{node},{sign}{offset},{drift_ppm}ppm")
            }
        }
        Fault::DiskFault { node, faults } => {
            let mut text = format!("disk:{node}");
            if faults.torn_write_ppm > 0 {
                text.push_str(&format!(",torn={}", format_ppm(faults.torn_write_ppm)));
            }
            if faults.lost_sync_ppm > 0 {
                text.push_str(&format!(",lost={}", format_ppm(faults.lost_sync_ppm)));
            }
            text
        }
    }
}

pub(super) fn parse(spec: &str) -> Result<ScheduledFault, String> {
    let Some((action, time)) = spec.rsplit_once('@') else {
        return Err(format!("fault `{spec}`: no `@TIME`; {EXPECTED}"));
    };
    let at_ns =
        parse_duration_ns(time).map_err(|error| format!("fault `{spec}`: bad time: {error}"))?;
    let at_ns = u64::try_from(at_ns).map_err(|_| format!("fault `{spec}`: time is negative"))?;
    let (name, args) = action.split_once(':').unwrap_or((action, ""));
    let node = |text: &str| -> Result<NodeId, String> {
        text.parse::<NodeId>()
            .map_err(|_| format!("fault `{spec}`: `{name}` needs a node id, found `{text}`"))
    };
    let fault = match name {
        "crash" => Fault::Crash { node: node(args)? },
        "restart" => Fault::Restart { node: node(args)? },
        "pause" => Fault::Pause { node: node(args)? },
        "resume" => Fault::Resume { node: node(args)? },
        "heal" if args.is_empty() => Fault::Heal,
        "partition" => Fault::Partition {
            groups: parse_groups(spec, args)?,
        },
        "oneway" | "partition-one-way" => {
            let needs = || format!("fault `{spec}`: `oneway` needs FROM>TO, e.g. `0,1>2`");
            let (from, to) = args.split_once('>').ok_or_else(needs)?;
            let mut groups = parse_groups(spec, &format!("{from}/{to}"))?;
            if groups.len() != 2 {
                return Err(needs());
            }
            let to = groups.pop().expect("two groups");
            let from = groups.pop().expect("two groups");
            Fault::PartitionOneWay { from, to }
        }
        "skew" | "clock-skew" => parse_skew(spec, args, &node)?,
        "disk" | "disk-fault" => parse_disk(spec, args, &node)?,
        _ => {
            return Err(format!(
                "fault `{spec}`: unknown action `{name}`; {EXPECTED}"
            ))
        }
    };
    Ok(ScheduledFault { at_ns, fault })
}

fn parse_skew(
    spec: &str,
    args: &str,
    node: &dyn Fn(&str) -> Result<NodeId, String>,
) -> Result<Fault, String> {
    let needs = || {
        format!(
            "fault `{spec}`: `skew` needs NODE,OFFSET[,DRIFTppm], e.g. `skew:2,-300ms,50ppm` \
             (offset within ±24h, drift within ±{DRIFT_PPM_MAX}ppm)"
        )
    };
    let parts: Vec<&str> = args.split(',').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(needs());
    }
    let offset = parts[1].strip_prefix('+').unwrap_or(parts[1]);
    let offset_ns = parse_duration_ns(offset).map_err(|_| needs())?;
    if offset_ns.abs() > SKEW_NS_MAX as i128 {
        return Err(needs());
    }
    let drift_ppm = match parts.get(2) {
        None => 0,
        Some(drift) => {
            let number = drift.strip_suffix("ppm").ok_or_else(needs)?;
            let number = number.strip_prefix('+').unwrap_or(number);
            match number.parse::<i32>() {
                Ok(ppm) if ppm.abs() <= DRIFT_PPM_MAX => ppm,
                _ => return Err(needs()),
            }
        }
    };
    Ok(Fault::ClockSkew {
        node: node(parts[0])?,
        offset_ns: offset_ns as i64,
        drift_ppm,
    })
}

fn parse_disk(
    spec: &str,
    args: &str,
    node: &dyn Fn(&str) -> Result<NodeId, String>,
) -> Result<Fault, String> {
    let needs = || {
        format!(
            "fault `{spec}`: `disk` needs NODE[,torn=P][,lost=P] with probabilities P in \
             [0, 1], e.g. `disk:1,torn=0.1,lost=0.01`"
        )
    };
    let mut parts = args.split(',');
    let node = node(parts.next().unwrap_or(""))?;
    let mut faults = DiskFaults::default();
    for part in parts {
        let (key, value) = part.split_once('=').ok_or_else(needs)?;
        let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        let ppm = match value.parse::<f64>() {
            // The scenario file's rounding: exact IEEE arithmetic, the same everywhere.
            Ok(p) if digits && (0.0..=1.0).contains(&p) => (p * PPM as f64).round() as u32,
            _ => return Err(needs()),
        };
        match key {
            "torn" => faults.torn_write_ppm = ppm,
            "lost" => faults.lost_sync_ppm = ppm,
            _ => return Err(needs()),
        }
    }
    Ok(Fault::DiskFault { node, faults })
}

fn parse_groups(spec: &str, args: &str) -> Result<Vec<Vec<NodeId>>, String> {
    let mut groups = Vec::new();
    let mut named = 0;
    for group in args.split('/') {
        let mut ids = Vec::new();
        for id in group.split(',') {
            let id = id.parse::<NodeId>().map_err(|_| {
                format!(
                    "fault `{spec}`: partition groups are node ids like `0,4/1,2`, found `{id}`"
                )
            })?;
            named += 1;
            if named > SPEC_NODES_MAX {
                return Err(format!("fault `{spec}`: more than {SPEC_NODES_MAX} nodes"));
            }
            ids.push(id);
        }
        groups.push(ids);
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_kind_round_trips_through_its_spelling() {
        for text in [
            "crash:3@1.2s",
            "restart:3@2s",
            "pause:4@1ms",
            "resume:4@1.5s",
            "partition:0,4@2.2s",
            "partition:0,1/2,3@1s",
            "oneway:0,1>2@1s",
            "heal@3s",
            "skew:2,-300ms,50ppm@1s",
            "skew:2,1.5s@1s",
            "skew:0,0ns,-7ppm@10ms",
            "disk:1,torn=0.1,lost=0.000001@0ns",
            "disk:1,lost=1@5ms",
            "disk:1@5ms",
        ] {
            let fault = parse(text).unwrap();
            assert_eq!(fault.spec(), text);
        }
        let crash = parse("crash:3@1.2s").unwrap();
        assert_eq!(crash.at_ns, 1_200_000_000);
        assert_eq!(crash.fault, Fault::Crash { node: 3 });
        let skew = parse("clock-skew:2,+300ms,+50ppm@1s").unwrap();
        assert_eq!(
            skew.fault,
            Fault::ClockSkew {
                node: 2,
                offset_ns: 300_000_000,
                drift_ppm: 50
            }
        );
        let disk = parse("disk-fault:1,torn=0.25@1s").unwrap();
        assert_eq!(disk.spec(), "disk:1,torn=0.25@1s");
        assert_eq!(
            parse("partition-one-way:0>1@1s").unwrap().spec(),
            "oneway:0>1@1s"
        );
    }

    #[test]
    fn bad_fault_specs_say_what_is_expected() {
        for (text, wanted) in [
            ("crash:3", "no `@TIME`"),
            ("crash:x@1s", "needs a node id"),
            ("explode:1@1s", "unknown action `explode`"),
            ("partition:0,a@1s", "partition groups are node ids"),
            ("crash:1@-1s", "negative"),
            ("crash:1@1parsec", "bad time"),
            ("heal:1@1s", "unknown action `heal`"),
            ("oneway:0,1@1s", "needs FROM>TO"),
            ("oneway:0>1/2@1s", "needs FROM>TO"),
            ("skew:1@1s", "needs NODE,OFFSET"),
            ("skew:1,3parsecs@1s", "needs NODE,OFFSET"),
            ("skew:1,25h@1s", "needs NODE,OFFSET"),
            ("skew:1,1s,50@1s", "needs NODE,OFFSET"),
            ("skew:1,1s,200000ppm@1s", "needs NODE,OFFSET"),
            ("skew:x,1s@1s", "needs a node id"),
            ("disk:1,torn=2@1s", "probabilities"),
            ("disk:1,torn=-0.1@1s", "probabilities"),
            ("disk:1,bent=0.1@1s", "probabilities"),
            ("disk:1,torn@1s", "probabilities"),
            ("disk:1,torn=1e-3@1s", "probabilities"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(wanted), "{text}: {error}");
        }
        let many = format!("partition:{}@1s", vec!["1"; SPEC_NODES_MAX + 1].join(","));
        assert!(parse(&many).unwrap_err().contains("more than"));
    }
}
