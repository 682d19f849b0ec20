//! The core-module form: a WASI preview-1 module that exchanges CBOR with the
//! host through its own memory. The ABI is written down in
//! `plugins/abi/CORE-MODULE.md`.

use super::error::{CallError, LoadError};
use super::grants::Stdio;
use super::host::HostState;
use super::limits::Limiter;
use super::plugin_log::LogTag;
use std::path::Path;
use std::sync::Arc;
use wasmtime::{
    Engine, ExternType, Instance, InstancePre, Linker, Memory, Module, Store, TypedFunc, ValType,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use weir_abi::{cbor, Event, Output};

/// Store data of a core-module instance.
pub struct ModuleState {
    wasi: WasiP1Ctx,
    pub(crate) limiter: Limiter,
    /// What the host functions work with (`runtime/host/`).
    pub(super) host: HostState,
}

impl ModuleState {
    pub(crate) fn new(wasi: WasiP1Ctx, limiter: Limiter, host: HostState) -> Self {
        ModuleState {
            wasi,
            limiter,
            host,
        }
    }
}

/// The linker every core module is instantiated against: WASI preview 1
/// (with whatever the store's context grants), `weir.log` and `weir.state_*`.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<ModuleState>> {
    let mut l = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut l, |s: &mut ModuleState| &mut s.wasi)?;
    super::host::add_log_to_core_linker(&mut l)?;
    super::host::add_state_to_core_linker(&mut l)?;
    Ok(l)
}

use ValType::{I32, I64};

/// Exports a module must have, with their signatures.
const REQUIRED: &[(&str, &[ValType], &[ValType])] = &[
    ("weir_abi_version", &[], &[I32]),
    ("weir_alloc", &[I32], &[I32]),
    ("weir_process", &[I32, I32], &[I64]),
];
/// Exports a module may have, with their signatures.
const OPTIONAL: &[(&str, &[ValType], &[ValType])] = &[
    ("weir_init", &[I32, I32], &[I64]),
    ("weir_checkpoint_export", &[], &[I64]),
    ("weir_checkpoint_import", &[I32, I32], &[I64]),
    ("_initialize", &[], &[]),
];

