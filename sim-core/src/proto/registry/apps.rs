//! The workloads registry scenarios run on the client library:
//! - `KvClient`: random reads, writes and compare-and-sets on a few keys (znodes under
//!   `/kv`), each one a history operation in the Jepsen format: `ok` when it happened,
//!   `fail` when it certainly did not, `info` when the outcome is unknown
//!   (ConnectionLoss or SessionExpired during a write). With `linearizable_reads`, a read
//!   is sync-then-getData.
//! - `Locker` and `Resource`: lock holders writing a two-step critical section to a
//!   storage service that checks their fencing token.
//! - `Provider`: registers itself as a provider of an interface and keeps discovering
//!   the others (the service registry the RPC framework uses).

use rand::Rng;
use serde_json::Value;

use super::bugs::NO_FENCING;
use super::client::{Client, ClientConfig, Event, RequestError};
use super::recipes::{Lock, LockEvent, Registration};
use super::tree::{CreateMode, ZkError};
use super::{Host, LockMsg, Obs, Op, Reply, Timer};
use crate::check::{HistoryEvent, OpFunction, OpType};
use crate::node::{Ctx, Node, NodeId, TimerId, Wraps};
/// Tries of a write that races with another client creating the same key.
const WRITE_TRIES_MAX: u32 = 3;

/// What every workload client of one scenario shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub client: ClientConfig,
    pub linearizable_reads: bool,
    pub keys: u32,
    /// Operations (kv) or lock rounds (lockers) per client.
    pub ops: u32,
    pub think_ns: u64,
    pub hold_ns: u64,
    pub resource: Option<NodeId>,
    pub interface: String,
}

/// A workload on the client library; the blanket `Node` impl does the plumbing.
pub trait App {
    fn client(&mut self) -> &mut Client;
    fn started<H: Host>(&mut self, ctx: &mut Ctx<'_, H>);
    fn on_event<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, event: Event);
    fn on_app_timer<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, timer: Timer);
    fn on_other<H: Host>(&mut self, _ctx: &mut Ctx<'_, H>, _from: NodeId, _msg: LockMsg) {}
    fn describe(&self) -> String;
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
                self.started(ctx);
            }

            fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
                let msg = match Wraps::<LockMsg>::into_part(msg) {
                    Ok(msg) => return self.on_other(ctx, from, msg),
                    Err(msg) => msg,
                };
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
                "client".to_string()
            }

            fn inspect(&self) -> String {
                format!(
                    "{}\n\nconnections:\n{}",
                    self.describe(),
                    self.connections()
                )
            }
        }
    )+};
}

/// One step of a kv operation in flight.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Setup,
    Sync,
    Read,
    Write { tries: u32 },
    CasRead,
    CasWrite,
}

#[derive(Clone, Debug, PartialEq)]
struct KvOp {
    f: OpFunction,
    key: String,
    value: Value,
    step: Step,
}

#[derive(Clone)]
pub struct KvClient {
    workload: Workload,
    client: Client,
    id: NodeId,
    /// The history process; a new one after every `info` (Jepsen's crashed process).
    generation: u64,
    done: u32,
    setup_done: bool,
    current: Option<KvOp>,
    served: u64,
    refused: u64,
    /// The current operation met an error (not a mismatch): it was not served.
    errored: bool,
}

/// Processes of one client node are `node * PROCESSES_PER_NODE + generation`; each
/// restart starts a new block of `PROCESSES_PER_NODE / 1000` generations.
pub const PROCESSES_PER_NODE: u64 = 1_000_000;
const STARTS_FILE: &str = "kv/starts";

impl KvClient {
    pub fn new(id: NodeId, workload: Workload) -> Self {
        let client = Client::new(workload.client.clone());
        Self {
            workload,
            client,
            id,
            generation: 0,
            done: 0,
            setup_done: false,
            current: None,
            served: 0,
            refused: 0,
            errored: false,
        }
    }

