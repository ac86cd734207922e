//! A polynomial test for the common case the search finds hardest: a register (or a kv
//! key) whose writes each write a distinct value, read and written only. Each read then
//! names the write it saw, and Gibbons and Korach's zones decide linearizability in
//! O(n log n) (as Golab, Li and Shah state it): group every write with the reads of its
//! value; a group's zone runs from the earliest return among its operations to the latest
//! invocation. When the first comes before the second the zone is *forward* (the value
//! must stay current across it), otherwise *backward*. The history is linearizable iff no
//! read returns before its write is invoked, no two forward zones overlap, and no backward
//! zone lies inside a forward one.
//!
//! Twenty concurrent writes and then two reads of different values, which the search
//! must refute over 2^20 orders (it gave up), take a handful of comparisons here. The
//! verdict is exact both ways; the shrinker uses it too, so the failing part and the
//! longest linearizable prefix come as fast. A history outside the case (a cas, an
//! append, a value written twice) goes to the search.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Model, Operation};
use crate::check::OpFunction;

/// One value's group: the earliest return and the latest invocation among its write and
/// its reads. Times are widened so the initial value can be written before time 0.
#[derive(Clone, Copy, Debug)]
struct Zone {
    first_return: i128,
    last_invoke: i128,
}

impl Zone {
    fn forward(&self) -> bool {
        self.first_return < self.last_invoke
    }
}

/// A value's group while it is gathered.
struct Group {
    zone: Zone,
    write_invoke: i128,
    /// A read saw it (an unknown write nobody saw may never have happened).
    seen: bool,
    /// Its write's outcome is unknown.
    unknown: bool,
}

