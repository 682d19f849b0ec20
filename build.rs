//! Embeds the plugin SDKs and the plugin contract into the binary, so that
//! `weir new` and `weir build` work from any directory: `src/authoring/sdk.rs`
//! unpacks them into the cache. Writes `$OUT_DIR/sdk_files.rs` with every
//! file under the directories below (caches and build output excluded) and a
//! digest of their contents, which names the unpacked copy.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// What a plugin build needs, relative to the crate root.
const ROOTS: &[&str] = &[
    "plugins/wit",
    "plugins/abi/Cargo.toml",
    "plugins/abi/src",
    "plugins/abi/CORE-MODULE.md",
    "plugins/sdk/go",
    "plugins/sdk/js",
    "plugins/sdk/python",
    "plugins/sdk/rust/Cargo.toml",
    "plugins/sdk/rust/src",
];

const SKIPPED_DIRS: &[&str] = &["__pycache__", "node_modules", "target"];

fn walk(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_file() {
        if path.extension().is_none_or(|e| e != "pyc") {
            files.push(path.to_owned());
        }
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let skipped = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| SKIPPED_DIRS.contains(&n));
        if !skipped {
            walk(&p, files);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut files = Vec::new();
    for r in ROOTS {
        println!("cargo:rerun-if-changed={r}");
        walk(&root.join(r), &mut files);
    }
    // A fixed-key SipHash: stable for one toolchain, which is all a cache
    // name needs.
    let mut digest = std::hash::DefaultHasher::new();
    let mut out = String::from("/// The embedded SDK files: path in the repository, contents.\n");
    out.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for f in &files {
        let rel = f.strip_prefix(&root).expect("walked under the root");
        let rel = rel.to_string_lossy().replace('\\', "/");
        rel.hash(&mut digest);
        std::fs::read(f).expect("readable").hash(&mut digest);
        writeln!(
            out,
            "    ({rel:?}, include_bytes!({:?})),",
            f.display().to_string()
        )
        .expect("to a string");
    }
    out.push_str("];\n");
    writeln!(
        out,
        "/// A digest of every file above.\npub const DIGEST: &str = \"{:016x}\";",
        digest.finish()
    )
    .expect("to a string");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("sdk_files.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
