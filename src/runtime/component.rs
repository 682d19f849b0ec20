//! The component form: a component of the world `weir:plugin/stage`, 1.1.0
//! or 1.0.0 (the same world without `state`: semver-compatible names
//! resolve to the 1.1.0 interfaces).

use super::error::{CallError, LoadError};
use super::grants::Stdio;
use super::host::HostState;
use super::limits::Limiter;
use std::path::Path;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use weir_abi::{Event, EventError, Header, Output};

pub(super) mod bindings {
    wasmtime::component::bindgen!({ world: "stage", path: "plugins/wit" });
}

pub(super) use bindings::weir::plugin::types as wit;

/// The interface a component must export, in any 1.x version.
pub const EXPORT: &str = "weir:plugin/transform@1.";
/// The weir interfaces a component may import (the host functions, keyed
/// state and the shared types), and the versions that provide them.
pub const WEIR_IMPORTS: &[&str] = &[
    "weir:plugin/host@1.0.0",
    "weir:plugin/types@1.0.0",
    "weir:plugin/host@1.1.0",
    "weir:plugin/types@1.1.0",
    "weir:plugin/state@1.1.0",
];

/// Store data of a component instance.
pub struct ComponentState {
    ctx: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    /// What the host functions work with (`runtime/host/`).
    pub(super) host: HostState,
}

impl ComponentState {
    pub(crate) fn new(ctx: WasiCtx, limiter: Limiter, host: HostState) -> Self {
        ComponentState {
            ctx,
            table: ResourceTable::new(),
            limiter,
            host,
        }
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

impl wit::Host for ComponentState {}

/// The linker every component is instantiated against: WASI preview 2
/// (with whatever the store's context grants) and the weir host interface.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<ComponentState>> {
    let mut l = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut l)?;
    bindings::Stage::add_to_linker::<_, HasSelf<_>>(&mut l, |s| s)?;
    super::host::add_state_to_component_linker(&mut l)?;
    Ok(l)
}

/// A component checked against the contract, ready to instantiate.
pub type ComponentPre = bindings::StagePre<ComponentState>;

/// The contract version the component was built against: the version of
/// the `transform` interface it exports.
pub fn version(engine: &Engine, pre: &ComponentPre) -> String {
    let ty = pre.instance_pre().component().component_type();
    let version = ty
        .exports(engine)
        .find_map(|(n, _)| n.strip_prefix(EXPORT).map(|minor| format!("1.{minor}")));
    version.unwrap_or_else(|| "?".into())
}

/// Checks the component's imports and exports and resolves its imports.
pub fn prepare(
    engine: &Engine,
    linker: &Linker<ComponentState>,
    component: &Component,
    path: &Path,
) -> Result<ComponentPre, LoadError> {
    let abi = |reason: String| LoadError::Abi {
        path: path.to_owned(),
        reason,
    };
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    if !exports.iter().any(|e| e.starts_with(EXPORT)) {
        return Err(abi(format!(
            "the component does not export `{EXPORT}x.y` (it exports: {})",
            if exports.is_empty() {
                "nothing".into()
            } else {
                exports.join(", ")
            }
        )));
    }
    for (name, _) in ty.imports(engine) {
        if !name.starts_with("wasi:") && !WEIR_IMPORTS.contains(&name) {
            return Err(abi(format!(
                "the component imports `{name}`, which weir does not provide \
                 (only wasi:* and {})",
                WEIR_IMPORTS.join(", ")
            )));
        }
    }
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| abi(format!("{e:#}")))?;
    bindings::StagePre::new(pre).map_err(|e| abi(format!("{e:#}")))
}

/// A live component instance.
pub struct ComponentInstance {
    pub(crate) store: Store<ComponentState>,
    stage: bindings::Stage,
    pub(crate) stdio: Stdio,
}

fn to_wit(e: Event) -> wit::Event {
    wit::Event {
        key: e.key,
        value: e.value,
        headers: e
            .headers
            .into_iter()
            .map(|h| wit::Header {
                key: h.key,
                value: h.value,
            })
            .collect(),
        timestamp: e.timestamp,
        topic: e.topic,
    }
}

fn from_wit(e: wit::Event) -> Event {
    Event {
        key: e.key,
        value: e.value,
        headers: e
            .headers
            .into_iter()
            .map(|h| Header {
                key: h.key,
                value: h.value,
            })
            .collect(),
        timestamp: e.timestamp,
        topic: e.topic,
    }
}

impl ComponentInstance {
    pub(crate) fn instantiate(
        pre: &ComponentPre,
        mut store: Store<ComponentState>,
        stdio: Stdio,
    ) -> Result<Self, (Store<ComponentState>, wasmtime::Error)> {
        match pre.instantiate(&mut store) {
            Ok(stage) => Ok(ComponentInstance {
                store,
                stage,
                stdio,
            }),
            Err(e) => Err((store, e)),
        }
    }

    pub(crate) fn init(
        &mut self,
        config: &[(String, String)],
    ) -> wasmtime::Result<Result<(), String>> {
        self.stage
            .weir_plugin_transform()
            .call_init(&mut self.store, config)
    }

    /// Runs a batch; `batch` holds the same events again afterwards.
    pub(crate) fn process(
        &mut self,
        batch: &mut Vec<Event>,
    ) -> wasmtime::Result<Result<Output, CallError>> {
        let wit_batch: Vec<wit::Event> = batch.drain(..).map(to_wit).collect();
        let result = self
            .stage
            .weir_plugin_transform()
            .call_process(&mut self.store, &wit_batch);
        batch.extend(wit_batch.into_iter().map(from_wit));
        let out = result?;
        Ok(Ok(Output {
            events: out.events.into_iter().map(from_wit).collect(),
            errors: out
                .errors
                .into_iter()
                .map(|e| EventError {
                    index: e.index,
                    message: e.message,
                })
                .collect(),
        }))
    }

    pub(crate) fn checkpoint_export(&mut self) -> wasmtime::Result<Vec<u8>> {
        self.stage
            .weir_plugin_transform()
            .call_checkpoint_export(&mut self.store)
    }

    pub(crate) fn checkpoint_import(
        &mut self,
        state: &[u8],
    ) -> wasmtime::Result<Result<(), String>> {
        self.stage
            .weir_plugin_transform()
            .call_checkpoint_import(&mut self.store, state)
    }
}
