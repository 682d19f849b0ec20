//! Where a pipeline reads and writes: its source, sink and dead-letter
//! sink.

use super::error::PipelineError;
use crate::config::Pipeline;
use crate::sink::Sink;
use crate::source::Source;

/// Where a pipeline reads and writes.
pub struct Endpoints {
    /// The source.
    pub source: Box<dyn Source>,
    /// The sink.
    pub sink: Box<dyn Sink>,
    /// The dead-letter sink.
    pub dead_letter: Box<dyn Sink>,
}

impl Endpoints {
    /// The source, sink and dead-letter sink `pipeline` names, connected.
    ///
    /// # Errors
    /// The first of them that cannot be built or reach its broker.
    pub async fn build(pipeline: &Pipeline) -> Result<Endpoints, PipelineError> {
        Ok(Endpoints {
            source: crate::source::build(&pipeline.source).await?,
            sink: crate::sink::build(&pipeline.sink)
                .await
                .map_err(PipelineError::Sink)?,
            dead_letter: crate::sink::build(&pipeline.dead_letter)
                .await
                .map_err(PipelineError::DeadLetter)?,
        })
    }
}
