//! Applying faults to a run: crash (memory, timers, held events and unsynced disk gone),
//! restart (a fresh node from its kind's factory, recovering from disk), pause and resume
//! (events held, then released in order), partitions, clock skew, disk faults, and the
//! heal at the end of the fault phase. Every fault is written to the trace in `--fault`
//! spelling (`crash:2`), labelled `nemesis` when the nemesis injected it.

use super::{Event, Sim, Status};
use crate::fault::Fault;
use crate::net::DropReason;
use crate::node::{NodeId, Proto};
use crate::trace::{label_of, no_payload, text_payload, EventKind, Rec};

impl<P: Proto> Sim<P> {
    pub(super) fn apply_fault(&mut self, fault: Fault, nemesis: bool) {
        let text = fault.describe();
        let label = if nemesis {
            "nemesis".to_string()
        } else {
            label_of(&text)
        };
        match fault {
            Fault::Crash { node } => self.crash(node, Some((label, text))),
            Fault::Restart { node } => self.restart(node, Some((label, text))),
            Fault::Pause { node } => self.pause(node, Some((label, text))),
            Fault::Resume { node } => self.resume(node, Some((label, text))),
            other => {
                let node = other.nodes().first().copied().unwrap_or(0);
                match &other {
                    Fault::Partition { groups } => self.net.partition(groups),
                    Fault::PartitionOneWay { from, to } => self.net.cut_one_way(from, to),
                    Fault::Heal => self.net.heal(),
                    Fault::ClockSkew {
                        node,
                        offset_ns,
                        drift_ppm,
                    } => {
                        let now_ns = self.now_ns;
                        self.slots[*node as usize]
                            .clock
                            .skew(now_ns, *offset_ns, *drift_ppm);
                    }
                    Fault::DiskFault { node, faults } => {
                        self.slots[*node as usize].disk.set_faults(*faults)
                    }
                    _ => unreachable!("node faults are handled above"),
                }
                let rec = Rec::new(self.now_ns, EventKind::Fault, node);
                self.trace
                    .record(rec, text_payload(&text), || (label, text.clone()));
            }
        }
    }

    /// Records a node fault (crash, restart, pause, resume) and returns its trace index;
    /// `spelled` is its (label, spelling) when a fault caused it, none for the heal at
    /// the end of the fault phase.
    fn record_node_fault(
        &mut self,
        kind: EventKind,
        node: NodeId,
        spelled: Option<(String, String)>,
    ) -> u64 {
        let rec = Rec::new(self.now_ns, kind, node);
        match spelled {
            Some((label, text)) => self
                .trace
                .record(rec, text_payload(&text), || (label, text.clone())),
            None => self.trace.record(rec, no_payload, Default::default),
        }
    }

    fn crash(&mut self, node: NodeId, spelled: Option<(String, String)>) {
        let slot = &mut self.slots[node as usize];
        if slot.status == Status::Down {
            return;
        }
        slot.status = Status::Down;
        slot.node = None;
        slot.incarnation += 1;
        slot.disk.crash();
        slot.timers.clear();
        let held = std::mem::take(&mut slot.held);
        self.record_node_fault(EventKind::Crash, node, spelled);
        // Messages a paused node was holding die with it; its held timers are gone with
        // the live list above and never fire.
        for queued in held {
            if let Event::Deliver {
                from, msg_id, msg, ..
            } = queued.event
            {
                self.record_drop(node, from, msg_id, DropReason::Crashed, &msg);
            }
        }
        for invariant in &mut self.invariants {
            invariant.on_crash(node);
        }
    }

    fn restart(&mut self, node: NodeId, spelled: Option<(String, String)>) {
        let slot = &self.slots[node as usize];
        if slot.status != Status::Down {
            return;
        }
        debug_assert!(slot.timers.is_empty() && slot.held.is_empty());
        let fresh = (self.factory)(node, &self.config.kinds[node as usize]);
        let slot = &mut self.slots[node as usize];
        slot.node = Some(fresh);
        slot.status = Status::Up;
        let event = self.record_node_fault(EventKind::Restart, node, spelled);
        self.call(node, event, None, |node, ctx| node.on_start(ctx));
    }

    fn pause(&mut self, node: NodeId, spelled: Option<(String, String)>) {
        if self.slots[node as usize].status == Status::Up {
            self.slots[node as usize].status = Status::Paused;
            self.record_node_fault(EventKind::Pause, node, spelled);
            for invariant in &mut self.invariants {
                invariant.on_pause(node, self.now_ns);
            }
        }
    }

    fn resume(&mut self, node: NodeId, spelled: Option<(String, String)>) {
        let slot = &mut self.slots[node as usize];
        if slot.status != Status::Paused {
            return;
        }
        slot.status = Status::Up;
        let held = std::mem::take(&mut slot.held);
        self.record_node_fault(EventKind::Resume, node, spelled);
        for invariant in &mut self.invariants {
            invariant.on_resume(node, self.now_ns);
        }
        for queued in held {
            self.push(self.now_ns, queued.event);
        }
    }

    pub(super) fn heal_all(&mut self) {
        let text = "fault phase over: heal all, resume paused, restart crashed";
        let rec = Rec::new(self.now_ns, EventKind::Fault, 0);
        self.trace
            .record(rec, text_payload(text), || ("heal-all".into(), text.into()));
        self.net.heal();
        for node in 0..self.slots.len() as NodeId {
            match self.slots[node as usize].status {
                Status::Paused => self.resume(node, None),
                Status::Down => self.restart(node, None),
                Status::Up => {}
            }
        }
    }
}