    fn process(&self) -> u64 {
        self.id as u64 * PROCESSES_PER_NODE + self.generation
    }

    fn path(key: &str) -> String {
        format!("/kv/{key}")
    }

    fn record<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, kind: OpType, op: &KvOp, value: Value) {
        let event = HistoryEvent::new(self.process(), kind, op.f, value).with_key(op.key.clone());
        ctx.history(event);
    }

    fn next_op<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        if self.current.is_some() || self.done >= self.workload.ops {
            return;
        }
        if !self.client.is_connected() || self.client.is_busy() {
            ctx.set_timer(self.workload.think_ns, Timer::Next);
            return;
        }
        if !self.setup_done {
            let op = KvOp {
                f: OpFunction::Read,
                key: String::new(),
                value: Value::Null,
                step: Step::Setup,
            };
            self.current = Some(op);
            let create = Op::Create {
                path: "/kv".into(),
                data: Vec::new(),
                mode: CreateMode::Persistent,
            };
            self.send(ctx, create);
            return;
        }
        let key = format!("k{}", ctx.rng().random_range(0..self.workload.keys.max(1)));
        let roll = ctx.rng().random_range(0..10u32);
        let (f, value) = match roll {
            0..=3 => (OpFunction::Read, Value::Null),
            4..=7 => (
                OpFunction::Write,
                Value::from(ctx.rng().random_range(0..5u32)),
            ),
            _ => {
                let expected = ctx.rng().random_range(0..5u32);
                let new = ctx.rng().random_range(0..5u32);
                (OpFunction::Cas, Value::from(vec![expected, new]))
            }
        };
        let step = match f {
            OpFunction::Read if self.workload.linearizable_reads => Step::Sync,
            OpFunction::Read => Step::Read,
            OpFunction::Write => Step::Write { tries: 0 },
            _ => Step::CasRead,
        };
        let op = KvOp {
            f,
            key,
            value: value.clone(),
            step,
        };
        self.record(ctx, OpType::Invoke, &op, value);
        self.current = Some(op);
        self.issue(ctx);
    }

    fn send<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, op: Op) {
        match self.client.request(ctx, op.clone(), false) {
            Ok(()) => {}
            Err(RequestError::Zk(error)) => self.on_response(ctx, op, Err(error)),
            // Never: a kv client sends only when the client is idle. Were it busy, the
            // outcome would be as unknown as after a lost connection.
            Err(RequestError::Busy) => self.on_response(ctx, op, Err(ZkError::ConnectionLoss)),
        }
    }

    /// Sends the request of the current step.
    fn issue<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let Some(op) = self.current.clone() else {
            return;
        };
        let path = Self::path(&op.key);
        let request = match op.step {
            Step::Setup => return,
            Step::Sync => Op::Sync,
            Step::Read | Step::CasRead => Op::GetData { path },
            Step::Write { tries } => {
                let data = op.value.to_string().into_bytes();
                if tries % 2 == 0 {
                    Op::SetData {
                        path,
                        data,
                        version: -1,
                    }
                } else {
                    Op::Create {
                        path,
                        data,
                        mode: CreateMode::Persistent,
                    }
                }
            }
            Step::CasWrite => unreachable!("cas writes are issued with their version"),
        };
        self.send(ctx, request);
    }

    fn finish<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, kind: OpType, value: Value) {
        let Some(op) = self.current.take() else {
            return;
        };
        if op.step != Step::Setup {
            self.record(ctx, kind, &op, value);
            // A cas whose expected value did not match was served; errors were not.
            let ok = kind == OpType::Ok || (kind == OpType::Fail && !self.errored);
            if ok {
                self.served += 1;
            } else {
                self.refused += 1;
            }
            self.errored = false;
            ctx.metric("served", self.served);
            ctx.metric("refused", self.refused);
            self.done += 1;
            if kind == OpType::Info {
                self.generation += 1;
            }
            if self.done == self.workload.ops {
                ctx.observe(Obs::Finished);
            }
        } else if kind == OpType::Ok {
            self.setup_done = true;
        }
        ctx.set_timer(self.workload.think_ns, Timer::Next);
    }

    fn on_response<H: Host>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        request: Op,
        result: Result<Reply, ZkError>,
    ) {
        let Some(op) = self.current.clone() else {
            return;
        };
        let unknown = matches!(
            result,
            Err(ZkError::ConnectionLoss) | Err(ZkError::SessionExpired)
        );
        self.errored |= matches!(
            result,
            Err(ZkError::ConnectionLoss | ZkError::SessionExpired | ZkError::NotReadOnly)
        );
        match (&op.step, result) {
            (Step::Setup, Ok(_) | Err(ZkError::NodeExists)) => {
                self.finish(ctx, OpType::Ok, Value::Null)
            }
            (Step::Setup, Err(_)) => self.finish(ctx, OpType::Fail, Value::Null),
            (Step::Sync, Ok(_)) => {
                self.set_step(Step::Read);
                self.issue(ctx);
            }
            (Step::Read, Ok(Reply::Data(data, _))) => {
                let value = decode(&data);
                self.finish(ctx, OpType::Ok, value);
            }
            (Step::Read, Err(ZkError::NoNode)) => self.finish(ctx, OpType::Ok, Value::Null),
            (Step::CasRead, Err(ZkError::NoNode)) => {
                if !op.value[0].is_null() {
                    self.finish(ctx, OpType::Fail, op.value.clone());
                    return;
                }
                self.set_step(Step::CasWrite);
                let create = Op::Create {
                    path: Self::path(&op.key),
                    data: op.value[1].to_string().into_bytes(),
                    mode: CreateMode::Persistent,
                };
                self.send(ctx, create);
            }
            // A read changes nothing: whatever went wrong, it did not happen.
            (Step::Sync | Step::Read | Step::CasRead, Err(_)) => {
                self.finish(ctx, OpType::Fail, Value::Null)
            }
            (Step::Write { .. }, Ok(_)) => self.finish(ctx, OpType::Ok, op.value.clone()),
            (Step::Write { tries }, Err(ZkError::NoNode | ZkError::NodeExists))
                if tries + 1 < WRITE_TRIES_MAX * 2 =>
            {
                self.set_step(Step::Write { tries: tries + 1 });
                self.issue(ctx);
            }
            (Step::Write { .. } | Step::CasWrite, Err(_)) if unknown => {
                self.finish(ctx, OpType::Info, op.value.clone())
            }
            (Step::Write { .. } | Step::CasWrite, Err(_)) => {
                self.finish(ctx, OpType::Fail, op.value.clone())
            }
            (Step::CasRead, Ok(Reply::Data(data, stat))) => {
                let expected = &op.value[0];
                if decode(&data) != *expected {
                    self.finish(ctx, OpType::Fail, op.value.clone());
                    return;
                }
                self.set_step(Step::CasWrite);
                let write = Op::SetData {
                    path: Self::path(&op.key),
                    data: op.value[1].to_string().into_bytes(),
                    version: stat.version,
                };
                self.send(ctx, write);
            }
            (Step::CasWrite, Ok(_)) => self.finish(ctx, OpType::Ok, op.value.clone()),
            (step, result) => {
                unreachable!("kv client: {request:?} in step {step:?} answered {result:?}")
            }
        }
    }

    fn set_step(&mut self, step: Step) {
        if let Some(op) = &mut self.current {
            op.step = step;
        }
    }
}

