//! NATS sources: core subjects in a queue group (at-most-once: a message is
//! gone once delivered), and JetStream durable pull consumers, acknowledged
//! only after both sinks confirmed. The connection is the crate's
//! [`crate::nats`], shared with the NATS sinks and checkpoint store.

mod core;
mod jetstream;

pub use self::core::NatsSource;
pub use jetstream::JetStreamSource;

use weir_abi::Header;

/// The partition of a message: the subject's hash shard, as a key's.
fn shard(subject: &str, shards: u32) -> u32 {
    super::key_shard(subject.as_bytes(), shards)
}

fn headers(h: Option<&async_nats::HeaderMap>) -> Vec<Header> {
    let Some(h) = h else { return Vec::new() };
    let mut out = Vec::new();
    for (k, values) in h.iter() {
        for v in values {
            out.push(Header {
                key: k.to_string(),
                value: v.as_str().as_bytes().to_vec(),
            });
        }
    }
    out
}
