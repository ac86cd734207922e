//! The protocols that run on the engine. Each talks to the world only through
//! `Node`/`Ctx`, exactly as a user's own protocol would, and never reaches into the
//! engine, the network or the disks' internals. Each is written generic over its host
//! (a `Host` trait per component) and runs in `World`, the host that wraps them all.
//!
//! - `ping_pong`: two kinds of node and one message in flight; the speed benchmark.
//! - `broadcast`: reliable broadcast with acks, retransmission and persistence; the
//!   small protocol that exercises faults, invariants and the bug zoo end to end.
//! - `broker`: a RabbitMQ-style message broker, its client library and workloads.
//! - `registry`: a ZooKeeper-style coordination service (znodes, sessions, watches,
//!   read-only mode), its client library and recipes (lock, service registration).
//! - `zab`: ZooKeeper Atomic Broadcast, the registry's replication.
//! - `txn`: XA two-phase commit (the bank, CP) beside a transactional outbox (the
//!   shop, AP).
//! - `spec`: what a protocol declares for scenarios; `world`: the host of them all.

pub mod broadcast;
pub mod broker;
pub mod ping_pong;
pub mod registry;
pub mod rpc;
pub mod spec;
pub mod txn;
pub mod world;
pub mod zab;
