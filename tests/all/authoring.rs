//! `weir new` → `weir build` → `weir test` for every language, in a
//! temporary directory, as a plugin author runs them; and a plugin's own
//! dependencies: pure npm and Python packages bundled in, packages that
//! need Node built-ins or native code refused with a message saying so.
//! The toolchains are the ones the set-up installed into ~/.cache/weir;
//! nothing here reaches the network (cargo, npm and pip run offline).

use std::path::Path;
use std::process::{Command, Output};

fn weir(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .current_dir(dir)
        // Shared with the repository's own builds: the SDK's dependencies
        // compile once.
        .env(
            "CARGO_TARGET_DIR",
            crate::support::root().join("target/authoring"),
        )
        .env("CARGO_NET_OFFLINE", "true")
        .env("npm_config_offline", "true")
        .env("PIP_NO_INDEX", "1")
        .output()
        .expect("weir runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `weir new <language> greet`, then `weir build` and `weir test` in it.
fn new_build_test(language: &str, form: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let new = weir(tmp.path(), &["new", language, "greet"]);
    assert!(new.status.success(), "weir new {language}: {}", text(&new));
    let dir = tmp.path().join("greet");
    for f in ["samples.jsonl", "expected.jsonl", "README.md"] {
        assert!(dir.join(f).is_file(), "weir new {language} writes {f}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("README.md"))
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .count(),
        3,
        "a README of three lines"
    );
    let build = weir(&dir, &["build"]);
    let out = text(&build);
    assert!(build.status.success(), "weir build ({language}): {out}");
    assert!(out.contains(&format!("form:     {form}")), "{out}");
    assert!(out.contains("sha256:   "), "{out}");
    assert!(dir.join("greet.wasm").is_file());
    let test = weir(&dir, &["test"]);
    let out = text(&test);
    assert!(test.status.success(), "weir test ({language}): {out}");
    assert!(out.contains("output matches"), "{out}");
    assert!(
        out.contains("events:   3 in, 2 out, 1 dead letters"),
        "{out}"
    );
    assert!(out.contains(" per event, "), "fuel per event: {out}");
    assert!(out.contains(" ms per call"), "time per call: {out}");
    // A setting reaches init, and a mismatch is a failure with a diff.
    let test = weir(&dir, &["test", "--config", "greeting=hi"]);
    let out = text(&test);
    assert_eq!(test.status.code(), Some(1), "{out}");
    assert!(out.contains("output differs"), "{out}");
    assert!(out.contains("\"greeting\":\"hi\""), "{out}");
    tmp
}

#[test]
fn a_rust_plugin_from_new_to_test() {
    let tmp = new_build_test("rust", "component (Rust)");
    let dir = tmp.path().join("greet");
    let core = weir(&dir, &["test", "--core"]);
    assert!(core.status.success(), "{}", text(&core));
    assert!(text(&core).contains("core module (Rust)"));
}

#[test]
fn a_go_plugin_from_new_to_test() {
    let tmp = new_build_test("go", "core module (Go)");
    // A compile error shows the compiler's own message.
    let dir = tmp.path().join("greet");
    let main = dir.join("main.go");
    let src = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, src.replace("return nil", "return 1")).unwrap();
    let build = weir(&dir, &["build"]);
    assert!(!build.status.success());
    let out = text(&build);
    assert!(
        out.contains("main.go:") && out.contains("cannot use 1"),
        "{out}"
    );
    assert!(out.contains("go build failed"), "{out}");
}

#[test]
fn a_javascript_plugin_from_new_to_test() {
    new_build_test("js", "component (JavaScript)");
}

#[test]
fn a_typescript_plugin_from_new_to_test() {
    let tmp = new_build_test("ts", "component (TypeScript)");
    // Types are checked: a wrong one stops the build with tsc's message.
    let dir = tmp.path().join("greet");
    let stage = dir.join("stage.ts");
    let src = std::fs::read_to_string(&stage).unwrap();
    std::fs::write(
        &stage,
        src.replace("let greeting = 'hello';", "let greeting: number = 'hello';"),
    )
    .unwrap();
    let build = weir(&dir, &["build"]);
    assert!(!build.status.success());
    let out = text(&build);
    assert!(out.contains("TS2322"), "{out}");
}

#[test]
fn a_python_plugin_from_new_to_test() {
    new_build_test("python", "component (Python)");
}

#[test]
fn new_refuses_a_bad_name_an_unknown_language_and_a_used_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let o = weir(tmp.path(), &["new", "cobol", "greet"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("rust, go, js, ts, python"),
        "{}",
        text(&o)
    );
    let o = weir(tmp.path(), &["new", "go", "Greet Me"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("not a plugin name"), "{}", text(&o));
    std::fs::create_dir(tmp.path().join("taken")).unwrap();
    std::fs::write(tmp.path().join("taken/x"), "").unwrap();
    let o = weir(tmp.path(), &["new", "go", "taken"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("already exists"), "{}", text(&o));
}

/// A JavaScript plugin whose stage imports the npm package `dep`, a local
/// package with `index`'s source.
fn js_plugin_with_dependency(index: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let new = weir(tmp.path(), &["new", "js", "greet"]);
    assert!(new.status.success(), "{}", text(&new));
    let dep = tmp.path().join("dep");
    std::fs::create_dir(&dep).unwrap();
    std::fs::write(
        dep.join("package.json"),
        r#"{"name": "dep", "version": "1.0.0", "main": "index.js"}"#,
    )
    .unwrap();
    std::fs::write(dep.join("index.js"), index).unwrap();
    let dir = tmp.path().join("greet");
    std::fs::write(
        dir.join("package.json"),
        r#"{"name": "greet", "private": true, "type": "module", "dependencies": {"dep": "file:../dep"}}"#,
    )
    .unwrap();
    let stage = dir.join("stage.js");
    let src = std::fs::read_to_string(&stage).unwrap();
    let src = format!("import {{ shout }} from 'dep';\n{src}").replace(
        "value.greeting = greeting;",
        "value.greeting = shout(greeting);",
    );
    std::fs::write(&stage, src).unwrap();
    tmp
}

#[test]
fn npm_dependencies_are_bundled_into_a_javascript_plugin() {
    let tmp = js_plugin_with_dependency(
        "exports.shout = function (s) { return s.toUpperCase() + '!'; };\n",
    );
    let dir = tmp.path().join("greet");
    let test = weir(&dir, &["test"]);
    let out = text(&test);
    // The dependency ran inside the plugin: the greeting is shouted.
    assert!(out.contains("\"greeting\":\"HELLO!\""), "{out}");
    assert!(
        out.contains("npm install"),
        "the install step is shown: {out}"
    );
}

#[test]
fn a_dependency_that_needs_node_built_ins_is_refused_naming_it() {
    let tmp = js_plugin_with_dependency(
        "const fs = require('fs');\nexports.shout = function (s) { return fs.readFileSync(s, 'utf8'); };\n",
    );
    let dir = tmp.path().join("greet");
    let build = weir(&dir, &["build"]);
    let out = text(&build);
    assert!(!build.status.success(), "{out}");
    assert!(out.contains("imports Node built-ins"), "{out}");
    assert!(
        out.contains("\"fs\", imported at ../dep/index.js:1"),
        "{out}"
    );
    assert!(out.contains("(in the dependency dep)"), "{out}");
    assert!(!dir.join("greet.wasm").exists());
}

/// Writes the wheel `file` holding the module `shout` into `dir`.
fn write_wheel(dir: &Path, file: &str, module_source: &str) {
    let (name, version) = {
        let mut parts = file.split('-');
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    let tag = file
        .trim_end_matches(".whl")
        .splitn(3, '-')
        .nth(2)
        .unwrap()
        .to_owned();
    let script = r#"
import sys, zipfile
path, name, version, tag, source = sys.argv[1:6]
info = f"{name}-{version}.dist-info"
files = {
    f"{name}/__init__.py": source,
    f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: {'true' if tag.endswith('none-any') else 'false'}\nTag: {tag}\n",
}
files[f"{info}/RECORD"] = "".join(f"{p},,\n" for p in files) + f"{info}/RECORD,,\n"
with zipfile.ZipFile(path, "w") as z:
    for p, t in files.items():
        z.writestr(p, t)
"#;
    let ok = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.join(file))
        .args([&name, &version, &tag, module_source])
        .status()
        .expect("python3 runs");
    assert!(ok.success());
}

/// A Python plugin whose stage imports `shout` from the wheel `wheel`.
fn python_plugin_with_requirement(wheel: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let new = weir(tmp.path(), &["new", "python", "greet"]);
    assert!(new.status.success(), "{}", text(&new));
    let dir = tmp.path().join("greet");
    write_wheel(&dir, wheel, "def shout(s):\n    return s.upper() + '!'\n");
    std::fs::write(dir.join("requirements.txt"), format!("./{wheel}\n")).unwrap();
    let stage = dir.join("stage.py");
    let src = std::fs::read_to_string(&stage).unwrap();
    let src = src
        .replace(
            "from weir_plugin import",
            "from shout import shout\nfrom weir_plugin import",
        )
        .replace(
            "value[\"greeting\"] = self.greeting",
            "value[\"greeting\"] = shout(self.greeting)",
        );
    std::fs::write(&stage, src).unwrap();
    tmp
}

#[test]
fn pure_python_requirements_are_vendored_into_a_python_plugin() {
    let tmp = python_plugin_with_requirement("shout-1.0-py3-none-any.whl");
    let dir = tmp.path().join("greet");
    let test = weir(&dir, &["test"]);
    let out = text(&test);
    assert!(out.contains("vendored 1 package(s): shout"), "{out}");
    assert!(out.contains("\"greeting\":\"HELLO!\""), "{out}");
}

#[test]
fn a_requirement_with_native_code_is_refused_naming_it() {
    let tmp = python_plugin_with_requirement("shout-1.0-py3-none-linux_x86_64.whl");
    let dir = tmp.path().join("greet");
    let build = weir(&dir, &["build"]);
    let out = text(&build);
    assert!(!build.status.success(), "{out}");
    assert!(out.contains("have native code"), "{out}");
    assert!(
        out.contains("shout (shout-1.0-py3-none-linux_x86_64.whl)"),
        "{out}"
    );
    assert!(!dir.join("greet.wasm").exists());
}
