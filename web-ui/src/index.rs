//! What the page needs from the whole event log, indexed once as the first pass records
//! it, so that drawing a frame costs what the frame shows, not the run's length: sends
//! per pair of nodes (the topology's link counts), the outage events (crash, restart,
//! pause, resume) and the RPC span annotations, each as event numbers in order. Any
//! cursor then reads them with a binary search. It never formats or draws anything.

use std::collections::BTreeMap;

use sim_core::ids::NodeId;
use sim_core::proto::rpc::spans;
use sim_core::trace::{EventKind, TraceEvent};

#[derive(Debug, Default)]
pub struct Index {
    /// Events indexed so far: the log's prefix `0..indexed`.
    indexed: usize,
    /// (lower id, higher id) -> the event numbers of the sends between the two.
    sends: BTreeMap<(NodeId, NodeId), Vec<u32>>,
    outages: Vec<u32>,
    spans: Vec<u32>,
}

impl Index {
    /// Indexes the events of `log` not indexed yet; `log` only ever grows.
    pub fn extend(&mut self, log: &[TraceEvent]) {
        assert!(log.len() >= self.indexed, "the log only grows");
        for (number, event) in log.iter().enumerate().skip(self.indexed) {
            debug_assert_eq!(
                event.index, number as u64,
                "the log is every event in order"
            );
            let number = u32::try_from(number).expect("a trace keeps at most u32::MAX events");
            match event.kind {
                EventKind::Send => {
                    if let Some(peer) = event.peer.filter(|peer| *peer != event.node) {
                        let pair = (event.node.min(peer), event.node.max(peer));
                        self.sends.entry(pair).or_default().push(number);
                    }
                }
                EventKind::Crash | EventKind::Restart | EventKind::Pause | EventKind::Resume => {
                    self.outages.push(number)
                }
                _ if spans::is_span_event(event) => self.spans.push(number),
                _ => {}
            }
        }
        self.indexed = log.len();
    }

    /// Messages sent between each pair of nodes before `cursor`, pairs in order.
    pub fn link_counts(&self, cursor: u64) -> Vec<((NodeId, NodeId), u32)> {
        self.sends
            .iter()
            .map(|(pair, numbers)| (*pair, before(numbers, cursor) as u32))
            .filter(|(_, count)| *count > 0)
            .collect()
    }

    /// The crash, restart, pause and resume events before `cursor`.
    pub fn outage_events<'a>(
        &'a self,
        log: &'a [TraceEvent],
        cursor: u64,
    ) -> impl Iterator<Item = &'a TraceEvent> + 'a {
        pick(&self.outages, log, cursor)
    }

    /// The RPC span annotations before `cursor`.
    pub fn span_events<'a>(
        &'a self,
        log: &'a [TraceEvent],
        cursor: u64,
    ) -> impl Iterator<Item = &'a TraceEvent> + 'a {
        pick(&self.spans, log, cursor)
    }

    /// Whether the run has RPC spans at all (the page shows the RPC panel then).
    pub fn has_spans(&self) -> bool {
        !self.spans.is_empty()
    }
}

fn before(numbers: &[u32], cursor: u64) -> usize {
    numbers.partition_point(|number| u64::from(*number) < cursor)
}

fn pick<'a>(
    numbers: &'a [u32],
    log: &'a [TraceEvent],
    cursor: u64,
) -> impl Iterator<Item = &'a TraceEvent> + 'a {
    numbers[..before(numbers, cursor)]
        .iter()
        .filter_map(move |number| log.get(*number as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::scenario::{builtin, parse, RunOptions};

    fn log(name: &str) -> Vec<TraceEvent> {
        let scenario = parse(name, builtin(name).unwrap()).unwrap();
        let mut run = scenario.build(&RunOptions {
            seed: Some(1),
            retain_trace: true,
            ..Default::default()
        });
        while run.step() {}
        run.trace().retained().to_vec()
    }

    /// Indexed in uneven pieces, read at any cursor: the same as scanning the log.
    #[test]
    fn the_index_answers_as_a_scan_of_the_log_does() {
        for name in ["rpc-nemesis", "registry-crashes", "broker-work-queue"] {
            let log = log(name);
            let mut index = Index::default();
            for end in [0, 1, 17, 5_000, log.len() / 2, log.len()] {
                index.extend(&log[..end.min(log.len())]);
            }
            for cursor in [0, 3, 999, log.len() as u64 / 3, log.len() as u64] {
                let seen = &log[..cursor as usize];
                let mut counts: BTreeMap<(NodeId, NodeId), u32> = BTreeMap::new();
                for e in seen.iter().filter(|e| e.kind == EventKind::Send) {
                    if let Some(peer) = e.peer.filter(|p| *p != e.node) {
                        *counts
                            .entry((e.node.min(peer), e.node.max(peer)))
                            .or_default() += 1;
                    }
                }
                let expected: Vec<_> = counts.into_iter().collect();
                assert_eq!(index.link_counts(cursor), expected, "{name} at {cursor}");
                let outages: Vec<&TraceEvent> = seen
                    .iter()
                    .filter(|e| {
                        matches!(
                            e.kind,
                            EventKind::Crash
                                | EventKind::Restart
                                | EventKind::Pause
                                | EventKind::Resume
                        )
                    })
                    .collect();
                let indexed: Vec<&TraceEvent> = index.outage_events(&log, cursor).collect();
                assert_eq!(indexed, outages, "{name} at {cursor}");
                assert_eq!(
                    spans::collect(index.span_events(&log, cursor)),
                    spans::collect(seen),
                    "{name} at {cursor}"
                );
            }
            assert_eq!(index.has_spans(), name.starts_with("rpc"), "{name}");
        }
    }
}
