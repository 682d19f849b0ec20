//! weir's integration tests, one binary with a module per topic.

mod support;

mod abi_forms;
mod cli;
mod config;
mod limits;
mod pipeline;
mod sandbox;
