//! Counts events per key and stamps each event with the running count in the
//! header `count` (unkeyed events count under the empty key). The counts are
//! the stage's state: they survive checkpoint export and import, so a
//! replaced instance or a new version carries on where the last one stopped.

use std::collections::BTreeMap;
use weir_plugin::{Config, Event, Header, Output, Stage};

#[derive(Default)]
struct Counter {
    counts: BTreeMap<Vec<u8>, u64>,
}

impl Stage for Counter {
    fn init(_config: &Config) -> Result<Self, String> {
        Ok(Counter::default())
    }

    fn process(&mut self, batch: Vec<Event>) -> Output {
        let events = batch
            .into_iter()
            .map(|mut e| {
                let n = self
                    .counts
                    .entry(e.key.clone().unwrap_or_default())
                    .or_insert(0);
                *n += 1;
                e.headers.push(Header {
                    key: "count".into(),
                    value: n.to_string().into_bytes(),
                });
                e
            })
            .collect();
        Output {
            events,
            errors: vec![],
        }
    }

    /// Format: for each key, u32 key length (LE), key bytes, u64 count (LE).
    fn checkpoint_export(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, n) in &self.counts {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(k);
            out.extend_from_slice(&n.to_le_bytes());
        }
        out
    }

    fn checkpoint_import(&mut self, mut state: &[u8]) -> Result<(), String> {
        let mut counts = BTreeMap::new();
        while !state.is_empty() {
            let bad = || "checkpoint is truncated".to_string();
            let len =
                u32::from_le_bytes(state.get(..4).ok_or_else(bad)?.try_into().unwrap()) as usize;
            let key = state.get(4..4 + len).ok_or_else(bad)?.to_vec();
            let n = u64::from_le_bytes(
                state
                    .get(4 + len..12 + len)
                    .ok_or_else(bad)?
                    .try_into()
                    .unwrap(),
            );
            counts.insert(key, n);
            state = &state[12 + len..];
        }
        self.counts = counts;
        Ok(())
    }
}

weir_plugin::export_stage!(Counter);
