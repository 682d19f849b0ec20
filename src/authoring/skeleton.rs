//! `weir new`: a plugin that builds and passes its own test at once. Every
//! language's skeleton is the same stage, `greet`: it adds `"greeting"`
//! (the stage's `greeting` setting, default `hello`) to every JSON object
//! and rejects any other value to the dead-letter sink. Beside the source:
//! `samples.jsonl`, `expected.jsonl` (what `weir test` compares with, dead
//! letters included) and a README of three lines.

use super::sdk::Sdk;
use super::{io_err, AuthoringError, Language};
use std::path::{Path, PathBuf};

/// The pipeline name `weir test` runs a plugin under; dead letters carry it.
pub const TEST_PIPELINE: &str = "weir-test";
/// The stage name `weir test` runs a plugin under; dead letters carry it.
pub const TEST_STAGE: &str = "plugin";

const SAMPLES: &str = r#"{"key": "ada", "value": {"name": "Ada"}}
{"key": "grace", "value": {"name": "Grace", "greeting": "hi"}}
{"key": "list", "value": [1, 2, 3]}
"#;

const EXPECTED: &str = r#"{"key":"ada","value":{"greeting":"hello","name":"Ada"}}
{"key":"grace","value":{"greeting":"hello","name":"Grace"}}
{"key":"list","value":[1,2,3],"headers":[["weir-pipeline","weir-test"],["weir-stage","plugin"],["weir-error-kind","rejected"],["weir-reason","value is not a JSON object"],["weir-source-partition","0"],["weir-source-position","3"],["weir-source-range","1-3"]]}
"#;

const RUST: &str = r#"//! {name}: adds "greeting" (the stage's `greeting` setting, default
//! "hello") to every JSON object; any other value is rejected to the
//! dead-letter sink.

use weir_plugin::{Config, Event, EventError, Output, Stage};

struct Greet {
    greeting: String,
}

impl Stage for Greet {
    fn init(config: &Config) -> Result<Self, String> {
        let greeting = config.get("greeting").unwrap_or("hello").to_owned();
        Ok(Greet { greeting })
    }

    fn process(&mut self, batch: Vec<Event>) -> Output {
        let mut out = Output::default();
        for (i, mut event) in batch.into_iter().enumerate() {
            match serde_json::from_slice::<serde_json::Value>(&event.value) {
                Ok(serde_json::Value::Object(mut value)) => {
                    value.insert("greeting".into(), self.greeting.clone().into());
                    event.value = serde_json::to_vec(&value).expect("an object serializes");
                    out.events.push(event);
                }
                _ => out.errors.push(EventError {
                    index: i as u32,
                    message: "value is not a JSON object".into(),
                }),
            }
        }
        out
    }
}

weir_plugin::export_stage!(Greet);
"#;

const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
# The SDK that `weir build` unpacks into its cache.
weir-plugin = { path = "{sdk}" }
serde_json = "1"

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
strip = "debuginfo"

# A workspace of its own, wherever the plugin lives.
[workspace]
"#;

const GO: &str = r#"// {name}: adds "greeting" (the stage's greeting setting, default "hello")
// to every JSON object; any other value is rejected to the dead-letter sink.
package main

import weir "weir.dev/plugin"

type Greet struct{ greeting string }

func (s *Greet) Init(c weir.Config) error {
	s.greeting = c.Get("greeting", "hello")
	return nil
}

func (s *Greet) Process(events []weir.Event) weir.Output {
	var out weir.Output
	for i := range events {
		value, err := weir.JSON(&events[i])
		if err != nil {
			out.Reject(i, "value is not a JSON object")
			continue
		}
		value["greeting"] = s.greeting
		if err := weir.WithJSON(&events[i], value); err != nil {
			out.Reject(i, err.Error())
			continue
		}
		out.Emit(events[i])
	}
	return out
}

func init() { weir.Export(&Greet{}) }

func main() {}
"#;

const GO_MOD: &str = "module example.com/{name}\n\ngo 1.24\n";

const JS: &str = r#"// {name}: adds "greeting" (the stage's greeting setting, default "hello")
// to every JSON object; any other value is rejected to the dead-letter sink.

import { Output, json, withJson } from 'weir-plugin';

let greeting = 'hello';

export function init(config) {
  greeting = config.greeting ?? 'hello';
}

export function process(events) {
  const out = new Output();
  events.forEach((event, i) => {
    let value;
    try {
      value = json(event);
    } catch {
      out.reject(i, 'value is not a JSON object');
      return;
    }
    value.greeting = greeting;
    out.emit(withJson(event, value));
  });
  return out;
}
"#;

