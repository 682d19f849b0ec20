//! Consuming, converting and committing.

use super::assignments::{checkpoint_name, Assignments};
use super::commit::{ConsumedOffsets, KafkaCommitter};
use super::pause::{self, Paused};
use super::revoke::OnRevoke;
use crate::checkpoint::Restorer;
use crate::config::KafkaSource as Config;
use crate::source::chunker::{Chunker, Next};
use crate::source::{Chunk, Committer, Source, SourceError, SourceEvent};
use async_trait::async_trait;
use futures_util::StreamExt;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, MessageStream, Rebalance, StreamConsumer,
};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use weir_abi::{Event, Header};

pub(super) type Shared = Arc<Mutex<Assignments>>;

pub(super) fn lock(a: &Shared) -> MutexGuard<'_, Assignments> {
    a.lock().unwrap_or_else(|p| p.into_inner())
}

/// Commits what was confirmed of revoked partitions before they go (in
/// exactly-once mode, by committing the open transaction).
pub struct Ctx {
    assignments: Shared,
    /// Counts revocations, so that the source can keep the id of the
    /// partition it reads from until one happens.
    revocations: Arc<AtomicU64>,
    /// Set while the source holds its partitions paused.
    paused: Paused,
    transactional: bool,
    /// Exactly-once mode: how a revocation has the open transaction
    /// committed first.
    on_revoke: OnRevoke,
}

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        self.revocations.fetch_add(1, Ordering::AcqRel);
        if self.transactional {
            self.on_revoke.revoke(&self.assignments, tpl);
            return;
        }
        // With checkpoints, what was confirmed of them is saved first, so
        // that the offsets committed below never run ahead of the state
        // their new owner restores.
        if self.on_revoke.settle(&self.assignments, tpl) == Some(false) {
            tracing::warn!(
                partitions = tpl.count(),
                "kafka: the checkpoints of revoked partitions could not be saved in time; \
                 their new owner resumes from the last saved ones"
            );
        }
        let mut commit = TopicPartitionList::new();
        {
            let mut a = lock(&self.assignments);
            for e in tpl.elements() {
                if let Some(next) = a.revoke(e.topic(), e.partition()) {
                    let _ =
                        commit.add_partition_offset(e.topic(), e.partition(), Offset::Offset(next));
                }
            }
        }
        tracing::info!(
            partitions = tpl.count(),
            "kafka: partitions revoked; committing what was confirmed, abandoning what was not \
             yet processed"
        );
        if commit.count() > 0 {
            if let Err(e) = consumer.commit(&commit, CommitMode::Sync) {
                tracing::warn!("kafka: commit on revoke failed: {e}");
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            tracing::info!(partitions = tpl.count(), "kafka: partitions assigned");
            if self.paused.get() {
                // Assigned while the pipeline has no room: held like the rest.
                pause::pause(consumer, tpl);
            }
        }
    }
}

type Member = StreamConsumer<Ctx>;
type Messages<'a> = MessageStream<'a, Ctx>;

/// The group member, shared by the source, its committer and a
/// transactional producer. Closing it leaves the group: librdkafka revokes
/// the partitions (the revoke commits synchronously) and waits for the
/// broker, which blocks. The last handle to go closes it with
/// `block_in_place`, so that the async runtime moves its other tasks (other
/// pipelines' sources and sinks) off the blocked thread meanwhile.
pub(super) struct Kafka(Option<Member>);

impl std::ops::Deref for Kafka {
    type Target = Member;

    fn deref(&self) -> &Member {
        self.0.as_ref().expect("open until dropped")
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let Some(consumer) = self.0.take() else {
            return;
        };
        let close = move || {
            let started = std::time::Instant::now();
            drop(consumer);
            tracing::debug!(
                ms = started.elapsed().as_millis() as u64,
                "kafka: consumer closed"
            );
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(close),
            _ => close(),
        }
    }
}

/// A Kafka consumer-group member.
pub struct KafkaSource {
    consumer: Arc<Kafka>,
    topics: Vec<String>,
    assignments: Shared,
    revocations: Arc<AtomicU64>,
    paused: Paused,
    on_revoke: OnRevoke,
    /// How long a chunk waits for room before the partitions are paused.
    pause_after: Duration,
    restorer: Option<Restorer>,
    /// Set by the first run: a later one (exactly-once mode, after an
    /// abort) keeps the subscription, and so its place in the group.
    subscribed: bool,
}

impl KafkaSource {
    /// Creates the consumer (it joins the group when `run` subscribes).
    ///
    /// # Errors
    /// When librdkafka rejects the configuration.
    pub fn new(config: &Config) -> Result<Self, SourceError> {
        Self::build(config, false)
    }

