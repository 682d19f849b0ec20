//! The smoke check (`[stage.smoke]`): before a swap, the running and the
//! new version each process the stage's sample events, one event per call,
//! on fresh instances of their own off the worker threads. The new version
//! is refused when it fails a sample the running one handled, or, with
//! `compare = "output"`, when its output differs. The running stage is not
//! touched: its live instances and their state are not involved.

use crate::config::{SmokeCheck, SmokeCompare};
use crate::pipeline::StageSpec;
use crate::runtime::{CallError, Runtime, StageInstance};
use crate::Event;

/// Reads a smoke check's sample file: one event per line, as the file source
/// reads them; blank lines are skipped.
///
/// # Errors
/// The first line that is not an event, by number.
pub fn sample_events(text: &str) -> Result<Vec<Event>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| crate::jsonl::parse_event(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// What one version did with one sample.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Output events.
    Handled(Vec<Event>),
    /// An error for the event, or a trap; the instance is started afresh.
    Failed(String),
}

/// A version under test: its instance, restarted after a trap.
struct Subject<'a> {
    runtime: &'a Runtime,
    spec: &'a StageSpec,
    instance: StageInstance,
}

impl<'a> Subject<'a> {
    fn start(runtime: &'a Runtime, spec: &'a StageSpec) -> Result<Self, CallError> {
        let instance = spec.instantiate(runtime)?;
        Ok(Subject {
            runtime,
            spec,
            instance,
        })
    }

    fn run(&mut self, event: &Event) -> Result<Outcome, CallError> {
        match self.instance.process(&mut vec![event.clone()]) {
            Ok(out) => Ok(match out.errors.into_iter().next() {
                Some(e) => Outcome::Failed(e.message),
                None => Outcome::Handled(out.events),
            }),
            Err(trap) => {
                self.instance = self.spec.instantiate(self.runtime)?;
                Ok(Outcome::Failed(trap.to_string()))
            }
        }
    }
}

/// Runs the smoke check of `new` against `old`.
///
/// # Errors
/// Why the new version is refused: the sample it fails or answers
/// differently, by line.
pub(crate) fn check(
    runtime: &Runtime,
    old: &StageSpec,
    new: &StageSpec,
    smoke: &SmokeCheck,
) -> Result<usize, String> {
    let file = smoke.events.display();
    let text = std::fs::read_to_string(&smoke.events)
        .map_err(|e| format!("smoke check: cannot read {file}: {e}"))?;
    let samples = sample_events(&text).map_err(|e| format!("smoke check: {file}: {e}"))?;
    let mut old_run = Subject::start(runtime, old)
        .map_err(|e| format!("smoke check: the running version does not start: {e}"))?;
    let mut new_run = Subject::start(runtime, new)
        .map_err(|e| format!("smoke check: the new version does not start: {e}"))?;
    for (n, event) in samples.iter().enumerate() {
        let sample = n + 1;
        let before = old_run
            .run(event)
            .map_err(|e| format!("smoke check: the running version does not restart: {e}"))?;
        let after = new_run.run(event).map_err(|e| {
            format!("smoke check: sample {sample} of {file}: the new version does not restart after failing it: {e}")
        })?;
        match (&before, &after) {
            (Outcome::Handled(_), Outcome::Failed(why)) => {
                return Err(format!(
                    "smoke check: sample {sample} of {file}: the running version handles it, the new one fails: {why}"
                ))
            }
            (Outcome::Handled(a), Outcome::Handled(b))
                if smoke.compare == SmokeCompare::Output && a != b =>
            {
                return Err(format!(
                    "smoke check: sample {sample} of {file}: the output differs from the running version's ({})",
                    difference(a, b)
                ))
            }
            _ => {}
        }
    }
    Ok(samples.len())
}

/// The first difference between two outputs, in a few words.
fn difference(old: &[Event], new: &[Event]) -> String {
    if old.len() != new.len() {
        return format!("{} events instead of {}", new.len(), old.len());
    }
    let Some((i, (a, b))) = old.iter().zip(new).enumerate().find(|(_, (a, b))| a != b) else {
        return "no difference".into();
    };
    let field = if a.value != b.value {
        "value"
    } else if a.key != b.key {
        "key"
    } else if a.headers != b.headers {
        "headers"
    } else if a.topic != b.topic {
        "topic"
    } else {
        "timestamp"
    };
    format!("output event {}: {field}", i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_skip_blank_lines_and_name_a_bad_one() {
        let v = sample_events("{\"value\":\"a\"}\n\n{\"value\":\"b\"}\n").unwrap();
        assert_eq!(v.len(), 2);
        let e = sample_events("{\"value\":\"a\"}\nnot json\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
    }

    #[test]
    fn a_difference_names_the_event_and_field() {
        let a = vec![Event::from_value("x")];
        let mut b = a.clone();
        b[0].topic = Some("t".into());
        assert_eq!(difference(&a, &b), "output event 1: topic");
        assert_eq!(difference(&a, &[]), "0 events instead of 1");
    }
}
