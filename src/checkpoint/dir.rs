//! Checkpoints in a local directory: one embedded database per partition,
//! `<dir>/<pipeline>/<partition>.redb` ([redb]: transactional, crash-safe,
//! checksummed, pure Rust). A save writes the record and the keyed-state
//! changes in one transaction; a torn or damaged file is refused when
//! opened, never half-read. Workers of one consumer group may share the
//! directory: each opens only the files of the partitions it holds, and lets
//! one go when the partition leaves it.
//!
//! Keyed state is a log in the database: a save appends its changed keys
//! as a few large entries (a write of bytes, not a B-tree insert per key),
//! and once the log holds twice what its last compaction wrote (and at
//! least 64 MiB), the save folds it into the live keys. A load
//! reads the log in order; later changes win.
//!
//! Records saved by earlier versions as `<partition>.json` are still read
//! (without keyed state); the next save writes the database.
//!
//! [redb]: https://docs.rs/redb

use super::keyed_log::{self, apply, encode_chunks};
use super::{CheckpointStore, KeyedChanges, Record, StoreError, Stored};
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The partition's record, under the key `record`.
const RECORD: TableDefinition<&str, &[u8]> = TableDefinition::new("record");
/// Keyed state as a log: each save's changes ([`keyed_log`]) in entries
/// of about [`CHUNK`] bytes, under increasing numbers.
const KEYED_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("keyed_log");
/// The log's size: `log` (bytes of its entries), `base` (bytes its last
/// compaction wrote).
const LOG_SIZE: TableDefinition<&str, u64> = TableDefinition::new("keyed_log_size");
/// Keyed state as earlier versions saved it, a key per row:
/// `<stage> 0x00 <key>` → value. Read before the log; the next compaction
/// folds it in.
const KEYED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("keyed");

/// The size of one log entry.
const CHUNK: usize = 1 << 20;
/// The least size of a log worth folding.
const COMPACT_AT: u64 = 64 << 20;

/// How long to wait for another process (the partition's previous owner)
/// to let a partition's database go.
const OPEN_PATIENCE: Duration = Duration::from_secs(15);

/// A local directory of checkpoints.
pub struct DirStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// Databases open now, by file.
    open: Mutex<HashMap<PathBuf, Arc<Database>>>,
    /// The least size of a log worth folding ([`COMPACT_AT`]).
    compact_at: u64,
}

fn damaged(file: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Damaged(format!(
        "{}: {e}; move the file away to start the partition from nothing",
        file.display()
    ))
}

fn io(file: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("{}: {e}", file.display()))
}

/// A [`StoreError::Damaged`] of `file`.
fn damaged_in(file: &Path, e: StoreError) -> StoreError {
    match e {
        StoreError::Damaged(m) => damaged(file, m),
        e => e,
    }
}

/// Adds the rows of an earlier version's keyed table to `state`.
fn fold_rows(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    state: &mut KeyedChanges,
) -> Result<(), String> {
    for item in table.iter().map_err(|e| e.to_string())? {
        let (k, v) = item.map_err(|e| e.to_string())?;
        let k = k.value();
        let Some(split) = k.iter().position(|b| *b == 0) else {
            return Err("a keyed-state entry without a stage".into());
        };
        let stage = String::from_utf8_lossy(&k[..split]).into_owned();
        state
            .entry(stage)
            .or_default()
            .insert(&k[split + 1..], Some(v.value()));
    }
    Ok(())
}

/// Applies the log's entries to `state`, in order.
fn fold_log(
    table: &impl ReadableTable<u64, &'static [u8]>,
    state: &mut KeyedChanges,
) -> Result<(), StoreError> {
    let bad = |e: redb::StorageError| StoreError::Damaged(e.to_string());
    for item in table.iter().map_err(bad)? {
        let (_, v) = item.map_err(bad)?;
        apply(v.value(), state)?;
    }
    Ok(())
}

impl DirStore {
    /// Uses `dir`, creating it when missing.
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        Ok(DirStore {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                open: Mutex::default(),
                compact_at: COMPACT_AT,
            }),
        })
    }

    /// The database file of one partition.
    pub fn file(&self, pipeline: &str, partition: &str) -> PathBuf {
        self.inner
            .dir
            .join(pipeline)
            .join(format!("{partition}.redb"))
    }

    /// The file an earlier version saved the partition's record in.
    fn legacy_file(&self, pipeline: &str, partition: &str) -> PathBuf {
        self.inner
            .dir
            .join(pipeline)
            .join(format!("{partition}.json"))
    }

    /// Runs `f` on the store off the async threads (the database's reads,
    /// writes and fsyncs block).
    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StoreError::Io(e.to_string()))?
    }
}