    /// Creates a consumer for exactly-once mode: it never commits offsets
    /// itself; a transactional producer commits them through
    /// [`KafkaSource::consumed_offsets`].
    ///
    /// # Errors
    /// When librdkafka rejects the configuration.
    pub fn transactional(config: &Config) -> Result<Self, SourceError> {
        Self::build(config, true)
    }

    fn build(config: &Config, transactional: bool) -> Result<Self, SourceError> {
        let assignments = Shared::default();
        let revocations = Arc::new(AtomicU64::new(0));
        let paused = Paused::default();
        let on_revoke = OnRevoke::default();
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &config.brokers)
            .set("group.id", &config.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            // When its queue of fetched messages is full (the pipeline is
            // slower than the broker), librdkafka waits this long before it
            // looks again: by default a second, too long for brokers that
            // answer fetches with more than asked; at 0 its broker thread
            // spins on a core the worker threads need.
            .set("fetch.queue.backoff.ms", "5");
        for (k, v) in &config.properties.0 {
            c.set(k, v);
        }
        let consumer: Member = c
            .create_with_context(Ctx {
                assignments: assignments.clone(),
                revocations: revocations.clone(),
                paused: paused.clone(),
                transactional,
                on_revoke: on_revoke.clone(),
            })
            .map_err(|e| SourceError::Broker(format!("kafka consumer: {e}")))?;
        Ok(KafkaSource {
            consumer: Arc::new(Kafka(Some(consumer))),
            topics: config.topics.clone(),
            assignments,
            revocations,
            paused,
            on_revoke,
            pause_after: pause::pause_after(&config.properties),
            restorer: None,
            subscribed: false,
        })
    }
}

impl KafkaSource {
    /// What a transactional producer needs from this consumer.
    pub fn consumed_offsets(&self) -> ConsumedOffsets {
        ConsumedOffsets {
            consumer: self.consumer.clone(),
            assignments: self.assignments.clone(),
            on_revoke: self.on_revoke.clone(),
        }
    }
}

impl KafkaSource {
    /// Restores a partition's checkpoint at its first message `first`, which
    /// came from the group's committed offset. Returns whether `first` is
    /// the next event after the checkpoint; if not, the partition was moved
    /// to just after the checkpoint's position and `first` must be dropped
    /// (it comes again, or was confirmed already).
    async fn start_at_checkpoint(
        &self,
        restorer: &Restorer,
        partition: i32,
        first: &SourceEvent,
    ) -> Result<bool, SourceError> {
        let topic = first.event.topic.as_deref().unwrap_or_default();
        let Some(position) = restorer
            .restore_before(
                first.partition,
                &checkpoint_name(topic, partition),
                first.position,
            )
            .await?
        else {
            return Ok(true);
        };
        let next = position + 1;
        if first.position == next {
            return Ok(true);
        }
        tracing::info!(
            topic,
            partition,
            committed = first.position,
            checkpoint = next,
            "kafka: moving the partition to its checkpoint's position"
        );
        // Asynchronous; messages fetched before it are discarded.
        self.consumer
            .seek(
                topic,
                partition,
                Offset::Offset(next as i64),
                Duration::ZERO,
            )
            .map_err(|e| SourceError::Broker(format!("kafka seek {topic}/{partition}: {e}")))?;
        Ok(false)
    }
}

/// The partition last read from and its id, kept until a revocation
/// (messages come in runs of one partition, so most need no lookup under
/// the assignments lock).
#[derive(Default)]
struct LastPartition(Option<(String, i32, u32, u64)>);

impl LastPartition {
    /// The id of `m`'s partition.
    fn id(&mut self, m: &impl Message, assignments: &Shared, revocations: &AtomicU64) -> u32 {
        let seen_now = revocations.load(Ordering::Acquire);
        match &self.0 {
            Some((topic, partition, id, seen))
                if *partition == m.partition() && *seen == seen_now && topic == m.topic() =>
            {
                *id
            }
            _ => {
                let id = lock(assignments).id(m.topic(), m.partition(), m.offset());
                self.0 = Some((m.topic().to_string(), m.partition(), id, seen_now));
                id
            }
        }
    }
}

impl KafkaSource {
    /// `m` as a source event, and its partition.
    fn read(&self, m: &impl Message, last: &mut LastPartition) -> (i32, SourceEvent) {
        let e = SourceEvent {
            partition: last.id(m, &self.assignments, &self.revocations),
            position: m.offset() as u64,
            event: to_event(m),
            refused: None,
        };
        (m.partition(), e)
    }

