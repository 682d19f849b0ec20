//! One way to run a pipeline inside the test process, as `weir run` does:
//! [`weir::pipeline::start`], then [`stop_when`] a condition holds (or
//! [`RunHandle::finished`] for a source that ends by itself).

use super::runtime;
use std::future::Future;
use std::time::Duration;
use weir::config::Pipeline;
use weir::pipeline::{Endpoints, PipelineError, RunHandle, RunReport, StartOptions};
use weir::sink::MemorySink;
use weir::source::Source;

/// Starts `p` on the shared runtime.
///
/// # Panics
/// When it cannot start.
pub async fn start(p: &Pipeline, options: StartOptions) -> RunHandle {
    weir::pipeline::start(runtime(), p, options)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", p.name))
}

/// Start options with these endpoints.
pub fn with_endpoints(endpoints: Endpoints) -> StartOptions {
    StartOptions {
        endpoints: Some(endpoints),
        ..StartOptions::default()
    }
}

/// Endpoints that read `source` and keep what the sink and the
/// dead-letter sink receive in memory.
pub fn memory(source: impl Source + 'static) -> (Endpoints, MemorySink, MemorySink) {
    let (out, dead) = (MemorySink::new(), MemorySink::new());
    let endpoints = Endpoints {
        source: Box::new(source),
        sink: Box::new(out.clone()),
        dead_letter: Box::new(dead.clone()),
    };
    (endpoints, out, dead)
}

/// Waits for `until`, then stops the run gracefully (batches in flight are
/// delivered) and returns its report. A run that ends first returns at
/// once, with its result.
pub async fn stop_when(
    run: RunHandle,
    until: impl Future<Output = ()>,
) -> Result<RunReport, PipelineError> {
    tokio::pin!(until);
    let ended_first = loop {
        tokio::select! {
            () = &mut until => break false,
            () = tokio::time::sleep(Duration::from_millis(20)) => {
                if run.is_finished() {
                    break true;
                }
            }
        }
    };
    if ended_first {
        run.finished().await
    } else {
        run.stop_and_wait().await
    }
}

/// [`stop_when`] with a blocking condition (one that polls a broker with a
/// synchronous client), run off the async threads.
pub async fn stop_when_done(
    run: RunHandle,
    done: impl FnOnce() + Send + 'static,
) -> Result<RunReport, PipelineError> {
    stop_when(run, async {
        tokio::task::spawn_blocking(done)
            .await
            .expect("the condition did not panic")
    })
    .await
}
