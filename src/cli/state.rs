//! `weir state`: reads what a pipeline's `[checkpoint]` store holds,
//! offline: each partition's position and a stage's keyed state, for
//! debugging a plugin's state.

use super::Outcome;
use crate::checkpoint::Stored;
use crate::config::Pipeline;
use std::path::Path;

/// How a stored value looks in a terminal: text when it is printable
/// UTF-8, hex otherwise, and the number an 8-byte value holds (the SDKs
/// store integers little-endian).
fn show(bytes: &[u8]) -> String {
    let text = std::str::from_utf8(bytes)
        .ok()
        .filter(|t| !t.chars().any(char::is_control));
    let mut s = match text {
        Some(t) => format!("{t:?}"),
        None => format!("0x{}", hex::encode(bytes)),
    };
    if let Ok(n) = <[u8; 8]>::try_from(bytes) {
        s.push_str(&format!(" (u64 LE: {})", u64::from_le_bytes(n)));
    }
    s
}

/// Prints one partition's record and `stage`'s keyed state in it (only
/// `key` when given).
fn print_partition(name: &str, stored: &Stored, stage: &str, key: Option<&[u8]>) {
    let entries = stored
        .keyed
        .get(stage)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let bytes: usize = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
    println!(
        "partition {name}: position {}, {} keys, {bytes} bytes of keyed state",
        stored.record.position,
        entries.len()
    );
    if let Some(exported) = stored.record.states.get(stage) {
        println!(
            "  state the stage exported itself: {} bytes",
            exported.len()
        );
    }
    let mut entries: Vec<&(Vec<u8>, Vec<u8>)> = entries.iter().collect();
    entries.sort();
    match key {
        Some(key) => match entries.iter().find(|(k, _)| k == key) {
            Some((k, v)) => println!("  {} = {}", show(k), show(v)),
            None => println!("  {}: no value", show(key)),
        },
        None => {
            for (k, v) in entries {
                println!("  {} = {}", show(k), show(v));
            }
        }
    }
}

/// `weir state <pipeline.toml> --stage S [--partition P] [--key K]`.
pub fn state(
    file: &Path,
    stage: &str,
    partition: Option<&str>,
    key: Option<&str>,
) -> anyhow::Result<Outcome> {
    let pipeline = Pipeline::load(file)?;
    if !pipeline.stages.iter().any(|s| s.name == stage) {
        let names: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
        anyhow::bail!(
            "{}: no stage named {stage:?} (the stages: {})",
            file.display(),
            names.join(", ")
        );
    }
    let Some(checkpoint) = &pipeline.checkpoint else {
        anyhow::bail!(
            "{}: the pipeline has no [checkpoint] store, so nothing of its state is kept",
            file.display()
        );
    };
    super::tokio()?.block_on(async {
        let store = crate::checkpoint::open(&checkpoint.store).await?;
        let partitions = match partition {
            Some(p) => vec![p.to_string()],
            None => store.partitions(&pipeline.name).await?,
        };
        if partitions.is_empty() {
            println!("pipeline {}: no checkpoint saved yet", pipeline.name);
        }
        for name in partitions {
            match store.load(&pipeline.name, &name).await? {
                Some(stored) => print_partition(&name, &stored, stage, key.map(str::as_bytes)),
                None => println!("partition {name}: no checkpoint"),
            }
            store.release(&pipeline.name, &name).await;
        }
        anyhow::Ok(Outcome::Success)
    })
}
