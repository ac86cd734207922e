//! One request at a time, as the bank's and the shop's clients make them: the request in
//! flight and its deadline, the pause before the next, and the cumulative `served` and
//! `refused` metrics the CAP chart and summary read.
//!
//! This module never sends anything and knows no request's contents: the client does.

use crate::node::{Ctx, Proto, TimerId};

#[derive(Clone)]
pub struct Pacer {
    ops: u32,
    think_ns: u64,
    deadline_ns: u64,
    req_next: u64,
    /// The request in flight and its deadline timer.
    current: Option<(u64, TimerId)>,
    done: u32,
    served: u64,
    refused: u64,
}

impl Pacer {
    pub fn new(ops: u32, think_ns: u64, deadline_ns: u64) -> Self {
        Self {
            ops,
            think_ns,
            deadline_ns,
            req_next: 1,
            current: None,
            done: 0,
            served: 0,
            refused: 0,
        }
    }

    /// The first request's pause.
    pub fn begin<P: Proto>(&self, ctx: &mut Ctx<'_, P>, next: P::Timer) {
        if self.ops > 0 {
            ctx.set_timer(self.think_ns, next);
        }
    }

    /// Starts the next request when none is in flight and some remain: its id, with its
    /// deadline (`deadline(id)`) armed.
    pub fn start<P: Proto>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        deadline: impl FnOnce(u64) -> P::Timer,
    ) -> Option<u64> {
        if self.current.is_some() || self.done >= self.ops {
            return None;
        }
        let req = self.req_next;
        self.req_next += 1;
        let timer = ctx.set_timer(self.deadline_ns, deadline(req));
        self.current = Some((req, timer));
        Some(req)
    }

    /// The request in flight.
    pub fn current(&self) -> Option<u64> {
        self.current.map(|(req, _)| req)
    }

    /// Ends the request in flight, served or not, and schedules the next; false when none
    /// was in flight.
    pub fn finish<P: Proto>(&mut self, ctx: &mut Ctx<'_, P>, served: bool, next: P::Timer) -> bool {
        let Some((_, deadline)) = self.current.take() else {
            return false;
        };
        ctx.cancel_timer(deadline);
        if served {
            self.served += 1;
            ctx.metric("served", self.served);
        } else {
            self.refused += 1;
            ctx.metric("refused", self.refused);
        }
        self.done += 1;
        if self.done < self.ops {
            ctx.set_timer(self.think_ns, next);
        }
        true
    }

    pub fn describe(&self) -> String {
        format!(
            "requests {} of {}, served {}, refused {}, in flight {:?}",
            self.done,
            self.ops,
            self.served,
            self.refused,
            self.current()
        )
    }
}
