//! The CBOR (RFC 8949) encoding of the core-module form.
//!
//! Only the subset the schema needs: unsigned and negative integers, byte
//! and text strings, arrays and maps of definite length, and `null`. The
//! decoder is strict: indefinite lengths, unknown keys, wrong types,
//! trailing bytes and lengths past the end of the input are errors that name
//! the byte offset, so a broken plugin is reported, never guessed at.

use std::fmt;

mod decode;
mod encode;

pub use decode::{decode_batch, decode_config, decode_output};
pub use encode::{encode_batch, encode_config, encode_event, encode_output};

/// Why a CBOR buffer does not hold what the schema says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    /// What was wrong there.
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for DecodeError {}

const MAJOR_UINT: u8 = 0;
const MAJOR_NINT: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const NULL: u8 = 0xf6;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, EventError, Header, Output};

    fn sample() -> Vec<Event> {
        vec![
            Event::from_value(b"plain".to_vec()),
            Event {
                key: Some(vec![0, 1, 255]),
                value: vec![7; 300],
                headers: vec![Header {
                    key: "h".into(),
                    value: b"v".to_vec(),
                }],
                timestamp: Some(-5),
                topic: Some("t".into()),
            },
            Event {
                timestamp: Some(1_700_000_000_000),
                ..Event::default()
            },
        ]
    }

    #[test]
    fn batch_round_trip() {
        let mut buf = Vec::new();
        encode_batch(&mut buf, &sample());
        assert_eq!(decode_batch(&buf).unwrap(), sample());
    }

    #[test]
    fn output_round_trip() {
        let o = Output {
            events: sample(),
            errors: vec![EventError {
                index: 70_000,
                message: "bad".into(),
            }],
        };
        let mut buf = Vec::new();
        encode_output(&mut buf, &o);
        assert_eq!(decode_output(&buf).unwrap(), o);
    }

    #[test]
    fn config_round_trip() {
        let c = vec![("a".to_string(), "b".to_string())];
        let mut buf = Vec::new();
        encode_config(&mut buf, &c);
        assert_eq!(decode_config(&buf).unwrap(), c);
    }

    #[test]
    fn rejects_what_the_schema_does_not_allow() {
        // An integer, not a map.
        assert!(decode_output(&[0x01])
            .unwrap_err()
            .message
            .contains("expected an output map"));
        // A byte string announcing more than there is.
        let e = decode_output(&[
            0xa1, 0x66, b'e', b'v', b'e', b'n', b't', b's', 0x81, 0xa1, 0x65, b'v', b'a', b'l',
            b'u', b'e', 0x45, 1,
        ])
        .unwrap_err();
        assert!(e.message.contains("input ends"), "{e}");
        // Trailing garbage.
        assert!(decode_output(&[0xa0, 0x00])
            .unwrap_err()
            .message
            .contains("trailing"));
        // Indefinite length.
        assert!(decode_output(&[0xbf])
            .unwrap_err()
            .message
            .contains("indefinite"));
        // A huge count must not allocate.
        assert!(decode_batch(&[
            0xa1, 0x66, b'e', b'v', b'e', b'n', b't', b's', 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff
        ])
        .is_err());
        // An unknown field.
        let mut buf = Vec::new();
        encode_config(&mut buf, &[("events".into(), "x".into())]);
        assert!(decode_output(&buf).is_err());
    }
}
