//! The JSON Lines shape of an event, one JSON object per line:
//!
//! ```json
//! {"key": "order-1", "value": {"amount": 12.5}, "headers": [["trace", "abc"]],
//!  "timestamp": 1700000000000, "topic": "orders"}
//! ```
//!
//! - `value`: a JSON string is taken as its UTF-8 bytes; any other JSON value
//!   (object, array, number…) as its compact JSON text. Binary values use
//!   `value_base64` instead. Required: one of the two.
//! - `key`: a string, or `key_base64` for binary keys. Optional.
//! - `headers`: a list of `[name, value]` pairs (names may repeat) or an
//!   object `{name: value}`; a value is a string or `{"base64": "…"}`.
//! - `timestamp`: milliseconds since the Unix epoch. `topic`: a string.
//!
//! On output, a value whose bytes are a JSON object or array is written as
//! that JSON, a UTF-8 value as a string, anything else as `value_base64`;
//! keys and headers likewise.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use weir_abi::{Event, Header};

/// Why a line is not an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JsonlError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, JsonlError> {
    Err(JsonlError(m.into()))
}

fn bytes_field(o: &Map<String, Value>, name: &str) -> Result<Option<Vec<u8>>, JsonlError> {
    let b64 = format!("{name}_base64");
    match (o.get(name), o.get(&b64)) {
        (Some(_), Some(_)) => err(format!("both {name:?} and {b64:?} are set; use one")),
        (Some(Value::Null), None) | (None, None) => Ok(None),
        (Some(Value::String(s)), None) => Ok(Some(s.as_bytes().to_vec())),
        (Some(v), None) => Ok(Some(
            serde_json::to_vec(v).map_err(|e| JsonlError(e.to_string()))?,
        )),
        (None, Some(Value::String(s))) => B64
            .decode(s)
            .map(Some)
            .map_err(|e| JsonlError(format!("{b64:?} is not base64: {e}"))),
        (None, Some(_)) => err(format!("{b64:?} must be a base64 string")),
    }
}

fn header_value(v: &Value) -> Result<Vec<u8>, JsonlError> {
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Object(o) if o.len() == 1 && o.contains_key("base64") => match &o["base64"] {
            Value::String(s) => B64
                .decode(s)
                .map_err(|e| JsonlError(format!("header value is not base64: {e}"))),
            _ => err("a header's base64 value must be a string"),
        },
        _ => err("a header value must be a string or {\"base64\": \"…\"}"),
    }
}

/// Parses one line.
///
/// # Errors
/// A [`JsonlError`] saying what is wrong with the line.
pub fn parse_event(line: &str) -> Result<Event, JsonlError> {
    let v: Value = serde_json::from_str(line).map_err(|e| JsonlError(format!("not JSON: {e}")))?;
    let Value::Object(o) = v else {
        return err("an event must be a JSON object");
    };
    for k in o.keys() {
        if ![
            "key",
            "key_base64",
            "value",
            "value_base64",
            "headers",
            "timestamp",
            "topic",
        ]
        .contains(&k.as_str())
        {
            return err(format!("unknown field {k:?}"));
        }
    }
    let value = bytes_field(&o, "value")?
        .ok_or_else(|| JsonlError("missing \"value\" (or \"value_base64\")".into()))?;
    let key = bytes_field(&o, "key")?;
    let mut headers = Vec::new();
    match o.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for pair in a {
                match pair.as_array().map(Vec::as_slice) {
                    Some([Value::String(k), v]) => headers.push(Header {
                        key: k.clone(),
                        value: header_value(v)?,
                    }),
                    _ => return err("each header must be a [name, value] pair"),
                }
            }
        }
        Some(Value::Object(m)) => {
            for (k, v) in m {
                headers.push(Header {
                    key: k.clone(),
                    value: header_value(v)?,
                });
            }
        }
        Some(_) => return err("\"headers\" must be a list of [name, value] pairs or an object"),
    }
    let timestamp = match o.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(t) => Some(t.as_i64().ok_or_else(|| {
            JsonlError("\"timestamp\" must be an integer (ms since the epoch)".into())
        })?),
    };
    let topic = match o.get("topic") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return err("\"topic\" must be a string"),
    };
    Ok(Event {
        key,
        value,
        headers,
        timestamp,
        topic,
    })
}

/// One output line; `None` fields are left out.
#[derive(serde::Serialize)]
struct Line {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_base64: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    headers: Vec<(String, Value)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<String>,
}

/// A value as embedded JSON (its exact text, when it is a one-line JSON
/// object or array), as a string, or else as base64.
fn value_json(b: &[u8]) -> (Option<Box<RawValue>>, Option<String>) {
    let Ok(s) = std::str::from_utf8(b) else {
        return (None, Some(B64.encode(b)));
    };
    let embeddable =
        matches!(s.trim_start().as_bytes().first(), Some(b'{' | b'[')) && !s.contains(['\n', '\r']);
    if embeddable {
        if let Ok(raw) = RawValue::from_string(s.to_owned()) {
            return (Some(raw), None);
        }
    }
    let quoted = Value::String(s.to_owned()).to_string();
    (RawValue::from_string(quoted).ok(), None)
}

/// Writes an event as one line (without the newline).
pub fn write_event(e: &Event) -> String {
    let (key, key_base64) = match e.key.as_deref().map(std::str::from_utf8) {
        None => (None, None),
        Some(Ok(s)) => (Some(s.to_owned()), None),
        Some(Err(_)) => (None, e.key.as_deref().map(|k| B64.encode(k))),
    };
    let (value, value_base64) = value_json(&e.value);
    let headers = e
        .headers
        .iter()
        .map(|h| {
            let v = match std::str::from_utf8(&h.value) {
                Ok(s) => Value::String(s.into()),
                Err(_) => serde_json::json!({ "base64": B64.encode(&h.value) }),
            };
            (h.key.clone(), v)
        })
        .collect();
    let line = Line {
        key,
        key_base64,
        value,
        value_base64,
        headers,
        timestamp: e.timestamp,
        topic: e.topic.clone(),
    };
    serde_json::to_string(&line).expect("an event always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let lines = [
            r#"{"key":"k","value":{"amount":1},"headers":[["h","v"],["b",{"base64":"AP8="}]],"timestamp":5,"topic":"t"}"#,
            r#"{"value":"plain text"}"#,
            r#"{"value_base64":"AP8="}"#,
        ];
        for l in lines {
            assert_eq!(write_event(&parse_event(l).unwrap()), l);
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(parse_event("{").unwrap_err().0.starts_with("not JSON"));
        assert!(parse_event("{}")
            .unwrap_err()
            .0
            .contains("missing \"value\""));
        assert!(parse_event(r#"{"value":1,"vaule":2}"#)
            .unwrap_err()
            .0
            .contains("unknown field"));
        assert!(parse_event(r#"{"value":"a","value_base64":"AA=="}"#)
            .unwrap_err()
            .0
            .contains("use one"));
    }
}
