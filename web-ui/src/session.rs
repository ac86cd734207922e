//! One run of a built-in scenario, driven in slices so the browser stays responsive.
//!
//! The page calls `advance` from a timer; each call runs at most `STEPS_PER_SLICE` engine
//! steps and returns, so the event loop can paint between slices. A session runs the
//! scenario exactly as `faultline run NAME --seed N` does (same options, same engine),
//! which is why the trace hash it shows matches the CLI's. It never touches the DOM.

use sim_core::check::Finding;
use sim_core::engine::{NodeView, Run};
use sim_core::scenario::{self, RunOptions, Scenario};

use crate::query::parse_query;

/// Engine steps per slice (one queued event each, which may record several trace
/// events): a few milliseconds of work in a release wasm build, short enough that the
/// page never feels frozen, long enough that timer overhead stays small.
pub const STEPS_PER_SLICE: u64 = 20_000;

/// Where a run stands, for the progress line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub now_ns: u64,
    pub end_ns: u64,
    pub events: u64,
    pub finished: bool,
}

pub struct Session {
    scenario: Scenario,
    seed: u64,
    run: Box<dyn Run>,
}

impl Session {
    /// Builds the run the URL query asks for, or says in a sentence why it cannot.
    pub fn open(search: &str) -> Result<Session, String> {
        let request = parse_query(search)?;
        let name = request
            .scenario
            .as_deref()
            .unwrap_or(scenario::DEFAULT_SCENARIO);
        let Some(text) = scenario::builtin(name) else {
            return Err(unknown_scenario_message(name));
        };
        let parsed = scenario::parse(&format!("{name}.toml"), text).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            format!(
                "built-in scenario `{name}` does not parse: {}",
                lines.join("; ")
            )
        })?;
        let options = RunOptions {
            seed: request.seed,
            ..Default::default()
        };
        let seed = request.seed.unwrap_or(parsed.seed);
        let run = parsed.build(&options);
        Ok(Session {
            scenario: parsed,
            seed,
            run,
        })
    }

    /// Runs one slice; true while the run has more to do.
    pub fn advance(&mut self) -> bool {
        let now_before_ns = self.run.now_ns();
        let more = self.run.run_for(STEPS_PER_SLICE);
        assert!(
            self.run.now_ns() >= now_before_ns,
            "virtual time never runs backwards"
        );
        assert!(
            more || self.run.is_finished(),
            "a run stops only by finishing"
        );
        more
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn progress(&self) -> Progress {
        Progress {
            now_ns: self.run.now_ns(),
            end_ns: self.run.end_ns(),
            events: self.run.trace().events(),
            finished: self.run.is_finished(),
        }
    }

    /// The final trace hash, once the run has finished (a partial hash means nothing).
    pub fn trace_hash(&self) -> Option<String> {
        self.run.is_finished().then(|| self.run.report().trace_hash)
    }

    pub fn nodes(&self) -> Vec<NodeView> {
        self.run.nodes()
    }

    pub fn findings(&self) -> &[Finding] {
        self.run.findings()
    }
}

/// "unknown scenario `x`; built-in: a, b (did you mean `a`?)"
fn unknown_scenario_message(name: &str) -> String {
    let known = scenario::builtin_names();
    let mut message = format!("unknown scenario `{name}`; built-in: {}", known.join(", "));
    if let Some(close) = sim_core::bugs::closest(name, &known) {
        message.push_str(&format!(" (did you mean `{close}`?)"));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::engine::run_to_end;

    /// The page must show the hash the CLI prints: run in slices, hash as in one go.
    #[test]
    fn a_sliced_run_ends_with_the_same_hash_as_run_to_end() {
        for (name, _) in scenario::BUILTINS {
            let mut session = Session::open(&format!("?scenario={name}&seed=2")).unwrap();
            assert_eq!(session.trace_hash(), None, "no hash before the end");
            let mut slices = 0;
            while session.advance() {
                slices += 1;
                assert!(slices < 1_000_000, "{name}: the run ends");
            }
            let text = scenario::builtin(name).unwrap();
            let parsed = scenario::parse("x.toml", text).unwrap();
            let mut whole = parsed.build(&RunOptions {
                seed: Some(2),
                ..Default::default()
            });
            let report = run_to_end(whole.as_mut());
            assert_eq!(session.trace_hash(), Some(report.trace_hash), "{name}");
            assert!(session.progress().finished);
            assert_eq!(session.progress().events, report.events);
            assert_eq!(session.findings(), &report.findings[..]);
        }
    }

    #[test]
    fn no_query_runs_the_default_scenario_at_its_own_seed() {
        let session = Session::open("").unwrap();
        assert_eq!(session.scenario().name, scenario::DEFAULT_SCENARIO);
        assert_eq!(session.seed(), session.scenario().seed);
        assert_eq!(
            session.nodes().len() as u32,
            session.scenario().node_count()
        );
    }

    #[test]
    fn an_unknown_scenario_names_the_built_ins_and_a_suggestion() {
        let error = Session::open("?scenario=ping-pnog").err().unwrap();
        assert!(error.contains("unknown scenario `ping-pnog`"), "{error}");
        assert!(error.contains("built-in: "), "{error}");
        assert!(error.contains("did you mean `ping-pong`?"), "{error}");
    }

    #[test]
    fn a_bad_seed_is_an_error() {
        let error = Session::open("?scenario=ping-pong&seed=x").err().unwrap();
        assert!(error.contains("bad seed `x`"), "{error}");
    }
}
