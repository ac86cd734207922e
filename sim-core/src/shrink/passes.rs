//! The shrinking passes, each a family of smaller candidates tried in a fixed order:
//! the nemesis replaced by its recorded faults, faults removed (delta debugging: halves,
//! quarters, ... single faults), nodes dropped from the end of each group, workloads
//! cut, the fault phase shortened, and fault windows narrowed. A pass keeps every
//! candidate that still fails; `run_all` repeats the passes until a round keeps nothing.
//! Passes only propose: `Search::try_candidate` runs and judges.

use super::Search;
use crate::fault::{Fault, ScheduledFault};
use crate::node::NodeId;
use crate::params::ParamValue;
use crate::scenario::Scenario;

/// Parameters that size a workload (operations, calls, messages per client): cutting
/// them keeps a protocol's behaviour and shortens its run. Other counts (quorums,
/// windows, retries) change what the protocol does, so they are left alone.
const WORKLOAD_PARAMS: &[&str] = &["ops", "calls", "messages"];
/// The shortest fault phase and fault window a pass proposes: below a millisecond a
/// shrunk file stops being readable and nothing gets smaller.
const STEP_NS: u64 = 1_000_000;
/// Rounds of all passes at most; each round that keeps something makes the run smaller,
/// so this only bounds pathological cases (the run budget bounds the rest).
const ROUNDS_MAX: u32 = 20;

pub(super) fn run_all(search: &mut Search<'_>, injected: Vec<ScheduledFault>) {
    if search.best().nemesis.is_some() {
        let mut scheduled = search.best().clone();
        scheduled.nemesis = None;
        scheduled.faults.extend(injected);
        search.try_candidate(scheduled);
    }
    for _ in 0..ROUNDS_MAX {
        let mut kept = remove_faults(search);
        if !search.liveness {
            kept |= remove_nodes(search);
        }
        kept |= cut_workloads(search);
        kept |= shorten_duration(search);
        kept |= narrow_windows(search);
        if !kept || search.stopped() {
            break;
        }
    }
}

/// Delta debugging over the fault list: remove chunks of half the faults, then quarters,
/// down to single faults, keeping every removal that still fails.
fn remove_faults(search: &mut Search<'_>) -> bool {
    let mut kept = false;
    let mut chunk = search.best().faults.len().div_ceil(2);
    while chunk >= 1 && !search.stopped() {
        let mut start = 0;
        while start < search.best().faults.len() && !search.stopped() {
            let mut candidate = search.best().clone();
            let end = (start + chunk).min(candidate.faults.len());
            candidate.faults.drain(start..end);
            if search.try_candidate(candidate) {
                kept = true;
            } else {
                start += chunk;
            }
        }
        if chunk == 1 {
            break;
        }
        chunk = chunk.div_ceil(2).min(chunk - 1).max(1);
    }
    kept
}

/// Drops nodes from the end of each group (the whole group, then down to one, then one
/// at a time), renumbering the nodes after them in faults and link overrides. Protocols
/// that need a shape (as many ping-pong servers as clients) refuse the candidate when it
/// is read back. Not run for a stall found at the end (see `Search::liveness`).
fn remove_nodes(search: &mut Search<'_>) -> bool {
    let mut kept = false;
    let mut group = search.best().nodes.len();
    while group > 0 && !search.stopped() {
        group -= 1;
        let count = search.best().nodes[group].count;
        let mut tries = Vec::new();
        if search.best().nodes.len() > 1 {
            tries.push(count);
        }
        if count > 1 {
            tries.push(count - 1);
        }
        if count > 2 {
            tries.push(1);
        }
        tries.sort_unstable_by(|a, b| b.cmp(a));
        tries.dedup();
        for remove in tries {
            if remove > search.best().nodes[group].count {
                continue;
            }
            if search.try_candidate(without_nodes(search.best(), group, remove)) {
                kept = true;
                break;
            }
        }
    }
    kept
}

