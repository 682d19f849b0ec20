//! What travels through the pipeline: batches in, processed batches out, and
//! the ack token that ties them to source positions.

use crate::source::Refusal;
use std::time::Instant;
use weir_abi::{Event, Header};

/// Identifies a batch to the completion tracker: its partition, its place
/// in that partition's sequence, and the last source position it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckToken {
    /// The partition every event of the batch belongs to.
    pub partition: u32,
    /// The batch's number within its partition, from 0, without gaps.
    pub seq: u64,
    /// The highest source position in the batch.
    pub last_position: u64,
}

/// A batch: events of one partition, in order.
#[derive(Debug)]
pub struct Batch {
    /// Ties the batch to its source positions.
    pub ack: AckToken,
    /// The events, in source order.
    pub events: Vec<Event>,
    /// The source position of each event, parallel to `events`.
    pub positions: Vec<u64>,
    /// Events the source sent straight to the dead-letter sink.
    pub refused: Vec<(Event, u64, Refusal)>,
    /// When the batch was formed, for the latency histogram.
    pub created: Instant,
}

impl Batch {
    /// About how many bytes its events hold.
    pub fn bytes(&self) -> usize {
        self.events.iter().map(Event::size_hint).sum()
    }
}

/// A batch after the stage chain.
#[derive(Debug)]
pub struct Processed {
    /// The batch's token.
    pub ack: AckToken,
    /// Events for the sink.
    pub events: Vec<Event>,
    /// Dead-letter records for the dead-letter sink.
    pub dead_letters: Vec<Event>,
    /// When the batch was formed.
    pub created: Instant,
    /// Each stateful stage's state after the batch (stage name, state), when
    /// the pipeline keeps persistent checkpoints.
    pub states: Vec<(String, Vec<u8>)>,
    /// The keys each stateful stage changed in its keyed state during the
    /// batch, with their values after it (`None`: removed), when the
    /// pipeline keeps persistent checkpoints.
    pub keyed: Vec<(String, KeyedDelta)>,
}

pub use crate::runtime::KeyedDelta;

impl Processed {
    /// `batch`, abandoned: its partition was given up, so nothing of it is
    /// processed or published, and its commit is dropped (its new owner
    /// reads it again).
    pub fn abandoned(batch: Batch) -> Self {
        Processed {
            ack: batch.ack,
            events: Vec::new(),
            dead_letters: Vec::new(),
            created: batch.created,
            states: Vec::new(),
            keyed: Vec::new(),
        }
    }

    /// Drops what the batch would publish; see [`Processed::abandoned`].
    pub fn abandon(self) -> Self {
        Processed {
            events: Vec::new(),
            dead_letters: Vec::new(),
            states: Vec::new(),
            keyed: Vec::new(),
            ..self
        }
    }
}

/// Where a dead letter came from.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The stage that failed, or `(source)`.
    pub stage: &'a str,
    /// A short, stable label (`trap`, `out_of_fuel`, `rejected`…).
    pub kind: &'static str,
    /// The full reason.
    pub reason: String,
    /// The source partition.
    pub partition: u32,
    /// The event's exact source position, when known (source and first
    /// stage); later stages know only the batch's range.
    pub position: Option<u64>,
    /// The batch's first and last source positions.
    pub range: (u64, u64),
}

/// Header names on dead-letter records.
pub mod headers {
    /// The pipeline.
    pub const PIPELINE: &str = "weir-pipeline";
    /// The stage that failed.
    pub const STAGE: &str = "weir-stage";
    /// The failure's kind.
    pub const KIND: &str = "weir-error-kind";
    /// The reason, in words.
    pub const REASON: &str = "weir-reason";
    /// The source partition.
    pub const PARTITION: &str = "weir-source-partition";
    /// The exact source position, when known.
    pub const POSITION: &str = "weir-source-position";
    /// The batch's source positions, `first-last`.
    pub const RANGE: &str = "weir-source-range";
    /// The topic or subject the event came from (or was routed to).
    pub const TOPIC: &str = "weir-source-topic";
}

/// A dead-letter record: the event as the failing stage received it (key,
/// value, headers, timestamp and topic kept), with `weir-*` headers added.
pub fn dead_letter(mut event: Event, f: &Failure<'_>) -> Event {
    // A dead letter always goes to the dead-letter sink's own topic.
    let topic = event.topic.take();
    let mut add = |k: &str, v: String| {
        event.headers.push(Header {
            key: k.into(),
            value: v.into_bytes(),
        })
    };
    add(headers::PIPELINE, f.pipeline.to_string());
    add(headers::STAGE, f.stage.to_string());
    add(headers::KIND, f.kind.to_string());
    add(headers::REASON, f.reason.clone());
    add(headers::PARTITION, f.partition.to_string());
    if let Some(p) = f.position {
        add(headers::POSITION, p.to_string());
    }
    add(headers::RANGE, format!("{}-{}", f.range.0, f.range.1));
    if let Some(t) = topic {
        add(headers::TOPIC, t);
    }
    event
}
