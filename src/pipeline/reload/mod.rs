//! The reload manager of a running pipeline (docs/architecture.md §5): it takes new
//! plugin versions (from the admin API, a watched file or a re-read pipeline
//! file), verifies and compiles them off the worker threads, has every
//! worker thread swap at its next batch boundary, and rolls back when the
//! new version does not start, refuses the state, or fails its first
//! batches.

mod ahead;
mod background;
mod manager;
mod priority;
mod smoke;
mod verify;
mod watch;

pub(crate) use manager::spawn;
pub use smoke::sample_events;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::{mpsc, oneshot};

/// A new plugin version.
#[derive(Debug, Clone)]
pub enum Artifact {
    /// A file on the worker's disk.
    Path(PathBuf),
    /// Uploaded bytes; `name` stands for them in logs and status.
    Bytes {
        /// A name for the upload.
        name: String,
        /// The artifact.
        bytes: Vec<u8>,
        /// Its minisign signature (the text of a `.minisig` file).
        signature: Option<String>,
    },
}

/// Why a new version is not running.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// The pipeline has no such stage.
    #[error("no stage named {0:?}")]
    UnknownStage(String),
    /// The artifact was refused before anything ran (unreadable, not wasm,
    /// wrong ABI, bad signature); the running version is untouched.
    #[error("refused: {0}")]
    Refused(String),
    /// The new version ran and failed; the previous one runs again.
    #[error("rolled back: {0}")]
    RolledBack(String),
    /// A rollback was asked for, but no previous version is known.
    #[error("no previous version to roll back to")]
    NothingToRollBack,
    /// The pipeline is stopping.
    #[error("the pipeline is stopping")]
    Stopped,
}

/// What a stage runs, and how it got there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageStatus {
    /// The stage's name.
    pub stage: String,
    /// Where the running version came from.
    pub plugin: String,
    /// Hex sha256 of the running version.
    pub digest: String,
    /// When the running version started.
    pub since: SystemTime,
    /// Completed swaps to a new version.
    pub swaps: u64,
    /// Times the stage went back to a previous version.
    pub rollbacks: u64,
    /// Why the last rollback or refusal happened.
    pub last_problem: Option<String>,
    /// Events handed to the stage, across its versions.
    pub events_in: u64,
    /// Events it emitted.
    pub events_out: u64,
    /// Events it sent to the dead-letter sink (errors and traps).
    pub errors: u64,
    /// Its keyed state on this worker, per partition: keys, bytes.
    pub state: std::collections::BTreeMap<u32, (usize, u64)>,
}

/// A swap that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// Hex sha256 of the version now running.
    pub digest: String,
    /// Whether it was already running (nothing changed).
    pub unchanged: bool,
}

pub(crate) enum Request {
    Deploy {
        stage: String,
        artifact: Artifact,
        reply: oneshot::Sender<Result<Deployed, SwapError>>,
    },
    Rollback {
        stage: String,
        reply: oneshot::Sender<Result<Deployed, SwapError>>,
    },
    Reconfigure {
        config: crate::config::StageConfig,
        reply: oneshot::Sender<Result<Deployed, SwapError>>,
    },
    Restructure {
        configs: Vec<crate::config::StageConfig>,
        reply: oneshot::Sender<Result<(), SwapError>>,
    },
}

/// What a delivery mode tells the manager about the worker pools it starts.
pub(crate) enum Attachment {
    /// A pool started with the manager's lineup; swaps go to it.
    Attach {
        control: crate::pipeline::PoolControl,
        incidents: mpsc::UnboundedReceiver<crate::pipeline::Incident>,
    },
    /// The pool is stopping: no swap reaches it any more. Answered once the
    /// manager let it go.
    Detach { done: oneshot::Sender<()> },
}

/// The side of the reload manager a delivery mode holds: each worker pool
/// it starts runs the manager's current lineup and is attached, and it is
/// detached before it stops. A run that starts over (exactly-once mode after
/// an abort) thus keeps the versions swapped in before. The manager ends
/// when the last link is dropped.
#[derive(Clone)]
pub(crate) struct Link {
    tx: mpsc::UnboundedSender<Attachment>,
    lineup: Lineup,
}

