//! A scripted AMQP client for broker tests: the real client library driven one step
//! every 5 ms, logging every event it hands the script; node 0 is the broker. Shared by
//! the broker test files (each uses part of it).
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use sim_core::conn::{self, ConnParams};
use sim_core::engine::{run_to_end, Limits, Run, Sim, SimConfig};
use sim_core::fault::{Fault, ScheduledFault};
use sim_core::net::{Latency, LinkModel};
use sim_core::proto::broker::client::{self, Client, Event};
use sim_core::proto::broker::server::BrokerParams;
use sim_core::proto::broker::{self as broker, Broker, ExchangeKind, Message, Method, QueueArgs};
use sim_core::{host_enum, Ctx, Node, NodeId, Proto, TimerId};

pub const MS: u64 = 1_000_000;
pub const STEP_NS: u64 = 5 * MS;

/// The test's own host: the broker's types and the scripts' one timer, wrapped as a
/// user's own protocol would wrap them.
#[derive(Clone)]
pub struct Rules;

impl Proto for Rules {
    type Msg = broker::Msg;
    type Obs = broker::Obs;
    type Timer = RulesTimer;
}

/// A script's next step is due.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NextStep;

host_enum! {
    #[derive(Clone, PartialEq, Serialize)]
    pub enum RulesTimer {
        Broker(broker::Timer),
        Client(client::Timer),
        Conn(conn::Timer<broker::Frame>),
        Step(NextStep),
    }
}

#[derive(Clone, Debug)]
pub enum Step {
    Call(Method),
    Publish {
        exchange: &'static str,
        key: &'static str,
        mandatory: bool,
        id: u64,
        persistent: bool,
    },
    /// Acks the n-th delivery this client received (0-based), or a made-up tag.
    Ack(usize),
    AckTag(u64),
    Nack {
        delivery: usize,
        requeue: bool,
    },
    /// Does nothing for one step (5 ms).
    Wait,
    /// An asynchronous method as is (multiple acks, nacks), past the library's checks.
    Raw(Method),
}

pub type Log = Rc<RefCell<Vec<String>>>;

#[derive(Clone)]
pub struct Script {
    client: Client,
    steps: Vec<Step>,
    next: usize,
    deliveries: Vec<(u32, u64)>,
    log: Log,
}

impl Script {
    fn record(&mut self, ctx: &mut Ctx<'_, Rules>, events: Vec<Event>) {
        for event in events {
            if let Event::Delivery {
                channel,
                delivery_tag,
                ..
            } = &event
            {
                self.deliveries.push((*channel, *delivery_tag));
            }
            let ready = matches!(event, Event::Ready { recovered: false });
            self.log
                .borrow_mut()
                .push(format!("{} {}", ctx.id(), describe(&event)));
            if ready {
                ctx.set_timer(STEP_NS, NextStep);
            }
        }
    }

    fn run_step(&mut self, ctx: &mut Ctx<'_, Rules>) {
        let Some(step) = self.steps.get(self.next).cloned() else {
            return;
        };
        self.next += 1;
        match step {
            Step::Call(method) => self.client.call(ctx, method),
            Step::Publish {
                exchange,
                key,
                mandatory,
                id,
                persistent,
            } => {
                let message = Message::new(id, persistent, id);
                assert!(self.client.publish(ctx, exchange, key, mandatory, message));
            }
            Step::Ack(n) => {
                let (channel, tag) = self.deliveries[n];
                let sent = self.client.ack(ctx, channel, tag);
                self.log
                    .borrow_mut()
                    .push(format!("{} ack sent={sent}", ctx.id()));
            }
            Step::AckTag(tag) => {
                let channel = self.client.channel();
                self.client.ack(ctx, channel, tag);
            }
            Step::Wait => {}
            Step::Nack { delivery, requeue } => {
                let (channel, tag) = self.deliveries[delivery];
                self.client.reject(ctx, channel, tag, requeue);
            }
            Step::Raw(method) => self.client.send_raw(ctx, method),
        }
        ctx.set_timer(STEP_NS, NextStep);
    }
}

