//! Protocol parameters: what each protocol lets a scenario set (`ParamSpec`), and the
//! values one scenario gives them, defaults filled in (`Params`).
//!
//! Protocols declare their parameters here and read them when they build a run; the
//! scenario parser validates a file against the declarations. This module never parses
//! a file and knows no protocol.

use std::collections::BTreeMap;

pub const MS: u64 = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Count {
        min: u64,
        max: u64,
        default: u64,
    },
    Duration {
        min_ns: u64,
        max_ns: u64,
        default_ns: u64,
    },
    Flag {
        default: bool,
    },
    /// A string; one of `choices` unless that is empty.
    Text {
        default: &'static str,
        choices: &'static [&'static str],
    },
    List {
        default: &'static [&'static str],
    },
}

/// A parameter's value as the scenario gives it (or its default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamValue {
    Number(u64),
    Text(String),
    List(Vec<String>),
}

impl ParamKind {
    pub fn default_value(self) -> ParamValue {
        match self {
            ParamKind::Count { default, .. } => ParamValue::Number(default),
            ParamKind::Duration { default_ns, .. } => ParamValue::Number(default_ns),
            ParamKind::Flag { default } => ParamValue::Number(default as u64),
            ParamKind::Text { default, .. } => ParamValue::Text(default.to_string()),
            ParamKind::List { default } => {
                ParamValue::List(default.iter().map(|s| s.to_string()).collect())
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub doc: &'static str,
    pub kind: ParamKind,
}

/// A duration from one microsecond to one hour.
pub const fn duration(name: &'static str, doc: &'static str, default_ns: u64) -> ParamSpec {
    let kind = ParamKind::Duration {
        min_ns: 1_000,
        max_ns: 3_600_000 * MS,
        default_ns,
    };
    ParamSpec { name, doc, kind }
}

pub const fn flag(name: &'static str, doc: &'static str, default: bool) -> ParamSpec {
    ParamSpec {
        name,
        doc,
        kind: ParamKind::Flag { default },
    }
}

/// A count from `min` to `max`.
pub const fn count(
    name: &'static str,
    doc: &'static str,
    min: u64,
    max: u64,
    default: u64,
) -> ParamSpec {
    ParamSpec {
        name,
        doc,
        kind: ParamKind::Count { min, max, default },
    }
}

pub const fn text(
    name: &'static str,
    doc: &'static str,
    default: &'static str,
    choices: &'static [&'static str],
) -> ParamSpec {
    ParamSpec {
        name,
        doc,
        kind: ParamKind::Text { default, choices },
    }
}

pub const fn list(
    name: &'static str,
    doc: &'static str,
    default: &'static [&'static str],
) -> ParamSpec {
    ParamSpec {
        name,
        doc,
        kind: ParamKind::List { default },
    }
}

/// One protocol's parameter values in one scenario: what the file set, over defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<&'static str, ParamValue>,
}

impl Params {
    /// Every parameter at its default.
    pub fn defaults(specs: &'static [ParamSpec]) -> Self {
        let values = specs
            .iter()
            .map(|spec| (spec.name, spec.kind.default_value()))
            .collect();
        Self { values }
    }

    /// Sets a declared parameter; the caller validated `value` against its spec.
    pub fn set(&mut self, name: &str, value: ParamValue) {
        let slot = self
            .values
            .iter_mut()
            .find(|(declared, _)| **declared == name)
            .unwrap_or_else(|| panic!("parameter {name} is not declared"));
        *slot.1 = value;
    }

    /// A declared parameter's value, whatever its kind.
    pub fn value(&self, name: &str) -> &ParamValue {
        self.values
            .get(name)
            .unwrap_or_else(|| panic!("parameter {name} is not declared"))
    }

    /// A count, duration (ns) or flag (0 or 1) parameter.
    pub fn number(&self, name: &str) -> u64 {
        match self.value(name) {
            ParamValue::Number(n) => *n,
            other => panic!("parameter {name} is not a number: {other:?}"),
        }
    }

    pub fn flag(&self, name: &str) -> bool {
        self.number(name) != 0
    }

    pub fn text(&self, name: &str) -> &str {
        match self.value(name) {
            ParamValue::Text(text) => text,
            other => panic!("parameter {name} is not text: {other:?}"),
        }
    }

    pub fn list(&self, name: &str) -> &[String] {
        match self.value(name) {
            ParamValue::List(items) => items,
            other => panic!("parameter {name} is not a list: {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[ParamSpec] = &[
        duration("tick", "a tick", 20 * MS),
        flag("fast", "go fast", false),
        count("keys", "keys", 1, 10, 3),
        text("mode", "mode", "a", &["a", "b"]),
        list("names", "names", &["x"]),
    ];

    #[test]
    fn defaults_fill_what_the_file_left_out() {
        let mut params = Params::defaults(SPECS);
        assert_eq!(params.number("tick"), 20 * MS);
        assert!(!params.flag("fast"));
        assert_eq!(params.text("mode"), "a");
        assert_eq!(params.list("names"), ["x".to_string()]);
        params.set("keys", ParamValue::Number(7));
        assert_eq!(params.number("keys"), 7);
    }
}