    /// Sends `chunk` into the pipeline. When it has found no room for
    /// `pause_after`, the partitions are paused until it has (see
    /// [`super::pause`]); messages read meanwhile go to `early`. `false`
    /// when the pipeline is gone.
    async fn forward(
        &self,
        out: &mpsc::Sender<Chunk>,
        chunk: Chunk,
        messages: &mut Messages<'_>,
        last: &mut LastPartition,
        early: &mut VecDeque<(i32, SourceEvent)>,
    ) -> bool {
        let permit = match out.try_reserve() {
            Ok(permit) => Some(permit),
            Err(TrySendError::Closed(())) => None,
            Err(TrySendError::Full(())) => {
                match tokio::time::timeout(self.pause_after, out.reserve()).await {
                    Ok(permit) => permit.ok(),
                    Err(_) => self.paused_until_room(out, messages, last, early).await,
                }
            }
        };
        match permit {
            Some(permit) => {
                permit.send(chunk);
                true
            }
            None => false,
        }
    }

    /// Pauses the partitions and polls the consumer until the pipeline has
    /// room; `None` when it is gone.
    async fn paused_until_room<'o>(
        &self,
        out: &'o mpsc::Sender<Chunk>,
        messages: &mut Messages<'_>,
        last: &mut LastPartition,
        early: &mut VecDeque<(i32, SourceEvent)>,
    ) -> Option<mpsc::Permit<'o, Chunk>> {
        let since = Instant::now();
        self.paused.pause(&**self.consumer);
        tracing::info!(
            waited_ms = self.pause_after.as_millis() as u64,
            "kafka: no room in the pipeline; partitions paused, polling on to stay in the group"
        );
        let permit = loop {
            tokio::select! {
                biased;
                permit = out.reserve() => break permit.ok(),
                // Serves rebalances; a message comes only if it was fetched
                // before its partition was paused.
                m = messages.next() => match m {
                    Some(Ok(m)) => {
                        let mut tpl = TopicPartitionList::new();
                        tpl.add_partition(m.topic(), m.partition());
                        pause::pause(&**self.consumer, &tpl);
                        early.push_back(self.read(&m, last));
                    }
                    Some(Err(e)) => tracing::warn!("kafka: {e}"),
                    None => break None,
                },
            }
        };
        self.paused.resume(&**self.consumer);
        tracing::info!(
            paused_ms = since.elapsed().as_millis() as u64,
            "kafka: room in the pipeline again; partitions resumed"
        );
        permit
    }
}

fn to_event(m: &impl Message) -> Event {
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| Header {
                    key: h.key.to_string(),
                    value: h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    Event {
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers,
        timestamp: m.timestamp().to_millis(),
        topic: Some(m.topic().to_string()),
    }
}

#[async_trait]
impl Source for KafkaSource {
    async fn run(
        &mut self,
        out: mpsc::Sender<Chunk>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), SourceError> {
        if !self.subscribed {
            let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
            self.consumer
                .subscribe(&topics)
                .map_err(|e| SourceError::Broker(format!("kafka subscribe: {e}")))?;
            self.subscribed = true;
        }
        let mut chunker = Chunker::default();
        // Partition ids (one per assignment) whose checkpoint was looked at.
        let mut started = std::collections::HashSet::new();
        // One stream for the whole run (`recv` would register and drop a
        // waker slot per message).
        let mut messages = self.consumer.stream();
        let mut last = LastPartition::default();
        // Read while the partitions were being paused, in order.
        let mut early = VecDeque::new();
        loop {
            let item = match early.pop_front() {
                Some(read) => Some(Ok(read)),
                None => match chunker.next(&mut messages, &mut stop).await {
                    Next::Stop => break,
                    Next::Idle => None,
                    Next::Item(m) => Some(m.map(|m| self.read(&m, &mut last))),
                },
            };
            let ready = match item {
                Some(Ok((partition, e))) => {
                    if let Some(r) = &self.restorer {
                        if started.insert(e.partition)
                            && !self.start_at_checkpoint(r, partition, &e).await?
                        {
                            continue;
                        }
                    }
                    chunker.push(e)
                }
                Some(Err(e)) => {
                    // librdkafka retries and reconnects by itself.
                    tracing::warn!("kafka: {e}");
                    continue;
                }
                None => Some(chunker.take()),
            };
            let Some(chunk) = ready.filter(|c| !c.is_empty()) else {
                continue;
            };
            if !self
                .forward(&out, chunk, &mut messages, &mut last, &mut early)
                .await
            {
                return Ok(());
            }
        }
        chunker.finish(&out).await;
        Ok(())
    }

    fn restore_with(&mut self, restorer: Restorer) -> bool {
        self.restorer = Some(restorer);
        true
    }

    fn committer(&self) -> Arc<dyn Committer> {
        Arc::new(KafkaCommitter {
            consumer: self.consumer.clone(),
            assignments: self.assignments.clone(),
            on_revoke: self.on_revoke.clone(),
        })
    }
}