/// The versions that run, as the manager last set them.
pub(crate) type Lineup = Arc<Mutex<Vec<Arc<crate::pipeline::StageSpec>>>>;

impl Link {
    /// The stages a new pool starts with. Stable while no pool is
    /// attached: the manager takes no request then.
    pub fn stages(&self) -> Vec<Arc<crate::pipeline::StageSpec>> {
        self.lineup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Swaps from now on go to the pool `control` reaches.
    pub fn attach(
        &self,
        control: crate::pipeline::PoolControl,
        incidents: mpsc::UnboundedReceiver<crate::pipeline::Incident>,
    ) {
        let _ = self.tx.send(Attachment::Attach { control, incidents });
    }

    /// Lets the attached pool go; returns once a swap in progress ended
    /// and no other will start until the next [`Link::attach`].
    pub async fn detach(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Attachment::Detach { done }).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Status of every stage, shared between the manager and its readers.
pub(crate) type Board = Arc<Mutex<Vec<StageStatus>>>;

/// The handle to a running pipeline's reload manager.
#[derive(Clone, Debug)]
pub struct Reloader {
    tx: mpsc::Sender<Request>,
    board: Board,
    pipeline: String,
}

impl Reloader {
    /// Sends the manager the request `make` builds around the reply
    /// channel, and waits for the answer.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, SwapError>>) -> Request,
    ) -> Result<T, SwapError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| SwapError::Stopped)?;
        rx.await.map_err(|_| SwapError::Stopped)?
    }

    /// Deploys a new version of `stage` and waits until every worker thread
    /// runs it, or it was refused or rolled back.
    ///
    /// # Errors
    /// A [`SwapError`] saying why the new version is not running.
    pub async fn deploy(&self, stage: &str, artifact: Artifact) -> Result<Deployed, SwapError> {
        self.ask(|reply| Request::Deploy {
            stage: stage.to_string(),
            artifact,
            reply,
        })
        .await
    }

    /// Goes back to the version `stage` ran before its last swap.
    ///
    /// # Errors
    /// A [`SwapError`] when there is none, or it does not start again.
    pub async fn rollback(&self, stage: &str) -> Result<Deployed, SwapError> {
        self.ask(|reply| Request::Rollback {
            stage: stage.to_string(),
            reply,
        })
        .await
    }

    /// Applies a stage's re-read configuration (plugin file, `config`
    /// table, limits, grants, swap policy): swaps when anything changed.
    ///
    /// # Errors
    /// As [`Reloader::deploy`].
    pub async fn reconfigure(
        &self,
        config: crate::config::StageConfig,
    ) -> Result<Deployed, SwapError> {
        self.ask(|reply| Request::Reconfigure { config, reply })
            .await
    }

    /// Takes on a new list of stages between two batches: stages kept by
    /// name go on as they are (reconfigure them first), new ones start with
    /// empty state, missing ones are dropped with their state.
    ///
    /// # Errors
    /// A new stage's plugin is refused or does not start; nothing changed.
    pub async fn restructure(
        &self,
        configs: Vec<crate::config::StageConfig>,
    ) -> Result<(), SwapError> {
        self.ask(|reply| Request::Restructure { configs, reply })
            .await
    }

    /// The names of the running stages, in order.
    pub fn stages(&self) -> Vec<String> {
        self.status().into_iter().map(|s| s.stage).collect()
    }

    /// What every stage runs now, with its counts so far.
    pub fn status(&self) -> Vec<StageStatus> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut status = self.board.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for s in &mut status {
            let t = crate::metrics::stage_tally(&self.pipeline, &s.stage);
            s.events_in = t.events_in.load(Relaxed);
            s.events_out = t.events_out.load(Relaxed);
            s.errors = t.errors.load(Relaxed);
            s.state = t.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        }
        status
    }
}
