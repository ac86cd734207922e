//! Everything built in, in one place: the protocols a scenario may name, the components
//! their nodes host, and the bug zoo gathered from every component's `bugs.rs`. The CLI,
//! scenarios and the browser all look names up here, so they agree on them.
//!
//! This module only lists; it never builds or runs anything.

use crate::bugs::{closest, BugInfo, BugSet};
use crate::proto::spec::{ComponentSpec, ProtocolSpec};
use crate::proto::txn::{self, shop};
use crate::proto::world::World;
use crate::proto::{broadcast, broker, ping_pong, registry, rpc, zab};

/// The protocols scenarios may name, in the order `faultline list` shows them.
pub const PROTOCOLS: &[ProtocolSpec<World>] = &[
    ping_pong::spec::spec::<World>(),
    broadcast::spec::spec::<World>(),
    broker::spec::spec::<World>(),
    registry::spec::spec::<World>(),
    rpc::spec::spec::<World>(),
    txn::spec::spec::<World>(),
    shop::spec::spec::<World>(),
];

/// The components nodes host: each owns invariants and planted bugs.
pub const COMPONENTS: &[ComponentSpec] = &[
    ping_pong::COMPONENT,
    broadcast::COMPONENT,
    broker::COMPONENT,
    zab::COMPONENT,
    registry::COMPONENT,
    registry::LOCK_COMPONENT,
    rpc::COMPONENT,
    txn::XA_COMPONENT,
    txn::BANK_COMPONENT,
    shop::COMPONENT,
];

pub fn protocol(name: &str) -> Option<&'static ProtocolSpec<World>> {
    PROTOCOLS.iter().find(|spec| spec.name == name)
}

pub fn component(name: &str) -> Option<&'static ComponentSpec> {
    COMPONENTS.iter().find(|spec| spec.name == name)
}

/// Every planted bug of every component, in name order.
pub fn bugs() -> Vec<BugInfo> {
    let mut all: Vec<BugInfo> = COMPONENTS
        .iter()
        .flat_map(|component| component.bugs.iter().copied())
        .collect();
    all.sort_by_key(|bug| bug.name);
    all
}

pub fn find_bug(name: &str) -> Option<BugInfo> {
    bugs().into_iter().find(|bug| bug.name == name)
}

/// Switches on bug `name`; an unknown name is an error naming the known ones.
pub fn enable_bug(set: &mut BugSet, name: &str) -> Result<(), String> {
    match find_bug(name) {
        Some(bug) => {
            set.insert(&bug);
            Ok(())
        }
        None => Err(unknown_bug_message(name)),
    }
}

/// "unknown bug `x`; known: a, b (did you mean `a`?)"
pub fn unknown_bug_message(name: &str) -> String {
    let known: Vec<&str> = bugs().iter().map(|bug| bug.name).collect();
    let mut message = format!("unknown bug `{name}`; known: {}", known.join(", "));
    if let Some(close) = closest(name, &known) {
        message.push_str(&format!(" (did you mean `{close}`?)"));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bug_names_are_component_dot_kebab_case_and_unique() {
        let all = bugs();
        for pair in all.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "duplicate or unsorted {}",
                pair[1].name
            );
        }
        for bug in &all {
            let (prefix, rest) = bug.name.split_once('.').expect("component.name");
            assert_eq!(prefix, bug.protocol, "{}", bug.name);
            assert!(component(prefix).is_some(), "{}", bug.name);
            assert!(!rest.is_empty());
            assert!(rest.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
            let owner = component(prefix).expect("checked");
            assert!(
                bug.caught_by == crate::engine::PANIC
                    || COMPONENTS
                        .iter()
                        .any(|c| c.invariants.contains(&bug.caught_by)),
                "{} is caught by `{}`, which no component lists (owner {})",
                bug.name,
                bug.caught_by,
                owner.name
            );
        }
    }

    #[test]
    fn every_invariant_is_tripped_by_a_planted_bug() {
        let all = bugs();
        for component in COMPONENTS {
            for invariant in component.invariants {
                assert!(
                    all.iter().any(|bug| bug.caught_by == *invariant),
                    "no planted bug trips `{invariant}`: a checker nothing can trip is not a checker"
                );
            }
        }
    }

    #[test]
    fn every_kind_hosts_known_components() {
        for protocol in PROTOCOLS {
            for kind in protocol.kinds {
                for name in kind.components {
                    assert!(
                        component(name).is_some(),
                        "{}.{}: {name}",
                        protocol.name,
                        kind.name
                    );
                }
            }
        }
    }

    #[test]
    fn unknown_bug_names_the_known_ones_and_a_suggestion() {
        let mut set = BugSet::default();
        let error = enable_bug(&mut set, "broadcast.no-retransmt").unwrap_err();
        assert!(error.contains("known: "), "{error}");
        assert!(
            error.contains("did you mean `broadcast.no-retransmit`?"),
            "{error}"
        );
        assert!(set.names().is_empty());
    }
}
