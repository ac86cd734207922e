//! The CAP panel's data: per protocol, availability (the share of requests each client
//! had served, per time bucket) beside consistency (the share of reads that were stale,
//! or a gauge of what is not yet consistent: the oldest branch in doubt for the bank, orders not
//! yet applied for the shop). A run with the bank beside the shop gets one row each, so
//! the two designs read side by side under the same faults.
//!
//! This module only shapes metrics into series; `chart` draws them.

use std::collections::BTreeMap;

use sim_core::engine::MetricSample;
use sim_core::node::NodeId;

/// One node's line on a chart: (time, value) points.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub node: NodeId,
    /// Its side of the partition at the cursor.
    pub side: u32,
    pub points: Vec<(u64, f64)>,
}

/// What a row's consistency chart measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// Per client: % of reads that returned stale data (metrics `stale_reads`/`reads`).
    StaleReads,
    /// Per shard: how long its oldest prepared branch has waited for its outcome
    /// (metric `in_doubt_ms`): the window in which two-phase commit blocks.
    InDoubt,
    /// Orders committed but not yet applied by the warehouse (metric `divergence`).
    Divergence,
}

impl Measure {
    pub fn title(self) -> &'static str {
        match self {
            Measure::StaleReads => "consistency: % of reads that were stale",
            Measure::InDoubt => "consistency: oldest branch in doubt (2PC blocks)",
            Measure::Divergence => "consistency: orders not yet applied",
        }
    }

    pub fn is_percent(self) -> bool {
        self == Measure::StaleReads
    }
}

/// One protocol's row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub protocol: String,
    pub availability: Vec<Series>,
    pub measure: Measure,
    pub consistency: Vec<Series>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cap {
    pub end_ns: u64,
    pub rows: Vec<Row>,
}

