//! Ping-pong over connections: the same exchange as the datagram version, with the
//! connection layer (`conn`) doing what the client's retransmission timer does there.
//! It measures what a connection costs per delivered message (`faultline bench
//! ping-pong --conn`) and runs in scenarios with `connections = true`.

use super::{Msg, Obs, Params};
use crate::conn::{self, ConnId, ConnParams, Endpoint, Event, Events, Segment};
use crate::node::{Ctx, Node, NodeId, Proto, TimerId, Wraps};

/// What a node playing ping-pong over connections needs of its host.
pub trait ConnHost: conn::Host<Msg> + Proto<Obs: Wraps<Obs>> {}
impl<P: conn::Host<Msg> + Proto<Obs: Wraps<Obs>>> ConnHost for P {}

crate::host_enum! {
    /// The timers of ping-pong run on its own over connections.
    #[derive(Clone, PartialEq, serde::Serialize)]
    pub enum ConnTimer {
        PingPong(super::Timer),
        Conn(conn::Timer<Msg>),
    }
}

/// Ping-pong over connections run on its own: the benchmark's protocol.
#[derive(Clone)]
pub struct PingPongOverConn;

impl Proto for PingPongOverConn {
    type Msg = Segment<Msg>;
    type Obs = Obs;
    type Timer = ConnTimer;
}

#[derive(Clone)]
pub struct ConnClient {
    server: NodeId,
    params: Params,
    endpoint: Endpoint<Msg>,
    conn: Option<ConnId>,
    round: u64,
}

impl ConnClient {
    pub fn new(server: NodeId, params: Params, conn_params: ConnParams) -> Self {
        assert!(params.messages >= 2, "a round is a ping and a pong");
        Self {
            server,
            params,
            endpoint: Endpoint::new(conn_params),
            conn: None,
            round: 0,
        }
    }

    /// Sends this round's ping on the connection, opening one if there is none.
    fn ping<H: ConnHost>(&mut self, ctx: &mut Ctx<'_, H>) {
        let conn = match self.conn {
            Some(conn) => conn,
            None => {
                let conn = self
                    .endpoint
                    .open(ctx, self.server)
                    .expect("one connection");
                self.conn = Some(conn);
                conn
            }
        };
        if self
            .endpoint
            .send(ctx, conn, Msg::Ping(self.round))
            .is_err()
        {
            self.conn = None;
        }
    }

    fn handle<H: ConnHost>(&mut self, ctx: &mut Ctx<'_, H>, events: Events<Msg>) {
        for event in events {
            match event {
                Event::Frame {
                    frame: Msg::Pong(round),
                    ..
                } if round == self.round => {
                    ctx.observe(Obs::Pong(round));
                    self.round += 1;
                    if self.round < self.params.messages / 2 {
                        self.ping(ctx);
                    } else {
                        ctx.observe(Obs::Done);
                        // Done: close, so no keepalive outlives the exchange.
                        if let Some(conn) = self.conn.take() {
                            self.endpoint.close(ctx, conn);
                        }
                    }
                }
                Event::Broken { conn, .. } if self.conn == Some(conn) => {
                    // The ping may be lost with the connection: send it again on a new one.
                    self.conn = None;
                    self.ping(ctx);
                }
                _ => {}
            }
        }
    }
}

impl<H: ConnHost> Node<H> for ConnClient {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.endpoint.start(ctx);
        self.ping(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        if let Ok(events) = self.endpoint.take_message(ctx, from, msg) {
            self.handle(ctx, events);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
        if let Ok(events) = self.endpoint.take_timer(ctx, id, timer) {
            self.handle(ctx, events);
        }
    }

    fn role(&self) -> String {
        "client".into()
    }

    fn inspect(&self) -> String {
        format!(
            "round {} of {}, server {}\n{}",
            self.round,
            self.params.messages / 2,
            self.server,
            self.endpoint.describe()
        )
    }
}

#[derive(Clone)]
pub struct ConnServer {
    endpoint: Endpoint<Msg>,
    pongs: u64,
}

impl ConnServer {
    pub fn new(conn_params: ConnParams) -> Self {
        Self {
            endpoint: Endpoint::new(conn_params),
            pongs: 0,
        }
    }

    fn handle<H: ConnHost>(&mut self, ctx: &mut Ctx<'_, H>, events: Events<Msg>) {
        for event in events {
            if let Event::Frame {
                conn,
                frame: Msg::Ping(round),
            } = event
            {
                self.pongs += 1;
                // A broken connection takes the pong with it; the client pings again.
                let _ = self.endpoint.send(ctx, conn, Msg::Pong(round));
            }
        }
    }
}

impl<H: ConnHost> Node<H> for ConnServer {
    fn on_start(&mut self, ctx: &mut Ctx<'_, H>) {
        self.endpoint.start(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, H>, from: NodeId, msg: H::Msg) {
        if let Ok(events) = self.endpoint.take_message(ctx, from, msg) {
            self.handle(ctx, events);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, H>, id: TimerId, timer: H::Timer) {
        if let Ok(events) = self.endpoint.take_timer(ctx, id, timer) {
            self.handle(ctx, events);
        }
    }

    fn role(&self) -> String {
        "server".into()
    }

    fn inspect(&self) -> String {
        format!("{} pongs sent\n{}", self.pongs, self.endpoint.describe())
    }
}
