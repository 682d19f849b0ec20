//! Collecting every problem of a pipeline file before reporting any.

use std::fmt;
use std::path::PathBuf;

/// One problem in a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `stage[2].memory`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Every problem found in one pipeline file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The pipeline file.
    pub file: PathBuf,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {n} problem{}",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {}: {}: {}", self.file.display(), p.key, p.message)?;
            if !p.hint.is_empty() {
                write!(f, "\n    hint: {}", p.hint)?;
            }
        }
        Ok(())
    }
}

/// Reads typed values out of a TOML table, remembering every problem and
/// which keys were looked at, so unknown keys can be reported too.
pub struct Walker<'a> {
    problems: &'a mut Vec<Problem>,
}

impl<'a> Walker<'a> {
    /// A walker that adds to `problems`.
    pub fn new(problems: &'a mut Vec<Problem>) -> Self {
        Walker { problems }
    }

    /// Records a problem.
    pub fn problem(&mut self, key: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.problems.push(Problem {
            key: key.to_string(),
            message: message.into(),
            hint: hint.into(),
        });
    }

    /// Reports every key of `table` not in `known`, as at `path`.
    pub fn unknown_keys(&mut self, path: &str, table: &toml::Table, known: &[&str]) {
        for k in table.keys() {
            if !known.contains(&k.as_str()) {
                let key = join(path, k);
                let hint = match closest(k, known) {
                    Some(c) => format!("did you mean `{c}`? Known keys here: {}", known.join(", ")),
                    None => format!("known keys here: {}", known.join(", ")),
                };
                self.problem(&key, "unknown key", hint);
            }
        }
    }

    /// A sub-table, if present and a table.
    pub fn table<'t>(
        &mut self,
        path: &str,
        t: &'t toml::Table,
        key: &str,
    ) -> Option<&'t toml::Table> {
        match t.get(key)? {
            toml::Value::Table(tab) => Some(tab),
            other => {
                self.problem(
                    &join(path, key),
                    format!("expected a table, found {}", other.type_str()),
                    "",
                );
                None
            }
        }
    }

    /// A string value, if present and a string.
    pub fn string(&mut self, path: &str, t: &toml::Table, key: &str) -> Option<String> {
        match t.get(key)? {
            toml::Value::String(s) => Some(s.clone()),
            other => {
                self.problem(
                    &join(path, key),
                    format!("expected a string, found {}", other.type_str()),
                    format!("write it in quotes: {key} = \"…\""),
                );
                None
            }
        }
    }

    /// A required string value.
    pub fn required_string(
        &mut self,
        path: &str,
        t: &toml::Table,
        key: &str,
        hint: &str,
    ) -> Option<String> {
        if !t.contains_key(key) {
            self.problem(&join(path, key), "missing", hint);
            return None;
        }
        self.string(path, t, key)
    }

    /// A non-negative integer within `range`, if present.
    pub fn integer(
        &mut self,
        path: &str,
        t: &toml::Table,
        key: &str,
        min: i64,
        max: i64,
    ) -> Option<u64> {
        match t.get(key)? {
            toml::Value::Integer(i) if (min..=max).contains(i) => Some(*i as u64),
            toml::Value::Integer(i) => {
                self.problem(
                    &join(path, key),
                    format!("{i} is out of range"),
                    format!("use a value from {min} to {max}"),
                );
                None
            }
            other => {
                self.problem(
                    &join(path, key),
                    format!("expected an integer, found {}", other.type_str()),
                    "",
                );
                None
            }
        }
    }

    /// A boolean, if present.
    pub fn boolean(&mut self, path: &str, t: &toml::Table, key: &str) -> Option<bool> {
        match t.get(key)? {
            toml::Value::Boolean(b) => Some(*b),
            other => {
                self.problem(
                    &join(path, key),
                    format!("expected true or false, found {}", other.type_str()),
                    "",
                );
                None
            }
        }
    }

    /// A string parsed by `parse` (sizes, durations), if present. Bare
    /// integers are accepted where `integers_ok`.
    pub fn parsed<T>(
        &mut self,
        path: &str,
        t: &toml::Table,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
        example: &str,
    ) -> Option<T> {
        let raw = match t.get(key)? {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            other => {
                self.problem(
                    &join(path, key),
                    format!(
                        "expected a string such as {example:?}, found {}",
                        other.type_str()
                    ),
                    "",
                );
                return None;
            }
        };
        match parse(&raw) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(&join(path, key), e, format!("write it like {example:?}"));
                None
            }
        }
    }

    /// A list of strings, if present.
    pub fn strings(&mut self, path: &str, t: &toml::Table, key: &str) -> Option<Vec<String>> {
        match t.get(key)? {
            toml::Value::Array(a) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v {
                        toml::Value::String(s) => out.push(s.clone()),
                        other => self.problem(
                            &format!("{}[{i}]", join(path, key)),
                            format!("expected a string, found {}", other.type_str()),
                            "",
                        ),
                    }
                }
                Some(out)
            }
            other => {
                self.problem(
                    &join(path, key),
                    format!("expected a list of strings, found {}", other.type_str()),
                    format!("write it like {key} = [\"A\", \"B\"]"),
                );
                None
            }
        }
    }
}

/// `path.key`, or `key` at the top level.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The known key closest to a misspelt one, if any is close.
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
