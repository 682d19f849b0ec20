//! weir's integration tests, one binary with a module per topic.

mod support;

mod abi_forms;
mod admin;
mod authoring;
mod budget;
mod checkpoint;
mod cli;
mod config;
mod conformance;
mod go;
mod js;
mod kafka;
mod limits;
mod nats;
mod pipeline;
mod python;
mod python_limits;
mod recycle;
mod reload_cli;
mod sandbox;
mod signing;
mod state;
mod swap;
