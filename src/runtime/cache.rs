//! The compiled-artifact cache: `<sha256 of the artifact>-<engine hash>.cwasm`
//! files, so that a plugin compiles once per machine and engine
//! configuration and then loads in milliseconds.
//!
//! Loading a `.cwasm` trusts its bytes as machine code: the cache directory
//! must be writable only by the user weir runs as.
//!
//! The cache keeps itself under a size (`WEIR_CACHE_MAX`, default 4 GiB):
//! a load from it marks the file used (its modification time), and a store
//! that takes the directory past the size removes the files used least
//! recently. Every new build of a plugin is a new artifact, and a
//! component with an interpreter inside (Python, JavaScript) compiles to
//! tens of MB: without a bound, a machine that builds plugins often fills
//! its disk. A file removed while another process looks it up only costs
//! that process a compile.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use wasmtime::Engine;

/// The environment variable that sets the cache's size.
pub const MAX_ENV: &str = "WEIR_CACHE_MAX";
/// The cache's size unless [`MAX_ENV`] says otherwise.
pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;
/// A temporary file this old was left by a store that never finished.
const ABANDONED: Duration = Duration::from_secs(3600);

/// A directory of precompiled artifacts for one engine configuration.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
    engine_hash: String,
    max_bytes: u64,
}

/// The size [`MAX_ENV`] sets, else [`DEFAULT_MAX_BYTES`].
fn max_from_env() -> u64 {
    let Ok(v) = std::env::var(MAX_ENV) else {
        return DEFAULT_MAX_BYTES;
    };
    crate::config::units::parse_size(&v).unwrap_or_else(|e| {
        tracing::warn!(
            "{MAX_ENV}: {e} (write a size such as 4GiB); keeping the compiled-plugin cache under {} GiB",
            DEFAULT_MAX_BYTES >> 30
        );
        DEFAULT_MAX_BYTES
    })
}

/// A file of the cache directory, as eviction sees it.
struct Held {
    path: PathBuf,
    used: SystemTime,
    bytes: u64,
}

impl ArtifactCache {
    /// A cache in `dir` for artifacts compiled by `engine`, of the size
    /// [`MAX_ENV`] sets.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        ArtifactCache {
            dir,
            engine_hash: format!("{:016x}", h.finish()),
            max_bytes: max_from_env(),
        }
    }

    /// Where the compiled form of the artifact with this digest lives.
    pub fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.cwasm", self.engine_hash))
    }

    /// Stores compiled bytes; a failure only costs a recompile next time.
    /// Then removes the files used least recently while the directory
    /// holds more than its size.
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
        match result {
            Ok(()) => self.evict(&path),
            Err(e) => tracing::warn!("cannot write compiled plugin to {}: {e}", path.display()),
        }
    }

    /// The cached file, if there is one, marked as used now.
    pub fn lookup(&self, sha256: &str) -> Option<PathBuf> {
        let p = self.path_for(sha256);
        let used = std::fs::File::options()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_modified(SystemTime::now()));
        match used {
            Ok(()) => Some(p),
            // Still readable: only its place in the eviction order is off.
            Err(_) => Path::exists(&p).then_some(p),
        }
    }

    /// Removes the compiled files used least recently (any engine's) until
    /// the directory holds at most its size, never `keep`; and temporary
    /// files of stores that never finished.
    fn evict(&self, keep: &Path) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        let mut held = Vec::new();
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            let used = meta.modified().unwrap_or(now);
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".cwasm") {
                held.push(Held {
                    path,
                    used,
                    bytes: meta.len(),
                });
            } else if name.contains(".tmp")
                && now.duration_since(used).unwrap_or_default() > ABANDONED
            {
                let _ = std::fs::remove_file(&path);
            }
        }
        let mut total: u64 = held.iter().map(|h| h.bytes).sum();
        if total <= self.max_bytes {
            return;
        }
        held.sort_by_key(|h| h.used);
        let (mut removed, mut freed) = (0, 0);
        for h in held {
            if total <= self.max_bytes {
                break;
            }
            if h.path == keep {
                continue;
            }
            if std::fs::remove_file(&h.path).is_ok() {
                total -= h.bytes;
                removed += 1;
                freed += h.bytes;
            }
        }
        tracing::info!(
            "compiled-plugin cache {}: removed the {removed} files used least recently ({} MB) to stay under {} MB ({MAX_ENV})",
            self.dir.display(),
            freed >> 20,
            self.max_bytes >> 20
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, secs: u64) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn the_files_used_least_recently_go_once_the_cache_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let roomy = ArtifactCache::new(dir.path().to_owned(), &Engine::default());
        for (name, secs) in [("old", 300), ("used", 200), ("newer", 100)] {
            roomy.store(name, &[0; 1_000]);
            age(&roomy.path_for(name), secs);
        }
        let cache = ArtifactCache {
            max_bytes: 2_500,
            ..roomy
        };
        let abandoned = dir.path().join("x.tmp1-0");
        std::fs::write(&abandoned, b"half").unwrap();
        age(&abandoned, 2 * 3600);
        assert!(cache.lookup("used").is_some());
        cache.store("new", &[0; 1_000]);
        let left: Vec<bool> = ["old", "used", "newer", "new"]
            .iter()
            .map(|n| cache.path_for(n).exists())
            .collect();
        assert_eq!(
            left,
            [false, true, false, true],
            "the two used least recently went; a lookup counts as a use"
        );
        assert!(!abandoned.exists(), "an abandoned temporary file goes too");
        let tiny = ArtifactCache {
            max_bytes: 10,
            ..cache
        };
        tiny.store("big", &[0; 1_000]);
        assert!(tiny.path_for("big").exists(), "the file just stored stays");
    }
}
