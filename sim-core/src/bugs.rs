//! Planted bugs: what one is (`BugInfo`) and the set switched on for one run (`BugSet`).
//!
//! Each component lists its faulty variants in its own `bugs.rs`, named
//! `component.kebab-case` (`zab.ack-before-persist`); `catalogue` gathers them. Protocol
//! code asks `Ctx::bug(NAME)`; nothing else knows what a bug does. This module never
//! names a component.

/// One planted bug, as `faultline bugs` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BugInfo {
    pub name: &'static str,
    /// The component it lives in: the name's prefix (`zab`, `broker`, `lock`).
    pub protocol: &'static str,
    pub description: &'static str,
    /// The built-in scenario that exposes it.
    pub scenario: &'static str,
    /// The invariant that must catch it there (the bug-zoo test holds it to that).
    pub caught_by: &'static str,
}

/// The planted bugs switched on for one run. Usually empty, so a linear scan is cheapest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BugSet {
    names: Vec<&'static str>,
}

impl BugSet {
    /// Switches on a bug of the catalogue (see `catalogue::enable_bug` for a checked
    /// name).
    pub fn insert(&mut self, bug: &BugInfo) {
        if !self.names.contains(&bug.name) {
            self.names.push(bug.name);
            self.names.sort_unstable();
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(&name)
    }

    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
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
