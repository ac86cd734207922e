//! A node's RPC runtime: what one Dubbo application process holds once, however many
//! services it provides and calls. One connection endpoint (`Wire`: consumers' calls go
//! out on connections it opens, providers' answers on connections it accepted), one
//! registry session (`Directory`: the provider's announcement and every consumer's
//! watched directory), at most one provider and any number of consumers. It routes what
//! arrives: requests to the provider, answers and timers to the consumer whose id they
//! carry, listings to every consumer, a broken connection to all. The application (a
//! workload, the orders service, the gateway) sees only `Output`s. It decides nothing
//! about a call; the provider and consumers do.

use std::collections::BTreeMap;

use super::codec::{Answer, Request};
use super::consumer::{Consumer, Event};
use super::provider::{Arrived, Incoming, Provider};
use super::{CallId, Frame, Host, RpcError, Timer};
use crate::conn::{ConnId, ConnParams, Endpoint, Event as ConnEvent, Events};
use crate::node::{Ctx, NodeId, TimerId, Wraps};
use crate::proto::registry::client::ClientConfig;
use crate::proto::registry::recipes::Directory;

/// Consumers one runtime holds at most (their index rides in call and attempt ids).
pub const CONSUMERS_MAX: usize = 255;

/// The node's connections for RPC frames.
#[derive(Clone)]
pub struct Wire {
    endpoint: Endpoint<Frame>,
    /// The connection this node opened to each provider it calls.
    conns: BTreeMap<NodeId, ConnId>,
}

impl Wire {
    /// Sends a request to `provider` on the connection to it, opening one if needed;
    /// false when no connection can be had.
    pub fn request<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        provider: NodeId,
        frame: Frame,
    ) -> bool {
        let conn = match self.conns.get(&provider) {
            Some(conn) => Some(*conn),
            None => self.endpoint.open(ctx, provider).ok(),
        };
        let sent = conn.is_some_and(|conn| {
            self.conns.insert(provider, conn);
            self.endpoint.send(ctx, conn, frame).is_ok()
        });
        if !sent {
            self.conns.remove(&provider);
        }
        sent
    }

    /// Sends an answer back on `conn`, if it still stands (a caller that left gets none).
    pub fn reply<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, conn: ConnId, frame: Frame) {
        if self.endpoint.is_open(conn) {
            let _ = self.endpoint.send(ctx, conn, frame);
        }
    }
}

/// What the runtime tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A request for the application to answer (`respond`).
    Incoming(Incoming),
    /// Consumer `consumer`'s call `call` ended.
    Done {
        consumer: usize,
        call: CallId,
        result: Result<Answer, RpcError>,
    },
}

#[derive(Clone)]
pub struct Runtime {
    wire: Wire,
    directory: Directory,
    provider: Option<Provider>,
    consumers: Vec<Consumer>,
    /// The provider's registration, held back until every consumer has a provider: a
    /// service that calls others is exported once its references are ready (Dubbo's
    /// `check`), so nobody calls it before it can answer.
    held: Option<(String, String)>,
}

impl Runtime {
    pub fn new(registry: ClientConfig, conn: ConnParams) -> Self {
        Self {
            wire: Wire {
                endpoint: Endpoint::new(conn),
                conns: BTreeMap::new(),
            },
            directory: Directory::new(registry),
            provider: None,
            consumers: Vec::new(),
            held: None,
        }
    }

    pub fn with_provider(mut self, provider: Provider) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Adds a consumer; `Output::Done` names it by its position (0, 1...).
    pub fn with_consumer(mut self, mut consumer: Consumer) -> Self {
        assert!(
            self.consumers.len() < CONSUMERS_MAX,
            "at most {CONSUMERS_MAX} consumers"
        );
        consumer.set_index(self.consumers.len() as u8);
        self.directory.watch(&consumer.providers_dir());
        self.consumers.push(consumer);
        self
    }

    pub fn consumer(&self, index: usize) -> &Consumer {
        &self.consumers[index]
    }

