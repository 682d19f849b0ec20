//! The SDKs and the plugin contract (WIT world, core-module ABI), embedded
//! in the binary by `build.rs` and unpacked into the cache once per
//! version, in the repository's layout.

use super::{io_err, AuthoringError};
use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));
}

/// An unpacked copy of the embedded SDK files.
#[derive(Debug, Clone)]
pub struct Sdk {
    root: PathBuf,
}

impl Sdk {
    /// The SDK of this binary under `cache`, unpacked when it is not there
    /// yet. The directory is named by the files' digest, so two weir
    /// versions never share one.
    pub fn unpack(cache: &Path) -> Result<Sdk, AuthoringError> {
        let root = cache.join(format!("sdk-{}", embedded::DIGEST));
        if root.join(".complete").is_file() {
            return Ok(Sdk { root });
        }
        let part = cache.join(format!(
            "sdk-{}.part-{}",
            embedded::DIGEST,
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&part);
        for (rel, bytes) in embedded::FILES {
            let path = part.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            std::fs::write(&path, bytes).map_err(io_err(&path))?;
        }
        let done = part.join(".complete");
        std::fs::write(&done, embedded::DIGEST).map_err(io_err(&done))?;
        if std::fs::rename(&part, &root).is_err() {
            // Another build unpacked it first.
            let _ = std::fs::remove_dir_all(&part);
        }
        Ok(Sdk { root })
    }

    /// The unpacked tree's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// When this copy was unpacked: a plugin built before it is stale.
    pub fn unpacked_at(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(self.root.join(".complete"))
            .and_then(|m| m.modified())
            .ok()
    }

    /// The WIT world `weir:plugin/stage`.
    pub fn wit(&self) -> PathBuf {
        self.root.join("plugins/wit")
    }

    /// The Rust SDK crate (`weir-plugin`).
    pub fn rust(&self) -> PathBuf {
        self.root.join("plugins/sdk/rust")
    }

    /// The Go SDK module (`weir.dev/plugin`).
    pub fn go(&self) -> PathBuf {
        self.root.join("plugins/sdk/go")
    }

    /// The JavaScript SDK package (`weir-plugin`) and its toolchain lock.
    pub fn js(&self) -> PathBuf {
        self.root.join("plugins/sdk/js")
    }

    /// The Python SDK (`weir_plugin` and the entry module).
    pub fn python(&self) -> PathBuf {
        self.root.join("plugins/sdk/python")
    }
}

/// The embedded file at `rel` (a path in the repository), if any.
pub fn file(rel: &str) -> Option<&'static [u8]> {
    embedded::FILES
        .iter()
        .find(|(p, _)| *p == rel)
        .map(|(_, b)| *b)
}
