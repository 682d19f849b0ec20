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
mod kafka_checkpoint;
mod kafka_eos_group;
mod kafka_exactly_once;
mod kafka_group;
mod kafka_outage;
mod kafka_stall;
mod limits;
mod nats;
mod nats_consumer;
mod nats_in_progress;
mod nats_recovery;
mod nats_stall;
mod pipeline;
mod python;
mod python_limits;
mod recycle;
mod reload_cli;
mod sandbox;
mod signing;
mod stdout_worker;
mod swap;
