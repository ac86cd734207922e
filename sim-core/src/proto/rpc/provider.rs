//! The provider side of one service, as a component: it registers itself in the
//! registry as Dubbo does (an ephemeral node under `/dubbo/<service>/providers` named by
//! its URL, with its weight, warm-up, start time, version and group; again after a
//! session expires), accepts consumers' connections and serves each request after its
//! processing time, with the service's own `Handler`. Bad requests (an unknown service
//! or method, arguments that do not decode or are too big) are answered with a typed
//! error at once. It never chooses among providers; consumers do.

use std::collections::BTreeMap;

use super::codec::{Handler, PAYLOAD_MAX};
use super::{url, Frame, Host, Obs, ProviderInfo, RpcError, Timer};
use crate::conn::{ConnId, ConnParams, Endpoint, Event as ConnEvent, Events};
use crate::node::{Ctx, NodeId, TimerId, Wraps};
use crate::proto::registry::client::ClientConfig;
use crate::proto::registry::recipes::Directory;

/// Requests a provider holds at most; more are answered with an error at once.
pub const PENDING_MAX: usize = 10_000;

/// A provider's configuration: what it registers (its node id and start time are
/// filled in when it starts) and how long each request takes it.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    pub service: String,
    pub port: u16,
    pub weight: u32,
    pub warmup_ms: u32,
    pub version: String,
    pub group: String,
    pub process_ns: u64,
}

#[derive(Debug)]
struct Pending {
    conn: ConnId,
    /// The consumer's attempt id, which the answer names.
    id: u64,
    method: String,
    args: Vec<u8>,
    call: u64,
}

pub struct Provider {
    config: ProviderConfig,
    registry: ClientConfig,
    directory: Option<Directory>,
    handler: Box<dyn Handler>,
    endpoint: Endpoint<Frame>,
    /// Requests being worked on, by this provider's own number for them (attempt ids
    /// are the consumers' and repeat across a consumer's lives).
    pending: BTreeMap<u64, Pending>,
    pending_next: u64,
    served: u64,
}

impl Provider {
    pub fn new(
        config: ProviderConfig,
        handler: Box<dyn Handler>,
        registry: ClientConfig,
        conn: ConnParams,
    ) -> Self {
        Self {
            config,
            registry,
            directory: None,
            handler,
            endpoint: Endpoint::new(conn),
            pending: BTreeMap::new(),
            pending_next: 0,
            served: 0,
        }
    }

    /// Registers (with this life's start time) and starts serving.
    pub fn start<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.endpoint.start(ctx);
        let info = ProviderInfo {
            node: ctx.id(),
            port: self.config.port,
            service: self.config.service.clone(),
            weight: self.config.weight,
            warmup_ms: self.config.warmup_ms,
            timestamp_ms: ctx.now_ns() / 1_000_000,
            version: self.config.version.clone(),
            group: self.config.group.clone(),
        };
        let dir = url::providers_dir(&self.config.service);
        let mut directory =
            Directory::announcing(self.registry.clone(), &dir, &url::node_name(&info));
        directory.start(ctx);
        self.directory = Some(directory);
    }

    pub fn take_message<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        msg: H::Msg,
    ) -> Result<(), H::Msg> {
        let msg = match self.endpoint.take_message(ctx, from, msg) {
            Ok(events) => {
                self.on_conn_events(ctx, events);
                return Ok(());
            }
            Err(msg) => msg,
        };
        match self.directory.as_mut() {
            Some(directory) => directory.take_message(ctx, from, msg),
            None => Err(msg),
        }
    }

    pub fn take_timer<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        id: TimerId,
        timer: H::Timer,
    ) -> Result<(), H::Timer> {
        let timer = match self.endpoint.take_timer(ctx, id, timer) {
            Ok(events) => {
                self.on_conn_events(ctx, events);
                return Ok(());
            }
            Err(timer) => timer,
        };
        let timer = match self.directory.as_mut() {
            Some(directory) => match directory.take_timer(ctx, id, timer) {
                Ok(()) => return Ok(()),
                Err(timer) => timer,
            },
            None => timer,
        };
        match Wraps::<Timer>::into_part(timer)? {
            Timer::Serve { work } => {
                self.serve(ctx, work);
                Ok(())
            }
            other => Err(H::Timer::from(other)),
        }
    }

    fn on_conn_events<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, events: Events<Frame>) {
        // A consumer that left: its requests in progress are still done (their side
        // effects stand) and their answers dropped (`serve`).
        for event in events {
            if let ConnEvent::Frame {
                conn,
                frame:
                    Frame::Request {
                        id,
                        service,
                        method,
                        args,
                        call,
                        ..
                    },
            } = event
            {
                self.on_request(ctx, conn, id, service, method, args, call);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_request<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        conn: ConnId,
        id: u64,
        service: String,
        method: String,
        args: Vec<u8>,
        call: u64,
    ) {
        let refused = if service != self.handler.service() {
            Some(RpcError::UnknownService(service))
        } else if args.len() > PAYLOAD_MAX {
            Some(RpcError::Oversized {
                bytes: args.len(),
                limit: PAYLOAD_MAX,
            })
        } else if self.pending.len() >= PENDING_MAX {
            Some(RpcError::Service("provider overloaded".into()))
        } else {
            None
        };
        if let Some(error) = refused {
            let _ = self.endpoint.send(
                ctx,
                conn,
                Frame::Response {
                    id,
                    result: Err(error),
                },
            );
            return;
        }
        self.pending_next += 1;
        let work = self.pending_next;
        self.pending.insert(
            work,
            Pending {
                conn,
                id,
                method,
                args,
                call,
            },
        );
        ctx.set_timer(self.config.process_ns, Timer::Serve { work });
    }

    /// Runs one request and answers it (if its connection still stands).
    fn serve<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, work: u64) {
        let Some(pending) = self.pending.remove(&work) else {
            return;
        };
        let (peer, id) = (pending.conn.peer, pending.id);
        let result = self.handler.call(&pending.method, &pending.args);
        if result.is_ok() && !self.handler.idempotent(&pending.method) {
            ctx.observe(Obs::Applied {
                consumer: peer,
                call: pending.call,
            });
        }
        self.served += 1;
        ctx.observe(Obs::Served {
            consumer: peer,
            method: pending.method,
        });
        if self.endpoint.is_open(pending.conn) {
            let _ = self
                .endpoint
                .send(ctx, pending.conn, Frame::Response { id, result });
        }
    }

    pub fn describe(&self) -> String {
        let registry = self
            .directory
            .as_ref()
            .map_or("not started".to_string(), Directory::describe);
        format!(
            "provider of {} (weight {}, warm-up {} ms): {} served, {} in progress\n{}\nconnections:\n{}",
            self.config.service,
            self.config.weight,
            self.config.warmup_ms,
            self.served,
            self.pending.len(),
            registry,
            self.endpoint.describe()
        )
    }
}
