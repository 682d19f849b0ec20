//! The manager task: one per running pipeline.

use super::background::in_background;
use super::verify::load;
use super::watch::Watcher;
use super::{
    Artifact, Attachment, Board, Deployed, Lineup, Link, Reloader, Request, StageStatus, SwapError,
};
use crate::pipeline::{Control, Incident, PoolControl, StageSpec};
use crate::runtime::{CompiledPlugin, Runtime};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// How often watched plugin files are looked at.
const WATCH_EVERY: Duration = Duration::from_millis(200);

struct Stage {
    current: Arc<StageSpec>,
    previous: Option<Arc<StageSpec>>,
}

struct Manager {
    runtime: Arc<Runtime>,
    pipeline: String,
    trust: Arc<crate::signing::Trust>,
    stages: Vec<Stage>,
    /// The worker pool that runs now; `None` between two (while a run
    /// starts, or starts over).
    control: Option<PoolControl>,
    board: Board,
    lineup: Lineup,
}

/// Starts the reload manager of a pipeline whose stages start as `stages`.
/// Delivery modes attach their worker pools through the [`Link`]; requests
/// wait while no pool is attached. The task ends when every link is
/// dropped.
pub(crate) fn spawn(
    runtime: Arc<Runtime>,
    pipeline: &crate::config::Pipeline,
    stages: &[Arc<StageSpec>],
) -> (Reloader, Link) {
    let now = SystemTime::now();
    let board: Board = Arc::new(Mutex::new(
        stages.iter().map(|s| fresh_status(s, now)).collect(),
    ));
    let lineup: Lineup = Arc::new(Mutex::new(stages.to_vec()));
    let watcher = Watcher::new(stages);
    let manager = Manager {
        runtime,
        pipeline: pipeline.name.clone(),
        trust: Arc::new(pipeline.trust.clone()),
        stages: stages
            .iter()
            .map(|s| Stage {
                current: s.clone(),
                previous: None,
            })
            .collect(),
        control: None,
        board: board.clone(),
        lineup: lineup.clone(),
    };
    let (tx, rx) = mpsc::channel(16);
    let (link_tx, link_rx) = mpsc::unbounded_channel();
    tokio::spawn(manager.run(rx, link_rx, watcher));
    let pipeline = pipeline.name.clone();
    (
        Reloader {
            tx,
            board,
            pipeline,
        },
        Link {
            tx: link_tx,
            lineup,
        },
    )
}

