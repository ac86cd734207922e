//! The `Invariant` trait: a property checked over one run, apart from the code it checks.
//!
//! An invariant keeps its own state, fed by what nodes observe (`Ctx::observe`), the
//! client history they record (`Ctx::history`) and crashes (when volatile state goes),
//! and decides at the end of the quiet phase whether the run was live. It reads one
//! component's observations through `Wraps::part`, so it runs in any cluster that hosts
//! that component. It never drives a run or reaches into a node's state.

use crate::check::HistoryEvent;
use crate::ids::NodeId;
use crate::node::Proto;

/// What an invariant sees when the run ends.
#[derive(Clone, Debug)]
pub struct EndState {
    pub time_ns: u64,
    /// Whether each node is up (not crashed) at the end.
    pub up: Vec<bool>,
}

/// An invariant copied whole with its state, for run snapshots (`Run::snapshot`).
pub trait CloneInvariant<P: Proto> {
    fn clone_invariant(&self) -> Box<dyn Invariant<P>>;
}

impl<P: Proto, T: Invariant<P> + Clone + 'static> CloneInvariant<P> for T {
    fn clone_invariant(&self) -> Box<dyn Invariant<P>> {
        Box::new(self.clone())
    }
}

impl<P: Proto> Clone for Box<dyn Invariant<P>> {
    fn clone(&self) -> Self {
        self.clone_invariant()
    }
}

/// A property checked over one run. `Err` from a hook is a violation at that moment; the
/// engine turns it into a finding named `name()` and stops asking that invariant.
pub trait Invariant<P: Proto>: CloneInvariant<P> {
    fn name(&self) -> &'static str;

    /// One observation by `node`.
    fn on_observation(
        &mut self,
        _time_ns: u64,
        _node: NodeId,
        _obs: &P::Obs,
    ) -> Result<(), String> {
        Ok(())
    }

    /// One client-history event recorded by `node`, stamped with the virtual time.
    fn on_history(
        &mut self,
        _time_ns: u64,
        _node: NodeId,
        _event: &HistoryEvent,
    ) -> Result<(), String> {
        Ok(())
    }

    fn on_crash(&mut self, _node: NodeId) {}

    /// `node` stopped running at `time_ns` (a pause): it handles nothing until it resumes,
    /// so deadlines it keeps cannot fire meanwhile.
    fn on_pause(&mut self, _node: NodeId, _time_ns: u64) {}

    /// `node` runs again at `time_ns`; what it held runs now.
    fn on_resume(&mut self, _node: NodeId, _time_ns: u64) {}

    /// The end of the quiet phase: liveness properties are checked here.
    fn at_end(&mut self, _end: &EndState) -> Result<(), String> {
        Ok(())
    }

    /// Counts worth reporting that are not violations (documented trade-offs, totals).
    fn stats(&self) -> Vec<(String, u64)> {
        Vec::new()
    }

    /// Time-series samples the checker derived since the last call (stale reads per
    /// client...), for charts: `(node, metric name, value)`. Called after observations.
    fn take_samples(&mut self, _out: &mut Vec<(NodeId, &'static str, u64)>) {}
}