impl Inner {
    /// The partition's database, opened (or created) once; waits while
    /// another process still holds it.
    fn database(&self, file: &Path) -> Result<Arc<Database>, StoreError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = open.get(file) {
            return Ok(db.clone());
        }
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        let deadline = Instant::now() + OPEN_PATIENCE;
        let db = loop {
            match Database::create(file) {
                Ok(db) => break Arc::new(db),
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                    return Err(io(
                        file,
                        "another process holds it (a worker that runs the partition); \
                         stop that worker, or wait until the partition moves",
                    ))
                }
                Err(redb::DatabaseError::Storage(redb::StorageError::Io(e)))
                    if e.kind() != std::io::ErrorKind::InvalidData =>
                {
                    return Err(io(file, e))
                }
                Err(e) => return Err(damaged(file, e)),
            }
        };
        open.insert(file.to_owned(), db.clone());
        Ok(db)
    }

    fn save_blocking(
        &self,
        file: &Path,
        record: &[u8],
        changes: &KeyedChanges,
    ) -> Result<(), StoreError> {
        let db = self.database(file)?;
        let fail = |e: &dyn std::fmt::Display| io(file, e);
        let txn = db.begin_write().map_err(|e| fail(&e))?;
        {
            let mut t = txn.open_table(RECORD).map_err(|e| fail(&e))?;
            t.insert("record", record).map_err(|e| fail(&e))?;
        }
        let entries = encode_chunks(changes, CHUNK);
        if !entries.is_empty() {
            let mut sizes = txn.open_table(LOG_SIZE).map_err(|e| fail(&e))?;
            let size = |name| -> Result<u64, StoreError> {
                Ok(sizes
                    .get(name)
                    .map_err(|e| fail(&e))?
                    .map_or(0, |v| v.value()))
            };
            let (mut log, mut base) = (size("log")?, size("base")?);
            {
                let mut t = txn.open_table(KEYED_LOG).map_err(|e| fail(&e))?;
                let next = t
                    .last()
                    .map_err(|e| fail(&e))?
                    .map_or(0, |(k, _)| k.value() + 1);
                for (seq, e) in (next..).zip(&entries) {
                    t.insert(seq, e.as_slice()).map_err(|e| fail(&e))?;
                    log += e.len() as u64;
                }
            }
            if log >= self.compact_at && log >= 2 * base {
                log = compact(&txn, file).map_err(|e| damaged_in(file, e))?;
                base = log;
            }
            sizes.insert("log", log).map_err(|e| fail(&e))?;
            sizes.insert("base", base).map_err(|e| fail(&e))?;
        }
        txn.commit().map_err(|e| fail(&e))
    }

    fn load_blocking(&self, file: &Path) -> Result<Option<Stored>, StoreError> {
        let db = self.database(file)?;
        let bad = |e: &dyn std::fmt::Display| damaged(file, e);
        let txn = db.begin_read().map_err(|e| bad(&e))?;
        let record = match txn.open_table(RECORD) {
            Ok(t) => match t.get("record").map_err(|e| bad(&e))? {
                Some(r) => Record::decode(r.value()).map_err(|e| bad(&e))?,
                None => return Ok(None),
            },
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(bad(&e)),
        };
        let mut state = KeyedChanges::new();
        match txn.open_table(KEYED) {
            Ok(t) => fold_rows(&t, &mut state).map_err(|e| bad(&e))?,
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(bad(&e)),
        }
        match txn.open_table(KEYED_LOG) {
            Ok(t) => fold_log(&t, &mut state).map_err(|e| damaged_in(file, e))?,
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(bad(&e)),
        }
        Ok(Some(Stored {
            record,
            keyed: keyed_log::live(state),
        }))
    }
}

/// Folds the keyed-state log (and an earlier version's table) into one
/// run of the live keys; returns its size in bytes.
fn compact(txn: &redb::WriteTransaction, file: &Path) -> Result<u64, StoreError> {
    let fail = |e: &dyn std::fmt::Display| io(file, e);
    let mut state = KeyedChanges::new();
    {
        let rows = txn.open_table(KEYED).map_err(|e| fail(&e))?;
        fold_rows(&rows, &mut state).map_err(StoreError::Damaged)?;
        let log = txn.open_table(KEYED_LOG).map_err(|e| fail(&e))?;
        fold_log(&log, &mut state)?;
    }
    txn.delete_table(KEYED).map_err(|e| fail(&e))?;
    txn.delete_table(KEYED_LOG).map_err(|e| fail(&e))?;
    keyed_log::drop_removed(&mut state);
    let mut log = txn.open_table(KEYED_LOG).map_err(|e| fail(&e))?;
    let mut bytes = 0;
    for (i, e) in encode_chunks(&state, CHUNK).iter().enumerate() {
        log.insert(i as u64, e.as_slice()).map_err(|e| fail(&e))?;
        bytes += e.len() as u64;
    }
    Ok(bytes)
}

