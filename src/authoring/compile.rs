//! `weir build`: one plugin directory into one `.wasm`, with the
//! language's own compiler and the embedded SDK.
//!
//! | language | form | how |
//! |---|---|---|
//! | Rust | component (or core module) | `cargo build --target wasm32-wasip2` (`wasip1`) |
//! | Go | core module | `go build -buildmode=c-shared`, `GOOS=wasip1` |
//! | JavaScript, TypeScript | component | `tsc` checks types, esbuild bundles, componentize-js |
//! | Python | component | `requirements.txt` vendored, componentize-py |

use super::deps;
use super::process::{run, say, Stream};
use super::sdk::Sdk;
use super::toolchain::Toolchains;
use super::{io_err, AuthoringError, Language};
use crate::runtime::Form;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Where the artifact goes; default `<dir>/<dir name>.wasm`.
    pub out: Option<PathBuf>,
    /// The binary form, for the languages that have both (Rust).
    pub form: Option<Form>,
}

/// A built plugin.
#[derive(Debug, Clone)]
pub struct Built {
    /// The artifact.
    pub path: PathBuf,
    /// The language it was written in.
    pub language: Language,
    /// Nothing had changed since the last build.
    pub up_to_date: bool,
}

/// Where `weir build` puts the artifact of `dir` by default.
pub fn default_out(dir: &Path) -> PathBuf {
    dir.join(format!("{}.wasm", plugin_name(dir)))
}

/// The plugin's name: its directory's.
pub fn plugin_name(dir: &Path) -> String {
    std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "plugin".into())
}

/// Builds the plugin in `dir`, installing its toolchain first when missing.
pub fn build(dir: &Path, options: &BuildOptions) -> Result<Built, AuthoringError> {
    let language = Language::detect(dir)?;
    let out = options.out.clone().unwrap_or_else(|| default_out(dir));
    let out = absolute(&out)?;
    let dir = std::fs::canonicalize(dir).map_err(io_err(dir))?;
    let form = match language {
        Language::Rust => options.form.unwrap_or(Form::Component),
        Language::Go => Form::CoreModule,
        _ => Form::Component,
    };
    if options.form.is_some_and(|f| f != form) {
        return Err(AuthoringError::Refused(format!(
            "a {language} plugin is a {form}: only Rust plugins have both forms"
        )));
    }
    let cache = super::cache_root()?;
    std::fs::create_dir_all(&cache).map_err(io_err(&cache))?;
    let sdk = Sdk::unpack(&cache)?;
    let tools = Toolchains::new(&cache);
    if language != Language::Rust && is_up_to_date(&dir, &out, &sdk) {
        return Ok(Built {
            path: out,
            language,
            up_to_date: true,
        });
    }
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let part = out.with_extension("wasm.part");
    let work = WorkDir::new()?;
    say(format_args!(
        "building the {language} plugin {} as a {form}",
        dir.display()
    ));
    match language {
        Language::Rust => rust(&dir, form, &tools, &part)?,
        Language::Go => go(&dir, &sdk, &tools, work.path(), &part)?,
        Language::JavaScript | Language::TypeScript => {
            js(&dir, language, &sdk, &tools, work.path(), &part)?
        }
        Language::Python => python(&dir, &sdk, &tools, work.path(), &part)?,
    }
    std::fs::rename(&part, &out).map_err(io_err(&out))?;
    Ok(Built {
        path: out,
        language,
        up_to_date: false,
    })
}

fn rust(dir: &Path, form: Form, tools: &Toolchains, part: &Path) -> Result<(), AuthoringError> {
    let target = match form {
        Form::Component => "wasm32-wasip2",
        Form::CoreModule => "wasm32-wasip1",
    };
    tools.rust_target(target)?;
    let manifest = dir.join("Cargo.toml");
    let ran = run(
        "compile the Rust plugin",
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "--lib", "--target", target])
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--message-format=json-render-diagnostics"),
        Stream::Capture,
        Stream::Show,
        None,
    )?
    .check("cargo build")?;
    let artifact = String::from_utf8_lossy(&ran.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            m["manifest_path"]
                .as_str()
                .and_then(|p| std::fs::canonicalize(p).ok())
                == std::fs::canonicalize(&manifest).ok()
        })
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .find(|f| f.extension().is_some_and(|e| e == "wasm"));
    let Some(artifact) = artifact else {
        return Err(AuthoringError::Refused(format!(
            "{}: cargo built no .wasm; a plugin crate needs `[lib] crate-type = [\"cdylib\"]`",
            manifest.display()
        )));
    };
    std::fs::copy(&artifact, part).map_err(io_err(part))?;
    Ok(())
}

