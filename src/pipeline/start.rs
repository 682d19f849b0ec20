//! Starting a pipeline: one [`start`] for both delivery modes, and the
//! [`RunHandle`] that reaches the run from outside (its counters, its
//! reload manager, a way to stop it and its report).

use super::counters::{RunCounters, RunReport};
use super::delivery::{at_least_once, exactly_once, Faults};
use super::endpoints::Endpoints;
use super::error::PipelineError;
use super::reload::{Link, Reloader};
use super::stage::{prepare_stages, StageSpec};
use crate::config::{Delivery, Pipeline};
use crate::runtime::Runtime;
use std::sync::Arc;
use tokio::sync::watch;

/// What a delivery mode runs with.
pub(super) struct Launch {
    /// The shared runtime.
    pub runtime: Arc<Runtime>,
    /// The pipeline's configuration.
    pub pipeline: Pipeline,
    /// The reload manager's side for worker pools: the stages every pool
    /// starts with, and where it is attached.
    pub link: Link,
    /// Becomes true when the run is asked to stop.
    pub stop: watch::Receiver<bool>,
    /// The live counters.
    pub counters: Arc<RunCounters>,
}

/// How to start a pipeline, beyond what its file says.
#[derive(Default)]
pub struct StartOptions {
    /// Stages already prepared with [`prepare_stages`]; `None` prepares
    /// them (off the async threads).
    pub stages: Option<Vec<Arc<StageSpec>>>,
    /// Where to read and write instead of what the file names (in-memory
    /// endpoints, a replay). At-least-once mode only: exactly-once mode
    /// builds its own transactional consumer and producer.
    pub endpoints: Option<Endpoints>,
    /// Failures to inject into exactly-once mode, for tests of its
    /// recovery.
    pub faults: Faults,
}

/// Asks a run to stop; cloned freely. When the last one (the
/// [`RunHandle`]'s included) is dropped, the run stops too.
#[derive(Clone, Debug)]
pub struct Stopper(Arc<watch::Sender<bool>>);

impl Stopper {
    /// Asks the run to stop: the batches in flight are finished and
    /// delivered first.
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

/// A running pipeline.
pub struct RunHandle {
    name: String,
    counters: Arc<RunCounters>,
    reloader: Reloader,
    stopper: Stopper,
    task: tokio::task::JoinHandle<Result<RunReport, PipelineError>>,
}

impl RunHandle {
    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its live counters.
    pub fn counters(&self) -> &Arc<RunCounters> {
        &self.counters
    }

    /// Its reload manager, from the moment it started: requests wait
    /// until the worker pool runs.
    pub fn reloader(&self) -> &Reloader {
        &self.reloader
    }

    /// Asks the run to stop: the batches in flight are finished and
    /// delivered first. [`RunHandle::finished`] then returns.
    pub fn stop(&self) {
        self.stopper.stop();
    }

    /// A [`Stopper`] for another task (a signal handler).
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Whether the run ended (its source ended, it was stopped, or it
    /// failed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the run to end, and reports what it did.
    ///
    /// # Errors
    /// The [`PipelineError`] that ended the run.
    pub async fn finished(self) -> Result<RunReport, PipelineError> {
        let RunHandle { task, stopper, .. } = self;
        let r = task
            .await
            .unwrap_or_else(|e| Err(PipelineError::Internal(format!("the run failed: {e}"))));
        drop(stopper);
        r
    }

    /// [`RunHandle::stop`], then [`RunHandle::finished`].
    ///
    /// # Errors
    /// As [`RunHandle::finished`].
    pub async fn stop_and_wait(self) -> Result<RunReport, PipelineError> {
        self.stop();
        self.finished().await
    }
}

/// Starts `pipeline` in the delivery mode its file names: prepares its
/// stages (unless `options` holds them), connects its endpoints, starts its
/// reload manager, and runs until the source ends or the run is stopped.
/// Must be called within a tokio runtime.
///
/// # Errors
/// A [`PipelineError`] when a stage cannot be loaded or started, or an
/// endpoint cannot be built. Failures while running come from
/// [`RunHandle::finished`].
pub async fn start(
    runtime: Arc<Runtime>,
    pipeline: &Pipeline,
    options: StartOptions,
) -> Result<RunHandle, PipelineError> {
    let StartOptions {
        stages,
        endpoints,
        faults,
    } = options;
    let stages = match stages {
        Some(s) => s,
        // A Go module's start-up calls WASI, which must not run on an
        // async thread.
        None => {
            let (rt, p) = (runtime.clone(), pipeline.clone());
            tokio::task::spawn_blocking(move || prepare_stages(&rt, &p))
                .await
                .map_err(|e| PipelineError::Internal(format!("preparing the stages: {e}")))??
        }
    };
    let endpoints = match (pipeline.delivery, endpoints) {
        (Delivery::AtLeastOnce, Some(e)) => Some(e),
        (Delivery::AtLeastOnce, None) => Some(Endpoints::build(pipeline).await?),
        (Delivery::ExactlyOnce, None) => None,
        (Delivery::ExactlyOnce, Some(_)) => {
            return Err(PipelineError::Internal(
                "exactly-once mode builds its own Kafka endpoints".into(),
            ))
        }
    };
    let (reloader, link) = super::reload::spawn(runtime.clone(), pipeline, &stages);
    let (stop_tx, stop) = watch::channel(false);
    let counters = Arc::new(RunCounters::default());
    let launch = Launch {
        runtime,
        pipeline: pipeline.clone(),
        link,
        stop,
        counters: counters.clone(),
    };
    let task = tokio::spawn(async move {
        match endpoints {
            Some(endpoints) => at_least_once::run(&launch, endpoints).await,
            None => exactly_once::run(&launch, faults).await,
        }
    });
    Ok(RunHandle {
        name: pipeline.name.clone(),
        counters,
        reloader,
        stopper: Stopper(Arc::new(stop_tx)),
        task,
    })
}
