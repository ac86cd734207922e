//! sim-core: faultline's deterministic engine and everything that runs inside it.
//!
//! A run is a pure function of (scenario, seed): virtual time, a seeded network, seeded
//! disks and a seeded nemesis drive sans-IO protocol nodes. This crate owns no I/O, no
//! threads and no wall clock, so it builds for `wasm32-unknown-unknown` and gives the same
//! trace hash there as natively. See ARCHITECTURE.md at the repository root for the map.

pub mod bugs;
pub mod canon;
pub mod catalogue;
pub mod check;
pub mod chunked;
pub mod conn;
pub mod disk;
pub mod engine;
pub mod export;
pub mod fault;
pub mod hash;
pub mod ids;
pub mod invariant;
pub mod net;
pub mod node;
pub mod params;
pub mod proto;
pub mod rng;
pub mod scenario;
pub mod shrink;
pub mod testing;
pub mod trace;
pub mod units;

pub use engine::{Limits, Run, RunReport, Sim, SimConfig};
pub use invariant::Invariant;
pub use node::{Ctx, MsgId, Node, NodeId, Proto, TimerId, Wraps};
