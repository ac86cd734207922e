//! The workloads that run on the client library: publishers and consumers whose shape
//! (exchange, keys, queues, rates, acks, prefetch) comes from the scenario's parameters.
//!
//! A queue is described by one string: `name <- key1, key2 ; option, option`, where a key
//! `@exchange` binds to that (fanout) exchange instead of the workload's, and options are
//! `max-length=N`, `overflow=drop-head|reject-publish`, `ttl=DURATION`, `dlx=EXCHANGE`,
//! `dlx-key=KEY`, `transient`, `exclusive`, `auto-delete`.

use std::collections::VecDeque;

use super::client::{Client, Event};
use super::{ExchangeKind, Host, Message, Method, Obs, Overflow, QueueArgs, Timer};
use crate::conn::ConnParams;
use crate::node::{Ctx, Node, NodeId, TimerId, Wraps};
use crate::units::parse_duration_ns;

/// Republish attempts of one message; the attempt number lives in the id's low 8 bits.
const ATTEMPTS_MAX: u64 = 255;

/// A publish attempt's id: the publisher, its life (restarts), the message's index and
/// the attempt. Every attempt of every life has its own, so checkers can tell a
/// legitimate republish (or a restarted publisher starting over) from the broker
/// duplicating a message. Lives count modulo 4,096; indices stay below 2^24 (the
/// `messages` parameter's bound is far below).
fn publish_id(node: NodeId, life: u32, index: u64) -> u64 {
    debug_assert!(index < 1 << 24);
    (node as u64) << 44 | ((life & 0xfff) as u64) << 32 | index << 8
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    /// (exchange, binding key); the exchange is the workload's unless written `@name`.
    pub bindings: Vec<(Option<String>, String)>,
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub args: QueueArgs,
}

impl QueueSpec {
    pub fn parse(text: &str) -> Result<QueueSpec, String> {
        let (head, options) = text.split_once(';').unwrap_or((text, ""));
        let (name, keys) = head.split_once("<-").unwrap_or((head, ""));
        let name = name.trim();
        if name.is_empty() {
            return Err(format!(
                "queue `{text}`: expected `name <- key, key ; option, option`"
            ));
        }
        let bindings = keys
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|key| match key.strip_prefix('@') {
                Some(exchange) => (Some(exchange.to_string()), String::new()),
                None => (None, key.to_string()),
            })
            .collect();
        let mut spec = QueueSpec {
            name: name.to_string(),
            bindings,
            durable: true,
            exclusive: false,
            auto_delete: false,
            args: QueueArgs::default(),
        };
        for option in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            spec.apply_option(option)
                .map_err(|e| format!("queue `{name}`: {e}"))?;
        }
        Ok(spec)
    }

    fn apply_option(&mut self, option: &str) -> Result<(), String> {
        let (key, value) = option
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .unwrap_or((option, ""));
        match (key, value) {
            ("transient", "") => self.durable = false,
            ("exclusive", "") => self.exclusive = true,
            ("auto-delete", "") => self.auto_delete = true,
            ("max-length", n) => {
                let n: u32 = n.parse().map_err(|_| format!("max-length `{n}` is not a count"))?;
                self.args.max_length = Some(n);
            }
            ("overflow", "drop-head") => self.args.overflow = Overflow::DropHead,
            ("overflow", "reject-publish") => self.args.overflow = Overflow::RejectPublish,
            ("ttl", text) => {
                let ns = parse_duration_ns(text)?;
                self.args.message_ttl_ns = Some(u64::try_from(ns).map_err(|_| "a negative ttl".to_string())?);
            }
            ("dlx", exchange) if !exchange.is_empty() => self.args.dead_letter_exchange = Some(exchange.into()),
            ("dlx-key", key) => self.args.dead_letter_routing_key = Some(key.into()),
            _ => {
                return Err(format!(
                    "unknown option `{option}`; expected max-length=N, overflow=drop-head|reject-publish, \
                     ttl=DURATION, dlx=EXCHANGE, dlx-key=KEY, transient, exclusive, auto-delete"
                ))
            }
        }
        Ok(())
    }
}

