//! How segments move on an established connection: sending what the window lets out,
//! retransmission with backoff and fast retransmit, acknowledgements (with the round-trip
//! estimate), receiving in order, and the routing of segments to connections. Free
//! functions over the endpoint's `Conn`s; the `Endpoint` in `mod.rs` owns the table and
//! the connection lifecycle (open, accept, close, break).

use std::fmt::Debug;

use serde::Serialize;

use super::*;

/// What a routed segment does to an established connection: its ack, its payload, the
/// acks it calls for, then whatever the window now lets out. True when the connection
/// is finished (the peer's `Fin` arrived, or ours was acknowledged) and must go.
#[allow(clippy::too_many_arguments)]
pub(super) fn process<F: Clone + Debug + Serialize + 'static, H: Host<F>>(
    ctx: &mut Ctx<'_, H>,
    id: ConnId,
    params: &ConnParams,
    boot: Boot,
    conn: &mut Conn<F>,
    route: Route,
    ack: Option<Seq>,
    data: Option<(Seq, Payload<F>)>,
    events: &mut Events<F>,
) -> bool {
    let now = ctx.monotonic_ns();
    conn.heard(now, params);
    if let Some(ack) = ack {
        let progressed = on_ack(conn, ack, now, params);
        if !progressed && data.is_none() {
            on_dup_ack(ctx, id, boot, conn);
        }
    }
    let mut closed = false;
    if let Some((seq, payload)) = data {
        match receive(conn, id, seq, payload, params.window, events) {
            Received::InOrder => {
                conn.ack_owed_since.get_or_insert(now);
            }
            Received::Fin => closed = true,
            Received::Duplicate | Received::AfterGap => {
                // Ack at once: the sender is retransmitting, or a segment is missing.
                ctx.send(
                    id.peer,
                    Segment::<F>::Ack {
                        route: route_back(route, boot),
                        ack: conn.recv_next,
                    },
                );
                conn.ack_owed_since = None;
            }
        }
    }
    if closed {
        // The peer's Fin needs its ack even though we forget the connection.
        ctx.send(
            id.peer,
            Segment::<F>::Ack {
                route: route_back(route, boot),
                ack: conn.recv_next,
            },
        );
        ctx.annotate("conn.state", format!("{id} closed by peer"));
        return true;
    }
    if conn.state == State::Closing && conn.in_flight.is_empty() && conn.queued.is_empty() {
        ctx.annotate("conn.state", format!("{id} closed"));
        return true;
    }
    pump(ctx, id, params, boot, conn);
    false
}

/// Sends what the window and the state allow, then arms the timer.
pub(super) fn pump<F: Clone + Debug + Serialize + 'static, H: Host<F>>(
    ctx: &mut Ctx<'_, H>,
    id: ConnId,
    params: &ConnParams,
    boot: Boot,
    conn: &mut Conn<F>,
) {
    if conn.state == State::Opening {
        return;
    }
    let window = params.window as usize;
    while !conn.queued.is_empty() && conn.in_flight.len() < window {
        let Some(payload) = conn.queued.pop_front() else {
            break;
        };
        send_now(ctx, id, boot, conn, payload);
    }
    arm(ctx, id, params, conn);
}

/// Puts one payload on the wire with the next sequence number, into the window.
pub(super) fn send_now<F: Clone + Debug + Serialize + 'static, H: Host<F>>(
    ctx: &mut Ctx<'_, H>,
    id: ConnId,
    boot: Boot,
    conn: &mut Conn<F>,
    payload: Payload<F>,
) {
    debug_assert_ne!(conn.state, State::Opening);
    let now = ctx.monotonic_ns();
    let seq = conn.send_next;
    conn.send_next = seq
        .checked_add(1)
        .expect("fewer frames than a run has events");
    let route = route(id, boot, conn.peer_boot);
    transmit(ctx, id.peer, route, seq, conn.recv_next, &payload);
    conn.ack_owed_since = None;
    conn.in_flight.push_back(InFlight {
        seq,
        payload,
        first_sent_ns: now,
        retransmitted: false,
    });
    if conn.retransmit_due_ns.is_none() {
        conn.retransmit_due_ns = Some(now + conn.rto_ns);
    }
}

