//! The bug zoo: the catalogue of planted bugs and the set switched on for one run.
//!
//! Each protocol lists its faulty variants in its own `bugs.rs`; this module gathers them
//! so the CLI, scenarios and the browser name them the same way (`protocol.kebab-case`).
//! It never decides how a bug behaves: the protocol code asks `Ctx::bug`.

use crate::proto;

/// One planted bug, as `faultline bugs` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BugInfo {
    pub name: &'static str,
    pub protocol: &'static str,
    pub description: &'static str,
    /// The built-in scenario that exposes it.
    pub scenario: &'static str,
}

/// Every planted bug of every protocol, in name order.
pub fn catalogue() -> Vec<BugInfo> {
    let mut all: Vec<BugInfo> = Vec::new();
    all.extend_from_slice(proto::broadcast::bugs::BUGS);
    all.extend_from_slice(proto::broker::bugs::BUGS);
    all.extend_from_slice(proto::registry::bugs::BUGS);
    all.extend_from_slice(proto::zab::bugs::BUGS);
    all.sort_by_key(|bug| bug.name);
    all
}

pub fn find(name: &str) -> Option<BugInfo> {
    catalogue().into_iter().find(|bug| bug.name == name)
}

/// The planted bugs switched on for one run. Usually empty, so a linear scan is cheapest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BugSet {
    names: Vec<&'static str>,
}

impl BugSet {
    /// Switches on `name`; an unknown name is an error value naming the known ones.
    pub fn enable(&mut self, name: &str) -> Result<(), String> {
        match find(name) {
            Some(bug) => {
                if !self.names.contains(&bug.name) {
                    self.names.push(bug.name);
                    self.names.sort_unstable();
                }
                Ok(())
            }
            None => Err(unknown_bug_message(name)),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(&name)
    }

    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
}

/// "unknown bug `x`; known: a, b (did you mean `a`?)"
pub fn unknown_bug_message(name: &str) -> String {
    let known: Vec<&str> = catalogue().iter().map(|bug| bug.name).collect();
    let mut message = format!("unknown bug `{name}`; known: {}", known.join(", "));
    if let Some(close) = closest(name, &known) {
        message.push_str(&format!(" (did you mean `{close}`?)"));
    }
    message
}

/// The candidate nearest to `word`, if it is near enough to be a likely misspelling.
pub fn closest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), *candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_protocol_dot_kebab_case_and_unique() {
        let all = catalogue();
        for pair in all.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "duplicate or unsorted {}",
                pair[1].name
            );
        }
        for bug in &all {
            let (protocol, rest) = bug.name.split_once('.').expect("protocol.name");
            assert!(!protocol.is_empty() && !rest.is_empty());
            assert!(rest.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
            assert!(
                crate::scenario::builtin(bug.scenario).is_some(),
                "{}",
                bug.scenario
            );
        }
    }

    #[test]
    fn unknown_bug_names_the_known_ones_and_a_suggestion() {
        let mut set = BugSet::default();
        let error = set.enable("broadcast.no-retransmt").unwrap_err();
        assert!(error.contains("known: "), "{error}");
        assert!(
            error.contains("did you mean `broadcast.no-retransmit`?"),
            "{error}"
        );
        assert!(set.names().is_empty());
    }
}
