//! `weir test [DIR]`: builds the plugin in DIR when it changed, runs its
//! `samples.jsonl` through it in the runtime, limits and batching of
//! `weir run`, and compares the events and dead letters with
//! `expected.jsonl`. Prints the fuel and time each call took.

use super::build::describe;
use super::check::thousands;
use super::replay::{compare, replay_file, report_differences};
use super::Outcome;
use crate::authoring::compile::{self, BuildOptions};
use crate::authoring::skeleton::{TEST_PIPELINE, TEST_STAGE};
use crate::config::Pipeline;
use std::path::Path;
use std::sync::atomic::Ordering;

/// Builds, replays the samples, compares, prints the cost per call.
pub fn test(dir: &Path, config: &[String], core: bool) -> anyhow::Result<Outcome> {
    let built = compile::build(
        dir,
        &BuildOptions {
            out: None,
            form: core.then_some(crate::runtime::Form::CoreModule),
        },
    )?;
    describe(&built)?;
    let samples = dir.join("samples.jsonl");
    let expected_file = dir.join("expected.jsonl");
    let expected = std::fs::read_to_string(&expected_file).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}; a plugin's test compares the output of samples.jsonl with it",
            expected_file.display()
        )
    })?;
    if !samples.is_file() {
        anyhow::bail!(
            "{}: no such file; it holds the events `weir test` runs through the plugin",
            samples.display()
        );
    }
    let pipeline = test_pipeline(dir, &built.path, config)?;
    let limits = pipeline.stages[0].limits;
    let max_events = pipeline.batch.max_events;
    let replayed = replay_file(pipeline, &samples, false, true, None)?;
    let report = replayed.report;
    let got = replayed.lines.unwrap_or_default();
    let tally = crate::metrics::stage_tally(TEST_PIPELINE, TEST_STAGE);
    let calls = tally.calls.load(Ordering::Relaxed);
    let fuel = tally.fuel.load(Ordering::Relaxed);
    let events = tally.events_in.load(Ordering::Relaxed);
    let nanos = tally.call_nanos.load(Ordering::Relaxed);
    println!(
        "events:   {} in, {} out, {} dead letters; {calls} call(s) in batches of up to {max_events}",
        report.events_in, report.events_out, report.dead_letters
    );
    if let Some(per_call) = fuel.checked_div(calls) {
        println!(
            "fuel:     {} per event, {} per call on average, {} at most (budget: {} per event)",
            thousands(fuel / events.max(1)),
            thousands(per_call),
            thousands(tally.max_fuel.load(Ordering::Relaxed)),
            thousands(limits.fuel_per_event),
        );
        println!(
            "time:     {:.3} ms per call on average, {:.3} ms at most (timeout: {:?})",
            nanos as f64 / calls as f64 / 1e6,
            tally.max_call_nanos.load(Ordering::Relaxed) as f64 / 1e6,
            limits.timeout,
        );
    }
    Ok(report_differences(
        &expected_file,
        &compare(&expected, &got),
    ))
}

/// A pipeline of the one stage, with default limits and batching, reading
/// the samples; `config` is `key=value` pairs for the plugin's `init`.
fn test_pipeline(dir: &Path, plugin: &Path, config: &[String]) -> anyhow::Result<Pipeline> {
    let mut settings = toml::Table::new();
    for pair in config {
        let Some((k, v)) = pair.split_once('=') else {
            anyhow::bail!("--config {pair:?}: expected key=value");
        };
        settings.insert(k.trim().to_owned(), toml::Value::String(v.to_owned()));
    }
    let mut stage = toml::Table::new();
    stage.insert("name".into(), TEST_STAGE.into());
    stage.insert("plugin".into(), plugin.display().to_string().into());
    stage.insert("config".into(), toml::Value::Table(settings));
    let mut table = toml::Table::new();
    table.insert("name".into(), TEST_PIPELINE.into());
    let source = [("type", "file"), ("path", "samples.jsonl")];
    table.insert("source".into(), kinds(&source));
    table.insert("stage".into(), vec![toml::Value::Table(stage)].into());
    table.insert("sink".into(), kinds(&[("type", "stdout")]));
    table.insert("dead_letter".into(), kinds(&[("type", "stdout")]));
    let text = toml::to_string(&table)?;
    Ok(Pipeline::parse(&dir.join("weir-test.toml"), &text)?)
}

fn kinds(pairs: &[(&str, &str)]) -> toml::Value {
    toml::Value::Table(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), toml::Value::String((*v).to_owned())))
            .collect(),
    )
}