/// Arms the connection's one timer at its earliest deadline, unless an earlier one is
/// already armed (it re-arms when it fires): a busy connection sets a timer once per
/// retransmission timeout, not once per segment.
pub(super) fn arm<F: Clone + Debug + Serialize + 'static, H: Host<F>>(
    ctx: &mut Ctx<'_, H>,
    id: ConnId,
    params: &ConnParams,
    conn: &mut Conn<F>,
) {
    let mut due = conn.retransmit_due_ns.unwrap_or(u64::MAX);
    if let Some(since) = conn.ack_owed_since {
        due = due.min(since + params.delayed_ack_ns);
    }
    let idle = conn.state == State::Open && conn.in_flight.is_empty();
    if idle && params.keepalive_ns > 0 {
        due = due.min(conn.probe_due_ns(params.keepalive_ns));
    }
    if due == u64::MAX {
        return;
    }
    match conn.timer {
        Some((_, armed)) if armed <= due => {}
        armed => {
            if let Some((timer, _)) = armed {
                ctx.cancel_timer(timer);
            }
            let delay = due.saturating_sub(ctx.monotonic_ns());
            let timer = ctx.set_timer(delay, Timer::<F>::new(id));
            conn.timer = Some((timer, due));
        }
    }
}

/// The connection a routed segment names, from the receiver's side.
pub(super) fn local(from: NodeId, route: Route) -> ConnId {
    ConnId {
        peer: from,
        mine: !route.opener,
        number: route.number,
    }
}

/// The route of a segment we send on `id`.
pub(super) fn route(id: ConnId, boot: Boot, peer_boot: Boot) -> Route {
    Route {
        opener: id.mine,
        number: id.number,
        from_boot: boot,
        to_boot: peer_boot,
    }
}

/// The route back to the sender of a segment that came with `route`.
pub(super) fn route_back(route: Route, boot: Boot) -> Route {
    Route {
        opener: !route.opener,
        number: route.number,
        from_boot: boot,
        to_boot: route.from_boot,
    }
}

fn transmit<F: Clone + Debug + Serialize + 'static, H: Host<F>>(
    ctx: &mut Ctx<'_, H>,
    peer: NodeId,
    route: Route,
    seq: Seq,
    ack: Seq,
    payload: &Payload<F>,
) {
    let segment = match payload {
        Payload::Frame(frame) => Segment::Data {
            route,
            seq,
            ack,
            frame: frame.clone(),
        },
        Payload::Fin => Segment::Fin { route, seq, ack },
    };
    ctx.send(peer, segment);
}

/// Go-back-N: everything in flight again (or the `Syn`, when still opening).
pub(super) fn retransmit<F: Clone + Debug + Serialize + 'static, H: Host<F>>(
    ctx: &mut Ctx<'_, H>,
    id: ConnId,
    boot: Boot,
    conn: &mut Conn<F>,
) {
    if conn.state == State::Opening {
        ctx.send(
            id.peer,
            Segment::<F>::Syn {
                number: id.number,
                boot,
            },
        );
        return;
    }
    let route = route(id, boot, conn.peer_boot);
    for segment in conn.in_flight.iter_mut() {
        segment.retransmitted = true;
        transmit(
            ctx,
            id.peer,
            route,
            segment.seq,
            conn.recv_next,
            &segment.payload,
        );
    }
    conn.ack_owed_since = None;
}

/// Fast retransmit (TCP's, with RFC 5827's early retransmit for small flights): acks
/// that repeat themselves while segments are in flight say the peer hears us but misses
/// the oldest one, so it goes again now rather than when the backed-off timer fires.
/// After a short cut this is what resumes the flow: the first segment through draws
/// an ack at once.
fn on_dup_ack<F: Clone + Debug + Serialize + 'static, H: Host<F>>(
    ctx: &mut Ctx<'_, H>,
    id: ConnId,
    boot: Boot,
    conn: &mut Conn<F>,
) {
    let in_flight = conn.in_flight.len() as u32;
    if in_flight == 0 {
        conn.dup_acks = 0;
        return;
    }
    conn.dup_acks += 1;
    if conn.dup_acks != DUP_ACKS_MAX.min(in_flight.saturating_sub(1)).max(1) {
        return;
    }
    let route = route(id, boot, conn.peer_boot);
    let ack = conn.recv_next;
    let front = conn.in_flight.front_mut().expect("in flight");
    front.retransmitted = true;
    transmit(ctx, id.peer, route, front.seq, ack, &front.payload);
    conn.ack_owed_since = None;
}

