//! `weir build [DIR]`: the plugin in DIR into one `.wasm`, its toolchain
//! installed first when missing; prints form, size and sha256.

use super::Outcome;
use crate::authoring::compile::{self, BuildOptions, Built};
use crate::runtime::{inspect, Form};
use std::path::Path;

/// Builds, prints what was built, signs it with `sign` when given.
pub fn build(
    dir: &Path,
    out: Option<&Path>,
    core: bool,
    sign: Option<&Path>,
) -> anyhow::Result<Outcome> {
    let options = BuildOptions {
        out: out.map(Path::to_owned),
        form: core.then_some(Form::CoreModule),
    };
    let built = compile::build(dir, &options)?;
    describe(&built)?;
    if let Some(key) = sign {
        let password = std::env::var("WEIR_KEY_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty());
        let sig = crate::signing::sign(&built.path, key, password)?;
        println!("signed:   {}", sig.display());
    }
    Ok(Outcome::Success)
}

/// Prints the artifact's path, form, language, size and digest.
pub(super) fn describe(built: &Built) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&built.path).map_err(|e| anyhow::anyhow!("{}: {e}", built.path.display()))?;
    let info = inspect(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", built.path.display()))?;
    println!(
        "{}: {}",
        if built.up_to_date {
            "up to date"
        } else {
            "built"
        },
        built.path.display()
    );
    println!("form:     {} ({})", info.form, built.language);
    println!("size:     {} bytes", info.size);
    println!("sha256:   {}", info.sha256);
    Ok(())
}