/// The zones' verdict on a key's history (`Some(true)`: linearizable), or `None` when
/// they do not apply (a cas, an append, a value written twice): the search decides then.
pub(super) fn linearizable(model: Model, ops: &[Operation]) -> Option<bool> {
    let key = |value: &Value| value.to_string();
    let mut by_value: BTreeMap<String, usize> = BTreeMap::new();
    by_value.insert(key(&model.initial()), 0);
    // The initial value: written and returned before everything.
    let mut groups = vec![Group {
        zone: Zone {
            first_return: -1,
            last_invoke: -1,
        },
        write_invoke: -1,
        seen: true,
        unknown: false,
    }];
    for op in ops {
        match op.f {
            OpFunction::Write => {
                if by_value.insert(key(&op.input), groups.len()).is_some() {
                    return None; // A value written twice (or the initial one rewritten).
                }
                groups.push(Group {
                    zone: Zone {
                        first_return: op.return_time as i128,
                        last_invoke: op.invoke_time as i128,
                    },
                    write_invoke: op.invoke_time as i128,
                    seen: false,
                    unknown: !op.completed,
                });
            }
            OpFunction::Read => {}
            _ => return None,
        }
    }
    for op in ops.iter().filter(|op| op.f == OpFunction::Read) {
        // A read of unknown outcome says nothing.
        let (true, Some(output)) = (op.completed, &op.output) else {
            continue;
        };
        let Some(&index) = by_value.get(&key(output)) else {
            return Some(false); // A value no write wrote.
        };
        let group = &mut groups[index];
        if (op.return_time as i128) < group.write_invoke {
            return Some(false); // The read returned before its write began.
        }
        group.zone.first_return = group.zone.first_return.min(op.return_time as i128);
        group.zone.last_invoke = group.zone.last_invoke.max(op.invoke_time as i128);
        group.seen = true;
    }
    // Unknown writes nobody read drop out: "never happened" is one of their outcomes.
    let zones: Vec<Zone> = groups
        .iter()
        .filter(|group| group.seen || !group.unknown)
        .map(|group| group.zone)
        .collect();
    let mut forward: Vec<(i128, i128)> = zones
        .iter()
        .filter(|z| z.forward())
        .map(|z| (z.first_return, z.last_invoke))
        .collect();
    forward.sort_unstable();
    // Forward zones, sorted by start, must not overlap (strictly: equal times are
    // concurrent and may be ordered either way).
    if forward.windows(2).any(|pair| pair[1].0 < pair[0].1) {
        return Some(false);
    }
    // A backward zone inside a forward one: only the forward zone starting last before it
    // can contain it (forward zones are disjoint).
    for zone in zones.iter().filter(|z| !z.forward()) {
        let (start, end) = (zone.last_invoke, zone.first_return);
        let at = forward.partition_point(|(from, _)| *from < start);
        if at > 0 {
            let (from, to) = forward[at - 1];
            if from < start && end < to {
                return Some(false);
            }
        }
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::super::{check, Verdict};
    use super::*;
    use crate::check::history;

    fn ops(lines: &[String]) -> Vec<Operation> {
        history::parse(&lines.join("\n")).unwrap()
    }

    /// Twenty concurrent writes, then a read of one of them: the search ran out of its
    /// default budget on it (2^20 orders); the zones answer at once.
    #[test]
    fn twenty_concurrent_writes_then_a_read_are_decided() {
        let mut lines = Vec::new();
        for p in 0..20 {
            lines.push(format!(
                r#"{{"process":{p},"type":"invoke","f":"write","value":{p},"time":0}}"#
            ));
        }
        for p in 0..20 {
            lines.push(format!(
                r#"{{"process":{p},"type":"ok","f":"write","value":{p},"time":100}}"#
            ));
        }
        lines.push(r#"{"process":99,"type":"invoke","f":"read","value":null,"time":200}"#.into());
        lines.push(r#"{"process":99,"type":"ok","f":"read","value":7,"time":300}"#.into());
        let history = ops(&lines);
        assert_eq!(linearizable(Model::Register, &history), Some(true));
        assert_eq!(check(Model::Register, &history), Verdict::Linearizable);
    }

    #[test]
    fn the_zones_refute_and_leave_other_shapes_to_the_search() {
        // write 1, then write 2, then a read of 1: a forward zone holds a backward one.
        let stale = [
            r#"{"process":1,"type":"invoke","f":"write","value":1,"time":0}"#,
            r#"{"process":1,"type":"ok","f":"write","value":1,"time":1}"#,
            r#"{"process":1,"type":"invoke","f":"write","value":2,"time":2}"#,
            r#"{"process":1,"type":"ok","f":"write","value":2,"time":3}"#,
            r#"{"process":2,"type":"invoke","f":"read","value":null,"time":4}"#,
            r#"{"process":2,"type":"ok","f":"read","value":1,"time":5}"#,
        ]
        .map(str::to_string);
        let history = ops(&stale);
        assert_eq!(linearizable(Model::Register, &history), Some(false));
        assert!(matches!(
            check(Model::Register, &history),
            Verdict::NotLinearizable { .. }
        ));
        // A value written twice: the zones do not apply.
        let twice = [
            r#"{"process":1,"type":"invoke","f":"write","value":1,"time":0}"#,
            r#"{"process":1,"type":"ok","f":"write","value":1,"time":1}"#,
            r#"{"process":1,"type":"invoke","f":"write","value":1,"time":2}"#,
            r#"{"process":1,"type":"ok","f":"write","value":1,"time":3}"#,
        ]
        .map(str::to_string);
        assert_eq!(linearizable(Model::Register, &ops(&twice)), None);
        // A read of the initial value after a completed write is a violation.
        let past = [
            r#"{"process":1,"type":"invoke","f":"write","value":1,"time":0}"#,
            r#"{"process":1,"type":"ok","f":"write","value":1,"time":1}"#,
            r#"{"process":2,"type":"invoke","f":"read","value":null,"time":2}"#,
            r#"{"process":2,"type":"ok","f":"read","value":null,"time":3}"#,
        ]
        .map(str::to_string);
        assert_eq!(linearizable(Model::Register, &ops(&past)), Some(false));
    }
}
