//! The compiled-artifact cache: `<sha256 of the artifact>-<engine hash>.cwasm`
//! files, so that a plugin compiles once per machine and engine
//! configuration and then loads in milliseconds.
//!
//! Loading a `.cwasm` trusts its bytes as machine code: the cache directory
//! must be writable only by the user weir runs as.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;

/// A directory of precompiled artifacts for one engine configuration.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
    engine_hash: String,
}

impl ArtifactCache {
    /// A cache in `dir` for artifacts compiled by `engine`.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        ArtifactCache {
            dir,
            engine_hash: format!("{:016x}", h.finish()),
        }
    }

    /// Where the compiled form of the artifact with this digest lives.
    pub fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.cwasm", self.engine_hash))
    }

    /// Stores compiled bytes; a failure only costs a recompile next time.
    pub fn store(&self, sha256: &str, compiled: &[u8]) {
        let path = self.path_for(sha256);
        let result = std::fs::create_dir_all(&self.dir).and_then(|()| {
            // Two compiles of one plugin may store at once (a starved
            // compile is done again): each writes a file of its own.
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
            std::fs::write(&tmp, compiled)?;
            std::fs::rename(&tmp, &path)
        });
        if let Err(e) = result {
            tracing::warn!("cannot write compiled plugin to {}: {e}", path.display());
        }
    }

    /// The cached file, if there is one.
    pub fn lookup(&self, sha256: &str) -> Option<PathBuf> {
        let p = self.path_for(sha256);
        Path::exists(&p).then_some(p)
    }
}
