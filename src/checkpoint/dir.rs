//! Checkpoints in a local directory: one embedded database per partition,
//! `<dir>/<pipeline>/<partition>.redb` ([redb]: transactional, crash-safe,
//! checksummed, pure Rust). A save writes the record and the keyed-state
//! changes in one transaction; a torn or damaged file is refused when
//! opened, never half-read. Workers of one consumer group may share the
//! directory: each opens only the files of the partitions it holds, and lets
//! one go when the partition leaves it.
//!
//! Records saved by earlier versions as `<partition>.json` are still read
//! (without keyed state); the next save writes the database.
//!
//! [redb]: https://docs.rs/redb

use super::{CheckpointStore, KeyedChanges, KeyedEntries, Record, StoreError, Stored};
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The partition's record, under the key `record`.
const RECORD: TableDefinition<&str, &[u8]> = TableDefinition::new("record");
/// Keyed state: `<stage> 0x00 <key>` → value.
const KEYED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("keyed");

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

/// The table key of `stage`'s `key`.
fn keyed_key(k: &mut Vec<u8>, stage: &str, key: &[u8]) {
    k.clear();
    k.extend_from_slice(stage.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
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
            let mut keyed = txn.open_table(KEYED).map_err(|e| fail(&e))?;
            let mut k = Vec::new();
            for (stage, entries) in changes {
                // In key order, redb's B-tree fills page after page.
                let mut entries: Vec<_> = entries.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (key, value) in entries {
                    keyed_key(&mut k, stage, key);
                    match value {
                        Some(v) => keyed.insert(k.as_slice(), v.as_slice()).map(drop),
                        None => keyed.remove(k.as_slice()).map(drop),
                    }
                    .map_err(|e| fail(&e))?;
                }
            }
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
        let mut keyed: BTreeMap<String, KeyedEntries> = BTreeMap::new();
        match txn.open_table(KEYED) {
            Ok(t) => {
                for item in t.iter().map_err(|e| bad(&e))? {
                    let (k, v) = item.map_err(|e| bad(&e))?;
                    let k = k.value();
                    let Some(split) = k.iter().position(|b| *b == 0) else {
                        return Err(bad(&"a keyed-state entry without a stage"));
                    };
                    let stage = String::from_utf8_lossy(&k[..split]).into_owned();
                    keyed
                        .entry(stage)
                        .or_default()
                        .push((k[split + 1..].to_vec(), v.value().to_vec()));
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(bad(&e)),
        }
        Ok(Some(Stored { record, keyed }))
    }
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
