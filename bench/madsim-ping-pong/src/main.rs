//! Speed reference for faultline: madsim 0.2.34's simulated-network message
//! rate in a two-node ping-pong with exactly one message in flight.
//!
//! Build with `RUSTFLAGS="--cfg madsim"`; without it madsim is a thin wrapper
//! over real tokio sockets and this measures nothing of interest (the
//! simulator-only APIs used below then fail to compile, on purpose).

use madsim::{net::Endpoint, runtime::Runtime, Config};
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::exit,
    time::Instant,
};

const DEFAULT_MESSAGES: u64 = 1_000_000;
/// Fixed so that every run simulates the same schedule and latencies.
const SEED: u64 = 1;
const PORT: u16 = 7000;
/// Every message uses one tag; madsim's mailbox is keyed by tag.
const TAG: u64 = 0;

fn usage_error(msg: &str) -> ! {
    eprintln!("madsim-ping-pong: {msg}");
    eprintln!("usage: madsim-ping-pong [--messages N]   (N >= 1, default {DEFAULT_MESSAGES})");
    exit(2);
}

fn parse_args() -> u64 {
    let mut messages = DEFAULT_MESSAGES;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--messages" => args
                .next()
                .unwrap_or_else(|| usage_error("--messages needs a value")),
            other => match other.strip_prefix("--messages=") {
                Some(v) => v.to_string(),
                None => usage_error(&format!("unknown argument `{other}`")),
            },
        };
        messages = match value.replace('_', "").parse::<u64>() {
            Ok(n) if n >= 1 => n,
            _ => usage_error(&format!(
                "--messages expects a positive integer, got `{value}`"
            )),
        };
    }
    messages
}

/// One side of the ping-pong. Messages carry their sequence number; the side
/// that receives `seq` sends `seq + 1` unless that would exceed the budget.
/// Each side knows exactly how many messages it will receive, so both loops
/// end on their own and the runtime never sees a task blocked forever.
async fn play(ep: Endpoint, peer: SocketAddr, to_receive: u64, total: u64) {
    let mut buf = [0u8; 8];
    for _ in 0..to_receive {
        let (len, from) = ep.recv_from(TAG, &mut buf).await.expect("recv_from");
        debug_assert_eq!((len, from), (8, peer));
        let next = u64::from_le_bytes(buf) + 1;
        if next < total {
            ep.send_to(peer, TAG, &next.to_le_bytes())
                .await
                .expect("send_to");
        }
    }
}

fn run(total: u64) {
    // Default network config (1-10 ms simulated latency, no loss) and
    // buggify off: the reference is madsim as a user gets it out of the box.
    let rt = Runtime::with_seed_and_config(SEED, Config::default());
    let addr_a = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), PORT);
    let addr_b = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), PORT);
    let node_a = rt.create_node().name("a").ip(addr_a.ip()).build();
    let node_b = rt.create_node().name("b").ip(addr_b.ip()).build();

    rt.block_on(async move {
        // Bind both endpoints before any send: the simulated network is
        // datagram-like and silently drops a message to an unbound port, so
        // a race here would stall the first ping.
        let ep_a = node_a
            .spawn(async move { Endpoint::bind(addr_a).await.expect("bind a") })
            .await
            .expect("bind task a");
        let ep_b = node_b
            .spawn(async move { Endpoint::bind(addr_b).await.expect("bind b") })
            .await
            .expect("bind task b");

        // B receives the even sequence numbers (0, 2, ...), A the odd ones.
        let b = node_b.spawn(play(ep_b, addr_a, total.div_ceil(2), total));
        let a = node_a.spawn(async move {
            // Endpoint::send_to/recv_from is madsim's plain datagram API. The
            // RPC layer (`call`) is built on the same send_to_raw/recv_from_raw
            // path plus a random reply tag and a handler task per request, so
            // it can only be slower for one-message-at-a-time traffic.
            ep_a.send_to(addr_b, TAG, &0u64.to_le_bytes())
                .await
                .expect("first send_to");
            play(ep_a, addr_b, total / 2, total).await;
        });
        a.await.expect("node a task");
        b.await.expect("node b task");
        // Guards the figure itself: the rate is only meaningful if madsim's
        // network really carried N messages, not fewer.
        let sent = madsim::net::NetSim::current().stat().msg_count;
        assert_eq!(sent, total, "simulated network carried {sent} messages");
    });
}

fn main() {
    let messages = parse_args();
    let start = Instant::now();
    run(messages);
    let wall_s = start.elapsed().as_secs_f64();
    let msgs_per_sec = (messages as f64 / wall_s).round() as u64;
    println!("{{\"messages\":{messages},\"wall_s\":{wall_s:.6},\"msgs_per_sec\":{msgs_per_sec}}}");
}