/// A znode's data as a history value: the JSON the client wrote, null when empty.
fn decode(data: &[u8]) -> Value {
    if data.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(data).unwrap_or(Value::Null)
}

impl App for KvClient {
    fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn started<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        // A restarted client is a new history process: its predecessor's operation in
        // flight stays open (unknown), as Jepsen treats a crashed process.
        let (starts, _) = ctx.disk().read_records::<u64>(STARTS_FILE);
        let starts = starts.last().copied().unwrap_or(0) + 1;
        ctx.disk()
            .write(STARTS_FILE, &crate::disk::frame_record(&starts));
        ctx.disk().sync();
        self.generation = (starts - 1) * (PROCESSES_PER_NODE / 1_000);
        ctx.set_timer(self.workload.think_ns, Timer::Next);
    }

    fn on_event<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, event: Event) {
        match event {
            Event::Response { op, result } => self.on_response(ctx, op, result),
            Event::Expired => self.client.new_session(ctx),
            _ => {}
        }
    }

    fn on_app_timer<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, timer: Timer) {
        if timer == Timer::Next {
            self.next_op(ctx);
        }
    }

    fn connections(&self) -> String {
        self.client.connections()
    }

    fn describe(&self) -> String {
        format!(
            "session={:#x} state={:?} server={}\nops done={} of {} served={} refused={}\ncurrent={:?}",
            self.client.session(),
            self.client.state(),
            self.client.server(),
            self.done,
            self.workload.ops,
            self.served,
            self.refused,
            self.current
        )
    }
}

