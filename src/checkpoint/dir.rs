//! Checkpoints as files: `<dir>/<pipeline>/<partition>.json`, each replaced
//! by writing a temporary file, syncing it and renaming it over the old one.

use super::{CheckpointStore, Record, StoreError};
use async_trait::async_trait;
use std::io::Write;
use std::path::PathBuf;

/// A local directory of checkpoints.
pub struct DirStore {
    dir: PathBuf,
}

impl DirStore {
    /// Uses `dir`, creating it when missing.
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn open(dir: &std::path::Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
        Ok(DirStore {
            dir: dir.to_owned(),
        })
    }

    /// The file of one partition's record.
    pub fn file(&self, pipeline: &str, partition: &str) -> PathBuf {
        self.dir.join(pipeline).join(format!("{partition}.json"))
    }
}

#[async_trait]
impl CheckpointStore for DirStore {
    async fn save(
        &self,
        pipeline: &str,
        partition: &str,
        record: &Record,
    ) -> Result<(), StoreError> {
        let (file, bytes) = (self.file(pipeline, partition), record.encode());
        tokio::task::spawn_blocking(move || {
            let tmp = file.with_extension("json.tmp");
            let io = |e: std::io::Error| StoreError::Io(format!("{}: {e}", tmp.display()));
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
            std::fs::rename(&tmp, &file).map_err(io)
        })
        .await
        .map_err(|e| StoreError::Io(e.to_string()))?
    }

    async fn load(&self, pipeline: &str, partition: &str) -> Result<Option<Record>, StoreError> {
        let file = self.file(pipeline, partition);
        match tokio::fs::read(&file).await {
            Ok(b) => Record::decode(&b).map(Some).map_err(|e| match e {
                StoreError::Damaged(m) => StoreError::Damaged(format!("{}: {m}", file.display())),
                e => e,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io(format!("{}: {e}", file.display()))),
        }
    }
}
