//! Helpers the integration tests share (each test file is its own crate and includes
//! this module; not every file uses every helper).

pub mod broker;
