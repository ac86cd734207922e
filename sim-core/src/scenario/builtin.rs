//! The built-in scenarios, embedded from the repository's `scenarios/` folder so the CLI
//! and the browser carry the same files.

/// (name, file text), in the order `faultline list` shows them.
pub const BUILTINS: &[(&str, &str)] = &[
    (
        "broadcast",
        include_str!("../../../scenarios/broadcast.toml"),
    ),
    (
        "broadcast-calm",
        include_str!("../../../scenarios/broadcast-calm.toml"),
    ),
    (
        "ping-pong",
        include_str!("../../../scenarios/ping-pong.toml"),
    ),
    (
        "ping-pong-lossy",
        include_str!("../../../scenarios/ping-pong-lossy.toml"),
    ),
];

/// The text of a built-in scenario.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|(name, _)| *name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses_and_is_named_after_its_file() {
        for (name, text) in BUILTINS {
            let scenario = crate::scenario::parse(&format!("{name}.toml"), text)
                .unwrap_or_else(|errors| panic!("{name}: {errors:?}"));
            assert_eq!(scenario.name, *name);
            assert!(!scenario.description.is_empty());
        }
    }

    #[test]
    fn the_default_scenario_is_built_in() {
        assert!(builtin(crate::scenario::DEFAULT_SCENARIO).is_some());
    }
}