/// The shape of a broker scenario's traffic, shared by all its clients.
#[derive(Clone, Debug)]
pub struct Workload {
    pub broker: NodeId,
    pub heartbeat_ns: u64,
    /// The exchange publishers use; empty for the default exchange.
    pub exchange: String,
    pub exchange_kind: ExchangeKind,
    pub durable: bool,
    pub persistent: bool,
    pub mandatory: bool,
    pub confirms: bool,
    pub routing_keys: Vec<String>,
    pub messages: u32,
    pub publish_interval_ns: u64,
    pub burst: u32,
    pub queues: Vec<QueueSpec>,
    pub prefetch: u32,
    pub auto_ack: bool,
    pub process_ns: u64,
    /// Consumers reject (without requeue) every n-th message; 0 never.
    pub reject_every: u32,
    /// How the clients' connections behave.
    pub conn: ConnParams,
}

fn declare_exchange<H: Host>(
    client: &mut Client,
    ctx: &mut Ctx<'_, H>,
    name: &str,
    kind: ExchangeKind,
    durable: bool,
) {
    if !name.is_empty() {
        client.call(
            ctx,
            Method::ExchangeDeclare {
                name: name.to_string(),
                kind,
                durable,
            },
        );
    }
}

/// What publishers and consumers share: a client library whose events drive them (each
/// has its own `on_event`, which `app_node!` calls). The
/// `Node` plumbing (start the client, feed it frames and its timer, hand its events on)
/// is written once, here.
trait App {
    fn client(&mut self) -> &mut Client;
    /// A timer of the application's own.
    fn on_app_timer<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, timer: Timer);
    fn role(&self) -> String;
    fn inspect(&self) -> String;
    /// The client library's connections, for the inspector.
    fn connections(&self) -> String;
}

/// The `Node` plumbing every workload shares (start the client, feed it frames and its
/// timer, hand its events on), written once; `app_node!` implements `Node` with it for
/// each workload (a blanket impl would collide with other protocols' workloads).
macro_rules! app_node {
    ($($app:ty),+) => {$(
        impl<H: Host> Node<H> for $app {
            fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
                self.client().start(ctx);
            }

            fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
                if let Ok(events) = self.client().take_message(ctx, from, msg) {
                    for event in events {
                        self.on_event(ctx, event);
                    }
                }
            }

            fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
                let timer = match self.client().take_timer(ctx, id, timer) {
                    Ok(events) => {
                        for event in events {
                            self.on_event(ctx, event);
                        }
                        return;
                    }
                    Err(timer) => timer,
                };
                if let Ok(timer) = Wraps::<Timer>::into_part(timer) {
                    self.on_app_timer(ctx, timer);
                }
            }

            fn role(&self) -> String {
                App::role(self)
            }

            fn inspect(&self) -> String {
                format!("{}\n\nconnections:\n{}", App::inspect(self), self.connections())
            }
        }
    )+};
}

#[derive(Clone)]
pub struct Publisher {
    workload: Workload,
    client: Client,
    published: u32,
    retry: VecDeque<Message>,
    started: bool,
    finished: bool,
}

impl Publisher {
    pub fn new(workload: Workload) -> Self {
        let client = Client::new(workload.broker, workload.heartbeat_ns, workload.conn);
        Self {
            workload,
            client,
            published: 0,
            retry: VecDeque::new(),
            started: false,
            finished: false,
        }
    }

    /// Says so once everything is published and, with confirms, answered.
    fn check_finished<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let done = self.published == self.workload.messages
            && self.retry.is_empty()
            && self.client.unconfirmed() == 0;
        if done && !self.finished {
            self.finished = true;
            ctx.observe(Obs::Finished);
        }
    }

    fn on_timer_publish<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        for _ in 0..self.workload.burst {
            let message = match self.retry.pop_front() {
                Some(message) => message,
                None if self.published < self.workload.messages => {
                    let index = self.published as u64;
                    self.published += 1;
                    let id = publish_id(ctx.id(), ctx.incarnation(), index);
                    Message::new(id, self.workload.persistent, index)
                }
                None => break,
            };
            let keys = &self.workload.routing_keys;
            let key = if keys.is_empty() {
                String::new()
            } else {
                keys[((message.id >> 8) % keys.len() as u64) as usize].clone()
            };
            let exchange = self.workload.exchange.clone();
            if !self.client.publish(
                ctx,
                &exchange,
                &key,
                self.workload.mandatory,
                message.clone(),
            ) {
                self.retry.push_front(message);
                break;
            }
        }
        if self.published < self.workload.messages || !self.retry.is_empty() {
            ctx.set_timer(self.workload.publish_interval_ns, Timer::Publish);
        } else {
            self.started = false;
        }
        self.check_finished(ctx);
    }

    fn on_event<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, event: Event) {
        match event {
            Event::Ready { recovered } => {
                if !recovered && self.published == 0 {
                    let w = &self.workload;
                    let (exchange, kind, durable) =
                        (w.exchange.clone(), w.exchange_kind, w.durable);
                    declare_exchange(&mut self.client, ctx, &exchange, kind, durable);
                    for spec in &self.workload.queues {
                        declare_queue(&mut self.client, ctx, &self.workload, spec);
                    }
                    if self.workload.confirms {
                        self.client.call(ctx, Method::ConfirmSelect);
                    }
                }
                if !self.started {
                    self.started = true;
                    ctx.set_timer(self.workload.publish_interval_ns, Timer::Publish);
                }
            }
            Event::Lost { unconfirmed } => {
                for mut message in unconfirmed {
                    if message.id & 0xff < ATTEMPTS_MAX {
                        message.id += 1; // A new attempt is a new message to the broker.
                        self.retry.push_back(message);
                    }
                }
                if !self.retry.is_empty() && !self.started {
                    self.started = true;
                    ctx.set_timer(self.workload.publish_interval_ns, Timer::Publish);
                }
            }
            Event::Confirmed { message, ack } => {
                if !ack {
                    ctx.note(format!("broker refused message {:#x} (nack)", message.id));
                }
                self.check_finished(ctx);
            }
            _ => {}
        }
    }
}

