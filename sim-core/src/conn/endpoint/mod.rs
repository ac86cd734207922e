//! One node's connections for one frame type: the state machine behind `conn`'s rules.
//! Handlers here take a `Ctx` and act through it (send segments, arm timers, annotate);
//! what the host must hear comes back as `Event`s, in order.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;

use serde::Serialize;

use super::{
    Boot, BreakReason, ConnId, ConnParams, Event, Events, Host, Route, Segment, Seq, Timer,
    CONNS_MAX,
};
use crate::node::{Ctx, NodeId, TimerId, Wraps};

mod transmit;
use transmit::{arm, local, process, pump, retransmit, route, route_back, send_now};

/// Boot ids of a peer's past lives remembered, so their late segments are ignored.
const DEAD_BOOTS_MAX: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Our `Syn` is out; no answer yet.
    Opening,
    Open,
    /// We closed: our `Fin` is queued or in flight.
    Closing,
}

#[derive(Clone, Debug)]
enum Payload<F> {
    Frame(F),
    Fin,
}

#[derive(Clone, Debug)]
struct InFlight<F> {
    seq: Seq,
    payload: Payload<F>,
    first_sent_ns: u64,
    retransmitted: bool,
}

#[derive(Clone, Debug)]
struct Conn<F> {
    state: State,
    /// The peer's boot id; 0 until its answer to our `Syn`.
    peer_boot: Boot,
    opened_ns: u64,
    send_next: Seq,
    in_flight: VecDeque<InFlight<F>>,
    /// Waiting for the window (or for the connection to open).
    queued: VecDeque<Payload<F>>,
    recv_next: Seq,
    out_of_order: BTreeMap<Seq, Payload<F>>,
    /// Since when we owe the peer an ack.
    ack_owed_since: Option<u64>,
    rto_ns: u64,
    srtt_ns: Option<u64>,
    rttvar_ns: u64,
    retransmit_due_ns: Option<u64>,
    /// True from the first expiry of a retransmission streak until an ack ends it.
    retransmitting: bool,
    /// Acks in a row that acknowledged nothing new while segments were in flight.
    dup_acks: u32,
    last_heard_ns: u64,
    last_probe_ns: u64,
    /// Between unanswered probes: `rto_min`, doubling up to `rto_max` (reset when the
    /// peer is heard), so a silent peer gets several probes before the timeout.
    probe_interval_ns: u64,
    timer: Option<(TimerId, u64)>,
}

impl<F> Conn<F> {
    fn new(state: State, peer_boot: Boot, now_ns: u64, params: &ConnParams) -> Self {
        Self {
            state,
            peer_boot,
            opened_ns: now_ns,
            send_next: 1,
            in_flight: VecDeque::new(),
            queued: VecDeque::new(),
            recv_next: 1,
            out_of_order: BTreeMap::new(),
            ack_owed_since: None,
            rto_ns: params.rto_min_ns,
            srtt_ns: None,
            rttvar_ns: 0,
            retransmit_due_ns: None,
            retransmitting: false,
            dup_acks: 0,
            last_heard_ns: now_ns,
            last_probe_ns: now_ns,
            probe_interval_ns: params.rto_min_ns,
            timer: None,
        }
    }

    /// When the next keepalive probe is due: `keepalive` after the peer was last heard,
    /// then every `probe_interval` while it stays silent.
    fn probe_due_ns(&self, keepalive_ns: u64) -> u64 {
        if self.last_probe_ns > self.last_heard_ns {
            self.last_probe_ns + self.probe_interval_ns
        } else {
            self.last_heard_ns + keepalive_ns
        }
    }

    /// The peer was heard from: its silence ends.
    fn heard(&mut self, now_ns: u64, params: &ConnParams) {
        self.last_heard_ns = now_ns;
        self.probe_interval_ns = params.rto_min_ns;
    }

    /// Since when the oldest unanswered thing (our `Syn`, a segment in flight) waits.
    fn waiting_since_ns(&self) -> Option<u64> {
        match self.state {
            State::Opening => Some(self.opened_ns),
            _ => self.in_flight.front().map(|segment| segment.first_sent_ns),
        }
    }