/// `scenario` without the last `remove` nodes of group `group` (the group gone when
/// that is all of it).
fn without_nodes(scenario: &Scenario, group: usize, remove: u32) -> Scenario {
    let start: u32 = scenario.nodes[..group].iter().map(|g| g.count).sum();
    let count = scenario.nodes[group].count;
    assert!(remove >= 1 && remove <= count);
    let (low, high) = (start + count - remove, start + count);
    let map = move |node: NodeId| -> Option<NodeId> {
        match node {
            n if n < low => Some(n),
            n if n < high => None,
            n => Some(n - remove),
        }
    };
    let mut candidate = scenario.clone();
    if remove == count {
        candidate.nodes.remove(group);
    } else {
        candidate.nodes[group].count -= remove;
    }
    candidate.faults = scenario
        .faults
        .iter()
        .filter_map(|scheduled| {
            let fault = scheduled.fault.map_nodes(&map)?;
            Some(ScheduledFault {
                at_ns: scheduled.at_ns,
                fault,
            })
        })
        .collect();
    candidate.links = scenario
        .links
        .iter()
        .filter_map(|(from, to, model)| Some((map(*from)?, map(*to)?, *model)))
        .collect();
    candidate
}

/// Cuts each workload parameter to the smallest of 1, a quarter, a half and three
/// quarters of its value that still fails.
fn cut_workloads(search: &mut Search<'_>) -> bool {
    let mut kept = false;
    let protocols: Vec<String> = search.best().params.keys().cloned().collect();
    for protocol in protocols {
        for name in WORKLOAD_PARAMS {
            let Some(params) = search.best().params.get(&protocol) else {
                continue;
            };
            let spec = crate::catalogue::protocol(&protocol).expect("validated protocol");
            if !spec.params.iter().any(|param| param.name == *name) {
                continue;
            }
            let value = params.number(name);
            for smaller in smaller_values(value, 1) {
                let mut candidate = search.best().clone();
                let params = candidate.params.get_mut(&protocol).expect("present");
                params.set(name, ParamValue::Number(smaller));
                if search.try_candidate(candidate) {
                    kept = true;
                    break;
                }
            }
        }
    }
    kept
}

/// Values below `value`, smallest first: `floor`, a quarter, a half, three quarters.
fn smaller_values(value: u64, floor: u64) -> Vec<u64> {
    let mut values: Vec<u64> = [floor, value / 4, value / 2, value - value / 4]
        .into_iter()
        .filter(|v| *v >= floor && *v < value)
        .collect();
    values.sort_unstable();
    values.dedup();
    values
}

/// Shortens the fault phase to the smallest of: just past the last fault and the
/// finding (when it came inside the fault phase), a quarter, a half, three quarters. The quiet phase is never shortened: a
/// liveness check given less time would fail for a reason of the shrinker's making.
fn shorten_duration(search: &mut Search<'_>) -> bool {
    let best = search.best();
    let last_fault_ns = best.faults.iter().map(|f| f.at_ns).max().unwrap_or(0);
    // A finding inside the fault phase must stay inside it; one at the end of the run (a
    // liveness check) says nothing about how long the fault phase must be.
    let finding_ns = search
        .best_report
        .findings
        .iter()
        .find(|finding| finding.invariant == search.invariant)
        .map_or(0, |finding| finding.time_ns)
        .min(best.duration_ns - 1);
    let floor = round_up(last_fault_ns.max(finding_ns) + 1);
    let value = best.duration_ns;
    for shorter in smaller_values(value, floor.max(STEP_NS)) {
        let mut candidate = search.best().clone();
        candidate.duration_ns = round_up(shorter);
        if candidate.duration_ns >= value {
            continue;
        }
        if search.try_candidate(candidate) {
            return true;
        }
    }
    false
}

