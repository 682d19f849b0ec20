//! The process-wide tier: one wasmtime [`Engine`], its epoch ticker, and
//! the linkers both plugin forms are instantiated against.

use super::cache::ArtifactCache;
use super::component::{self, ComponentState};
use super::core_module::{self, ModuleState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; call deadlines are counted in these ticks,
/// so a timeout is honoured to within about one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Set to `perfmap` to write `/tmp/perf-<pid>.map`, so that `perf` can
/// name the plugin functions it samples.
pub const PROFILER_ENV: &str = "WEIR_WASM_PROFILER";

/// Options of the [`Runtime`].
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Where compiled artifacts are cached; `None` disables the cache.
    pub cache_dir: Option<std::path::PathBuf>,
}

/// The engine, its ticker and the linkers; shared by every stage.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) cache: Option<ArtifactCache>,
    pub(crate) component_linker: wasmtime::component::Linker<ComponentState>,
    pub(crate) module_linker: wasmtime::Linker<ModuleState>,
    ticker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// Errors building the runtime: a wasmtime configuration the machine cannot
/// provide.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the wasm runtime: {0}")]
pub struct RuntimeError(String);

fn config(pooling: bool) -> Config {
    let mut c = Config::new();
    c.consume_fuel(true);
    c.epoch_interruption(true);
    c.wasm_component_model(true);
    c.max_wasm_stack(1 << 20);
    if std::env::var_os(PROFILER_ENV).is_some_and(|v| v == "perfmap") {
        // `perf record` then names the plugin functions it samples.
        c.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if pooling {
        // Virtual reservations only: the per-stage memory limit is enforced
        // by each store's limiter.
        let mut p = PoolingAllocationConfig::default();
        p.total_component_instances(512)
            .total_core_instances(2048)
            .total_memories(1024)
            .total_tables(1024)
            .total_stacks(0)
            .max_memories_per_component(16)
            .max_tables_per_component(16)
            .max_core_instances_per_component(64)
            .max_memory_size(4 << 30)
            .table_elements(1 << 20)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(1 << 20);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    c
}

impl Runtime {
    /// Builds the engine (fuel, epochs, pooling allocator), the linkers and
    /// the ticker thread. Falls back to on-demand allocation when the
    /// machine refuses the pooling allocator's address-space reservation.
    ///
    /// # Errors
    /// Fails when wasmtime cannot be configured at all.
    pub fn new(options: RuntimeOptions) -> Result<Arc<Runtime>, RuntimeError> {
        let engine = match Engine::new(&config(true)) {
            Ok(e) => e,
            Err(err) => {
                tracing::warn!("pooling allocator unavailable ({err}); using on-demand allocation");
                Engine::new(&config(false)).map_err(|e| RuntimeError(e.to_string()))?
            }
        };
        let component_linker =
            component::linker(&engine).map_err(|e| RuntimeError(format!("{e:#}")))?;
        let module_linker =
            core_module::linker(&engine).map_err(|e| RuntimeError(format!("{e:#}")))?;
        let cache = options
            .cache_dir
            .map(|dir| ArtifactCache::new(dir, &engine));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("weir-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| RuntimeError(e.to_string()))?
        };
        Ok(Arc::new(Runtime {
            engine,
            cache,
            component_linker,
            module_linker,
            ticker: Some(ticker),
            stop,
        }))
    }

    /// The default cache directory: `$WEIR_CACHE_DIR`, else
    /// `~/.cache/weir/cwasm`.
    pub fn default_cache_dir() -> Option<std::path::PathBuf> {
        if let Some(d) = std::env::var_os("WEIR_CACHE_DIR") {
            return Some(d.into());
        }
        let home = std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache"))
            })?;
        Some(home.join("weir").join("cwasm"))
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}