    pub fn start<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.wire.endpoint.start(ctx);
        if let Some(provider) = &self.provider {
            let (dir, name) = provider.announcement(ctx);
            if self.consumers.is_empty() {
                self.directory.announce(&dir, &name);
            } else {
                self.held = Some((dir, name));
            }
        }
        for consumer in &mut self.consumers {
            consumer.start(ctx);
        }
        self.directory.start(ctx);
    }

    /// Starts a call on consumer `consumer`.
    pub fn invoke<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        consumer: usize,
        request: Request,
    ) -> (CallId, Vec<Output>) {
        let (call, events) = self.consumers[consumer].invoke(ctx, request);
        let mut out = Vec::new();
        self.done(consumer, events, &mut out);
        self.flush(ctx, consumer, &mut out);
        (call, out)
    }

    /// Answers request `work` of `Output::Incoming`.
    pub fn respond<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        work: u64,
        result: Result<Vec<u8>, RpcError>,
    ) {
        if let Some(provider) = &mut self.provider {
            provider.respond(ctx, &mut self.wire, work, result);
        }
    }

    /// Answers request `work` whose side effect the application applied (a write that is
    /// not idempotent), for `rpc.at-most-once`.
    pub fn respond_applied<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        work: u64,
        result: Result<Vec<u8>, RpcError>,
    ) {
        if let Some(provider) = &mut self.provider {
            provider.respond_applied(ctx, &mut self.wire, work, result, true);
        }
    }

    /// Turns request `work` away unserved (a gateway's refusal).
    pub fn refuse<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, work: u64, error: RpcError) {
        if let Some(provider) = &mut self.provider {
            provider.refuse(ctx, &mut self.wire, work, error);
        }
    }

    /// Takes `msg` if it is the runtime's (RPC frames, the registry session's), or hands
    /// it back.
    pub fn take_message<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        msg: H::Msg,
    ) -> Result<Vec<Output>, H::Msg> {
        let msg = match self.wire.endpoint.take_message(ctx, from, msg) {
            Ok(events) => return Ok(self.on_conn_events(ctx, events)),
            Err(msg) => msg,
        };
        let seen = self.directory.listings();
        self.directory.take_message(ctx, from, msg)?;
        self.after_directory(ctx, seen);
        Ok(Vec::new())
    }

    pub fn take_timer<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        id: TimerId,
        timer: H::Timer,
    ) -> Result<Vec<Output>, H::Timer> {
        let timer = match self.wire.endpoint.take_timer(ctx, id, timer) {
            Ok(events) => return Ok(self.on_conn_events(ctx, events)),
            Err(timer) => timer,
        };
        let seen = self.directory.listings();
        let timer = match self.directory.take_timer(ctx, id, timer) {
            Ok(()) => {
                self.after_directory(ctx, seen);
                return Ok(Vec::new());
            }
            Err(timer) => timer,
        };
        let timer = Wraps::<Timer>::into_part(timer)?;
        let mut out = Vec::new();
        let owner = match &timer {
            Timer::Serve { work } => {
                if let Some(provider) = &mut self.provider {
                    provider.serve(ctx, &mut self.wire, *work);
                }
                return Ok(out);
            }
            Timer::Attempt { id } => self.consumers.iter().position(|c| c.owns_attempt(*id)),
            Timer::Deadline { call } | Timer::Failback { call } => {
                self.consumers.iter().position(|c| c.owns_call(*call))
            }
            Timer::Next => return Err(H::Timer::from(timer)),
        };
        if let Some(index) = owner {
            let events = self.consumers[index].on_timer(ctx, timer);
            self.done(index, events, &mut out);
            self.flush(ctx, index, &mut out);
        }
        Ok(out)
    }

    /// A listing arrived: every consumer refreshes from its directory.
    fn after_directory<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, seen: u64) {
        if self.directory.listings() == seen {
            return;
        }
        for consumer in &mut self.consumers {
            let names = self
                .directory
                .listing_of(&consumer.providers_dir())
                .to_vec();
            consumer.refresh(ctx, &names);
        }
        if self.consumers.iter().all(|c| !c.providers().is_empty()) {
            if let Some((dir, name)) = self.held.take() {
                self.directory.announce_now(ctx, &dir, &name);
            }
        }
    }

    fn on_conn_events<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        events: Events<Frame>,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        for event in events {
            match event {
                ConnEvent::Frame {
                    conn,
                    frame:
                        Frame::Request {
                            id,
                            service,
                            method,
                            args,
                            call,
                            idempotent,
                            span,
                            token,
                        },
                } => {
                    let arrived = Arrived {
                        conn,
                        id,
                        service,
                        method,
                        args,
                        call,
                        idempotent,
                        span,
                        token,
                    };
                    match &mut self.provider {
                        Some(provider) => {
                            if let Some(incoming) =
                                provider.on_request(ctx, &mut self.wire, arrived)
                            {
                                out.push(Output::Incoming(incoming));
                            }
                        }
                        None => {
                            let error = RpcError::UnknownService(arrived.service);
                            self.wire.reply(
                                ctx,
                                conn,
                                Frame::Response {
                                    id,
                                    result: Err(error),
                                },
                            );
                        }
                    }
                }
                ConnEvent::Frame {
                    frame: Frame::Response { id, result },
                    ..
                } => {
                    if let Some(index) = self.consumers.iter().position(|c| c.owns_attempt(id)) {
                        let events = self.consumers[index].on_answer(ctx, id, result);
                        self.done(index, events, &mut out);
                        self.flush(ctx, index, &mut out);
                    }
                }
                ConnEvent::Broken { conn, .. } | ConnEvent::Closed { conn } if conn.mine => {
                    if self.wire.conns.get(&conn.peer) == Some(&conn) {
                        self.wire.conns.remove(&conn.peer);
                    }
                    for index in 0..self.consumers.len() {
                        let events = self.consumers[index].on_broken(ctx, conn.peer);
                        self.done(index, events, &mut out);
                        self.flush(ctx, index, &mut out);
                    }
                }
                // Only a provider takes calls.
                ConnEvent::Accepted { conn } if self.provider.is_none() => {
                    self.wire.endpoint.abort(ctx, conn)
                }
                _ => {}
            }
        }
        out
    }

    /// Sends what consumer `index` queued; an attempt that cannot go fails at once, which
    /// may queue another (failover), until nothing is left.
    fn flush<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, index: usize, out: &mut Vec<Output>) {
        loop {
            let outbox = self.consumers[index].take_outbox();
            if outbox.is_empty() {
                return;
            }
            for (provider, id, frame) in outbox {
                if !self.wire.request(ctx, provider, frame) {
                    let events = self.consumers[index].unsent(ctx, id);
                    self.done(index, events, out);
                }
            }
        }
    }

    fn done(&self, consumer: usize, events: Vec<Event>, out: &mut Vec<Output>) {
        for Event::Done { call, result } in events {
            out.push(Output::Done {
                consumer,
                call,
                result,
            });
        }
    }

    pub fn describe(&self) -> String {
        let mut text = Vec::new();
        if let Some(provider) = &self.provider {
            text.push(provider.describe());
        }
        for consumer in &self.consumers {
            text.push(consumer.describe());
        }
        text.push(self.directory.describe());
        text.push(format!("connections:\n{}", self.wire.endpoint.describe()));
        text.join("\n")
    }
}