/// Rounds up to a whole millisecond, which keeps shrunk files readable.
fn round_up(ns: u64) -> u64 {
    ns.div_ceil(STEP_NS) * STEP_NS
}

/// Moves each fault that ends another (restart after crash, resume after pause, heal
/// after a cut, a clock put right) closer to the fault it ends: a quarter, a half or
/// three quarters of the window, the shortest that still fails.
fn narrow_windows(search: &mut Search<'_>) -> bool {
    let mut kept = false;
    let mut index = 0;
    while index < search.best().faults.len() && !search.stopped() {
        let faults = &search.best().faults;
        if let Some(strike_ns) = strike_before(faults, index) {
            let window = faults[index].at_ns - strike_ns;
            for narrower in smaller_values(window, STEP_NS.min(window)) {
                let mut candidate = search.best().clone();
                candidate.faults[index].at_ns = strike_ns + narrower;
                if search.try_candidate(candidate) {
                    kept = true;
                    break;
                }
            }
        }
        index += 1;
    }
    kept
}

/// The time of the latest fault before `faults[index]` that it ends, if it ends one.
fn strike_before(faults: &[ScheduledFault], index: usize) -> Option<u64> {
    let undo = &faults[index];
    let ends = |strike: &Fault| match (&undo.fault, strike) {
        (Fault::Restart { node }, Fault::Crash { node: n })
        | (Fault::Resume { node }, Fault::Pause { node: n }) => node == n,
        (Fault::Heal, Fault::Partition { .. } | Fault::PartitionOneWay { .. }) => true,
        (
            Fault::ClockSkew {
                node,
                offset_ns: 0,
                drift_ppm: 0,
            },
            Fault::ClockSkew { node: n, .. },
        ) => node == n,
        _ => false,
    };
    faults[..index]
        .iter()
        .filter(|strike| strike.at_ns <= undo.at_ns && ends(&strike.fault))
        .map(|strike| strike.at_ns)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;

    #[test]
    fn smaller_values_are_below_the_value_and_at_least_the_floor() {
        assert_eq!(smaller_values(100, 1), [1, 25, 50, 75]);
        assert_eq!(smaller_values(2, 1), [1]);
        assert_eq!(smaller_values(1, 1), Vec::<u64>::new());
        assert_eq!(smaller_values(100, 60), [60, 75]);
    }

    #[test]
    fn dropping_nodes_renumbers_the_faults_after_them_and_drops_theirs() {
        let text = r#"
            name = "x"
            description = "y"
            protocol = "broadcast"
            duration = "1s"
            [[nodes]]
            kind = "peer"
            count = 4
            [[network.links]]
            from = 3
            to = 0
            loss = 1
            [[faults]]
            at = "1ms"
            action = "crash"
            node = 2
            [[faults]]
            at = "2ms"
            action = "crash"
            node = 3
            [[faults]]
            at = "3ms"
            action = "partition"
            groups = [[0, 2], [3]]
        "#;
        let scenario = parse("x.toml", text).unwrap();
        let shrunk = without_nodes(&scenario, 0, 2);
        assert_eq!(shrunk.node_count(), 2);
        assert!(shrunk.links.is_empty());
        let specs: Vec<String> = shrunk.faults.iter().map(ScheduledFault::spec).collect();
        assert_eq!(specs, ["partition:0@3ms"]);
    }

    #[test]
    fn a_window_is_the_time_since_the_fault_it_ends() {
        let faults: Vec<ScheduledFault> = ["crash:1@1s", "pause:2@2s", "restart:1@3s", "heal@4s"]
            .iter()
            .map(|spec| ScheduledFault::parse_spec(spec).unwrap())
            .collect();
        assert_eq!(strike_before(&faults, 2), Some(1_000_000_000));
        assert_eq!(strike_before(&faults, 3), None, "no cut before the heal");
        assert_eq!(strike_before(&faults, 1), None, "a strike ends nothing");
    }
}
