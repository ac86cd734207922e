//! The provider side of one service, as a component: it registers itself in the
//! registry as Dubbo does (an ephemeral node under `/dubbo/<service>/providers` named by
//! its URL, with its weight, warm-up, start time, version and group; again after a
//! session expires) and accepts consumers' connections. A request is served either by
//! the service's own `Handler` after the provider's processing time, or (`Serving::App`)
//! handed to the node's application as an `Incoming`, which answers it later with
//! `respond` (a service that calls other services, a gateway). Bad requests (an unknown
//! service, arguments too big) are answered with a typed error at once. Each request is
//! the server side of its caller's span (`span.sr`, `span.ss`). It never chooses among
//! providers; consumers do.

use std::collections::BTreeMap;

use super::codec::{Handler, Request, PAYLOAD_MAX};
use super::runtime::Wire;
use super::spans::{self, SpanContext};
use super::{url, CallId, Frame, Host, Obs, ProviderInfo, RpcError, Timer};
use crate::conn::ConnId;
use crate::node::{Ctx, NodeId};

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

/// Who answers the requests.
#[derive(Clone)]
pub enum Serving {
    /// The service's dispatcher, after the processing time.
    Handler(Box<dyn Handler>),
    /// The node's application, through `Incoming` and `respond`; it accepts requests for
    /// these services (a gateway routes several; empty: the registered one).
    App { services: Vec<String> },
}

/// A request handed to the application (`Serving::App`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// The provider's number for it: `respond` names it.
    pub work: u64,
    pub from: NodeId,
    pub service: String,
    pub method: String,
    pub args: Vec<u8>,
    pub idempotent: bool,
    /// The caller's span, which this request serves.
    pub span: Option<SpanContext>,
    pub token: Option<String>,
}

impl Incoming {
    /// The same call, to be made onward within this request's span (a gateway relaying
    /// it); the credential stays at the gateway.
    pub fn forward(&self) -> Request {
        Request {
            service: self.service.clone(),
            method: self.method.clone(),
            idempotent: self.idempotent,
            args: Ok(self.args.clone()),
            keys: Vec::new(),
            parent: self.span,
            token: None,
        }
    }
}

#[derive(Clone, Debug)]
struct Pending {
    conn: ConnId,
    /// The consumer's attempt id, which the answer names.
    id: u64,
    method: String,
    args: Vec<u8>,
    call: u64,
    span: Option<SpanContext>,
}

#[derive(Clone)]
pub struct Provider {
    config: ProviderConfig,
    serving: Serving,
    /// Requests being worked on, by this provider's own number for them (attempt ids
    /// are the consumers' and repeat across a consumer's lives).
    pending: BTreeMap<u64, Pending>,
    pending_next: u64,
    served: u64,
}

/// One request frame as it arrived.
pub struct Arrived {
    pub conn: ConnId,
    pub id: u64,
    pub service: String,
    pub method: String,
    pub args: Vec<u8>,
    pub call: CallId,
    pub idempotent: bool,
    pub span: Option<SpanContext>,
    pub token: Option<String>,
}

impl Provider {
    /// A provider of `config.service`; its host (`runtime::Runtime`) registers it, hands
    /// it requests and sends its answers.
    pub fn new(config: ProviderConfig, serving: Serving) -> Self {
        Self {
            config,
            serving,
            pending: BTreeMap::new(),
            pending_next: 0,
            served: 0,
        }
    }

    /// Where and under what name this life registers (its start time is in the name).
    pub fn announcement<H: Host>(&self, ctx: &mut Ctx<'_, H>) -> (String, String) {
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
        (
            url::providers_dir(&self.config.service),
            url::node_name(&info),
        )
    }