/// Repeated acks that trigger a fast retransmit, as TCP counts them.
const DUP_ACKS_MAX: u32 = 3;

/// A cumulative ack: drops what it covers, samples the round trip (Karn: never a
/// retransmitted segment's), and restarts the retransmission clock. True when it
/// acknowledged something new.
fn on_ack<F>(conn: &mut Conn<F>, ack: Seq, now: u64, params: &crate::conn::ConnParams) -> bool {
    let mut progressed = false;
    let mut sample = None;
    while let Some(front) = conn.in_flight.front() {
        if front.seq >= ack {
            break;
        }
        if !front.retransmitted {
            sample = Some(now.saturating_sub(front.first_sent_ns));
        }
        conn.in_flight.pop_front();
        progressed = true;
    }
    if !progressed {
        return false;
    }
    conn.dup_acks = 0;
    if let Some(rtt) = sample {
        // Jacobson/Karels, in integers: rttvar = 3/4 rttvar + 1/4 |srtt - rtt|,
        // srtt = 7/8 srtt + 1/8 rtt, rto = srtt + 4 rttvar.
        match conn.srtt_ns {
            None => {
                conn.srtt_ns = Some(rtt);
                conn.rttvar_ns = rtt / 2;
            }
            Some(srtt) => {
                conn.rttvar_ns = (3 * conn.rttvar_ns + srtt.abs_diff(rtt)) / 4;
                conn.srtt_ns = Some((7 * srtt + rtt) / 8);
            }
        }
    }
    let srtt = conn.srtt_ns.unwrap_or(params.rto_min_ns);
    conn.rto_ns = (srtt + 4 * conn.rttvar_ns).clamp(params.rto_min_ns, params.rto_max_ns);
    conn.retransmitting = false;
    conn.retransmit_due_ns = (!conn.in_flight.is_empty()).then_some(now + conn.rto_ns);
    true
}

/// What became of a sequenced payload.
enum Received {
    /// Delivered (with whatever it unblocked).
    InOrder,
    /// Already delivered, or beyond any window the sender may use: dropped.
    Duplicate,
    /// Buffered behind a missing segment.
    AfterGap,
    /// The peer's `Fin` was reached: nothing more comes.
    Fin,
}

/// A sequenced payload: delivered in order, buffered ahead of a gap, dropped when old.
fn receive<F>(
    conn: &mut Conn<F>,
    id: ConnId,
    seq: Seq,
    payload: Payload<F>,
    window: u32,
    events: &mut Events<F>,
) -> Received {
    if seq < conn.recv_next || seq as u64 >= conn.recv_next as u64 + window as u64 {
        return Received::Duplicate;
    }
    if seq == conn.recv_next && conn.out_of_order.is_empty() {
        // The common case: the next segment, nothing buffered behind a gap.
        conn.recv_next += 1;
        return match payload {
            Payload::Frame(frame) => {
                events.push(Event::Frame { conn: id, frame });
                Received::InOrder
            }
            Payload::Fin => {
                events.push(Event::Closed { conn: id });
                Received::Fin
            }
        };
    }
    debug_assert!(conn.out_of_order.len() < window as usize);
    conn.out_of_order.insert(seq, payload);
    if seq != conn.recv_next {
        return Received::AfterGap;
    }
    while let Some(payload) = conn.out_of_order.remove(&conn.recv_next) {
        conn.recv_next += 1;
        match payload {
            Payload::Frame(frame) => events.push(Event::Frame { conn: id, frame }),
            Payload::Fin => {
                events.push(Event::Closed { conn: id });
                return Received::Fin;
            }
        }
    }
    Received::InOrder
}