pub fn describe(event: &Event) -> String {
    match event {
        Event::Ready { recovered } => format!("ready recovered={recovered}"),
        Event::Reply(reply) => format!("reply {reply:?}"),
        Event::Delivery {
            delivery_tag,
            redelivered,
            queue,
            message,
            ..
        } => {
            let deaths: Vec<String> = message
                .deaths
                .iter()
                .map(|d| format!("{}:{:?}x{}", d.queue, d.reason, d.count))
                .collect();
            let deaths = if deaths.is_empty() {
                String::new()
            } else {
                format!(" deaths=[{}]", deaths.join(" "))
            };
            format!(
                "deliver {} from {queue} tag={delivery_tag} redelivered={redelivered}{deaths}",
                message.id
            )
        }
        Event::Returned { code, message } => format!("returned {} code={code}", message.id),
        Event::Confirmed { message, ack } => format!("confirmed {} ack={ack}", message.id),
        Event::ChannelClosed { code, text } => format!("channel closed {code} {text}"),
        Event::Lost { unconfirmed } => format!("lost {} unconfirmed", unconfirmed.len()),
        Event::ConnectionClosed { code, text } => format!("connection closed {code} {text}"),
    }
}

impl Node<Rules> for Script {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Rules>) {
        self.client.start(ctx);
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, Rules>, from: NodeId, msg: broker::Msg) {
        if let Ok(events) = self.client.take_message(ctx, from, msg) {
            self.record(ctx, events);
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Rules>, id: TimerId, timer: RulesTimer) {
        match self.client.take_timer(ctx, id, timer) {
            Ok(events) => self.record(ctx, events),
            Err(_) => self.run_step(ctx),
        }
    }
}

/// Node 0 is the broker; nodes 1.. run the scripts. Returns the log and the finished run.
pub fn run(scripts: Vec<Vec<Step>>, faults: Vec<(u64, Fault)>) -> (Vec<String>, Box<dyn Run>) {
    run_for(scripts, faults, 2_000)
}

/// `run` for `duration_ms` of virtual time.
pub fn run_for(
    scripts: Vec<Vec<Step>>,
    faults: Vec<(u64, Fault)>,
    duration_ms: u64,
) -> (Vec<String>, Box<dyn Run>) {
    let log: Log = Rc::default();
    let node_log = log.clone();
    let mut kinds = vec!["broker".to_string()];
    kinds.extend(scripts.iter().map(|_| "script".to_string()));
    let config = SimConfig {
        scenario: "broker-rules".into(),
        seed: 1,
        kinds,
        link: LinkModel {
            latency: Latency::Fixed { ns: MS },
            ..LinkModel::default()
        },
        links: Vec::new(),
        faults: faults
            .into_iter()
            .map(|(at_ns, fault)| ScheduledFault { at_ns, fault })
            .collect(),
        nemesis: None,
        fault_phase_ns: duration_ms * MS,
        quiet_ns: 0,
        limits: Limits::default(),
        bugs: Default::default(),
        retain_trace: true,
    };
    let factory = std::rc::Rc::new(move |id: NodeId, kind: &str| -> Box<dyn Node<Rules>> {
        if kind == "broker" {
            return Box::new(Broker::new(BrokerParams {
                heartbeat_ns: 100 * MS,
                sync_interval_ns: 2 * MS,
                conn: ConnParams::default(),
            }));
        }
        Box::new(Script {
            client: Client::new(0, 100 * MS, ConnParams::default()),
            steps: scripts[id as usize - 1].clone(),
            next: 0,
            deliveries: Vec::new(),
            log: node_log.clone(),
        })
    });
    let mut sim: Box<dyn Run> = Box::new(Sim::new(config, factory, Vec::new()));
    let report = run_to_end(sim.as_mut());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let lines = log.borrow().clone();
    (lines, sim)
}

pub fn queue(name: &str, durable: bool) -> Step {
    Step::Call(Method::QueueDeclare {
        name: name.into(),
        durable,
        exclusive: false,
        auto_delete: false,
        args: QueueArgs::default(),
    })
}

pub fn exchange(name: &str, kind: ExchangeKind) -> Step {
    Step::Call(Method::ExchangeDeclare {
        name: name.into(),
        kind,
        durable: true,
    })
}

pub fn bind(queue: &str, exchange: &str, key: &str) -> Step {
    Step::Call(Method::QueueBind {
        queue: queue.into(),
        exchange: exchange.into(),
        key: key.into(),
    })
}

pub fn consume(queue: &str) -> Step {
    Step::Call(Method::BasicConsume {
        queue: queue.into(),
        tag: String::new(),
        auto_ack: false,
    })
}

pub fn publish(exchange: &'static str, key: &'static str, id: u64) -> Step {
    Step::Publish {
        exchange,
        key,
        mandatory: false,
        id,
        persistent: true,
    }
}

pub fn has(log: &[String], line: &str) -> bool {
    log.iter().any(|l| l == line)
}

pub fn broker_state(sim: &dyn Run) -> String {
    sim.nodes()[0].state.clone()
}
