//! Shared helpers: one runtime per test process, paths to the plugins that
//! `plugins/build.sh` built, and WAT fixtures.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use weir::runtime::{CompiledPlugin, InstanceSettings, LogTag, Runtime, RuntimeOptions, StageInstance};
use weir::Event;

/// The process-wide runtime (one engine, as in production).
pub fn runtime() -> Arc<Runtime> {
    static RT: OnceLock<Arc<Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        Runtime::new(RuntimeOptions { cache_dir: Runtime::default_cache_dir() }).expect("runtime")
    })
    .clone()
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A built plugin: `plugins/dist/<name>` (examples) or
/// `plugins/dist/fixtures/<name>`. Missing artifacts fail the test: the
/// README's test command builds them first.
pub fn plugin_path(name: &str) -> PathBuf {
    let dist = root().join("plugins/dist");
    let p = [dist.join(name), dist.join("fixtures").join(name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("plugin {name} is not built: run plugins/build.sh (the README's test command does)"));
    p
}

/// Loads a built plugin.
pub fn load(name: &str) -> CompiledPlugin {
    runtime().load(&plugin_path(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// Loads a WAT fixture from `tests/fixtures/<name>.wat`.
pub fn load_wat(name: &str) -> CompiledPlugin {
    let path = root().join("tests/fixtures").join(format!("{name}.wat"));
    let wasm = wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    runtime().load_bytes(&path, &wasm).unwrap_or_else(|e| panic!("{e}"))
}

/// Settings with defaults and the given config pairs.
pub fn settings(config: &[(&str, &str)]) -> InstanceSettings {
    InstanceSettings {
        config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        tag: Arc::new(LogTag { pipeline: "test".into(), stage: "stage".into() }),
        ..InstanceSettings::default()
    }
}

/// A fresh instance of `plugin`.
pub fn instance(plugin: &CompiledPlugin, settings: &InstanceSettings) -> StageInstance {
    StageInstance::new(&runtime(), plugin, settings).unwrap_or_else(|e| panic!("{e}"))
}

/// Events with these values.
pub fn events(values: &[&str]) -> Vec<Event> {
    values.iter().map(|v| Event::from_value(v.as_bytes().to_vec())).collect()
}

/// The values of events, as strings.
pub fn values(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| String::from_utf8_lossy(&e.value).into_owned()).collect()
}