#[async_trait]
impl CheckpointStore for DirStore {
    async fn save(
        &self,
        pipeline: &str,
        partition: &str,
        record: &Record,
        changes: Arc<KeyedChanges>,
    ) -> Result<(), StoreError> {
        let file = self.file(pipeline, partition);
        let record = record.encode();
        self.blocking(move |s| s.save_blocking(&file, &record, &changes))
            .await
    }

    async fn load(&self, pipeline: &str, partition: &str) -> Result<Option<Stored>, StoreError> {
        let file = self.file(pipeline, partition);
        if !file.exists() {
            let legacy = self.legacy_file(pipeline, partition);
            return match tokio::fs::read(&legacy).await {
                Ok(b) => Record::decode(&b)
                    .map(|record| {
                        Some(Stored {
                            record,
                            keyed: BTreeMap::new(),
                        })
                    })
                    .map_err(|e| damaged(&legacy, e)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io(&legacy, e)),
            };
        }
        self.blocking(move |s| s.load_blocking(&file)).await
    }

    async fn partitions(&self, pipeline: &str) -> Result<Vec<String>, StoreError> {
        let dir = self.inner.dir.join(pipeline);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir, e)),
        };
        let mut names = std::collections::BTreeSet::new();
        for entry in entries {
            let path = entry.map_err(|e| io(&dir, e))?.path();
            let kept = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("redb" | "json")
            );
            if let (true, Some(stem)) = (kept, path.file_stem().and_then(|s| s.to_str())) {
                names.insert(stem.to_string());
            }
        }
        Ok(names.into_iter().collect())
    }

    async fn release(&self, pipeline: &str, partition: &str) {
        let file = self.file(pipeline, partition);
        self.inner
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableTableMetadata;

    fn changes(entries: &[(&str, Option<&str>)]) -> KeyedChanges {
        let mut c = KeyedChanges::new();
        c.entry("count".into()).or_default().extend(
            entries
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()))),
        );
        c
    }

    fn entries(inner: &Inner, file: &Path) -> u64 {
        let db = inner.database(file).unwrap();
        let txn = db.begin_read().unwrap();
        txn.open_table(KEYED_LOG).unwrap().len().unwrap()
    }

    #[test]
    fn the_log_folds_into_the_live_keys_and_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Inner {
            dir: dir.path().to_owned(),
            open: Mutex::default(),
            compact_at: 200,
        };
        let file = dir.path().join("p/0.redb");
        // An earlier version's rows: kept until a compaction folds them.
        {
            let db = inner.database(&file).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(KEYED)
                .unwrap()
                .insert(&b"count\0old"[..], &b"7"[..])
                .unwrap();
            txn.commit().unwrap();
        }
        let mut expected = std::collections::BTreeMap::new();
        expected.insert(b"old".to_vec(), b"7".to_vec());
        let mut most = 0;
        for round in 0..40u32 {
            let (key, gone) = (format!("k{}", round % 7), format!("k{}", (round + 3) % 7));
            let value = round.to_string();
            let c = changes(&[(&key, Some(&value)), (&gone, None)]);
            inner
                .save_blocking(&file, &Record::default().encode(), &c)
                .unwrap();
            expected.insert(key.into_bytes(), value.into_bytes());
            expected.remove(gone.as_bytes());
            most = most.max(entries(&inner, &file));
            let stored = inner.load_blocking(&file).unwrap().unwrap();
            let got: std::collections::BTreeMap<_, _> =
                stored.keyed["count"].iter().cloned().collect();
            assert_eq!(got, expected, "after save {round}");
        }
        assert!(
            most < 20,
            "the log is folded as it grows ({most} entries at most)"
        );
        let db = inner.database(&file).unwrap();
        let txn = db.begin_read().unwrap();
        assert!(
            matches!(
                txn.open_table(KEYED),
                Err(redb::TableError::TableDoesNotExist(_))
            ),
            "an earlier version's rows are folded into the log"
        );
    }
}
