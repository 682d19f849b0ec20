//! What an artifact is, read without running it: form, imports, exports,
//! size and digest. Used by `weir inspect` and by the loader.

use sha2::{Digest, Sha256};
use wasmparser::{Parser, Payload};

/// The two binary forms of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A component of the world `weir:plugin/stage` (1.1.0, or 1.0.0).
    Component,
    /// A WASI preview-1 core module of the weir core-module ABI.
    CoreModule,
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Form::Component => "component",
            Form::CoreModule => "core module",
        })
    }
}

/// The facts about an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Component or core module.
    pub form: Form,
    /// Size in bytes.
    pub size: usize,
    /// Hex sha256 of the bytes: the artifact's identity.
    pub sha256: String,
    /// Top-level imports (`module.name` for core modules).
    pub imports: Vec<String>,
    /// Top-level exports.
    pub exports: Vec<String>,
    /// The language it was built from, where its custom sections tell.
    pub language: Option<&'static str>,
}

/// Marks in custom sections (at any depth) that name a plugin's language,
/// the most telling first: an interpreter's component also carries the Rust
/// and C code of its runtime.
const LANGUAGE_MARKS: &[(&str, &[u8])] = &[
    ("Go", b"go:buildid"),
    ("Python (componentize-py)", b"componentize-py"),
    ("JavaScript (componentize-js)", b"ComponentizeJS"),
    ("Rust", b"rustc"),
];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The form of `bytes`, or `None` when they are not wasm.
pub fn form_of(bytes: &[u8]) -> Option<Form> {
    if Parser::is_component(bytes) {
        Some(Form::Component)
    } else if Parser::is_core_wasm(bytes) {
        Some(Form::CoreModule)
    } else {
        None
    }
}

/// Reads the artifact's form, imports and exports.
///
/// # Errors
/// Returns a message when the bytes are not valid wasm.
pub fn inspect(bytes: &[u8]) -> Result<PluginInfo, String> {
    let form = form_of(bytes).ok_or("not a WebAssembly module or component")?;
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    // Nested modules and components of a component are not its interface:
    // only the outermost level counts.
    let mut depth = 0usize;
    let mut marks = vec![false; LANGUAGE_MARKS.len()];
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| e.to_string())?;
        match payload {
            Payload::CustomSection(c) => {
                for (i, (_, mark)) in LANGUAGE_MARKS.iter().enumerate() {
                    marks[i] |= c.name().as_bytes() == *mark || contains(c.data(), mark);
                }
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ImportSection(r) if depth > 0 => {
                // componentize-py links CPython as `libpython3.x.so`.
                for imp in r.into_imports() {
                    let imp = imp.map_err(|e| e.to_string())?;
                    marks[1] |= imp.module.starts_with("libpython");
                }
            }
            Payload::ImportSection(r) if depth == 0 => {
                for imp in r.into_imports() {
                    let imp = imp.map_err(|e| e.to_string())?;
                    imports.push(format!("{}.{}", imp.module, imp.name));
                }
            }
            Payload::ExportSection(r) if depth == 0 => {
                for exp in r {
                    exports.push(exp.map_err(|e| e.to_string())?.name.to_string());
                }
            }
            Payload::ComponentImportSection(r) if depth == 0 => {
                for imp in r {
                    imports.push(imp.map_err(|e| e.to_string())?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(r) if depth == 0 => {
                for exp in r {
                    exports.push(exp.map_err(|e| e.to_string())?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(PluginInfo {
        form,
        size: bytes.len(),
        sha256: sha256_hex(bytes),
        imports,
        language: LANGUAGE_MARKS
            .iter()
            .zip(&marks)
            .find(|(_, seen)| **seen)
            .map(|((language, _), _)| *language),
        exports,
    })
}