/// Where a locker is in one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Round {
    Thinking,
    Acquiring,
    Writing { step: u32, token: u64 },
    Working { token: u64 },
    Releasing,
}

#[derive(Clone)]
pub struct Locker {
    workload: Workload,
    client: Client,
    lock: Lock,
    round: Round,
    rounds: u32,
}

impl Locker {
    pub fn new(workload: Workload) -> Self {
        let client = Client::new(workload.client.clone());
        Self {
            workload,
            client,
            lock: Lock::new("/lock"),
            round: Round::Thinking,
            rounds: 0,
        }
    }

    fn write<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, step: u32, token: u64) {
        self.round = Round::Writing { step, token };
        if let Some(resource) = self.workload.resource {
            ctx.send(resource, LockMsg::ResourceWrite { token, step });
        }
        // Without an answer in time, carry on as if refused.
        ctx.set_timer(self.workload.hold_ns * 4, Timer::Work { step });
    }

    fn end_round<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.round = Round::Thinking;
        self.rounds += 1;
        if self.rounds == self.workload.ops {
            ctx.observe(Obs::Finished);
        } else {
            ctx.set_timer(self.workload.think_ns, Timer::Next);
        }
    }

    fn after_write<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, step: u32, token: u64) {
        if step == 1 {
            self.round = Round::Working { token };
            ctx.set_timer(self.workload.hold_ns, Timer::Work { step: 0 });
        } else {
            self.round = Round::Releasing;
            if self.lock.release(ctx, &mut self.client) == Some(LockEvent::Released) {
                self.end_round(ctx);
            }
        }
    }
}

impl App for Locker {
    fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn started<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        ctx.set_timer(self.workload.think_ns, Timer::Next);
    }

    fn on_event<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, event: Event) {
        if event == Event::Expired {
            self.client.new_session(ctx);
        }
        match self.lock.on_event(ctx, &mut self.client, &event) {
            Some(LockEvent::Acquired { token }) if self.round == Round::Acquiring => {
                self.write(ctx, 1, token);
            }
            Some(LockEvent::Released) => self.end_round(ctx),
            Some(LockEvent::Lost) => {
                // A holder that learns it lost the lock stops; one that does not know yet
                // (paused) carries on, which is what fencing is for.
                if matches!(self.round, Round::Acquiring | Round::Releasing) {
                    self.end_round(ctx);
                }
            }
            _ => {}
        }
    }

    fn on_app_timer<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, timer: Timer) {
        match (timer, self.round) {
            (Timer::Next, Round::Thinking) => {
                if self.client.is_connected() && !self.client.is_busy() && self.lock.is_idle() {
                    self.round = Round::Acquiring;
                    if self.lock.acquire(ctx, &mut self.client).is_err() {
                        self.round = Round::Thinking;
                        ctx.set_timer(self.workload.think_ns, Timer::Next);
                    }
                } else {
                    ctx.set_timer(self.workload.think_ns, Timer::Next);
                }
            }
            (Timer::Work { step: 0 }, Round::Working { token }) => self.write(ctx, 2, token),
            (Timer::Work { step: fired }, Round::Writing { step, token }) if fired == step => {
                self.after_write(ctx, step, token)
            }
            _ => {}
        }
    }

    fn on_other<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, _from: NodeId, msg: LockMsg) {
        if let (
            LockMsg::ResourceAck { step, .. },
            Round::Writing {
                step: current,
                token,
            },
        ) = (msg, self.round)
        {
            if step == current {
                self.after_write(ctx, step, token);
            }
        }
    }

    fn connections(&self) -> String {
        self.client.connections()
    }

    fn describe(&self) -> String {
        format!(
            "session={:#x} state={:?}\nround={:?} rounds done={} lock held={}",
            self.client.session(),
            self.client.state(),
            self.round,
            self.rounds,
            self.lock.is_held()
        )
    }
}

