//! The artifact tier: a plugin file verified, compiled (or loaded from the
//! cache) and prepared for instantiation. Shared by every worker thread.

use super::component::{self, ComponentPre};
use super::core_module::{self, ModuleState};
use super::engine::Runtime;
use super::error::LoadError;
use super::inspect::{form_of, sha256_hex, Form};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmtime::component::Component;
use wasmtime::{InstancePre, Module};

/// A prepared plugin of either form.
pub(crate) enum Prepared {
    Component(ComponentPre),
    Module(InstancePre<ModuleState>),
}

/// A plugin ready to instantiate: one per artifact, shared across threads.
pub struct CompiledPlugin {
    /// Where it was loaded from.
    pub path: PathBuf,
    /// Hex sha256 of the artifact.
    pub sha256: String,
    /// Component or core module.
    pub form: Form,
    /// Artifact size in bytes.
    pub size: usize,
    /// Whether the compiled code came from the cache.
    pub from_cache: bool,
    /// Time spent compiling or loading.
    pub load_time: Duration,
    pub(crate) prepared: Prepared,
}

impl std::fmt::Debug for CompiledPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPlugin")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("form", &self.form)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Reads, checks and compiles a plugin, using the artifact cache.
    ///
    /// # Errors
    /// [`LoadError`] says whether the file is unreadable, not wasm, not the
    /// weir ABI (naming what is missing), or rejected by the compiler.
    pub fn load(&self, path: &Path) -> Result<CompiledPlugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.load_bytes(path, &bytes)
    }

    /// [`Runtime::load`] for bytes already in memory; `path` names them in
    /// errors.
    ///
    /// # Errors
    /// As [`Runtime::load`].
    pub fn load_bytes(&self, path: &Path, bytes: &[u8]) -> Result<CompiledPlugin, LoadError> {
        let start = Instant::now();
        let form = form_of(bytes).ok_or_else(|| LoadError::NotWasm {
            path: path.to_owned(),
        })?;
        let sha256 = sha256_hex(bytes);
        let compile_err = |e: wasmtime::Error| LoadError::Compile {
            path: path.to_owned(),
            message: format!("{e:#}"),
        };
        let (prepared, from_cache) = match form {
            Form::Component => {
                let (c, cached) = self
                    .compile(
                        &sha256,
                        bytes,
                        |b| self.engine.precompile_component(b),
                        |p| {
                            // SAFETY: the cache only holds files this engine wrote,
                            // in a directory only weir's user can write.
                            unsafe { Component::deserialize_file(&self.engine, p) }
                        },
                        |b| unsafe { Component::deserialize(&self.engine, b) },
                    )
                    .map_err(compile_err)?;
                let pre = component::prepare(&self.engine, &self.component_linker, &c, path)?;
                (Prepared::Component(pre), cached)
            }
            Form::CoreModule => {
                let (m, cached) = self
                    .compile(
                        &sha256,
                        bytes,
                        |b| self.engine.precompile_module(b),
                        |p| {
                            // SAFETY: as above.
                            unsafe { Module::deserialize_file(&self.engine, p) }
                        },
                        |b| unsafe { Module::deserialize(&self.engine, b) },
                    )
                    .map_err(compile_err)?;
                let pre = core_module::prepare(&self.module_linker, &m, path)?;
                (Prepared::Module(pre), cached)
            }
        };
        Ok(CompiledPlugin {
            path: path.to_owned(),
            sha256,
            form,
            size: bytes.len(),
            from_cache,
            load_time: start.elapsed(),
            prepared,
        })
    }

    /// Loads the compiled form from the cache, or compiles and caches it.
    fn compile<T>(
        &self,
        sha256: &str,
        bytes: &[u8],
        precompile: impl FnOnce(&[u8]) -> wasmtime::Result<Vec<u8>>,
        from_file: impl FnOnce(&Path) -> wasmtime::Result<T>,
        from_bytes: impl FnOnce(&[u8]) -> wasmtime::Result<T>,
    ) -> wasmtime::Result<(T, bool)> {
        if let Some(cached) = self.cache.as_ref().and_then(|c| c.lookup(sha256)) {
            match from_file(&cached) {
                Ok(t) => return Ok((t, true)),
                Err(e) => tracing::warn!("ignoring unusable cache entry {}: {e}", cached.display()),
            }
        }
        let compiled = precompile(bytes)?;
        if let Some(cache) = &self.cache {
            cache.store(sha256, &compiled);
        }
        // SAFETY: these bytes were produced by this engine a moment ago.
        Ok((from_bytes(&compiled)?, false))
    }
}

impl CompiledPlugin {
    /// The ABI version the plugin speaks: the WIT package version for a
    /// component, what `weir_abi_version` returns for a core module.
    ///
    /// # Errors
    /// When the core module traps before answering.
    pub fn abi_version(&self, runtime: &Runtime) -> Result<String, super::CallError> {
        match &self.prepared {
            Prepared::Component(pre) => Ok(component::version(&runtime.engine, pre)),
            Prepared::Module(pre) => core_module::abi_version(&runtime.engine, pre)
                .map(|v| v.to_string())
                .map_err(|e| super::CallError::Trap {
                    message: format!("{e:#}"),
                }),
        }
    }
}
