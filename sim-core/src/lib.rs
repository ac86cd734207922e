//! sim-core: faultline's deterministic engine and everything that runs inside it.
//!
//! A run is a pure function of (scenario, seed): virtual time, a seeded network, seeded
//! disks and a seeded nemesis drive sans-IO protocol nodes. This crate owns no I/O, no
//! threads and no wall clock, so it builds for `wasm32-unknown-unknown` and gives the same
//! trace hash there as natively. See ARCHITECTURE.md at the repository root for the map.

pub mod bugs;
pub mod check;
pub mod disk;
pub mod engine;
pub mod fault;
pub mod hash;
pub mod net;
pub mod node;
pub mod proto;
pub mod scenario;
pub mod trace;

pub use engine::{Limits, Run, RunReport, Sim, SimConfig};
pub use node::{Ctx, Node, NodeId, Proto, TimerId};