fn go(
    dir: &Path,
    sdk: &Sdk,
    tools: &Toolchains,
    work: &Path,
    part: &Path,
) -> Result<(), AuthoringError> {
    let goroot = tools.go()?;
    // A workspace of the plugin and the SDK: no module proxy is needed.
    let go_work = work.join("go.work");
    let text = format!(
        "go 1.24\n\nuse (\n\t{}\n\t{}\n)\n",
        dir.display(),
        sdk.go().display()
    );
    std::fs::write(&go_work, text).map_err(io_err(&go_work))?;
    let go_cache = tools.cache().join("go-build");
    run(
        "compile the Go plugin",
        Command::new(goroot.join("bin/go"))
            .args(["build", "-buildmode=c-shared", "-trimpath", "-o"])
            .arg(part)
            .arg(".")
            .current_dir(dir)
            .env("GOROOT", &goroot)
            .env("GOWORK", &go_work)
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOCACHE", &go_cache)
            .env("GOOS", "wasip1")
            .env("GOARCH", "wasm"),
        Stream::Show,
        Stream::Show,
        None,
    )?
    .check("go build")?;
    Ok(())
}

fn js(
    dir: &Path,
    language: Language,
    sdk: &Sdk,
    tools: &Toolchains,
    work: &Path,
    part: &Path,
) -> Result<(), AuthoringError> {
    let bin = tools.js(sdk)?;
    deps::npm_install(dir)?;
    let source = if language == Language::TypeScript {
        "stage.ts"
    } else {
        "stage.js"
    };
    let js_sdk = sdk.js();
    if language == Language::TypeScript {
        // esbuild strips types without checking them: tsc checks them first,
        // strictly, with the SDK's types for `weir-plugin`.
        let tsconfig = work.join("tsconfig.json");
        let config = serde_json::json!({
            "compilerOptions": {
                "noEmit": true,
                "strict": true,
                "target": "es2022",
                "module": "es2022",
                "moduleResolution": "bundler",
                "paths": { "weir-plugin": [js_sdk.join("index.d.ts")] },
                "typeRoots": [dir.join("node_modules/@types")],
            },
            "files": [dir.join(source)],
        });
        std::fs::write(&tsconfig, config.to_string()).map_err(io_err(&tsconfig))?;
        run(
            "check the TypeScript types",
            Command::new(bin.join("tsc"))
                .arg("-p")
                .arg(&tsconfig)
                .arg("--pretty")
                .current_dir(dir),
            Stream::Show,
            Stream::Show,
            None,
        )?
        .check("tsc (type errors above)")?;
    }
    let bundle = work.join("bundle.js");
    // A neutral platform has no Node built-ins: a dependency that needs one
    // fails here, and the refusal names it.
    let ran = run(
        "bundle the JavaScript plugin",
        Command::new(bin.join("esbuild"))
            .arg(js_sdk.join("entry.js"))
            .args([
                "--bundle",
                "--format=esm",
                "--platform=neutral",
                "--main-fields=module,main",
                "--log-level=warning",
                "--log-override:import-is-undefined=silent",
                "--color=false",
                "--external:weir:plugin/*",
                "--external:wasi:*",
            ])
            .arg(format!("--alias:weir-stage={}", dir.join(source).display()))
            .arg(format!(
                "--alias:weir-plugin={}",
                js_sdk.join("index.js").display()
            ))
            .arg(format!("--outfile={}", bundle.display()))
            .current_dir(dir),
        Stream::Show,
        Stream::Capture,
        None,
    )?;
    let messages = String::from_utf8_lossy(&ran.stderr);
    if !ran.success {
        if let Some(refusal) = deps::node_builtins(&messages, dir, source) {
            return Err(AuthoringError::Refused(refusal));
        }
    }
    eprint!("{messages}");
    ran.check("esbuild")?;
    let wit = js_wit(sdk, &bin, work)?;
    run(
        "make the component (componentize-js)",
        Command::new(bin.join("componentize-js"))
            .arg(&bundle)
            .arg("--wit")
            .arg(&wit)
            .args(["--world-name", "js-stage", "-d"])
            .args(["stdio", "random", "clocks", "http", "fetch-event", "-o"])
            .arg(part),
        Stream::Hide,
        Stream::Show,
        None,
    )?
    .check("componentize-js")?;
    Ok(())
}

