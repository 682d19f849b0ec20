//! `weir new <language> <name>`: a plugin skeleton that builds and passes
//! its own test at once.

use super::Outcome;
use crate::authoring::{cache_root, sdk::Sdk, skeleton, Language};
use std::path::Path;

/// Writes the skeleton and says what to run next.
pub fn new(language: &str, name: &str, dir: Option<&Path>) -> anyhow::Result<Outcome> {
    let Some(language) = Language::from_cli_name(language) else {
        anyhow::bail!(
            "{language:?} is not a plugin language: use one of {}",
            Language::ALL.map(Language::cli_name).join(", ")
        );
    };
    let cache = cache_root()?;
    std::fs::create_dir_all(&cache).map_err(|e| anyhow::anyhow!("{}: {e}", cache.display()))?;
    let sdk = Sdk::unpack(&cache)?;
    let dir = skeleton::create(language, name, dir, &sdk)?;
    println!("created the {language} plugin {name} in {}", dir.display());
    println!("next: weir build {0} && weir test {0}", dir.display());
    Ok(Outcome::Success)
}
