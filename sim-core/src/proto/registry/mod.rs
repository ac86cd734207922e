//! The ZooKeeper-style registry. So far: `tree`, the znode tree every registry server
//! applies committed transactions to, usable on its own (DESIGN.md's library contract).
//! The replicated service (ZAB, sessions, watches, the client and recipes) builds on it.

pub mod tree;
