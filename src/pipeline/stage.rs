//! One stage as a worker thread holds it: the version that runs
//! ([`StageSpec`], shared by every thread), its instances and checkpoints per
//! partition ([`Slot`]), and the previous version while a new one is on
//! probation ([`ChainStage`]).

use super::budget::CallBudget;
use super::error::PipelineError;
use crate::config::{Pipeline, StageConfig};
use crate::metrics::StageMetrics;
use crate::runtime::{
    CallError, CompiledPlugin, InstanceSettings, KeyedState, LogTag, Runtime, StageInstance,
};
use std::collections::HashMap;
use std::sync::Arc;

/// A stage ready to run: its config, compiled plugin and instance settings.
pub struct StageSpec {
    /// The stage's configuration.
    pub config: StageConfig,
    /// The compiled plugin, shared by every worker thread.
    pub plugin: Arc<CompiledPlugin>,
    /// What every instance is created with.
    pub settings: InstanceSettings,
    /// The stage's metric handles.
    pub metrics: StageMetrics,
    /// The batch size its limits turned out to allow.
    pub budget: CallBudget,
}

impl StageSpec {
    /// Whether every one of `stages` is stateless, so that partitions may
    /// move between worker threads.
    pub(super) fn all_stateless(stages: &[Arc<StageSpec>]) -> bool {
        stages.iter().all(|s| s.config.stateless)
    }

    /// A spec for `config` of `pipeline` with its compiled plugin.
    pub fn new(pipeline: &str, config: StageConfig, plugin: Arc<CompiledPlugin>) -> Self {
        let settings = InstanceSettings {
            limits: config.limits,
            grants: config.grants.clone(),
            config: config.config.clone(),
            tag: Arc::new(LogTag {
                pipeline: pipeline.to_string(),
                stage: config.name.clone(),
            }),
        };
        let metrics = StageMetrics::new(pipeline, &config.name);
        StageSpec {
            config,
            plugin,
            settings,
            metrics,
            budget: CallBudget::default(),
        }
    }

    /// A new instance of this stage: instantiated, started, `init` called
    /// with the stage's config.
    ///
    /// # Errors
    /// A [`CallError`] when instantiation fails, start-up hits a limit, or
    /// `init` refuses.
    pub fn instantiate(&self, runtime: &Runtime) -> Result<StageInstance, CallError> {
        let mut inst = StageInstance::new(runtime, &self.plugin, &self.settings)?;
        if self.config.stateless {
            inst.deny_state(format!(
                "stage {} is stateless: one instance serves every partition, so it has no \
                 keyed state; remove `stateless = true` from the stage to give it some",
                self.config.name
            ));
        }
        Ok(inst)
    }
}

/// Loads every stage's plugin (cache first) and starts one instance of each
/// to check that its `init` accepts the config. Blocking: call it off the
/// async runtime.
///
/// # Errors
/// The first stage that cannot be loaded or started.
pub fn prepare_stages(
    runtime: &Runtime,
    pipeline: &Pipeline,
) -> Result<Vec<Arc<StageSpec>>, PipelineError> {
    pipeline
        .stages
        .iter()
        .map(|stage| {
            pipeline
                .trust
                .check_file(&stage.plugin)
                .map_err(|source| PipelineError::Signature { stage: stage.name.clone(), source })?;
            let plugin = runtime
                .load(&stage.plugin)
                .map_err(|source| PipelineError::Load { stage: stage.name.clone(), source })?;
            tracing::debug!(stage = %stage.name, sha256 = %plugin.sha256, form = %plugin.form, cached = plugin.from_cache, "loaded plugin in {:?}", plugin.load_time);
            let spec = StageSpec::new(&pipeline.name, stage.clone(), Arc::new(plugin));
            spec.instantiate(runtime)
                .map_err(|source| PipelineError::Start { stage: stage.name.clone(), source })?;
            Ok(Arc::new(spec))
        })
        .collect()
}

#[derive(Default)]
pub(super) struct Slot {
    pub(super) instance: Option<StageInstance>,
    /// State after the last successful batch; a replacement imports it.
    pub(super) checkpoint: Option<Vec<u8>>,
    /// The partition's keyed state, held here between calls: it outlives
    /// instances and versions.
    pub(super) state: KeyedState,
    /// Its size as the metrics last showed it: keys, bytes.
    pub(super) reported: (usize, u64),
}

/// One stage of a worker thread's chain.
pub(super) struct ChainStage {
    /// The version that runs.
    pub(super) spec: Arc<StageSpec>,
    /// Its instances and checkpoints, per partition (one slot for a
    /// stateless stage).
    pub(super) slots: HashMap<u32, Slot>,
    /// The previous version while a new one is on probation.
    pub(super) probation: Option<super::swap::Probation>,
}

impl ChainStage {
    pub(super) fn new(spec: Arc<StageSpec>) -> Self {
        ChainStage {
            spec,
            slots: HashMap::new(),
            probation: None,
        }
    }
}
