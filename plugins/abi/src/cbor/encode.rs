//! Writing the schema's CBOR.

use super::{MAJOR_ARRAY, MAJOR_BYTES, MAJOR_MAP, MAJOR_NINT, MAJOR_TEXT, MAJOR_UINT};
use crate::{Event, Output};

#[inline(always)]
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u8::MAX as u64 {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= u16::MAX as u64 {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u32::MAX as u64 {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

#[inline(always)]
fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    head(out, MAJOR_BYTES, b.len() as u64);
    out.extend_from_slice(b);
}

#[inline(always)]
fn text(out: &mut Vec<u8>, s: &str) {
    head(out, MAJOR_TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        head(out, MAJOR_UINT, v as u64);
    } else {
        head(out, MAJOR_NINT, (-1 - v) as u64);
    }
}

/// Appends one event as a CBOR map.
pub fn encode_event(out: &mut Vec<u8>, e: &Event) {
    let n = 1
        + e.key.is_some() as u64
        + !e.headers.is_empty() as u64
        + e.timestamp.is_some() as u64
        + e.topic.is_some() as u64;
    // One reservation for the whole event: the fields' bytes plus at most
    // nine bytes of head and a field name for each.
    out.reserve(
        64 + e.key.as_ref().map_or(0, Vec::len)
            + e.value.len()
            + e.topic.as_ref().map_or(0, String::len)
            + e.headers
                .iter()
                .map(|h| 20 + h.key.len() + h.value.len())
                .sum::<usize>(),
    );
    head(out, MAJOR_MAP, n);
    if let Some(k) = &e.key {
        text(out, "key");
        bytes(out, k);
    }
    text(out, "value");
    bytes(out, &e.value);
    if !e.headers.is_empty() {
        text(out, "headers");
        head(out, MAJOR_ARRAY, e.headers.len() as u64);
        for h in &e.headers {
            head(out, MAJOR_ARRAY, 2);
            text(out, &h.key);
            bytes(out, &h.value);
        }
    }
    if let Some(ts) = e.timestamp {
        text(out, "timestamp");
        int(out, ts);
    }
    if let Some(t) = &e.topic {
        text(out, "topic");
        text(out, t);
    }
}

/// Encodes a batch: `{"events": [event…]}`.
pub fn encode_batch(out: &mut Vec<u8>, events: &[Event]) {
    head(out, MAJOR_MAP, 1);
    text(out, "events");
    head(out, MAJOR_ARRAY, events.len() as u64);
    for e in events {
        encode_event(out, e);
    }
}

/// Encodes an output: `{"events": [event…], "errors": [{"index", "message"}…]}`.
pub fn encode_output(out: &mut Vec<u8>, o: &Output) {
    head(out, MAJOR_MAP, 2);
    text(out, "events");
    head(out, MAJOR_ARRAY, o.events.len() as u64);
    for e in &o.events {
        encode_event(out, e);
    }
    text(out, "errors");
    head(out, MAJOR_ARRAY, o.errors.len() as u64);
    for err in &o.errors {
        head(out, MAJOR_MAP, 2);
        text(out, "index");
        int(out, err.index as i64);
        text(out, "message");
        text(out, &err.message);
    }
}

/// Encodes the init configuration: a map of text to text.
pub fn encode_config(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    head(out, MAJOR_MAP, pairs.len() as u64);
    for (k, v) in pairs {
        text(out, k);
        text(out, v);
    }
}
