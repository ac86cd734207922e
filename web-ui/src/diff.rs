//! Two runs compared event by event: where their traces first part, and the events that
//! led to that point in each (the `cause` chain the engine records), so a user sees why a
//! seed stopped reproducing, or what a planted bug or a shrink changed. It never draws.

use sim_core::trace::TraceEvent;

/// Events of each run's cause chain shown at most.
pub const CAUSES_MAX: usize = 8;

/// Where two runs first differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The first event number at which the traces differ: every event before it is the
    /// same in both (time, node, kind, peer, message, cause, text).
    pub index: u64,
    /// Each run's event there; `None` where that run ended (or its log was cut) first.
    pub a: Option<TraceEvent>,
    pub b: Option<TraceEvent>,
    /// The events that led to each, oldest first, following `cause` back.
    pub a_causes: Vec<TraceEvent>,
    pub b_causes: Vec<TraceEvent>,
}

/// The first difference between two logs, or `None` if they are the same event for event.
pub fn first_difference(a: &[TraceEvent], b: &[TraceEvent]) -> Option<Difference> {
    let index = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    if index == a.len() && index == b.len() {
        return None;
    }
    let a_event = a.get(index).cloned();
    let b_event = b.get(index).cloned();
    Some(Difference {
        index: index as u64,
        a_causes: a_event.as_ref().map(|e| causes(a, e)).unwrap_or_default(),
        b_causes: b_event.as_ref().map(|e| causes(b, e)).unwrap_or_default(),
        a: a_event,
        b: b_event,
    })
}

/// The chain of events that caused `event` (its cause, that one's cause...), oldest
/// first, at most `CAUSES_MAX`.
pub fn causes(log: &[TraceEvent], event: &TraceEvent) -> Vec<TraceEvent> {
    let mut chain = Vec::new();
    let mut at = event.cause;
    while let Some(index) = at {
        if chain.len() == CAUSES_MAX {
            break;
        }
        // A cause is always earlier; a log cut short may not hold it.
        let Some(cause) = log.get(index as usize).filter(|c| c.index < event.index) else {
            break;
        };
        chain.push(cause.clone());
        at = cause.cause.filter(|next| *next < index);
    }
    chain.reverse();
    chain
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::engine::Run;
    use sim_core::fault::ScheduledFault;
    use sim_core::scenario::{builtin, parse, RunOptions};

    fn log(faults: &[&str]) -> Vec<TraceEvent> {
        let scenario = parse("x", builtin("registry-basic").unwrap()).unwrap();
        let extra_faults = faults
            .iter()
            .map(|spec| ScheduledFault::parse_spec(spec).unwrap())
            .collect();
        let mut run: Box<dyn Run> = scenario.build(&RunOptions {
            seed: Some(1),
            retain_trace: true,
            extra_faults,
            ..Default::default()
        });
        while run.step() {}
        run.trace().retained().to_vec()
    }

    #[test]
    fn the_same_run_twice_has_no_difference() {
        assert_eq!(first_difference(&log(&[]), &log(&[])), None);
    }

    #[test]
    fn a_crash_parts_the_runs_at_the_crash_and_its_causes_lead_there() {
        let (a, b) = (log(&[]), log(&["crash:0@500ms"]));
        let difference = first_difference(&a, &b).expect("the crash changes the run");
        let at = difference.index as usize;
        assert_eq!(a[..at], b[..at], "everything before is the same");
        assert_ne!(a[at], b[at]);
        let b_event = difference.b.as_ref().unwrap();
        assert!(b_event.time_ns >= 500_000_000 && a[at].time_ns >= 500_000_000);
        // Each cause is earlier than what it caused, and the chain ends at the event.
        for chain in [&difference.a_causes, &difference.b_causes] {
            assert!(chain.len() <= CAUSES_MAX);
            assert!(chain.windows(2).all(|w| w[0].index < w[1].index));
        }
        if let Some(last) = difference.a_causes.last() {
            assert_eq!(Some(last.index), difference.a.as_ref().unwrap().cause);
        }
    }

    #[test]
    fn a_run_that_is_a_prefix_of_the_other_differs_where_it_ends() {
        let a = log(&[]);
        let difference = first_difference(&a[..100], &a).unwrap();
        assert_eq!(difference.index, 100);
        assert_eq!(difference.a, None);
        assert_eq!(difference.b.as_ref(), Some(&a[100]));
    }
}
