//! Checkpoints in a JetStream key-value bucket: one key per pipeline and
//! partition (`<pipeline>.<partition>`), the latest value wins (the bucket
//! keeps a short history).

use super::{CheckpointStore, Record, StoreError};
use crate::config::NatsConnection;
use async_trait::async_trait;

/// A JetStream key-value bucket of checkpoints.
pub struct NatsKvStore {
    kv: async_nats::jetstream::kv::Store,
}

impl NatsKvStore {
    /// Connects and opens `bucket`, creating it when missing.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the bucket.
    pub async fn open(connection: &NatsConnection, bucket: &str) -> Result<Self, StoreError> {
        let client = crate::nats::connect(connection)
            .await
            .map_err(StoreError::Io)?;
        let js = async_nats::jetstream::new(client);
        let kv = js
            .create_or_update_key_value(async_nats::jetstream::kv::Config {
                bucket: bucket.to_string(),
                description: "weir stage checkpoints".into(),
                history: 5,
                ..Default::default()
            })
            .await
            .map_err(|e| StoreError::Io(format!("bucket {bucket}: {e}")))?;
        Ok(NatsKvStore { kv })
    }
}

#[async_trait]
impl CheckpointStore for NatsKvStore {
    async fn save(
        &self,
        pipeline: &str,
        partition: &str,
        record: &Record,
    ) -> Result<(), StoreError> {
        self.kv
            .put(format!("{pipeline}.{partition}"), record.encode().into())
            .await
            .map(drop)
            .map_err(|e| StoreError::Io(e.to_string()))
    }

    async fn load(&self, pipeline: &str, partition: &str) -> Result<Option<Record>, StoreError> {
        match self.kv.get(format!("{pipeline}.{partition}")).await {
            Ok(Some(b)) => Record::decode(&b).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(StoreError::Io(e.to_string())),
        }
    }
}
