//! `weir keygen`, `weir sign` and `weir verify`: minisign-compatible keys
//! and signatures for plugin artifacts.

use super::Outcome;
use crate::signing::{self, TrustedKey};
use anyhow::Context;
use std::path::Path;

fn password() -> Option<String> {
    std::env::var("WEIR_KEY_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
}

/// Creates `<name>.pub` and `<name>.key`.
pub fn keygen(name: &Path) -> anyhow::Result<Outcome> {
    let encrypted = password().is_some();
    let public = signing::keygen(name, password())?;
    println!("public key: {}", name.with_extension("pub").display());
    println!(
        "secret key: {}{}",
        name.with_extension("key").display(),
        if encrypted {
            ""
        } else {
            " (not encrypted; set WEIR_KEY_PASSWORD to encrypt it)"
        }
    );
    println!("trust it in a pipeline with: trusted_keys = [\"{public}\"]");
    Ok(Outcome::Success)
}

/// Writes `<plugin>.minisig`.
pub fn sign(plugin: &Path, key: &Path) -> anyhow::Result<Outcome> {
    let out = signing::sign(plugin, key, password())?;
    println!("signed: {}", out.display());
    Ok(Outcome::Success)
}

/// Checks `<plugin>.minisig` against the given keys.
pub fn verify(plugin: &Path, keys: &[String]) -> anyhow::Result<Outcome> {
    let here = Path::new(".");
    let trusted = keys
        .iter()
        .map(|k| TrustedKey::parse(k, here).with_context(|| format!("key {k}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    match signing::verify_file(plugin, &trusted) {
        Ok(id) => {
            println!("ok: {} is signed by trusted key {id}", plugin.display());
            Ok(Outcome::Success)
        }
        Err(e) => {
            eprintln!("refused: {e}");
            Ok(Outcome::Problems)
        }
    }
}
