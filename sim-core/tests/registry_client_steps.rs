//! The registry client library, one handler at a time: the testing harness plays the
//! server over a connection (`testing::Remote`) and the test drives the library the way
//! an application would, including the wrong way (a second request while one is
//! outstanding must be refused, never a panic).

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use sim_core::conn::{self, ConnParams, Segment};
use sim_core::host_enum;
use sim_core::proto::registry::client::{self, Client, ClientConfig, Event};
use sim_core::proto::registry::{self, Msg, Op};
use sim_core::testing::{Harness, Remote};
use sim_core::{Ctx, Node, NodeId, Proto, TimerId};

const MS: u64 = 1_000_000;

#[derive(Clone)]
struct Host;

impl Proto for Host {
    type Msg = Segment<Msg>;
    type Obs = registry::Obs;
    type Timer = HostTimer;
}

host_enum! {
    #[derive(Clone, PartialEq, Serialize)]
    enum HostTimer {
        Client(client::Timer),
        Conn(conn::Timer<Msg>),
    }
}

type Log = Rc<RefCell<Vec<String>>>;

/// An application that, once connected, asks for two syncs at once.
#[derive(Clone)]
struct Eager {
    client: Client,
    log: Log,
}

impl Eager {
    fn on_events(&mut self, ctx: &mut Ctx<'_, Host>, events: Vec<Event>) {
        for event in events {
            if let Event::Connected { .. } = event {
                for _ in 0..2 {
                    let result = self.client.request(ctx, Op::Sync, false);
                    self.log.borrow_mut().push(format!("request: {result:?}"));
                }
            }
        }
    }
}

impl Node<Host> for Eager {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Host>) {
        self.client.start(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Host>, from: NodeId, msg: Segment<Msg>) {
        if let Ok(events) = self.client.take_message(ctx, from, msg) {
            self.on_events(ctx, events);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Host>, id: TimerId, timer: HostTimer) {
        if let Ok(events) = self.client.take_timer(ctx, id, timer) {
            self.on_events(ctx, events);
        }
    }
}

#[test]
fn a_second_request_while_one_is_outstanding_is_refused_not_a_panic() {
    let log: Log = Rc::default();
    let config = ClientConfig {
        servers: vec![0],
        session_timeout_ns: 300 * MS,
        read_only: false,
        conn: ConnParams::default(),
    };
    let node = Eager {
        client: Client::new(config),
        log: log.clone(),
    };
    let mut h = Harness::new(1, 2, 1, Box::new(node));
    h.start();
    let mut server = Remote::new(0);
    h.deliver(0, server.accept::<Msg>(1));
    let connected = Msg::Connected {
        session: 7,
        timeout_ns: 300 * MS,
        read_only: false,
    };
    let text = h.deliver(0, server.answer(1, connected));
    assert_eq!(
        *log.borrow(),
        ["request: Ok(())", "request: Err(Busy)"],
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains("Request {")).count(),
        1,
        "only the first request goes out: {text}"
    );
}