/// The WIT a JavaScript plugin is built against: the SDK's world
/// `js-stage` (weir's `stage` and the WASI interfaces of `env` and
/// `readFile`), weir's contract, and the WASI 0.2.12 packages that the
/// pinned componentize-js toolchain ships (jco's builtin WIT).
fn js_wit(sdk: &Sdk, bin: &Path, work: &Path) -> Result<PathBuf, AuthoringError> {
    let wit = work.join("wit");
    let deps = wit.join("deps");
    copy_dir(&sdk.js().join("wit"), &wit)?;
    copy_dir(&sdk.wit(), &deps.join("weir-plugin"))?;
    let wasi = bin.join("../@bytecodealliance/jco/lib/wit/builtin/0.2.12");
    for package in [
        "wasi-cli",
        "wasi-clocks",
        "wasi-filesystem",
        "wasi-io",
        "wasi-random",
        "wasi-sockets",
    ] {
        copy_dir(&wasi.join(package), &deps.join(package))?;
    }
    Ok(wit)
}

/// Copies the files of `from` (not its subdirectories) into `to`.
fn copy_dir(from: &Path, to: &Path) -> Result<(), AuthoringError> {
    std::fs::create_dir_all(to).map_err(io_err(to))?;
    for e in std::fs::read_dir(from).map_err(io_err(from))? {
        let e = e.map_err(io_err(from))?;
        if e.file_type().is_ok_and(|t| t.is_file()) {
            let dest = to.join(e.file_name());
            std::fs::copy(e.path(), &dest).map_err(io_err(&dest))?;
        }
    }
    Ok(())
}

fn python(
    dir: &Path,
    sdk: &Sdk,
    tools: &Toolchains,
    work: &Path,
    part: &Path,
) -> Result<(), AuthoringError> {
    let venv = tools.componentize_py()?;
    let site = deps::vendor_python(dir, &venv, work)?;
    let mut cmd = Command::new(venv.join("bin/componentize-py"));
    cmd.arg("--wit-path")
        .arg(sdk.wit())
        .args(["--world", "stage", "componentize", "weir_stage_entry"])
        .args(["-p", "."])
        .arg("-p")
        .arg(sdk.python());
    if let Some(site) = &site {
        cmd.arg("-p").arg(site);
    }
    // Without VIRTUAL_ENV and with -p naming only the plugin, the SDK and
    // the vendored packages, nothing of the caller's environment ends up in
    // the component.
    cmd.arg("-o")
        .arg(part)
        .current_dir(dir)
        .env_remove("VIRTUAL_ENV")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    run(
        "make the component (componentize-py)",
        &mut cmd,
        Stream::Hide,
        Stream::Show,
        None,
    )?
    .check("componentize-py")?;
    Ok(())
}

/// Whether `out` is newer than every source file of `dir` and the SDK.
fn is_up_to_date(dir: &Path, out: &Path, sdk: &Sdk) -> bool {
    let Ok(built) = std::fs::metadata(out).and_then(|m| m.modified()) else {
        return false;
    };
    let newest = newest_source(dir, out).max(sdk.unpacked_at());
    newest.is_some_and(|n| n <= built)
}

fn newest_source(dir: &Path, out: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return newest;
    };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if matches!(
            name.as_ref(),
            "target" | "__pycache__" | ".git" | "node_modules"
        ) || name.ends_with(".wasm")
            || name.ends_with(".part")
            || path == out
        {
            continue;
        }
        let t = match e.file_type() {
            Ok(t) if t.is_dir() => newest_source(&path, out),
            Ok(_) => e.metadata().and_then(|m| m.modified()).ok(),
            Err(_) => None,
        };
        newest = newest.max(t);
    }
    newest
}

fn absolute(p: &Path) -> Result<PathBuf, AuthoringError> {
    if p.is_absolute() {
        return Ok(p.to_owned());
    }
    let cwd = std::env::current_dir().map_err(io_err(Path::new(".")))?;
    Ok(cwd.join(p))
}

/// A scratch directory, removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Result<WorkDir, AuthoringError> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "weir-build-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).map_err(io_err(&p))?;
        Ok(WorkDir(p))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