    fn name(&self) -> &'static str {
        match (self.state, self.retransmitting) {
            (State::Opening, _) => "opening",
            (_, true) => "retransmitting",
            (State::Open, false) => "open",
            (State::Closing, false) => "closing",
        }
    }
}

/// What a send refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// No such connection (never opened, closed, or already broken).
    NotOpen,
    /// The send buffer overflowed: the connection broke.
    Broken(BreakReason),
}

/// Why an open was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// `CONNS_MAX` connections are open.
    TooMany,
}

/// An endpoint's connections, sorted by id in a vector: a node holds few, so a binary
/// search over contiguous entries beats a tree on every segment.
#[derive(Clone, Debug)]
struct Table<T> {
    entries: Vec<(ConnId, T)>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<T> Table<T> {
    fn position(&self, id: &ConnId) -> Result<usize, usize> {
        self.entries.binary_search_by(|(key, _)| key.cmp(id))
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn get(&self, id: &ConnId) -> Option<&T> {
        self.position(id).ok().map(|at| &self.entries[at].1)
    }

    fn get_mut(&mut self, id: &ConnId) -> Option<&mut T> {
        self.position(id).ok().map(|at| &mut self.entries[at].1)
    }

    fn contains_key(&self, id: &ConnId) -> bool {
        self.position(id).is_ok()
    }

    fn insert(&mut self, id: ConnId, value: T) {
        match self.position(&id) {
            Ok(at) => self.entries[at].1 = value,
            Err(at) => self.entries.insert(at, (id, value)),
        }
    }

    fn remove(&mut self, id: &ConnId) -> Option<T> {
        self.position(id).ok().map(|at| self.entries.remove(at).1)
    }

    fn iter(&self) -> impl Iterator<Item = (&ConnId, &T)> {
        self.entries.iter().map(|(id, value)| (id, value))
    }

    fn keys(&self) -> impl Iterator<Item = &ConnId> {
        self.entries.iter().map(|(id, _)| id)
    }
}

/// What this endpoint knows of one peer's boots.
#[derive(Clone, Debug, Default)]
struct PeerBoots {
    current: Boot,
    dead: VecDeque<Boot>,
}

#[derive(Clone)]
pub struct Endpoint<F> {
    params: ConnParams,
    boot: Boot,
    number_next: u32,
    conns: Table<Conn<F>>,
    peers: BTreeMap<NodeId, PeerBoots>,
}

impl<F: Clone + Debug + Serialize + 'static> Endpoint<F> {
    pub fn new(params: ConnParams) -> Self {
        debug_assert!(params.validate().is_ok(), "{params:?}");
        Self {
            params,
            boot: 0,
            number_next: 1,
            conns: Table::default(),
            peers: BTreeMap::new(),
        }
    }

    /// Boots the endpoint: this life's boot id is the node's boot counter plus one (0
    /// means "unknown").
    pub fn start<H: Host<F>>(&mut self, ctx: &mut Ctx<'_, H>) {
        assert_eq!(
            self.boot, 0,
            "an endpoint boots once; a restart builds a new one"
        );
        self.boot = ctx.incarnation() + 1;
    }

    pub fn params(&self) -> &ConnParams {
        &self.params
    }

    /// Whether `conn` is open (or opening) for sending.
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|c| c.state != State::Closing)
    }

    /// The connections with `peer`, in id order.
    pub fn conns_with(&self, peer: NodeId) -> Vec<ConnId> {
        self.conns
            .keys()
            .filter(|id| id.peer == peer)
            .copied()
            .collect()
    }

    /// Opens a connection to `peer`; frames may be sent on it at once (they wait for
    /// the answer). `Event::Opened` or `Event::Broken` follows.
    pub fn open<H: Host<F>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        peer: NodeId,
    ) -> Result<ConnId, OpenError> {
        assert_ne!(self.boot, 0, "start the endpoint first");
        assert_ne!(peer, ctx.id(), "a connection joins two nodes");
        if self.conns.len() >= CONNS_MAX {
            return Err(OpenError::TooMany);
        }
        let id = ConnId {
            peer,
            mine: true,
            number: self.number_next,
        };
        self.number_next += 1;
        let now = ctx.monotonic_ns();
        let mut conn = Conn::new(State::Opening, 0, now, &self.params);
        conn.retransmit_due_ns = Some(now + conn.rto_ns);
        self.conns.insert(id, conn);
        ctx.send(
            peer,
            Segment::<F>::Syn {
                number: id.number,
                boot: self.boot,
            },
        );
        ctx.annotate("conn.state", format!("{id} opening"));
        self.arm(ctx, id);
        Ok(id)
    }

    /// Queues `frame` on `conn`; it goes out as the window allows.
    pub fn send<H: Host<F>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        id: ConnId,
        frame: F,
    ) -> Result<(), SendError> {
        let Some(conn) = self.conns.get_mut(&id) else {
            return Err(SendError::NotOpen);
        };
        if conn.state == State::Closing {
            return Err(SendError::NotOpen);
        }
        let window_open = conn.in_flight.len() < self.params.window as usize;
        if conn.state == State::Open && conn.queued.is_empty() && window_open {
            // The fast path: straight into the window.
            send_now(ctx, id, self.boot, conn, Payload::Frame(frame));
            arm(ctx, id, &self.params, conn);
            return Ok(());
        }
        conn.queued.push_back(Payload::Frame(frame));
        if conn.queued.len() > self.params.send_buffer as usize {
            self.break_conn(ctx, id, BreakReason::SendBufferFull);
            return Err(SendError::Broken(BreakReason::SendBufferFull));
        }
        pump(ctx, id, &self.params, self.boot, conn);
        Ok(())
    }

    /// Closes `conn` after every frame queued on it: the peer gets them, then
    /// `Event::Closed`. Nothing more is reported here.
    pub fn close<H: Host<F>>(&mut self, ctx: &mut Ctx<'_, H>, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.state == State::Closing {
            return;
        }
        conn.state = State::Closing;
        conn.queued.push_back(Payload::Fin);
        self.pump(ctx, id);
    }

    /// Drops `conn` at once and resets it at the peer (which is told `Broken`).
    pub fn abort<H: Host<F>>(&mut self, ctx: &mut Ctx<'_, H>, id: ConnId) {
        if let Some(conn) = self.conns.remove(&id) {
            self.reset(ctx, id, conn.peer_boot);
            ctx.annotate("conn.state", format!("{id} aborted"));
            self.cancel_timer(ctx, &conn);
        }
    }

    fn cancel_timer<H: Host<F>>(&self, ctx: &mut Ctx<'_, H>, conn: &Conn<F>) {
        if let Some((timer, _)) = conn.timer {
            ctx.cancel_timer(timer);
        }
    }

    /// Sends what the window and the state allow, then arms the timer.
    fn pump<H: Host<F>>(&mut self, ctx: &mut Ctx<'_, H>, id: ConnId) {
        let (params, boot) = (self.params, self.boot);
        let conn = self.conns.get_mut(&id).expect("pumped connections exist");
        pump(ctx, id, &params, boot, conn);
    }

    /// Arms the connection's one timer at its earliest deadline.
    fn arm<H: Host<F>>(&mut self, ctx: &mut Ctx<'_, H>, id: ConnId) {
        let params = self.params;
        if let Some(conn) = self.conns.get_mut(&id) {
            arm(ctx, id, &params, conn);
        }
    }

    /// The connection's timer came due: acks owed, retransmissions, keepalive, breaks.
    pub fn on_timer<H: Host<F>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        timer: TimerId,
        value: Timer<F>,
    ) -> Events<F> {
        let id = value.conn;
        let now = ctx.monotonic_ns();
        let params = self.params;
        let boot = self.boot;
        let Some(conn) = self.conns.get_mut(&id) else {
            return Events::default();
        };
        if conn.timer.map(|(armed, _)| armed) != Some(timer) {
            return Events::default(); // Replaced by an earlier one, which already ran.
        }
        conn.timer = None;
        if let Some(since) = conn.waiting_since_ns() {
            if now.saturating_sub(since) >= params.timeout_ns {
                if conn.state == State::Closing {
                    // We closed it: give up quietly, as close promised.
                    let conn = self.conns.remove(&id).expect("present");
                    self.reset(ctx, id, conn.peer_boot);
                    ctx.annotate("conn.state", format!("{id} closed (peer silent)"));
                    return Events::default();
                }
                return self.break_conn(ctx, id, BreakReason::Timeout).into();
            }
        }
        let idle = conn.state == State::Open && conn.in_flight.is_empty();
        if idle
            && params.keepalive_ns > 0
            && now.saturating_sub(conn.last_heard_ns) >= params.timeout_ns
        {
            return self.break_conn(ctx, id, BreakReason::Timeout).into();
        }
        let route = route(id, boot, conn.peer_boot);
        if conn.retransmit_due_ns.is_some_and(|due| due <= now) {
            if !conn.retransmitting {
                conn.retransmitting = true;
                ctx.annotate("conn.state", format!("{id} retransmitting"));
            }
            retransmit(ctx, id, boot, conn);
            conn.rto_ns = (conn.rto_ns * 2).min(params.rto_max_ns);
            conn.retransmit_due_ns = Some(now + conn.rto_ns);
        }
        if conn
            .ack_owed_since
            .is_some_and(|since| since + params.delayed_ack_ns <= now)
        {
            ctx.send(
                id.peer,
                Segment::<F>::Ack {
                    route,
                    ack: conn.recv_next,
                },
            );
            conn.ack_owed_since = None;
        }
        if idle && params.keepalive_ns > 0 && conn.probe_due_ns(params.keepalive_ns) <= now {
            if conn.last_probe_ns > conn.last_heard_ns {
                conn.probe_interval_ns = (conn.probe_interval_ns * 2).min(params.rto_max_ns);
            }
            ctx.send(
                id.peer,
                Segment::<F>::Probe {
                    route,
                    ack: conn.recv_next,
                },
            );
            conn.last_probe_ns = now;
        }
        self.arm(ctx, id);
        Events::default()
    }

    /// Removes `id`, resets it at the peer, and reports the break.
    fn break_conn<H: Host<F>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        id: ConnId,
        reason: BreakReason,
    ) -> Event<F> {
        let conn = self.conns.remove(&id).expect("a broken connection existed");
        self.cancel_timer(ctx, &conn);
        if reason != BreakReason::Reset && reason != BreakReason::PeerRestarted {
            self.reset(ctx, id, conn.peer_boot);
        }
        ctx.annotate("conn.state", format!("{id} broken: {reason:?}"));
        Event::Broken { conn: id, reason }
    }

    fn reset<H: Host<F>>(&self, ctx: &mut Ctx<'_, H>, id: ConnId, peer_boot: Boot) {
        ctx.send(
            id.peer,
            Segment::<F>::Rst {
                route: route(id, self.boot, peer_boot),
            },
        );
    }

    /// Takes `msg` if it is one of this endpoint's segments (its events come back), or
    /// hands it back for the host's other parts.
    pub fn take_message<H: Host<F>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        msg: H::Msg,
    ) -> Result<Events<F>, H::Msg> {
        let segment = Wraps::<Segment<F>>::into_part(msg)?;
        Ok(self.on_segment(ctx, from, segment))
    }

    /// Takes `timer` if it is one of this endpoint's (its events come back), or hands it
    /// back for the host's other parts.
    pub fn take_timer<H: Host<F>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        id: TimerId,
        timer: H::Timer,
    ) -> Result<Events<F>, H::Timer> {
        let timer = Wraps::<Timer<F>>::into_part(timer)?;
        Ok(self.on_timer(ctx, id, timer))
    }

    /// A segment from `from`.
    pub fn on_segment<H: Host<F>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        segment: Segment<F>,
    ) -> Events<F> {
        let mut events = Events::default();
        match segment {
            Segment::Syn { number, boot } => self.on_syn(ctx, from, number, boot, &mut events),
            Segment::SynAck {
                number,
                boot,
                to_boot,
            } => {
                if to_boot == self.boot && self.learn_boot(ctx, from, boot, &mut events) {
                    let id = ConnId {
                        peer: from,
                        mine: true,
                        number,
                    };
                    self.answered(ctx, id, boot, &mut events);
                }
            }
            Segment::Data {
                route,
                seq,
                ack,
                frame,
            } => self.on_routed(
                ctx,
                from,
                route,
                Some(ack),
                Some((seq, Payload::Frame(frame))),
                &mut events,
            ),
            Segment::Fin { route, seq, ack } => self.on_routed(
                ctx,
                from,
                route,
                Some(ack),
                Some((seq, Payload::Fin)),
                &mut events,
            ),
            Segment::Ack { route, ack } => {
                self.on_routed(ctx, from, route, Some(ack), None, &mut events)
            }
            Segment::Probe { route, ack } => {
                self.on_routed(ctx, from, route, Some(ack), None, &mut events);
                if let Some(conn) = self.conns.get_mut(&local(from, route)) {
                    // A probe is answered at once: its sender is counting the silence.
                    ctx.send(
                        from,
                        Segment::<F>::Ack {
                            route: route_back(route, self.boot),
                            ack: conn.recv_next,
                        },
                    );
                    conn.ack_owed_since = None;
                }
            }
            Segment::Rst { route } => self.on_rst(ctx, from, route, &mut events),
        }
        events
    }

    /// Whether `boot` is `peer`'s current life; a new one breaks the connections of the
    /// old life. False for a past life's late segment.
    fn learn_boot<H: Host<F>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        peer: NodeId,
        boot: Boot,
        events: &mut Events<F>,
    ) -> bool {
        let known = self.peers.entry(peer).or_default();
        if known.current == boot {
            return true;
        }
        if known.dead.contains(&boot) {
            return false;
        }
        let old = known.current;
        if old != 0 {
            known.dead.push_back(old);
            if known.dead.len() > DEAD_BOOTS_MAX {
                known.dead.pop_front();
            }
        }
        known.current = boot;
        if old == 0 {
            return true;
        }
        let dead: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(id, conn)| id.peer == peer && conn.peer_boot == old)
            .map(|(id, _)| *id)
            .collect();
        for id in dead {
            events.push(self.break_conn(ctx, id, BreakReason::PeerRestarted));
        }
        true
    }

    fn on_syn<H: Host<F>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        number: u32,
        boot: Boot,
        events: &mut Events<F>,
    ) {
        if !self.learn_boot(ctx, from, boot, events) {
            return; // A past life's Syn, late.
        }
        let id = ConnId {
            peer: from,
            mine: false,
            number,
        };
        let answer = Segment::<F>::SynAck {
            number,
            boot: self.boot,
            to_boot: boot,
        };
        if self.conns.contains_key(&id) {
            ctx.send(from, answer); // Our SynAck was lost or is late: answer again.
            return;
        }
        if self.conns.len() >= CONNS_MAX {
            let refused = Route {
                opener: false,
                number,
                from_boot: self.boot,
                to_boot: boot,
            };
            ctx.send(from, Segment::<F>::Rst { route: refused });
            return;
        }
        let now = ctx.monotonic_ns();
        self.conns
            .insert(id, Conn::new(State::Open, boot, now, &self.params));
        ctx.send(from, answer);
        ctx.annotate("conn.state", format!("{id} open"));
        events.push(Event::Accepted { conn: id });
        self.arm(ctx, id);
    }

    /// The peer answered our `Syn` (with a `SynAck`, or with data that overtook it).
    fn answered<H: Host<F>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        id: ConnId,
        peer_boot: Boot,
        events: &mut Events<F>,
    ) {
        let now = ctx.monotonic_ns();
        let Some(conn) = self.conns.get_mut(&id) else {
            if id.mine {
                // We gave up on this connection; the peer must drop it too.
                self.reset(ctx, id, peer_boot);
            }
            return;
        };
        if conn.state != State::Opening {
            return; // A duplicate answer.
        }
        conn.state = State::Open;
        conn.peer_boot = peer_boot;
        conn.heard(now, &self.params);
        conn.retransmit_due_ns = None;
        conn.retransmitting = false;
        if conn
            .queued
            .back()
            .is_some_and(|p| matches!(p, Payload::Fin))
        {
            conn.state = State::Closing;
        }
        ctx.annotate("conn.state", format!("{id} open"));
        events.push(Event::Opened { conn: id });
        self.pump(ctx, id);
    }

    /// Data, Fin, Ack and Probe: everything that names an established connection.
    fn on_routed<H: Host<F>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        route: Route,
        ack: Option<Seq>,
        data: Option<(Seq, Payload<F>)>,
        events: &mut Events<F>,
    ) {
        if route.to_boot != self.boot {
            // For a past life of ours: tell the sender that connection is gone, unless
            // the segment itself comes from a past life of the sender.
            if !self.is_dead_boot(from, route.from_boot) {
                ctx.send(
                    from,
                    Segment::<F>::Rst {
                        route: route_back(route, self.boot),
                    },
                );
            }
            return;
        }
        let id = local(from, route);
        let (params, boot) = (self.params, self.boot);
        // The fast path: a known, open connection of the sender's current life (one of a
        // past life would have been broken when the new life first spoke).
        if let Some(conn) = self.conns.get_mut(&id) {
            if conn.state != State::Opening && conn.peer_boot == route.from_boot {
                if process(ctx, id, &params, boot, conn, route, ack, data, events) {
                    self.forget(ctx, id);
                }
                return;
            }
        }
        if !self.learn_boot(ctx, from, route.from_boot, events) {
            return; // A past life of the sender speaks, late.
        }
        let opening = self
            .conns
            .get(&id)
            .is_some_and(|conn| conn.state == State::Opening);
        if opening {
            self.answered(ctx, id, route.from_boot, events);
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            ctx.send(
                from,
                Segment::<F>::Rst {
                    route: route_back(route, boot),
                },
            );
            return;
        };
        debug_assert_eq!(
            conn.peer_boot, route.from_boot,
            "learn_boot broke past lives"
        );
        if process(ctx, id, &params, boot, conn, route, ack, data, events) {
            self.forget(ctx, id);
        }
    }

    /// Removes a connection that closed (by us or by the peer).
    fn forget<H: Host<F>>(&mut self, ctx: &mut Ctx<'_, H>, id: ConnId) {
        let conn = self.conns.remove(&id).expect("present");
        self.cancel_timer(ctx, &conn);
    }

    fn is_dead_boot(&self, peer: NodeId, boot: Boot) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|known| known.dead.contains(&boot))
    }

    fn on_rst<H: Host<F>>(
        &mut self,
        ctx: &mut Ctx<'_, H>,
        from: NodeId,
        route: Route,
        events: &mut Events<F>,
    ) {
        if route.to_boot != self.boot {
            return; // For a past life of ours.
        }
        // A reset from a new life of the peer breaks the old life's connections (as
        // restarted); one from a past life is late and ignored.
        if !self.learn_boot(ctx, from, route.from_boot, events) {
            return;
        }
        let id = local(from, route);
        if self.conns.contains_key(&id) {
            events.push(self.break_conn(ctx, id, BreakReason::Reset));
        }
    }

    /// One line per connection, for inspectors.
    pub fn describe(&self) -> String {
        let lines: Vec<String> = self
            .conns
            .iter()
            .map(|(id, conn)| {
                format!(
                    "{id}: {} (in flight {}, queued {}, rto {})",
                    conn.name(),
                    conn.in_flight.len(),
                    conn.queued.len(),
                    crate::units::format_duration(conn.rto_ns)
                )
            })
            .collect();
        lines.join("\n")
    }
}
