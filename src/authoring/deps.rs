//! A plugin's own dependencies: npm packages listed in `package.json`
//! (bundled by esbuild; none may need Node's built-ins) and Python packages
//! listed in `requirements.txt` (vendored into the component; none may
//! carry native code).

use super::process::{run, say, Stream};
use super::{io_err, AuthoringError};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `npm install` in `dir` when its `package.json` lists dependencies
/// that are not installed, or changed since they were.
pub(crate) fn npm_install(dir: &Path) -> Result<(), AuthoringError> {
    let manifest = dir.join("package.json");
    let Ok(text) = std::fs::read_to_string(&manifest) else {
        return Ok(());
    };
    let parsed: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        AuthoringError::Refused(format!("{}: not valid JSON: {e}", manifest.display()))
    })?;
    let lists_any = ["dependencies", "devDependencies"].iter().any(|k| {
        parsed
            .get(k)
            .and_then(|d| d.as_object())
            .is_some_and(|d| !d.is_empty())
    });
    if !lists_any {
        return Ok(());
    }
    let installed = modified(&dir.join("node_modules/.package-lock.json"));
    let wanted = [manifest.clone(), dir.join("package-lock.json")]
        .iter()
        .filter_map(|p| modified(p))
        .max();
    if installed.is_some() && installed >= wanted {
        return Ok(());
    }
    say(format_args!(
        "installing the npm dependencies of {} (npm install)",
        dir.display()
    ));
    run(
        "install the plugin's npm dependencies",
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir),
        Stream::Show,
        Stream::Show,
        Some(&dir.join("node_modules")),
    )?
    .check("npm install")?;
    Ok(())
}

/// When esbuild's `messages` say that imports resolve only to Node
/// built-ins, the refusal that names each of them, where it is imported
/// and from which dependency.
pub(crate) fn node_builtins(messages: &str, dir: &Path, source: &str) -> Option<String> {
    let lines: Vec<&str> = messages.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.split("Could not resolve \"").nth(1) else {
            continue;
        };
        let name = rest.split('"').next().unwrap_or_default();
        // The message's own block, up to the next error.
        let block: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| !l.contains("[ERROR]"))
            .copied()
            .collect();
        if !block.iter().any(|l| l.contains("built into node")) {
            continue;
        }
        let at = block
            .iter()
            .map(|l| l.trim())
            .find(|l| !l.is_empty())
            .map(|l| l.trim_end_matches(':').to_owned())
            .unwrap_or_default();
        let dependency = owning_package(dir, &at)
            .map(|d| format!(" (in the dependency {d})"))
            .unwrap_or_default();
        found.push(format!("  \"{name}\", imported at {at}{dependency}"));
    }
    if found.is_empty() {
        return None;
    }
    Some(format!(
        "{source} cannot be bundled into a plugin: it imports Node built-ins, and a plugin runs \
         sandboxed, without Node's APIs:\n{}\nDrop the dependency, or pick one that needs no Node \
         built-ins; files and the network are not there for a plugin unless the pipeline grants \
         them, through WASI.",
        found.join("\n")
    ))
}

