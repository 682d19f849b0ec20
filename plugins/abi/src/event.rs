//! The event model: what flows between sources, stages and sinks.

/// One header of an event: a string name and an opaque value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// The header's name (Kafka header key, NATS header name).
    pub key: String,
    /// The header's value, opaque bytes.
    pub value: Vec<u8>,
}

/// One event: what a source produced or what a stage emits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// Optional key; keyed events keep their per-key order end to end.
    pub key: Option<Vec<u8>>,
    /// The payload.
    pub value: Vec<u8>,
    /// Headers in order; names may repeat.
    pub headers: Vec<Header>,
    /// Milliseconds since the Unix epoch, when known.
    pub timestamp: Option<i64>,
    /// On input: the topic or subject the event came from. On output: an
    /// override of the sink's topic or subject; `None` uses the sink's own.
    pub topic: Option<String>,
}

impl Event {
    /// An event with only a value.
    pub fn from_value(value: impl Into<Vec<u8>>) -> Self {
        Event {
            value: value.into(),
            ..Event::default()
        }
    }

    /// The first header with this name, if any.
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.key == key)
            .map(|h| h.value.as_slice())
    }

    /// Bytes this event occupies, roughly: key, value, headers and topic.
    pub fn size_hint(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len)
            + self.value.len()
            + self
                .headers
                .iter()
                .map(|h| h.key.len() + h.value.len())
                .sum::<usize>()
            + self.topic.as_ref().map_or(0, String::len)
    }
}

/// A per-event failure reported by a stage: the input at `index` could not
/// be processed and goes to the dead-letter sink with `message`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventError {
    /// Index of the failed event in the batch the stage received.
    pub index: u32,
    /// Why it failed, for the dead-letter record.
    pub message: String,
}

/// What a stage returns for one batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Zero or more events per input, in order.
    pub events: Vec<Event>,
    /// Inputs that failed.
    pub errors: Vec<EventError>,
}