impl App for Publisher {
    fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn on_app_timer<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, timer: Timer) {
        if timer != Timer::Publish {
            return;
        }
        self.on_timer_publish(ctx);
    }

    fn role(&self) -> String {
        "publisher".into()
    }

    fn connections(&self) -> String {
        self.client.connections()
    }

    fn inspect(&self) -> String {
        format!(
            "published {} of {}, {} to retry, connection {}",
            self.published,
            self.workload.messages,
            self.retry.len(),
            self.client.connection()
        )
    }
}

/// One delivery waiting to be processed.
#[derive(Clone)]
struct Work {
    channel: u32,
    delivery_tag: u64,
    queue: String,
    message: Message,
}

#[derive(Clone)]
pub struct Consumer {
    workload: Workload,
    spec: QueueSpec,
    client: Client,
    work: VecDeque<Work>,
    busy: bool,
    processed: u32,
    declared: bool,
}

impl Consumer {
    pub fn new(workload: Workload, spec: QueueSpec) -> Self {
        let client = Client::new(workload.broker, workload.heartbeat_ns, workload.conn);
        Self {
            workload,
            spec,
            client,
            work: VecDeque::new(),
            busy: false,
            processed: 0,
            declared: false,
        }
    }

    fn declare<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        declare_queue(&mut self.client, ctx, &self.workload, &self.spec);
        let w = &self.workload;
        let tag = format!("consumer-{}", ctx.id());
        let consume = Method::BasicConsume {
            queue: self.spec.name.clone(),
            tag,
            auto_ack: w.auto_ack,
        };
        self.client.call(
            ctx,
            Method::BasicQos {
                prefetch: w.prefetch,
            },
        );
        self.client.call(ctx, consume);
    }

    fn on_event<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, event: Event) {
        match event {
            Event::Ready { recovered: false } if !self.declared => {
                self.declared = true;
                self.declare(ctx);
            }
            Event::Delivery {
                channel,
                delivery_tag,
                redelivered,
                queue,
                message,
            } => {
                let auto_ack = self.workload.auto_ack;
                ctx.observe(Obs::Delivered {
                    queue: queue.clone(),
                    copy: message.copy(),
                    redelivered,
                    auto_ack,
                    consumer: ctx.id(),
                });
                self.work.push_back(Work {
                    channel,
                    delivery_tag,
                    queue,
                    message,
                });
                if !self.busy {
                    self.busy = true;
                    ctx.set_timer(self.workload.process_ns, Timer::Work);
                }
            }
            Event::Lost { .. } if !self.workload.auto_ack => {
                // The channel went: the broker requeued its unacked deliveries, and their
                // tags cannot be acked on the next one.
                self.work.clear();
            }
            _ => {}
        }
    }

    fn on_timer_work<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let Some(work) = self.work.pop_front() else {
            self.busy = false;
            return;
        };
        self.processed += 1;
        let reject = self.workload.reject_every > 0
            && self.processed.is_multiple_of(self.workload.reject_every);
        if self.workload.auto_ack {
            ctx.observe(Obs::Processed {
                queue: work.queue,
                copy: work.message.copy(),
            });
        } else if reject {
            self.client
                .reject(ctx, work.channel, work.delivery_tag, false);
        } else if self.client.ack(ctx, work.channel, work.delivery_tag) {
            ctx.observe(Obs::Processed {
                queue: work.queue,
                copy: work.message.copy(),
            });
        }
        if self.work.is_empty() {
            self.busy = false;
        } else {
            ctx.set_timer(self.workload.process_ns, Timer::Work);
        }
    }
}

