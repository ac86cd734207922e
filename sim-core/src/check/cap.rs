//! The CAP lines of a run's summary (the CLI's and the browser's): per protocol whose
//! clients count requests served and refused, the share served (and the worst 100 ms
//! window), beside what its consistency gauge did (stale reads, the oldest branch in doubt and the
//! longest lock hold per shard, orders not yet applied). With the bank beside the shop under one partition, the two lines
//! tell CP from AP.
//!
//! This module only reads metric samples; it never runs anything.

use std::collections::BTreeMap;

use crate::engine::MetricSample;

/// The window the worst availability is measured over.
const WINDOW_NS: u64 = 100_000_000;

#[derive(Default)]
struct Side {
    /// Per client: the last cumulative `served` and `refused`.
    clients: BTreeMap<u32, (u64, u64)>,
    /// Requests completed per window: (served, refused).
    windows: BTreeMap<u64, (u64, u64)>,
    /// Gauge name -> (peak, last) per node.
    gauges: BTreeMap<&'static str, BTreeMap<u32, (u64, u64)>>,
    /// Per shard: the longest a branch held its locks (the blocking window), in ms.
    lock_held_ms: BTreeMap<u32, u64>,
    stale: (u64, u64),
}

/// The consistency gauges, with how the summary names them.
const GAUGES: [(&str, &str); 2] = [
    ("in_doubt_ms", "oldest branch in doubt (ms)"),
    ("divergence", "orders not yet applied"),
];

/// One line per protocol with clients that count requests; none when no protocol does.
pub fn lines<'a, 's>(
    metrics: impl IntoIterator<Item = &'s MetricSample>,
    kinds: &'a [String],
) -> Vec<String> {
    // Each node's protocol as an index into the sorted names, found once: the page
    // calls this at every move of the cursor, over every sample up to it.
    let protocol = |kind: &'a str| kind.split('.').next().unwrap_or("");
    let mut names: Vec<&str> = kinds.iter().map(|kind| protocol(kind)).collect();
    names.push(""); // A sample from a node the kinds do not name.
    names.sort_unstable();
    names.dedup();
    let index = |name: &str| names.binary_search(&name).unwrap_or(0);
    let of_node: Vec<usize> = kinds.iter().map(|kind| index(protocol(kind))).collect();
    let unnamed = index("");
    let mut sides: Vec<Side> = names.iter().map(|_| Side::default()).collect();
    for sample in metrics {
        let at = of_node
            .get(sample.node as usize)
            .copied()
            .unwrap_or(unnamed);
        let side = &mut sides[at];
        match sample.name.as_ref() {
            "served" | "refused" => {
                let served = sample.name == "served";
                let client = side.clients.entry(sample.node).or_default();
                let before = if served { client.0 } else { client.1 };
                let delta = sample.value.saturating_sub(before);
                if served {
                    client.0 = sample.value;
                } else {
                    client.1 = sample.value;
                }
                let window = side.windows.entry(sample.time_ns / WINDOW_NS).or_default();
                if served {
                    window.0 += delta;
                } else {
                    window.1 += delta;
                }
            }
            "lock_held_ms" => {
                let longest = side.lock_held_ms.entry(sample.node).or_default();
                *longest = (*longest).max(sample.value);
            }
            "stale_reads" => side.stale.0 = side.stale.0.max(sample.value),
            "reads" => side.stale.1 = side.stale.1.max(sample.value),
            name => {
                if let Some((gauge, _)) = GAUGES.iter().find(|(g, _)| *g == name) {
                    let per_node = side.gauges.entry(gauge).or_default();
                    let entry = per_node.entry(sample.node).or_default();
                    *entry = (entry.0.max(sample.value), sample.value);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (protocol, side) in names.iter().zip(&sides) {
        if side.clients.is_empty() {
            continue;
        }
        let served: u64 = side.clients.values().map(|c| c.0).sum();
        let refused: u64 = side.clients.values().map(|c| c.1).sum();
        let total = served + refused;
        let share = percent(served, total);
        let worst = side
            .windows
            .iter()
            .filter(|(_, (s, r))| s + r > 0)
            .map(|(window, (s, r))| (percent(*s, s + r), *window))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let worst = worst.map_or(String::new(), |(p, window)| {
            format!(
                ", worst 100 ms {p:.0}% at {:.1}s",
                (window * WINDOW_NS) as f64 / 1e9
            )
        });
        let mut consistency = Vec::new();
        if side.stale.1 > 0 {
            consistency.push(format!("{} of {} reads stale", side.stale.0, side.stale.1));
        }
        for (gauge, label) in GAUGES {
            if let Some(per_node) = side.gauges.get(gauge) {
                let peak = per_node.values().map(|v| v.0).max().unwrap_or(0);
                let last: u64 = per_node.values().map(|v| v.1).max().unwrap_or(0);
                consistency.push(format!("{label}: peak {peak}, {last} at the end"));
            }
        }
        if !side.lock_held_ms.is_empty() {
            let per_shard: Vec<String> = side
                .lock_held_ms
                .iter()
                .map(|(node, ms)| format!("n{node} {ms} ms"))
                .collect();
            consistency.push(format!("locks held at most {}", per_shard.join(", ")));
        }
        if consistency.is_empty() {
            consistency.push("no consistency gauge".into());
        }
        out.push(format!(
            "cap {protocol}: {share:.1}% of {total} requests served{worst} | {}",
            consistency.join("; ")
        ));
    }
    out
}

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * part as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(time_ns: u64, node: u32, name: &'static str, value: u64) -> MetricSample {
        MetricSample {
            time_ns,
            node,
            name: name.into(),
            value,
        }
    }

    #[test]
    fn one_line_per_protocol_with_its_gauge() {
        let kinds: Vec<String> = ["bank.shard", "bank.client", "shop.warehouse", "shop.client"]
            .iter()
            .map(|k| k.to_string())
            .collect();
        let metrics = [
            sample(10, 0, "in_doubt_ms", 2),
            sample(20, 0, "in_doubt_ms", 0),
            sample(20, 0, "lock_held_ms", 12),
            sample(30, 0, "lock_held_ms", 3),
            sample(10, 1, "served", 1),
            sample(150_000_000, 1, "refused", 1),
            sample(160_000_000, 1, "refused", 2),
            sample(10, 2, "divergence", 7),
            sample(10, 3, "served", 1),
            sample(20, 3, "served", 2),
        ];
        let lines = lines(&metrics, &kinds);
        assert_eq!(
            lines,
            [
                "cap bank: 33.3% of 3 requests served, worst 100 ms 0% at 0.1s | oldest branch \
                 in doubt (ms): peak 2, 0 at the end; locks held at most n0 12 ms",
                "cap shop: 100.0% of 2 requests served, worst 100 ms 100% at 0.0s | orders not \
                 yet applied: peak 7, 7 at the end",
            ]
        );
        assert!(super::lines(&[], &kinds).is_empty());
    }
}
