//! Counts events per key and stamps each event with the running count in the
//! header `count` (unkeyed events count under the empty key), like the
//! counter; the counts live in the host's keyed state instead of the
//! plugin's memory. Each batch reads the counts of its keys in one host call
//! and writes them back in one, so a batch costs the same however many keys
//! the state holds, and nothing is exported between batches.

use std::collections::HashMap;
use weir_plugin::state;

/// The batch's keys come from events: foldhash hashes them several times
/// faster than std's SipHash, and still with a per-map seed.
type Map<'a> = HashMap<&'a [u8], usize, foldhash::fast::RandomState>;
use weir_plugin::{Config, Event, EventError, Header, Output, Stage};

struct KeyedCounter;

impl Stage for KeyedCounter {
    fn init(_config: &Config) -> Result<Self, String> {
        Ok(KeyedCounter)
    }

    fn process(&mut self, batch: Vec<Event>) -> Output {
        match count(batch.len(), &batch) {
            Ok(counts) => Output {
                events: batch
                    .into_iter()
                    .zip(counts)
                    .map(|(mut e, n)| {
                        e.headers.push(Header {
                            key: "count".into(),
                            value: n.to_string().into_bytes(),
                        });
                        e
                    })
                    .collect(),
                errors: vec![],
            },
            // State refused (a limit): every event of the batch goes to the
            // dead-letter sink with the host's reason.
            Err(e) => Output {
                events: vec![],
                errors: (0..batch.len() as u32)
                    .map(|index| EventError {
                        index,
                        message: e.to_string(),
                    })
                    .collect(),
            },
        }
    }
}

fn key(e: &Event) -> &[u8] {
    e.key.as_deref().unwrap_or_default()
}

/// The running count of each event, in order; the new counts stored.
fn count(n: usize, batch: &[Event]) -> Result<Vec<u64>, state::StateError> {
    // The batch's distinct keys, and each event's place among them: one
    // hash per event.
    let mut places = Map::with_capacity_and_hasher(n, Default::default());
    let mut keys: Vec<&[u8]> = Vec::new();
    let place: Vec<usize> = batch
        .iter()
        .map(|e| {
            *places.entry(key(e)).or_insert_with(|| {
                keys.push(key(e));
                keys.len() - 1
            })
        })
        .collect();
    let mut counts: Vec<u64> = state::load_many::<u64>(&keys)?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect();
    let running = place
        .into_iter()
        .map(|i| {
            counts[i] += 1;
            counts[i]
        })
        .collect();
    let updated: Vec<(&[u8], u64)> = keys.into_iter().zip(counts).collect();
    state::store_many(&updated)?;
    Ok(running)
}

weir_plugin::export_stage!(KeyedCounter);