/// Declares the exchanges a queue needs, the queue and its bindings. Publishers and
/// consumers both do it, so messages published before a consumer starts have a queue to
/// wait in (the classic RabbitMQ pitfall: publishing to an exchange with no queue bound
/// drops the message).
fn declare_queue<H: Host>(
    client: &mut Client,
    ctx: &mut Ctx<'_, H>,
    w: &Workload,
    spec: &QueueSpec,
) {
    declare_exchange(client, ctx, &w.exchange, w.exchange_kind, w.durable);
    let mut fanouts: Vec<String> = spec
        .bindings
        .iter()
        .filter_map(|(x, _)| x.clone())
        .collect();
    fanouts.extend(spec.args.dead_letter_exchange.clone());
    fanouts.dedup();
    for exchange in fanouts {
        declare_exchange(client, ctx, &exchange, ExchangeKind::Fanout, w.durable);
    }
    client.call(
        ctx,
        Method::QueueDeclare {
            name: spec.name.clone(),
            durable: spec.durable,
            exclusive: spec.exclusive,
            auto_delete: spec.auto_delete,
            args: spec.args.clone(),
        },
    );
    // No keys given: bind by queue name (a fanout exchange ignores the key anyway).
    let bindings = if spec.bindings.is_empty() && !w.exchange.is_empty() {
        vec![(None, spec.name.clone())]
    } else {
        spec.bindings.clone()
    };
    for (exchange, key) in bindings {
        let exchange = exchange.unwrap_or_else(|| w.exchange.clone());
        if !exchange.is_empty() {
            client.call(
                ctx,
                Method::QueueBind {
                    queue: spec.name.clone(),
                    exchange,
                    key,
                },
            );
        }
    }
}

impl App for Consumer {
    fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn on_app_timer<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, timer: Timer) {
        if timer != Timer::Work {
            return;
        }
        self.on_timer_work(ctx);
    }

    fn role(&self) -> String {
        "consumer".into()
    }

    fn connections(&self) -> String {
        self.client.connections()
    }

    fn inspect(&self) -> String {
        format!(
            "queue {}: processed {}, {} waiting, connection {}",
            self.spec.name,
            self.processed,
            self.work.len(),
            self.client.connection()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_specs_parse_names_bindings_and_options() {
        let spec = QueueSpec::parse("errors <- *.error, @dead ; max-length=5, overflow=reject-publish, ttl=50ms, dlx=dead, transient").unwrap();
        assert_eq!(spec.name, "errors");
        assert_eq!(
            spec.bindings,
            vec![
                (None, "*.error".into()),
                (Some("dead".into()), String::new())
            ]
        );
        assert!(!spec.durable);
        assert_eq!(spec.args.max_length, Some(5));
        assert_eq!(spec.args.overflow, Overflow::RejectPublish);
        assert_eq!(spec.args.message_ttl_ns, Some(50_000_000));
        assert_eq!(spec.args.dead_letter_exchange.as_deref(), Some("dead"));
    }

    #[test]
    fn every_life_of_a_publisher_numbers_its_publishes_apart() {
        let first = publish_id(3, 0, 5);
        let restarted = publish_id(3, 1, 5);
        let other = publish_id(4, 0, 5);
        assert_ne!(first, restarted);
        assert_ne!(first, other);
        // The attempt lives in the low byte, free for republishes.
        assert_eq!(first & 0xff, 0);
        assert_eq!(
            publish_id(3, 0, (1 << 24) - 1) >> 32,
            publish_id(3, 0, 0) >> 32
        );
    }

    #[test]
    fn bad_queue_specs_say_what_is_expected() {
        assert!(QueueSpec::parse(" <- a")
            .unwrap_err()
            .contains("expected `name <- key"));
        assert!(QueueSpec::parse("q ; colour=red")
            .unwrap_err()
            .contains("unknown option `colour=red`"));
        assert!(QueueSpec::parse("q ; max-length=lots")
            .unwrap_err()
            .contains("not a count"));
    }
}

app_node!(Publisher, Consumer);