fn sig(params: &[ValType], results: &[ValType]) -> String {
    let names = |v: &[ValType]| {
        v.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", names(params), names(results))
}

/// Checks exports and imports against the ABI and resolves the imports.
pub fn prepare(
    linker: &Linker<ModuleState>,
    module: &Module,
    path: &Path,
) -> Result<InstancePre<ModuleState>, LoadError> {
    let abi = |reason: String| LoadError::Abi {
        path: path.to_owned(),
        reason,
    };
    let mut problems = Vec::new();
    match module.get_export("memory") {
        Some(ExternType::Memory(_)) => {}
        _ => problems.push("missing export `memory` (a memory)".to_string()),
    }
    for (required, list) in [(true, REQUIRED), (false, OPTIONAL)] {
        for (name, params, results) in list {
            match module.get_export(name) {
                Some(ExternType::Func(f)) => {
                    let ok = f.params().len() == params.len()
                        && f.results().len() == results.len()
                        && f.params()
                            .zip(params.iter())
                            .all(|(a, b)| ValType::eq(&a, b))
                        && f.results()
                            .zip(results.iter())
                            .all(|(a, b)| ValType::eq(&a, b));
                    if !ok {
                        problems.push(format!(
                            "export `{name}` has the wrong signature: expected {}",
                            sig(params, results)
                        ));
                    }
                }
                Some(_) => problems.push(format!("export `{name}` is not a function")),
                None if required => {
                    problems.push(format!("missing export `{name}` {}", sig(params, results)))
                }
                None => {}
            }
        }
    }
    for imp in module.imports() {
        let m = imp.module();
        let weir = m == "weir"
            && (imp.name() == "log" || super::host::STATE_CORE_IMPORTS.contains(&imp.name()));
        if m != "wasi_snapshot_preview1" && !weir {
            problems.push(format!(
                "imports `{m}.{}`, which weir does not provide \
                 (only wasi_snapshot_preview1.*, weir.log and weir.state_*)",
                imp.name()
            ));
        }
    }
    if !problems.is_empty() {
        return Err(abi(problems.join("; ")));
    }
    linker
        .instantiate_pre(module)
        .map_err(|e| abi(format!("{e:#}")))
}

/// A live core-module instance.
pub struct ModuleInstance {
    pub(crate) store: Store<ModuleState>,
    f: Funcs,
    /// Reused encode buffer, so a batch costs no host allocation.
    buf: Vec<u8>,
    pub(crate) stdio: Stdio,
}

/// The module's ABI exports.
struct Funcs {
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    process: TypedFunc<(i32, i32), i64>,
    init: Option<TypedFunc<(i32, i32), i64>>,
    export: Option<TypedFunc<(), i64>>,
    import: Option<TypedFunc<(i32, i32), i64>>,
}

/// A guest-returned `ptr << 32 | len` out of bounds of the guest's memory.
fn bad(message: impl Into<String>) -> CallError {
    CallError::BadOutput {
        message: message.into(),
    }
}

impl ModuleInstance {
    pub(crate) fn instantiate(
        pre: &InstancePre<ModuleState>,
        mut store: Store<ModuleState>,
        stdio: Stdio,
    ) -> Result<Result<Self, CallError>, (Store<ModuleState>, wasmtime::Error)> {
        match Self::start(pre, &mut store) {
            Ok(Ok(funcs)) => Ok(Ok(ModuleInstance {
                store,
                f: funcs,
                buf: Vec::new(),
                stdio,
            })),
            Ok(Err(e)) => Ok(Err(e)),
            Err(e) => Err((store, e)),
        }
    }

    /// Instantiates, runs `_initialize`, checks the ABI version and looks up
    /// the exports.
    fn start(
        pre: &InstancePre<ModuleState>,
        store: &mut Store<ModuleState>,
    ) -> wasmtime::Result<Result<Funcs, CallError>> {
        let mut store = store;
        let instance: Instance = pre.instantiate(&mut store)?;
        if let Ok(start) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            start.call(&mut store, ())?;
        }
        let version = instance
            .get_typed_func::<(), i32>(&mut store, "weir_abi_version")?
            .call(&mut store, ())?;
        if version != weir_abi::ABI_VERSION {
            return Ok(Err(CallError::Refused {
                operation: "weir_abi_version",
                message: format!(
                    "the module speaks ABI version {version}; this weir speaks {}",
                    weir_abi::ABI_VERSION
                ),
            }));
        }
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| wasmtime::format_err!("no memory export"))?;
        Ok(Ok(Funcs {
            memory,
            alloc: instance.get_typed_func(&mut store, "weir_alloc")?,
            process: instance.get_typed_func(&mut store, "weir_process")?,
            init: instance.get_typed_func(&mut store, "weir_init").ok(),
            export: instance
                .get_typed_func(&mut store, "weir_checkpoint_export")
                .ok(),
            import: instance
                .get_typed_func(&mut store, "weir_checkpoint_import")
                .ok(),
        }))
    }

    /// Copies `self.buf` into a fresh guest buffer; returns (ptr, len).
    fn send(&mut self) -> wasmtime::Result<Result<(i32, i32), CallError>> {
        let len = match i32::try_from(self.buf.len()) {
            Ok(l) => l,
            Err(_) => return Ok(Err(bad("batch larger than 2 GiB"))),
        };
        let ptr = self.f.alloc.call(&mut self.store, len)?;
        if self
            .f
            .memory
            .write(&mut self.store, ptr as u32 as usize, &self.buf)
            .is_err()
        {
            return Ok(Err(bad(format!(
                "weir_alloc({len}) returned {ptr:#x}, outside the module's memory"
            ))));
        }
        Ok(Ok((ptr, len)))
    }

    /// The bytes at a packed `ptr << 32 | len`.
    fn receive(&self, packed: i64) -> Result<&[u8], CallError> {
        let packed = packed as u64;
        let (ptr, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
        self.f
            .memory
            .data(&self.store)
            .get(ptr..ptr + len)
            .ok_or_else(|| {
                bad(format!(
                    "result at {ptr:#x}+{len} is outside the module's memory"
                ))
            })
    }

    /// A status return: 0 is success, anything else the packed message.
    fn status(&self, packed: i64, operation: &'static str) -> Result<(), CallError> {
        if packed == 0 {
            return Ok(());
        }
        let message = String::from_utf8_lossy(self.receive(packed)?).into_owned();
        Err(CallError::Refused { operation, message })
    }

    pub(crate) fn init(
        &mut self,
        config: &[(String, String)],
    ) -> wasmtime::Result<Result<(), CallError>> {
        let Some(init) = self.f.init.clone() else {
            return Ok(Ok(()));
        };
        self.buf.clear();
        cbor::encode_config(&mut self.buf, config);
        let (ptr, len) = match self.send()? {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let r = init.call(&mut self.store, (ptr, len))?;
        Ok(self.status(r, "init"))
    }

    pub(crate) fn process(
        &mut self,
        batch: &[Event],
    ) -> wasmtime::Result<Result<Output, CallError>> {
        self.buf.clear();
        cbor::encode_batch(&mut self.buf, batch);
        let (ptr, len) = match self.send()? {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let r = self.f.process.call(&mut self.store, (ptr, len))?;
        Ok(self.receive(r).and_then(|b| {
            cbor::decode_output(b).map_err(|e| bad(format!("output is not the CBOR schema: {e}")))
        }))
    }

    pub(crate) fn checkpoint_export(&mut self) -> wasmtime::Result<Result<Vec<u8>, CallError>> {
        let Some(f) = self.f.export.clone() else {
            return Ok(Ok(Vec::new()));
        };
        let r = f.call(&mut self.store, ())?;
        Ok(self.receive(r).map(<[u8]>::to_vec))
    }

    pub(crate) fn checkpoint_import(
        &mut self,
        state: &[u8],
    ) -> wasmtime::Result<Result<(), CallError>> {
        let Some(f) = self.f.import.clone() else {
            return Ok(if state.is_empty() {
                Ok(())
            } else {
                Err(CallError::Refused {
                    operation: "checkpoint-import",
                    message: "the module has no weir_checkpoint_import but a checkpoint exists"
                        .into(),
                })
            });
        };
        self.buf.clear();
        self.buf.extend_from_slice(state);
        let (ptr, len) = match self.send()? {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let r = f.call(&mut self.store, (ptr, len))?;
        Ok(self.status(r, "checkpoint-import"))
    }
}

/// Instantiates the module in a default sandbox and asks for its ABI
/// version (after `_initialize`, as always).
pub(crate) fn abi_version(
    engine: &Engine,
    pre: &InstancePre<ModuleState>,
) -> wasmtime::Result<i32> {
    use super::limits::StageLimits;
    let tag = Arc::new(LogTag::default());
    let (mut wasi, stdio) = super::grants::sandbox(&super::grants::Grants::default(), &tag)?;
    let limits = StageLimits::default();
    let host = HostState::new(tag, stdio.stderr);
    let mut store = Store::new(
        engine,
        ModuleState::new(wasi.build_p1(), Limiter::new(limits.memory), host),
    );
    store.limiter(|s| &mut s.limiter);
    store.set_fuel(limits.fuel_for(super::limits::CallKind::Setup))?;
    store.set_epoch_deadline((limits.timeout.as_millis() as u64).max(1000));
    let instance = pre.instantiate(&mut store)?;
    if let Ok(start) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
        start.call(&mut store, ())?;
    }
    instance
        .get_typed_func::<(), i32>(&mut store, "weir_abi_version")?
        .call(&mut store, ())
}