/// `Node` for an application built on a `Runtime` (field `runtime`): the runtime takes
/// what is its own, the application hears the outputs (`on_outputs`), its inspector is
/// `describe()`. The orders service and the gateway are such applications.
macro_rules! runtime_node {
    ($app:ty, $role:literal) => {
        impl<H: $crate::proto::rpc::Host> $crate::node::Node<H> for $app {
            fn on_start(&mut self, ctx: &mut $crate::node::Ctx<'_, H>) {
                self.runtime.start(ctx);
            }

            fn on_message(
                &mut self,
                ctx: &mut $crate::node::Ctx<'_, H>,
                from: $crate::node::NodeId,
                msg: H::Msg,
            ) {
                if let Ok(outputs) = self.runtime.take_message(ctx, from, msg) {
                    self.on_outputs(ctx, outputs);
                }
            }

            fn on_timer(
                &mut self,
                ctx: &mut $crate::node::Ctx<'_, H>,
                id: $crate::node::TimerId,
                timer: H::Timer,
            ) {
                if let Ok(outputs) = self.runtime.take_timer(ctx, id, timer) {
                    self.on_outputs(ctx, outputs);
                }
            }

            fn role(&self) -> String {
                $role.into()
            }

            fn inspect(&self) -> String {
                self.describe()
            }
        }
    };
}
pub(crate) use runtime_node;
