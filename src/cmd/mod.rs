//! One file per command, each with its `Args` and a `run` returning the exit code.

pub mod bench;
pub mod bugs;
pub mod check;
pub mod groups;
pub mod k8s;
pub mod list;
pub mod log;
pub mod marks;
pub mod merge;
pub mod replay;
pub mod report;
pub mod run;
pub mod shrink;
pub mod swarm;