/// The storage service lock holders write to. It remembers the highest fencing token it
/// has seen and refuses older ones (unless `lock.no-fencing`).
#[derive(Clone, Default)]
pub struct Resource {
    highest_token: u64,
    writes: u64,
}

impl<H: Host> Node<H> for Resource {
    fn on_start(&mut self, _ctx: &mut Ctx<'_, H>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        let Ok(LockMsg::ResourceWrite { token, step }) = Wraps::<LockMsg>::into_part(msg) else {
            return;
        };
        let accepted = ctx.bug(NO_FENCING) || token >= self.highest_token;
        if token < self.highest_token {
            ctx.sometimes("lock.stale-token");
        }
        if accepted {
            self.highest_token = self.highest_token.max(token);
            self.writes += 1;
        }
        ctx.observe(Obs::ResourceWrite {
            client: from,
            token,
            accepted,
        });
        ctx.send(from, LockMsg::ResourceAck { step, accepted });
    }

    fn on_timer(&mut self, _ctx: &mut Ctx<'_, H>, _id: TimerId, _timer: H::Timer) {}

    fn role(&self) -> String {
        "resource".to_string()
    }

    fn inspect(&self) -> String {
        format!(
            "highest token={} writes={}",
            self.highest_token, self.writes
        )
    }
}

#[derive(Clone)]
pub struct Provider {
    workload: Workload,
    client: Client,
    registration: Registration,
}

impl Provider {
    pub fn new(id: NodeId, workload: Workload) -> Self {
        let client = Client::new(workload.client.clone());
        let registration = Registration::new(&workload.interface, &format!("10.0.0.{id}:20880"));
        Self {
            workload,
            client,
            registration,
        }
    }
}

impl App for Provider {
    fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn started<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        ctx.set_timer(self.workload.think_ns, Timer::Next);
    }

    fn on_event<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, event: Event) {
        if event == Event::Expired {
            self.client.new_session(ctx);
            return;
        }
        if matches!(event, Event::Connected { .. })
            && !self.registration.is_registered()
            && !self.client.is_busy()
        {
            self.registration.register(ctx, &mut self.client);
            return;
        }
        if self.registration.on_event(ctx, &mut self.client, &event) {
            self.registration.discover(ctx, &mut self.client);
        }
    }

    fn on_app_timer<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, timer: Timer) {
        if timer != Timer::Next {
            return;
        }
        if self.client.is_connected() && !self.client.is_busy() {
            if self.registration.is_registered() {
                self.registration.discover(ctx, &mut self.client);
            } else {
                self.registration.register(ctx, &mut self.client);
            }
        }
        ctx.set_timer(self.workload.think_ns * 10, Timer::Next);
    }

    fn connections(&self) -> String {
        self.client.connections()
    }

    fn describe(&self) -> String {
        format!(
            "session={:#x} state={:?}\nregistered={} providers seen={:?}",
            self.client.session(),
            self.client.state(),
            self.registration.is_registered(),
            self.registration.providers()
        )
    }
}

app_node!(KvClient, Locker, Provider);
