//! `weir check`: every problem of every pipeline file, at once.

use super::Outcome;
use crate::config::Pipeline;
use crate::pipeline::StageSpec;
use std::path::PathBuf;

/// Validates config, loads every plugin (ABI check, compile) and starts one
/// instance per stage (its `init` must accept the config).
pub fn check(files: &[PathBuf]) -> anyhow::Result<Outcome> {
    let runtime = super::runtime()?;
    let mut bad = 0usize;
    for file in files {
        let pipeline = match Pipeline::load(file) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                bad += 1;
                continue;
            }
        };
        let mut problems = Vec::new();
        let mut lines = Vec::new();
        for stage in &pipeline.stages {
            let language = std::fs::read(&stage.plugin)
                .ok()
                .and_then(|b| crate::runtime::inspect(&b).ok())
                .and_then(|i| i.language)
                .map_or(String::new(), |l| format!(" ({l})"));
            lines.push(format!(
                "  stage {}{language}: {}",
                stage.name,
                limits_line(&stage.limits, pipeline.batch.max_events)
            ));
            if let Err(e) = pipeline.trust.check_file(&stage.plugin) {
                problems.push(format!("stage {}: refused: {e}", stage.name));
                continue;
            }
            match runtime.load(&stage.plugin) {
                Ok(plugin) => {
                    let spec = StageSpec::new(&pipeline.name, stage.clone(), plugin.into());
                    if let Err(e) = spec.instantiate(&runtime) {
                        problems.push(format!(
                            "stage {}: the plugin does not start: {e}",
                            stage.name
                        ));
                    }
                }
                Err(e) => problems.push(format!("stage {}: {e}", stage.name)),
            }
        }
        if problems.is_empty() {
            println!(
                "ok: {} (pipeline {}, {} stages)",
                file.display(),
                pipeline.name,
                pipeline.stages.len()
            );
            println!("  delivery: {}", delivery(&pipeline));
            for line in lines {
                println!("{line}");
            }
        } else {
            bad += 1;
            eprintln!(
                "{}: {} problem{}",
                file.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            for p in problems {
                eprintln!("  {}: {p}", file.display());
            }
        }
    }
    Ok(if bad == 0 {
        Outcome::Success
    } else {
        Outcome::Problems
    })
}

/// A stage's limits as a call of a full batch gets them.
fn limits_line(l: &crate::runtime::StageLimits, batch: usize) -> String {
    let call = l.fuel_for(crate::runtime::CallKind::Process(batch));
    format!(
        "fuel {} per event ({} for a full batch: {batch} events and the {} every call gets on top), memory {}, timeout {:?}",
        thousands(l.fuel_per_event),
        thousands(call),
        crate::runtime::CALL_FUEL_EVENTS,
        bytes(l.memory),
        l.timeout
    )
}

/// 1234567 as "1,234,567".
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A size in the largest binary unit that divides it.
fn bytes(n: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} B")
}

/// What the pipeline's source promises, in one line.
fn delivery(p: &Pipeline) -> &'static str {
    use crate::config::{Delivery, SinkConfig, SourceConfig};
    if p.delivery == Delivery::ExactlyOnce {
        return "exactly-once: events, dead letters and consumed offsets are committed in one Kafka transaction; read the output with isolation.level=read_committed";
    }
    match (&p.source, &p.sink) {
        (SourceConfig::Nats(_), _) => "at-most-once: core NATS drops what is in flight when a worker stops or crashes",
        (SourceConfig::JetStream(_), SinkConfig::JetStream(_)) => {
            "effectively once: acks after the sinks confirm, and Nats-Msg-Id lets the stream drop replays"
        }
        (SourceConfig::JetStream(_), _) => "at-least-once: acks after the sinks confirm; a crash may publish some events twice",
        (SourceConfig::Kafka(_), _) if p.checkpoint.is_some() => "at-least-once: offsets are committed after the sinks confirm; stage state is checkpointed with its offsets, and a restarted worker or a moved partition resumes from the checkpoint, publishing what came after it again",
        (SourceConfig::Kafka(_), _) => "at-least-once: offsets are committed after the sinks confirm; a crash may publish some events twice",
        (SourceConfig::File { .. }, _) if p.checkpoint.is_some() => "at-least-once: line positions are checkpointed with the stage state; a restart resumes after the last checkpoint and may publish some events twice",
        (SourceConfig::File { .. } | SourceConfig::Stdin { .. }, _) => "at-least-once within a run; file and stdin positions are not stored",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_puts_commas_every_three_digits() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(10_000_000), "10,000,000");
    }
}
