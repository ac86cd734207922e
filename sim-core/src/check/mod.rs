//! Findings, client histories in faultline's Jepsen-style format, the
//! linearizability checker that reads them (`history`, `linearizable`), and Jepsen's
//! bank checker (`bank`).
//!
//! This module reads histories and holds what a run found; it never drives a run, never
//! reaches into a node and knows no protocol. (The `Invariant` trait that turns what
//! nodes observe into findings lives in `invariant`.)

pub mod bank;
pub mod cap;
pub mod generate;
pub mod history;
pub mod linearizable;
pub mod number;

use serde::{Deserialize, Serialize};

/// A violated invariant, a stall, a panic inside a node, or a limit reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub invariant: String,
    pub time_ns: u64,
    pub message: String,
    /// The trace index of the event that exposed it, for "jump to event".
    pub event: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpFunction {
    Read,
    Write,
    Cas,
    Append,
    /// The bank model's transfer: `{"from", "to", "amount"}`.
    Transfer,
}

/// One line of a history file (see DESIGN.md, History files).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub process: u64,
    #[serde(rename = "type")]
    pub kind: OpType,
    pub f: OpFunction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub value: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
}

impl HistoryEvent {
    pub fn new(process: u64, kind: OpType, f: OpFunction, value: serde_json::Value) -> Self {
        Self {
            process,
            kind,
            f,
            key: None,
            value,
            time: None,
        }
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_events_serialise_in_the_documented_format() {
        let event = HistoryEvent {
            time: Some(1200),
            ..HistoryEvent::new(3, OpType::Invoke, OpFunction::Write, 5.into()).with_key("x")
        };
        let line = serde_json::to_string(&event).unwrap();
        assert_eq!(
            line,
            r#"{"process":3,"type":"invoke","f":"write","key":"x","value":5,"time":1200}"#
        );
        let back: HistoryEvent = serde_json::from_str(&line).unwrap();
        assert_eq!(back, event);
    }
}
