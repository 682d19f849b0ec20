//! Pipeline files: TOML → a typed, validated [`Pipeline`], with every
//! problem reported at once (file, key path, hint) before anything starts.

mod pipeline;
mod problems;
pub mod units;

pub use pipeline::{
    default_threads, BatchConfig, Pipeline, SinkConfig, SourceConfig, StageConfig, WorkersConfig,
};
pub use problems::{ConfigError, Problem};