/// The next incident of the attached pool; pending while none is attached.
async fn next_incident(
    incidents: &mut Option<mpsc::UnboundedReceiver<Incident>>,
) -> Option<Incident> {
    match incidents {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Manager {
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
        mut link: mpsc::UnboundedReceiver<Attachment>,
        mut watcher: Watcher,
    ) {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut incidents = None;
        let mut requests_open = true;
        loop {
            let attached = self.control.is_some();
            let watching = attached && !watcher.is_empty();
            tokio::select! {
                a = link.recv() => match a {
                    Some(Attachment::Attach { control, incidents: i }) => {
                        self.control = Some(control);
                        incidents = Some(i);
                    }
                    Some(Attachment::Detach { done }) => {
                        self.control = None;
                        if let Some(mut i) = incidents.take() {
                            while let Ok(incident) = i.try_recv() {
                                self.incident(incident).await;
                            }
                        }
                        self.publish();
                        let _ = done.send(());
                    }
                    None => break,
                },
                r = requests.recv(), if attached && requests_open => match r {
                    Some(Request::Deploy { stage, artifact, reply }) => {
                        let r = match self.index(&stage) {
                            Ok(i) => self.deploy(i, artifact).await,
                            Err(e) => Err(e),
                        };
                        let _ = reply.send(r);
                    }
                    Some(Request::Rollback { stage, reply }) => {
                        let r = match self.index(&stage) {
                            Ok(i) => self.roll_back(i).await,
                            Err(e) => Err(e),
                        };
                        let _ = reply.send(r);
                    }
                    Some(Request::Restructure { configs, reply }) => {
                        let r = self.restructure(configs).await;
                        watcher = Watcher::new(&self.stages.iter().map(|s| s.current.clone()).collect::<Vec<_>>());
                        let _ = reply.send(r);
                    }
                    Some(Request::Reconfigure { config, reply }) => {
                        let r = match self.index(&config.name) {
                            Ok(i) => self.reconfigure(i, config).await,
                            Err(e) => Err(e),
                        };
                        let _ = reply.send(r);
                    }
                    None => requests_open = false,
                },
                Some(incident) = next_incident(&mut incidents) => self.incident(incident).await,
                _ = tick.tick(), if watching => {
                    for (i, path) in watcher.changed() {
                        tracing::info!(pipeline = %self.pipeline, stage = %self.stages[i].current.config.name, "plugin file changed: {}", path.display());
                        if let Err(e) = self.deploy(i, Artifact::Path(path)).await {
                            tracing::warn!(pipeline = %self.pipeline, stage = %self.stages[i].current.config.name, "new version not taken: {e}");
                        }
                    }
                }
            }
            self.publish();
        }
    }

    /// Tells pools started from now on which versions run.
    fn publish(&self) {
        let specs = self.stages.iter().map(|s| s.current.clone()).collect();
        *self.lineup.lock().unwrap_or_else(|p| p.into_inner()) = specs;
    }

    fn index(&self, stage: &str) -> Result<usize, SwapError> {
        self.stages
            .iter()
            .position(|s| s.current.config.name == stage)
            .ok_or_else(|| SwapError::UnknownStage(stage.to_string()))
    }

    fn note(&self, i: usize, f: impl FnOnce(&mut StageStatus)) {
        let mut board = self.board.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut board[i]);
    }

    /// Verifies, compiles and checks the new version off the worker
    /// threads, then swaps every thread to it.
    async fn deploy(&mut self, i: usize, artifact: Artifact) -> Result<Deployed, SwapError> {
        let plugin = self.load(i, artifact).await?;
        if plugin.sha256 == self.stages[i].current.plugin.sha256 {
            return Ok(Deployed {
                digest: plugin.sha256.clone(),
                unchanged: true,
            });
        }
        let mut config = self.stages[i].current.config.clone();
        config.plugin = plugin.path.clone();
        let spec = Arc::new(StageSpec::new(&self.pipeline, config, Arc::new(plugin)));
        self.smoke(i, &spec).await?;
        self.swap(i, spec).await
    }

    /// Runs the stage's smoke check, if it has one, on `spec` against the
    /// running version, off the worker threads; a failure refuses `spec`.
    async fn smoke(&self, i: usize, spec: &Arc<StageSpec>) -> Result<(), SwapError> {
        let Some(check) = spec.config.smoke.clone() else {
            return Ok(());
        };
        let (runtime, old, new) = (
            self.runtime.clone(),
            self.stages[i].current.clone(),
            spec.clone(),
        );
        let passed = in_background(move || super::smoke::check(&runtime, &old, &new, &check))
            .await
            .map_err(|e| SwapError::Refused(e.to_string()))?;
        match passed {
            Ok(samples) => {
                tracing::info!(pipeline = %self.pipeline, stage = %spec.config.name, samples, "smoke check passed");
                Ok(())
            }
            Err(why) => {
                self.note(i, |s| s.last_problem = Some(format!("refused: {why}")));
                crate::metrics::swapped(&self.pipeline, &spec.config.name, "refused");
                Err(SwapError::Refused(why))
            }
        }
    }

    /// A new list of stages: kept ones go on, new ones are loaded, checked
    /// and started once, then every worker thread takes the list on.
    async fn restructure(
        &mut self,
        configs: Vec<crate::config::StageConfig>,
    ) -> Result<(), SwapError> {
        let mut next = Vec::with_capacity(configs.len());
        for config in configs {
            if let Some(s) = self
                .stages
                .iter()
                .find(|s| s.current.config.name == config.name)
            {
                next.push(Stage {
                    current: s.current.clone(),
                    previous: s.previous.clone(),
                });
                continue;
            }
            let (runtime, trust) = (self.runtime.clone(), self.trust.clone());
            let artifact = Artifact::Path(config.plugin.clone());
            let plugin = in_background(move || load(&runtime, &trust, &artifact))
                .await
                .map_err(|e| SwapError::Refused(e.to_string()))?
                .map_err(|why| SwapError::Refused(format!("stage {}: {why}", config.name)))?;
            let spec = Arc::new(StageSpec::new(&self.pipeline, config, Arc::new(plugin)));
            let (runtime, s) = (self.runtime.clone(), spec.clone());
            tokio::task::spawn_blocking(move || s.instantiate(&runtime).map(drop))
                .await
                .map_err(|e| SwapError::Refused(e.to_string()))?
                .map_err(|e| {
                    SwapError::Refused(format!("stage {}: does not start: {e}", spec.config.name))
                })?;
            next.push(Stage {
                current: spec,
                previous: None,
            });
        }
        let specs: Vec<Arc<StageSpec>> = next.iter().map(|s| s.current.clone()).collect();
        let control = self.control.clone().ok_or(SwapError::Stopped)?;
        let sent = specs.clone();
        // Partitions stop moving between threads before a stage with
        // per-partition state can see their batches, and may move again
        // once every thread runs only stateless stages.
        let movable = StageSpec::all_stateless(&specs);
        control.set_movable(false);
        let pool = control.clone();
        tokio::task::spawn_blocking(move || {
            control.broadcast(|reply| Control::Restructure {
                stages: sent.clone(),
                reply,
            })
        })
        .await
        .map_err(|_| SwapError::Stopped)?;
        pool.set_movable(movable);
        let now = SystemTime::now();
        let mut board = self.board.lock().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::take(&mut *board);
        *board = specs
            .iter()
            .map(|s| {
                old.iter()
                    .find(|o| o.stage == s.config.name)
                    .cloned()
                    .unwrap_or_else(|| fresh_status(s, now))
            })
            .collect();
        drop(board);
        self.stages = next;
        tracing::info!(pipeline = %self.pipeline, stages = specs.len(), "stages restructured");
        Ok(())
    }

    /// Reads, checks and compiles an artifact off the worker threads; a
    /// refusal is noted in the stage's status.
    async fn load(&self, i: usize, artifact: Artifact) -> Result<CompiledPlugin, SwapError> {
        let (runtime, trust) = (self.runtime.clone(), self.trust.clone());
        let loaded = in_background(move || load(&runtime, &trust, &artifact))
            .await
            .map_err(|e| SwapError::Refused(e.to_string()))?;
        loaded.map_err(|why| {
            self.note(i, |s| s.last_problem = Some(format!("refused: {why}")));
            crate::metrics::swapped(
                &self.pipeline,
                &self.stages[i].current.config.name,
                "refused",
            );
            SwapError::Refused(why)
        })
    }

    /// A stage's configuration was re-read: swap when it or its plugin
    /// changed.
    async fn reconfigure(
        &mut self,
        i: usize,
        config: crate::config::StageConfig,
    ) -> Result<Deployed, SwapError> {
        let plugin = self.load(i, Artifact::Path(config.plugin.clone())).await?;
        let current = &self.stages[i].current;
        if plugin.sha256 == current.plugin.sha256 && config == current.config {
            return Ok(Deployed {
                digest: plugin.sha256.clone(),
                unchanged: true,
            });
        }
        let spec = Arc::new(StageSpec::new(&self.pipeline, config, Arc::new(plugin)));
        self.smoke(i, &spec).await?;
        self.swap(i, spec).await
    }

    /// Swaps every worker thread to `spec`, after checking that it starts
    /// (see [`super::ahead`]).
    async fn swap(&mut self, i: usize, spec: Arc<StageSpec>) -> Result<Deployed, SwapError> {
        let spares = match super::ahead::start_ahead(&self.runtime, &self.pipeline, &spec).await {
            Ok(spares) => Arc::new(spares),
            Err(why) => return Err(self.rolled_back(i, why)),
        };
        let control = self.control.clone().ok_or(SwapError::Stopped)?;
        let s = spec.clone();
        let replies = tokio::task::spawn_blocking(move || {
            control.broadcast(|reply| Control::Swap {
                stage: i,
                spec: s.clone(),
                spares: spares.clone(),
                reply,
            })
        })
        .await
        .map_err(|_| SwapError::Stopped)?;
        let failure = replies.into_iter().find_map(|r| match r {
            Some(Ok(())) => None,
            Some(Err(why)) => Some(why),
            None => Some("a worker thread stopped".to_string()),
        });
        if let Some(why) = failure {
            let why: String = why;
            self.broadcast_rollback(i, &why).await;
            return Err(self.rolled_back(i, why));
        }
        let stage = &mut self.stages[i];
        let previous = std::mem::replace(&mut stage.current, spec.clone());
        stage.previous = Some(previous);
        self.note(i, |s| {
            s.plugin = spec.plugin.path.display().to_string();
            s.digest = spec.plugin.sha256.clone();
            s.since = SystemTime::now();
            s.swaps += 1;
        });
        crate::metrics::swapped(&self.pipeline, &spec.config.name, "swap");
        Ok(Deployed {
            digest: spec.plugin.sha256.clone(),
            unchanged: false,
        })
    }

    /// Records a rollback of stage `i` and returns it as an error.
    fn rolled_back(&self, i: usize, why: String) -> SwapError {
        self.rolled_back_to(i, why, None)
    }

    /// [`Manager::rolled_back`], also recording in the same status update
    /// that `back_to` runs again: a reader never sees the rollback counted
    /// and the failed version still named.
    fn rolled_back_to(&self, i: usize, why: String, back_to: Option<&StageSpec>) -> SwapError {
        tracing::warn!(pipeline = %self.pipeline, stage = %self.stages[i].current.config.name, "new version rolled back: {why}");
        self.note(i, |s| {
            s.rollbacks += 1;
            s.last_problem = Some(format!("rolled back: {why}"));
            if let Some(spec) = back_to {
                s.plugin = spec.plugin.path.display().to_string();
                s.digest = spec.plugin.sha256.clone();
                s.since = SystemTime::now();
            }
        });
        crate::metrics::swapped(
            &self.pipeline,
            &self.stages[i].current.config.name,
            "rollback",
        );
        SwapError::RolledBack(why)
    }

    /// Asks every worker thread still holding the previous version of
    /// stage `i` to go back to it; `true` when some thread had nothing to
    /// go back to (its probation was over).
    async fn broadcast_rollback(&self, i: usize, why: &str) -> bool {
        let Some(control) = self.control.clone() else {
            return false;
        };
        let reason = why.to_string();
        tokio::task::spawn_blocking(move || {
            control.broadcast(|reply| Control::Rollback {
                stage: i,
                reason: reason.clone(),
                reply,
            })
        })
        .await
        .map(|r| r.iter().any(|went_back| *went_back != Some(true)))
        .unwrap_or(false)
    }

    /// A worker thread rolled back a new version that failed its batches:
    /// every other thread follows.
    async fn incident(&mut self, incident: Incident) {
        let i = incident.stage;
        let Some(previous) = self.stages[i].previous.take() else {
            return;
        };
        let stragglers = self.broadcast_rollback(i, &incident.reason).await;
        if stragglers {
            // Threads past their probation swap back like for a deploy.
            if let Err(e) = self.swap(i, previous.clone()).await {
                tracing::error!(pipeline = %self.pipeline, stage = %previous.config.name, "cannot move every thread back: {e}");
            }
            self.stages[i].previous = None;
        }
        self.stages[i].current = previous.clone();
        let _ = self.rolled_back_to(i, incident.reason, Some(&previous));
    }

    /// An operator's rollback: a swap back to the previous version.
    async fn roll_back(&mut self, i: usize) -> Result<Deployed, SwapError> {
        let Some(previous) = self.stages[i].previous.clone() else {
            return Err(SwapError::NothingToRollBack);
        };
        let r = self.swap(i, previous).await?;
        self.stages[i].previous = None;
        self.note(i, |s| s.rollbacks += 1);
        Ok(r)
    }
}

/// The status of a stage that just started.
fn fresh_status(s: &StageSpec, since: SystemTime) -> StageStatus {
    StageStatus {
        stage: s.config.name.clone(),
        plugin: s.plugin.path.display().to_string(),
        digest: s.plugin.sha256.clone(),
        since,
        swaps: 0,
        rollbacks: 0,
        last_problem: None,
        events_in: 0,
        events_out: 0,
        errors: 0,
        state: std::collections::BTreeMap::new(),
    }
}