const TS: &str = r#"// {name}: adds "greeting" (the stage's greeting setting, default "hello")
// to every JSON object; any other value is rejected to the dead-letter sink.

import { Output, json, withJson, type Event } from 'weir-plugin';

let greeting = 'hello';

export function init(config: Record<string, string>): void {
  greeting = config.greeting ?? 'hello';
}

export function process(events: Event[]): Output {
  const out = new Output();
  events.forEach((event, i) => {
    let value: Record<string, unknown>;
    try {
      value = json(event);
    } catch {
      out.reject(i, 'value is not a JSON object');
      return;
    }
    value.greeting = greeting;
    out.emit(withJson(event, value));
  });
  return out;
}
"#;

const PACKAGE_JSON: &str = r#"{
  "name": "{name}",
  "private": true,
  "type": "module",
  "description": "A weir plugin: pure-JavaScript dependencies listed here are bundled into it.",
  "dependencies": {}
}
"#;

const PYTHON: &str = r#""""{name}: adds "greeting" (the stage's greeting setting, default "hello")
to every JSON object; any other value is rejected to the dead-letter sink."""

from weir_plugin import Output, Rejected, Stage, json_value, with_json


class Greet(Stage):
    def init(self, config):
        self.greeting = config.get("greeting", "hello")

    def process(self, events):
        out = Output()
        for i, event in enumerate(events):
            try:
                value = json_value(event)
            except Rejected:
                out.reject(i, "value is not a JSON object")
                continue
            value["greeting"] = self.greeting
            out.emit(with_json(event, value))
        return out
"#;

const REQUIREMENTS: &str = "# Pure-Python packages this plugin needs, one per line: `weir build`\n\
# vendors them into the plugin (packages with native code are refused).\n";

/// Writes a new plugin `name` in `language` into `dir` (default `./name`)
/// and returns the directory.
pub fn create(
    language: Language,
    name: &str,
    dir: Option<&Path>,
    sdk: &Sdk,
) -> Result<PathBuf, AuthoringError> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        return Err(AuthoringError::Refused(format!(
            "{name:?} is not a plugin name: use lowercase letters, digits, '-' and '_', \
             starting with a letter (e.g. greet or order-enrich)"
        )));
    }
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_owned);
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(AuthoringError::Exists { path: dir });
    }
    let fill = |t: &str| {
        t.replace("{name}", name)
            .replace("{sdk}", &sdk.rust().display().to_string())
    };
    let (source, files): (&str, Vec<(&str, String)>) = match language {
        Language::Rust => (
            "src/lib.rs",
            vec![
                ("Cargo.toml", fill(CARGO_TOML)),
                ("src/lib.rs", fill(RUST)),
                (".gitignore", "/target\n*.wasm\n".into()),
            ],
        ),
        Language::Go => (
            "main.go",
            vec![
                ("go.mod", fill(GO_MOD)),
                ("main.go", fill(GO)),
                (".gitignore", "*.wasm\n".into()),
            ],
        ),
        Language::JavaScript | Language::TypeScript => {
            let (file, text) = if language == Language::TypeScript {
                ("stage.ts", fill(TS))
            } else {
                ("stage.js", fill(JS))
            };
            (
                file,
                vec![
                    (file, text),
                    ("package.json", fill(PACKAGE_JSON)),
                    (".gitignore", "node_modules/\n*.wasm\n".into()),
                ],
            )
        }
        Language::Python => (
            "stage.py",
            vec![
                ("stage.py", fill(PYTHON)),
                ("requirements.txt", REQUIREMENTS.into()),
                (".gitignore", "__pycache__/\n*.wasm\n".into()),
            ],
        ),
    };
    let readme = format!(
        "# {name}: a weir plugin in {language}\n\n\
         `weir build` makes `{name}.wasm`; `weir test` runs `samples.jsonl` through it and compares the result with `expected.jsonl`, dead letters included.\n\
         Edit `{source}`; weir's README (\"Writing plugins\") describes the {language} SDK.\n"
    );
    let mut all = files;
    all.push(("samples.jsonl", SAMPLES.into()));
    all.push(("expected.jsonl", EXPECTED.into()));
    all.push(("README.md", readme));
    for (rel, text) in all {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        std::fs::write(&path, text).map_err(io_err(&path))?;
    }
    Ok(dir)
}
