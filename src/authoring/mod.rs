//! Plugin authoring: what `weir new`, `weir build` and `weir test` stand on.
//!
//! The SDKs and the plugin contract are embedded in the binary
//! ([`sdk`]) and unpacked into the cache on first use, so a plugin can live
//! in any directory. [`toolchain`] installs the pinned compilers into the
//! cache when they are missing, with a progress line per step; [`compile`]
//! turns a plugin directory into one `.wasm`; [`skeleton`] writes a new
//! plugin that builds and passes its own test at once.

pub mod compile;
mod deps;
mod process;
pub mod sdk;
pub mod skeleton;
pub mod toolchain;

use std::path::{Path, PathBuf};

/// The languages a plugin can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// A crate using the `weir-plugin` SDK.
    Rust,
    /// A main package using the `weir.dev/plugin` SDK.
    Go,
    /// A module `stage.js`.
    JavaScript,
    /// A module `stage.ts`.
    TypeScript,
    /// A module `stage.py` with one `weir_plugin.Stage` subclass.
    Python,
}

impl Language {
    /// Every language, in the order the docs list them.
    pub const ALL: [Language; 5] = [
        Language::Rust,
        Language::Go,
        Language::JavaScript,
        Language::TypeScript,
        Language::Python,
    ];

    /// The name `weir new` takes: `rust`, `go`, `js`, `ts`, `python`.
    pub fn cli_name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Go => "go",
            Language::JavaScript => "js",
            Language::TypeScript => "ts",
            Language::Python => "python",
        }
    }

    /// The language named `name` on the command line.
    pub fn from_cli_name(name: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| {
            l.cli_name() == name
                || l.to_string().eq_ignore_ascii_case(name)
                || (name == "javascript" && *l == Language::JavaScript)
                || (name == "typescript" && *l == Language::TypeScript)
        })
    }

    /// The language of the plugin in `dir`, told by the file that defines
    /// it: `Cargo.toml`, `go.mod`, `stage.ts`, `stage.js` or `stage.py`.
    pub fn detect(dir: &Path) -> Result<Language, AuthoringError> {
        let marks = [
            ("Cargo.toml", Language::Rust),
            ("go.mod", Language::Go),
            ("stage.ts", Language::TypeScript),
            ("stage.js", Language::JavaScript),
            ("stage.py", Language::Python),
        ];
        if !dir.is_dir() {
            return Err(AuthoringError::NotAPlugin {
                dir: dir.to_owned(),
                why: "is not a directory".into(),
            });
        }
        marks
            .into_iter()
            .find(|(f, _)| dir.join(f).is_file())
            .map(|(_, l)| l)
            .ok_or_else(|| AuthoringError::NotAPlugin {
                dir: dir.to_owned(),
                why: "holds no plugin: expected Cargo.toml (Rust), go.mod (Go), stage.ts \
                      (TypeScript), stage.js (JavaScript) or stage.py (Python); \
                      `weir new <language> <name>` makes one"
                    .into(),
            })
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Language::Rust => "Rust",
            Language::Go => "Go",
            Language::JavaScript => "JavaScript",
            Language::TypeScript => "TypeScript",
            Language::Python => "Python",
        })
    }
}

/// Why authoring a plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthoringError {
    /// The directory is not a plugin.
    #[error("{}: {why}", dir.display())]
    NotAPlugin {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A program the build needs is not installed.
    #[error("{tool} is not installed; {hint}")]
    MissingTool {
        /// The program.
        tool: String,
        /// How to install it.
        hint: String,
    },
    /// A step of the build failed; its own output was shown above.
    #[error("{step} failed ({status}); its output is above")]
    StepFailed {
        /// What was run.
        step: String,
        /// How it ended.
        status: String,
    },
    /// The plugin or one of its dependencies cannot be built into a plugin.
    #[error("{0}")]
    Refused(String),
    /// `weir new` would overwrite something.
    #[error("{} already exists; pick another name or --dir", path.display())]
    Exists {
        /// The path in the way.
        path: PathBuf,
    },
    /// No cache directory could be found.
    #[error("no cache directory: set HOME, XDG_CACHE_HOME or WEIR_TOOLCHAINS")]
    NoCache,
}

/// An I/O error on `path`.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuthoringError + '_ {
    move |source| AuthoringError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the toolchains, the unpacked SDK and the build caches live:
/// `$WEIR_TOOLCHAINS`, else `$XDG_CACHE_HOME/weir`, else `~/.cache/weir`.
pub fn cache_root() -> Result<PathBuf, AuthoringError> {
    if let Some(d) = std::env::var_os("WEIR_TOOLCHAINS") {
        return Ok(d.into());
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .map(|c| c.join("weir"))
        .ok_or(AuthoringError::NoCache)
}
