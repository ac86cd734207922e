//! The identities every layer of a run shares: nodes, messages and timers. Plain integers
//! of fixed width (never `usize`), so they hash and serialise the same on every target.
//! This module holds no behaviour.

/// A node's index in its run: 0..node_count, in the order the scenario lists them.
pub type NodeId = u32;
/// A timer's identity, unique within one run.
pub type TimerId = u64;
/// A message's identity, unique within one run: the send and every delivery or drop of
/// it carry the same id.
pub type MsgId = u64;