/// The npm package holding the file of esbuild's location `at`
/// (`path:line:column`, relative to the plugin's `dir`): the name in the
/// nearest `package.json` above it that is not the plugin's own, else the
/// directory after `node_modules/`.
fn owning_package(dir: &Path, at: &str) -> Option<String> {
    let file = at.split(':').next().unwrap_or_default();
    let path = dir.join(file);
    let own = std::fs::canonicalize(dir).ok();
    let mut here = path.parent();
    while let Some(d) = here {
        if std::fs::canonicalize(d).ok() == own {
            break;
        }
        let name = std::fs::read_to_string(d.join("package.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["name"].as_str().map(str::to_owned));
        if name.is_some() {
            return name;
        }
        here = d.parent();
    }
    file.split("node_modules/").nth(1).map(|p| {
        let mut parts = p.split('/');
        let first = parts.next().unwrap_or_default();
        if first.starts_with('@') {
            format!("{first}/{}", parts.next().unwrap_or_default())
        } else {
            first.to_owned()
        }
    })
}

/// Vendors the packages of `dir/requirements.txt` into `work/site` and
/// returns it; `None` when the plugin lists none. Each package is built
/// into a wheel first: one that is not pure Python is refused.
pub(crate) fn vendor_python(
    dir: &Path,
    venv: &Path,
    work: &Path,
) -> Result<Option<PathBuf>, AuthoringError> {
    let requirements = dir.join("requirements.txt");
    let Ok(text) = std::fs::read_to_string(&requirements) else {
        return Ok(None);
    };
    if text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .all(str::is_empty)
    {
        return Ok(None);
    }
    let wheels = work.join("wheels");
    std::fs::create_dir_all(&wheels).map_err(io_err(&wheels))?;
    say(format_args!(
        "collecting the packages of {} (pip wheel)",
        requirements.display()
    ));
    run(
        "collect the plugin's Python packages",
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                "requirements.txt",
                "-w",
            ])
            .arg(&wheels)
            .env_remove("VIRTUAL_ENV")
            .current_dir(dir),
        Stream::Show,
        Stream::Show,
        Some(&wheels),
    )?
    .check("pip wheel")?;
    let mut names: Vec<String> = std::fs::read_dir(&wheels)
        .map_err(io_err(&wheels))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".whl"))
        .collect();
    names.sort();
    let native: Vec<String> = names
        .iter()
        .filter(|n| !is_pure_wheel(n))
        .map(|n| format!("  {} ({n})", n.split('-').next().unwrap_or(n)))
        .collect();
    if !native.is_empty() {
        return Err(AuthoringError::Refused(format!(
            "{}: these packages have native code, which a Python plugin cannot load \
             (componentize-py carries CPython compiled to WebAssembly, without a C compiler \
             for extensions):\n{}\nUse pure-Python packages only.",
            requirements.display(),
            native.join("\n")
        )));
    }
    let site = work.join("site");
    std::fs::create_dir_all(&site).map_err(io_err(&site))?;
    for n in &names {
        run(
            "unpack a wheel",
            Command::new(venv.join("bin/python"))
                .args(["-m", "zipfile", "-e"])
                .arg(wheels.join(n))
                .arg(&site),
            Stream::Show,
            Stream::Show,
            None,
        )?
        .check("unpacking a wheel")?;
    }
    say(format_args!(
        "vendored {} package(s): {}",
        names.len(),
        names
            .iter()
            .map(|n| n.split('-').next().unwrap_or(n))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(Some(site))
}

/// Whether a wheel's file name says pure Python: ABI tag `none`, platform
/// `any` (`name-version[-build]-python-abi-platform.whl`).
fn is_pure_wheel(file: &str) -> bool {
    let stem = file.trim_end_matches(".whl");
    let tags: Vec<&str> = stem.rsplitn(3, '-').collect();
    matches!(tags.as_slice(), ["any", "none", ..])
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_tags_tell_pure_python() {
        assert!(is_pure_wheel("six-1.16.0-py2.py3-none-any.whl"));
        assert!(!is_pure_wheel(
            "numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
        ));
        assert!(!is_pure_wheel("fast-1.0-cp311-abi3-any.whl"));
    }

    #[test]
    fn esbuild_builtin_errors_name_the_import_and_the_dependency() {
        let messages = "✘ [ERROR] Could not resolve \"fs\"\n\n    node_modules/uses-fs/index.js:1:19:\n      1 │ const fs = require('fs');\n\n  The package \"fs\" wasn't found on the file system but is built into node.\n\n✘ [ERROR] Could not resolve \"./missing\"\n\n    stage.js:1:7:\n";
        let m = node_builtins(messages, Path::new("/nonexistent"), "stage.js").expect("a built-in");
        assert!(m.contains("\"fs\", imported at node_modules/uses-fs/index.js:1:19 (in the dependency uses-fs)"), "{m}");
        assert!(!m.contains("missing"), "{m}");
        assert!(node_builtins(
            "✘ [ERROR] Could not resolve \"./x\"\n",
            Path::new("."),
            "stage.js"
        )
        .is_none());
    }
}
