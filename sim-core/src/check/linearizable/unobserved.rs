//! Unknown operations nothing observed, dropped before a search: a read of unknown
//! outcome constrains nothing, and a write, cas or append of unknown outcome whose value
//! no read returned (or, for a register, no cas expected; for kv, no read's value
//! contains or starts with it) may as well take effect at the end of time, so the
//! history is linearizable with it exactly when it is without it. Such operations are
//! common where a history is cut (every operation pending at the cut becomes unknown),
//! and each multiplies the orders a search tries. It decides nothing on its own.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Model, Operation};
use crate::check::OpFunction;

/// `ops` without the unknown operations nothing observed (in the same order).
pub(super) fn without_unobserved(model: Model, ops: &[Operation]) -> Vec<Operation> {
    if ops.iter().all(|op| op.completed) {
        return ops.to_vec();
    }
    let reads: Vec<&Value> = ops
        .iter()
        .filter(|op| op.f == OpFunction::Read && op.completed)
        .filter_map(|op| op.output.as_ref())
        .collect();
    // Register values are keyed by their text, as the zones key them.
    let mut seen: BTreeSet<String> = reads.iter().map(|value| value.to_string()).collect();
    for op in ops.iter().filter(|op| op.f == OpFunction::Cas) {
        let pair = op.input.as_array().expect("validated: [expected, new]");
        seen.insert(pair[0].to_string());
    }
    let observed = |op: &Operation| match (model, op.f) {
        (_, OpFunction::Read) => false,
        (Model::Register, OpFunction::Write) => seen.contains(&op.input.to_string()),
        (Model::Register, OpFunction::Cas) => {
            let pair = op.input.as_array().expect("validated: [expected, new]");
            seen.contains(&pair[1].to_string())
        }
        (Model::Kv, OpFunction::Write | OpFunction::Append) => {
            let Some(text) = op.input.as_str() else {
                return true;
            };
            reads
                .iter()
                .filter_map(|value| value.as_str())
                .any(|value| {
                    if op.f == OpFunction::Write {
                        value.starts_with(text)
                    } else {
                        value.contains(text)
                    }
                })
        }
        // Anything else is kept: the search decides what it means.
        _ => true,
    };
    ops.iter()
        .filter(|op| op.completed || observed(op))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::history;

    fn kept(model: Model, text: &str) -> Vec<u32> {
        let ops = history::parse(text).expect("a valid history");
        without_unobserved(model, &ops)
            .iter()
            .map(|op| op.line)
            .collect()
    }

    /// An unknown write nobody read goes; one a read returned, or a cas expected, stays;
    /// an unknown cas stays when its new value was read, and goes when not; an unknown
    /// read always goes.
    #[test]
    fn only_unknown_operations_nobody_observed_are_dropped() {
        let text = r#"{"process":0,"type":"invoke","f":"write","value":1}
{"process":1,"type":"invoke","f":"write","value":2}
{"process":2,"type":"invoke","f":"write","value":3}
{"process":3,"type":"invoke","f":"cas","value":[9,4]}
{"process":4,"type":"invoke","f":"read","value":null}
{"process":5,"type":"invoke","f":"read","value":null}
{"process":5,"type":"ok","f":"read","value":2}
{"process":6,"type":"invoke","f":"cas","value":[3,5]}
{"process":6,"type":"info","f":"cas","value":[3,5]}
{"process":7,"type":"invoke","f":"read","value":null}
{"process":7,"type":"ok","f":"read","value":4}"#;
        assert_eq!(kept(Model::Register, text), [2, 3, 4, 6, 10]);
    }

    /// In kv, an unknown append stays when a read's value contains its text, an unknown
    /// write when a read's value starts with it.
    #[test]
    fn kv_unknown_appends_and_writes_stay_when_a_read_shows_them() {
        let text = r#"{"process":0,"type":"invoke","f":"append","key":"k","value":"a"}
{"process":1,"type":"invoke","f":"append","key":"k","value":"b"}
{"process":2,"type":"invoke","f":"write","key":"k","value":"w"}
{"process":3,"type":"invoke","f":"write","key":"k","value":"v"}
{"process":4,"type":"invoke","f":"read","key":"k","value":null}
{"process":4,"type":"ok","f":"read","key":"k","value":"wxa"}"#;
        assert_eq!(kept(Model::Kv, text), [1, 3, 5]);
    }
}