/// Builds the CAP panel; `kinds` are the nodes' qualified kinds (`bank.client`), which
/// say whose row a node's series joins. `None` when no protocol reports any of it.
pub fn cap(
    metrics: &[MetricSample],
    sides: &[u32],
    kinds: &[String],
    end_ns: u64,
    buckets: u32,
) -> Option<Cap> {
    assert!(buckets > 0);
    let bucket_ns = (end_ns / buckets as u64).max(1);
    let availability = ratio_series(metrics, sides, bucket_ns, "served", "refused", false);
    let measures = [
        (
            Measure::StaleReads,
            ratio_series(metrics, sides, bucket_ns, "stale_reads", "reads", true),
        ),
        (
            Measure::InDoubt,
            gauge_series(metrics, sides, bucket_ns, end_ns, "in_doubt_ms"),
        ),
        (
            Measure::Divergence,
            gauge_series(metrics, sides, bucket_ns, end_ns, "divergence"),
        ),
    ];
    let protocol_of = |node: NodeId| -> String {
        let kind = kinds.get(node as usize).map(String::as_str).unwrap_or("");
        kind.split('.').next().unwrap_or("").to_string()
    };
    // Protocols in the order of their first node with a series.
    let mut nodes: Vec<NodeId> = availability.iter().map(|s| s.node).collect();
    for (_, series) in &measures {
        nodes.extend(series.iter().map(|s| s.node));
    }
    nodes.sort_unstable();
    let mut protocols: Vec<String> = Vec::new();
    for node in nodes {
        let protocol = protocol_of(node);
        if !protocols.contains(&protocol) {
            protocols.push(protocol);
        }
    }
    let rows: Vec<Row> = protocols
        .into_iter()
        .map(|protocol| {
            let mine = |series: &[Series]| -> Vec<Series> {
                series
                    .iter()
                    .filter(|s| protocol_of(s.node) == protocol)
                    .cloned()
                    .collect()
            };
            let (measure, consistency) = measures
                .iter()
                .map(|(measure, series)| (*measure, mine(series)))
                .find(|(_, series)| !series.is_empty())
                .unwrap_or((Measure::StaleReads, Vec::new()));
            Row {
                availability: mine(&availability),
                protocol,
                measure,
                consistency,
            }
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    Some(Cap { end_ns, rows })
}

/// Per node and bucket: `part / (part + rest)` in percent, or `part / total` when
/// `rest_is_total`, from cumulative counters; buckets with nothing completed have no
/// point.
fn ratio_series(
    metrics: &[MetricSample],
    sides: &[u32],
    bucket_ns: u64,
    part: &str,
    rest: &str,
    rest_is_total: bool,
) -> Vec<Series> {
    // node -> bucket -> the last cumulative values of `part` and `rest` in it.
    type Lasts = BTreeMap<u64, (Option<u64>, Option<u64>)>;
    let mut last: BTreeMap<NodeId, Lasts> = BTreeMap::new();
    for sample in metrics {
        let is_part = sample.name == part;
        if !is_part && sample.name != rest {
            continue;
        }
        let bucket = sample.time_ns / bucket_ns;
        let entry = last
            .entry(sample.node)
            .or_default()
            .entry(bucket)
            .or_default();
        if is_part {
            entry.0 = Some(sample.value);
        } else {
            entry.1 = Some(sample.value);
        }
    }
    let mut series = Vec::new();
    for (node, buckets) in last {
        let (mut part_before, mut rest_before) = (0u64, 0u64);
        let mut points = Vec::new();
        for (bucket, (part_now, rest_now)) in buckets {
            let part_now = part_now.unwrap_or(part_before);
            let rest_now = rest_now.unwrap_or(rest_before);
            let part_delta = part_now.saturating_sub(part_before);
            let rest_delta = rest_now.saturating_sub(rest_before);
            let total = if rest_is_total {
                rest_delta
            } else {
                part_delta + rest_delta
            };
            if total > 0 {
                let percent = 100.0 * part_delta as f64 / total as f64;
                points.push(((bucket + 1) * bucket_ns, percent.min(100.0)));
            }
            (part_before, rest_before) = (part_now, rest_now);
        }
        if !points.is_empty() {
            let side = sides.get(node as usize).copied().unwrap_or(0);
            series.push(Series { node, side, points });
        }
    }
    series
}

/// Per node and bucket: the gauge's peak in the bucket, or the value it held since the
/// last sample, from the first sample to the end.
fn gauge_series(
    metrics: &[MetricSample],
    sides: &[u32],
    bucket_ns: u64,
    end_ns: u64,
    name: &str,
) -> Vec<Series> {
    let mut peaks: BTreeMap<NodeId, BTreeMap<u64, (u64, u64)>> = BTreeMap::new();
    for sample in metrics.iter().filter(|s| s.name == name) {
        let bucket = sample.time_ns / bucket_ns;
        let entry = peaks
            .entry(sample.node)
            .or_default()
            .entry(bucket)
            .or_insert((sample.value, sample.value));
        entry.0 = entry.0.max(sample.value);
        entry.1 = sample.value;
    }
    let last_bucket = end_ns.saturating_sub(1) / bucket_ns;
    let mut series = Vec::new();
    for (node, buckets) in peaks {
        let first = *buckets.keys().next().expect("a sample");
        let mut held = 0;
        let mut points = Vec::new();
        for bucket in first..=last_bucket.max(first) {
            let value = match buckets.get(&bucket) {
                Some((peak, last)) => {
                    held = *last;
                    (*peak).max(*last)
                }
                None => held,
            };
            points.push(((bucket + 1) * bucket_ns, value as f64));
        }
        let side = sides.get(node as usize).copied().unwrap_or(0);
        series.push(Series { node, side, points });
    }
    series
}

/// Lines a chart draws at most: past this, clients are summarised per partition side.
pub const LINES_MAX: usize = 6;

/// One line of a chart: a client's own series, or a summary of a side's clients.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub label: String,
    pub side: u32,
    pub points: Vec<(u64, f64)>,
}

/// The lines to draw for `series`: each client's own when they are few; otherwise, per
/// side, the median client and the worst one at each moment (`higher_is_worse` says
/// which end is worst), so a hundred clients stay readable and quick to draw.
pub fn lines(series: &[Series], higher_is_worse: bool) -> Vec<Line> {
    if series.len() <= LINES_MAX {
        return series
            .iter()
            .map(|s| Line {
                label: format!("n{} (side {})", s.node, s.side),
                side: s.side,
                points: s.points.clone(),
            })
            .collect();
    }
    let mut by_side: BTreeMap<u32, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
    for s in series {
        let moments = by_side.entry(s.side).or_default();
        for (t, value) in &s.points {
            moments.entry(*t).or_default().push(*value);
        }
    }
    let mut out = Vec::new();
    for (side, moments) in by_side {
        let clients = series.iter().filter(|s| s.side == side).count();
        let mut median = Vec::new();
        let mut worst = Vec::new();
        for (t, mut values) in moments {
            values.sort_by(f64::total_cmp);
            median.push((t, values[values.len() / 2]));
            let extreme = if higher_is_worse {
                values[values.len() - 1]
            } else {
                values[0]
            };
            worst.push((t, extreme));
        }
        out.push(Line {
            label: format!("median of {clients} (side {side})"),
            side,
            points: median,
        });
        out.push(Line {
            label: format!("worst of {clients} (side {side})"),
            side,
            points: worst,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(time_ns: u64, node: NodeId, name: &'static str, value: u64) -> MetricSample {
        MetricSample {
            time_ns,
            node,
            name: name.into(),
            value,
        }
    }

    fn kinds(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn availability_is_the_share_served_per_bucket() {
        let metrics = [
            sample(10, 3, "served", 1),
            sample(20, 3, "served", 2),
            sample(60, 3, "refused", 1),
            sample(70, 3, "refused", 2),
            sample(80, 3, "served", 3),
            sample(30, 4, "reads", 4),
            sample(30, 4, "stale_reads", 1),
        ];
        let kinds = kinds(
            &["registry.server"; 3]
                .iter()
                .chain(&["registry.client"; 2])
                .copied()
                .collect::<Vec<_>>(),
        );
        let cap = cap(&metrics, &[0, 0, 0, 0, 1], &kinds, 100, 2).unwrap();
        assert_eq!(cap.rows.len(), 1);
        let row = &cap.rows[0];
        assert_eq!(row.protocol, "registry");
        assert_eq!(row.availability.len(), 1);
        assert_eq!(
            row.availability[0].points,
            [(50, 100.0), (100, 100.0 / 3.0)]
        );
        assert_eq!(row.measure, Measure::StaleReads);
        assert_eq!(row.consistency.len(), 1);
        assert_eq!(row.consistency[0].side, 1);
        assert_eq!(row.consistency[0].points, [(50, 25.0)]);
        assert_eq!(super::cap(&[], &[], &[], 100, 2), None);
    }

    #[test]
    fn the_bank_and_the_shop_get_a_row_each_with_their_own_gauge() {
        let kinds = kinds(&["bank.shard", "bank.client", "shop.warehouse", "shop.client"]);
        let metrics = [
            sample(5, 0, "in_doubt_ms", 2),
            sample(6, 0, "in_doubt_ms", 0),
            sample(10, 1, "served", 1),
            sample(40, 1, "refused", 1),
            sample(12, 2, "divergence", 3),
            sample(70, 2, "divergence", 1),
            sample(20, 3, "served", 4),
        ];
        let cap = cap(&metrics, &[0, 0, 1, 0], &kinds, 100, 4).unwrap();
        let protocols: Vec<&str> = cap.rows.iter().map(|r| r.protocol.as_str()).collect();
        assert_eq!(protocols, ["bank", "shop"]);
        let bank = &cap.rows[0];
        assert_eq!(bank.measure, Measure::InDoubt);
        // The peak of the first bucket shows, then the gauge holds its last value.
        assert_eq!(
            bank.consistency[0].points,
            [(25, 2.0), (50, 0.0), (75, 0.0), (100, 0.0)]
        );
        assert_eq!(bank.availability[0].points, [(25, 100.0), (50, 0.0)]);
        let shop = &cap.rows[1];
        assert_eq!(shop.measure, Measure::Divergence);
        assert_eq!(shop.consistency[0].side, 1);
        assert_eq!(
            shop.consistency[0].points,
            [(25, 3.0), (50, 3.0), (75, 1.0), (100, 1.0)]
        );
        assert!(!Measure::Divergence.is_percent());
    }

    #[test]
    fn many_clients_become_a_median_and_a_worst_line_per_side() {
        let client = |node: NodeId, side: u32, value: f64| Series {
            node,
            side,
            points: vec![(0, value), (10, value / 2.0)],
        };
        let few: Vec<Series> = (0..3).map(|n| client(n, 0, 100.0)).collect();
        assert_eq!(
            lines(&few, false).len(),
            3,
            "a few clients keep their own lines"
        );
        assert_eq!(lines(&few, false)[1].label, "n1 (side 0)");
        let mut many: Vec<Series> = (0..9).map(|n| client(n, 0, 10.0 * n as f64)).collect();
        many.push(client(9, 1, 50.0));
        let drawn = lines(&many, false);
        let labels: Vec<&str> = drawn.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "median of 9 (side 0)",
                "worst of 9 (side 0)",
                "median of 1 (side 1)",
                "worst of 1 (side 1)"
            ]
        );
        assert_eq!(drawn[0].points, vec![(0, 40.0), (10, 20.0)]);
        assert_eq!(
            drawn[1].points,
            vec![(0, 0.0), (10, 0.0)],
            "least served is worst"
        );
        assert_eq!(lines(&many, true)[1].points, vec![(0, 80.0), (10, 40.0)]);
    }
}
