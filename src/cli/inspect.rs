//! `weir inspect`: what a plugin artifact is, without running its code
//! beyond `weir_abi_version`.

use super::Outcome;
use crate::runtime::{inspect as read_info, Form};
use std::path::Path;

/// Prints form, size, digest, ABI, imports and exports.
pub fn inspect(path: &Path) -> anyhow::Result<Outcome> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let info = read_info(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    println!("plugin:  {}", path.display());
    println!("form:    {}", info.form);
    println!("built from: {}", info.language.unwrap_or("unknown"));
    println!("size:    {} bytes", info.size);
    println!("sha256:  {}", info.sha256);
    let runtime = super::runtime()?;
    let abi = match runtime.load_bytes(path, &bytes) {
        Ok(plugin) => match plugin.abi_version(&runtime) {
            Ok(v) => match info.form {
                Form::Component => format!("weir:plugin/stage@{v} (component form): ok"),
                Form::CoreModule => format!("weir core-module ABI version {v}: ok"),
            },
            Err(e) => format!("cannot read the ABI version: {e}"),
        },
        Err(e) => format!("not usable: {e}"),
    };
    println!("abi:     {abi}");
    println!("imports: ({})", info.imports.len());
    for i in &info.imports {
        println!("  {i}");
    }
    println!("exports: ({})", info.exports.len());
    for e in &info.exports {
        println!("  {e}");
    }
    Ok(Outcome::Success)
}