    /// A request arrived: refused at once, scheduled for the handler, or handed back for
    /// the application (`Serving::App`).
    pub fn on_request<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        wire: &mut Wire,
        request: Arrived,
    ) -> Option<Incoming> {
        let Arrived {
            conn,
            id,
            service,
            method,
            args,
            call,
            idempotent,
            span,
            token,
        } = request;
        if let Some(span) = &span {
            let name = format!("{service}.{method}");
            ctx.annotate(
                spans::SERVER_RECEIVE,
                spans::start_text(span, &self.config.service, &name, conn.peer),
            );
        }
        if let Err(error) = self.admit(&service, &args) {
            answer(ctx, wire, conn, id, span, Err(error));
            return None;
        }
        self.pending_next += 1;
        let work = self.pending_next;
        let incoming = match &self.serving {
            Serving::Handler(_) => {
                ctx.set_timer(self.config.process_ns, Timer::Serve { work });
                None
            }
            Serving::App { .. } => Some(Incoming {
                work,
                from: conn.peer,
                service,
                method: method.clone(),
                args: args.clone(),
                idempotent,
                span,
                token,
            }),
        };
        let pending = Pending {
            conn,
            id,
            method,
            args,
            call,
            span,
        };
        self.pending.insert(work, pending);
        incoming
    }

    /// Why a request is refused at once, if it is.
    fn admit(&self, service: &str, args: &[u8]) -> Result<(), RpcError> {
        let known = match &self.serving {
            Serving::Handler(handler) => service == handler.service(),
            Serving::App { services } if services.is_empty() => service == self.config.service,
            Serving::App { services } => services.iter().any(|s| s == service),
        };
        if !known {
            return Err(RpcError::UnknownService(service.to_string()));
        }
        if args.len() > PAYLOAD_MAX {
            return Err(RpcError::Oversized {
                bytes: args.len(),
                limit: PAYLOAD_MAX,
            });
        }
        if self.pending.len() >= PENDING_MAX {
            return Err(RpcError::Service("provider overloaded".into()));
        }
        Ok(())
    }

    /// Runs one request with the handler and answers it.
    pub fn serve<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, wire: &mut Wire, work: u64) {
        let Serving::Handler(handler) = &mut self.serving else {
            return;
        };
        let Some(pending) = self.pending.get(&work) else {
            return;
        };
        let result = handler.call(&pending.method, &pending.args);
        let applied = result.is_ok() && !handler.idempotent(&pending.method);
        self.respond_applied(ctx, wire, work, result, applied);
    }

    /// Refuses request `work` without serving it (a gateway turning a caller away): the
    /// error goes back, and no `Served` is observed.
    pub fn refuse<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        wire: &mut Wire,
        work: u64,
        error: RpcError,
    ) {
        if let Some(pending) = self.pending.remove(&work) {
            answer(
                ctx,
                wire,
                pending.conn,
                pending.id,
                pending.span,
                Err(error),
            );
        }
    }

    /// Answers request `work` (from the application: `Serving::App`). A side effect it
    /// applied must be reported with `respond_applied`, for `rpc.at-most-once`.
    pub fn respond<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        wire: &mut Wire,
        work: u64,
        result: Result<Vec<u8>, RpcError>,
    ) {
        self.respond_applied(ctx, wire, work, result, false);
    }

    pub fn respond_applied<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        wire: &mut Wire,
        work: u64,
        result: Result<Vec<u8>, RpcError>,
        applied: bool,
    ) {
        let Some(pending) = self.pending.remove(&work) else {
            return;
        };
        let peer = pending.conn.peer;
        if applied {
            ctx.observe(Obs::Applied {
                consumer: peer,
                call: pending.call,
            });
        }
        self.served += 1;
        ctx.observe(Obs::Served {
            consumer: peer,
            method: pending.method,
            trace_id: pending.span.map_or(0, |s| s.trace_id),
        });
        answer(ctx, wire, pending.conn, pending.id, pending.span, result);
    }

    pub fn describe(&self) -> String {
        format!(
            "provider of {} (weight {}, warm-up {} ms): {} served, {} in progress",
            self.config.service,
            self.config.weight,
            self.config.warmup_ms,
            self.served,
            self.pending.len(),
        )
    }
}

/// Sends the answer, if the connection still stands, closing the server span.
fn answer<H: Host>(
    ctx: &mut Ctx<'_, H>,
    wire: &mut Wire,
    conn: ConnId,
    id: u64,
    span: Option<SpanContext>,
    result: Result<Vec<u8>, RpcError>,
) {
    if let Some(span) = &span {
        ctx.annotate(
            spans::SERVER_SEND,
            spans::end_text(span, result.as_ref().err()),
        );
    }
    wire.reply(ctx, conn, Frame::Response { id, result });
}
