//! Reading the schema's CBOR, strictly.

use super::{
    DecodeError, MAJOR_ARRAY, MAJOR_BYTES, MAJOR_MAP, MAJOR_NINT, MAJOR_TEXT, MAJOR_UINT, NULL,
};
use crate::{Event, EventError, Header, Output};

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[cold]
    #[inline(never)]
    fn err<T>(&self, message: impl Into<String>) -> Result<T, DecodeError> {
        Err(DecodeError {
            offset: self.pos,
            message: message.into(),
        })
    }

    #[cold]
    #[inline(never)]
    fn short<T>(&self, n: usize) -> Result<T, DecodeError> {
        self.err(format!("{n} bytes announced but the input ends"))
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        match self.buf.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => self.short(n),
        }
    }

    #[inline(always)]
    fn peek(&self) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(b) => Ok(*b),
            None => self.err("unexpected end of input"),
        }
    }

    /// Reads a head and returns (major type, argument).
    #[inline(always)]
    fn head(&mut self) -> Result<(u8, u64), DecodeError> {
        let b = self.peek()?;
        let (major, info) = (b >> 5, b & 0x1f);
        if info < 24 {
            self.pos += 1;
            return Ok((major, info as u64));
        }
        self.long_head(major, info)
    }

    /// The heads whose argument follows in 1, 2, 4 or 8 bytes.
    fn long_head(&mut self, major: u8, info: u8) -> Result<(u8, u64), DecodeError> {
        self.pos += 1;
        let n = match info {
            24 => self.take(1)?[0] as u64,
            25 => u16::from_be_bytes(self.take(2)?.try_into().unwrap()) as u64,
            26 => u32::from_be_bytes(self.take(4)?.try_into().unwrap()) as u64,
            27 => u64::from_be_bytes(self.take(8)?.try_into().unwrap()),
            31 => {
                self.pos -= 1;
                return self.err("indefinite-length items are not allowed");
            }
            _ => {
                self.pos -= 1;
                return self.err(format!("reserved additional information {info}"));
            }
        };
        Ok((major, n))
    }

    #[inline(always)]
    fn expect(&mut self, major: u8, what: &str) -> Result<u64, DecodeError> {
        let at = self.pos;
        let (m, n) = self.head()?;
        if m != major {
            return self.wrong(at, m, what);
        }
        Ok(n)
    }

    #[cold]
    #[inline(never)]
    fn wrong<T>(&mut self, at: usize, found: u8, what: &str) -> Result<T, DecodeError> {
        self.pos = at;
        self.err(format!("expected {what}, found {}", major_name(found)))
    }

    #[inline(always)]
    fn len(&mut self, major: u8, what: &str) -> Result<usize, DecodeError> {
        let n = self.expect(major, what)?;
        // Every item takes at least one byte: a count larger than what is
        // left cannot be honest, and must not size an allocation.
        if n > (self.buf.len() - self.pos) as u64 {
            return self.err(format!("{what} of {n} items is longer than the input"));
        }
        Ok(n as usize)
    }

    #[inline(always)]
    fn raw_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.expect(MAJOR_BYTES, "a byte string")?;
        self.take(n as usize)
    }

    #[inline(always)]
    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        Ok(self.raw_bytes()?.to_vec())
    }

    /// A text string whose UTF-8 is not checked: for map keys, which are
    /// only ever compared against the schema's (ASCII) field names.
    #[inline(always)]
    fn name(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.expect(MAJOR_TEXT, "a text string")?;
        self.take(n as usize)
    }

    #[inline(always)]
    fn text(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.expect(MAJOR_TEXT, "a text string")?;
        let at = self.pos;
        let raw = self.take(n as usize)?;
        std::str::from_utf8(raw).map_err(|_| DecodeError {
            offset: at,
            message: "text string is not valid UTF-8".into(),
        })
    }

    /// Reports a map key the schema does not have.
    #[cold]
    #[inline(never)]
    fn unknown<T>(&mut self, at: usize, what: &str, name: &[u8]) -> Result<T, DecodeError> {
        self.pos = at;
        self.err(format!(
            "unknown {what} field {:?}",
            String::from_utf8_lossy(name)
        ))
    }

    fn int(&mut self) -> Result<i64, DecodeError> {
        let at = self.pos;
        let (m, n) = self.head()?;
        match m {
            MAJOR_UINT if n <= i64::MAX as u64 => Ok(n as i64),
            MAJOR_NINT if n <= i64::MAX as u64 => Ok(-1 - n as i64),
            MAJOR_UINT | MAJOR_NINT => {
                self.pos = at;
                self.err("integer out of the 64-bit signed range")
            }
            _ => {
                self.pos = at;
                self.err(format!("expected an integer, found {}", major_name(m)))
            }
        }
    }

    fn is_null(&mut self) -> Result<bool, DecodeError> {
        if self.peek()? == NULL {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.pos != self.buf.len() {
            return self.err(format!(
                "{} trailing bytes after the top-level item",
                self.buf.len() - self.pos
            ));
        }
        Ok(())
    }

    fn event(&mut self) -> Result<Event, DecodeError> {
        let n = self.len(MAJOR_MAP, "an event map")?;
        let mut e = Event::default();
        let mut has_value = false;
        let start = self.pos;
        for _ in 0..n {
            let key_at = self.pos;
            match self.name()? {
                b"key" => {
                    e.key = if self.is_null()? {
                        None
                    } else {
                        Some(self.bytes()?)
                    }
                }
                b"value" => {
                    e.value = self.bytes()?;
                    has_value = true;
                }
                b"headers" => {
                    let count = self.len(MAJOR_ARRAY, "a headers array")?;
                    e.headers.reserve(count);
                    for _ in 0..count {
                        if self.len(MAJOR_ARRAY, "a [name, value] header pair")? != 2 {
                            return self.err("a header must be a [name, value] pair");
                        }
                        let key = self.text()?.to_owned();
                        let value = self.bytes()?;
                        e.headers.push(Header { key, value });
                    }
                }
                b"timestamp" => {
                    e.timestamp = if self.is_null()? {
                        None
                    } else {
                        Some(self.int()?)
                    }
                }
                b"topic" => {
                    e.topic = if self.is_null()? {
                        None
                    } else {
                        Some(self.text()?.to_owned())
                    }
                }
                other => return self.unknown(key_at, "event", other),
            }
        }
        if !has_value {
            self.pos = start;
            return self.err("event has no \"value\" field");
        }
        Ok(e)
    }

    fn events(&mut self) -> Result<Vec<Event>, DecodeError> {
        let n = self.len(MAJOR_ARRAY, "an events array")?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.event()?);
        }
        Ok(v)
    }
}

fn major_name(m: u8) -> &'static str {
    match m {
        MAJOR_UINT => "an unsigned integer",
        MAJOR_NINT => "a negative integer",
        MAJOR_BYTES => "a byte string",
        MAJOR_TEXT => "a text string",
        MAJOR_ARRAY => "an array",
        MAJOR_MAP => "a map",
        6 => "a tagged item",
        _ => "a simple value or float",
    }
}

/// Decodes a batch written by [`encode_batch`].
///
/// # Errors
/// Returns a [`DecodeError`] when the buffer is not CBOR or not the schema.
pub fn decode_batch(buf: &[u8]) -> Result<Vec<Event>, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let n = r.len(MAJOR_MAP, "a batch map")?;
    let mut events = Vec::new();
    for _ in 0..n {
        let at = r.pos;
        match r.name()? {
            b"events" => events = r.events()?,
            other => return r.unknown(at, "batch", other),
        }
    }
    r.finish()?;
    Ok(events)
}

/// Decodes an output written by [`encode_output`]. Both fields are optional.
///
/// # Errors
/// Returns a [`DecodeError`] when the buffer is not CBOR or not the schema.
pub fn decode_output(buf: &[u8]) -> Result<Output, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let n = r.len(MAJOR_MAP, "an output map")?;
    let mut out = Output::default();
    for _ in 0..n {
        let at = r.pos;
        match r.name()? {
            b"events" => out.events = r.events()?,
            b"errors" => {
                let count = r.len(MAJOR_ARRAY, "an errors array")?;
                for _ in 0..count {
                    if r.len(MAJOR_MAP, "an error map")? != 2 {
                        return r.err("an error must have exactly \"index\" and \"message\"");
                    }
                    let mut err = EventError::default();
                    for _ in 0..2 {
                        let at = r.pos;
                        match r.text()? {
                            "index" => {
                                let i = r.int()?;
                                err.index = u32::try_from(i).or_else(|_| {
                                    r.pos = at;
                                    r.err(format!("error index {i} out of range"))
                                })?;
                            }
                            "message" => err.message = r.text()?.to_owned(),
                            other => {
                                let other = other.to_owned();
                                r.pos = at;
                                return r.err(format!("unknown error field {other:?}"));
                            }
                        }
                    }
                    out.errors.push(err);
                }
            }
            other => return r.unknown(at, "output", other),
        }
    }
    r.finish()?;
    Ok(out)
}

/// Decodes the init configuration written by [`encode_config`].
///
/// # Errors
/// Returns a [`DecodeError`] when the buffer is not a map of text to text.
pub fn decode_config(buf: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let n = r.len(MAJOR_MAP, "a config map")?;
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        let k = r.text()?.to_owned();
        let v = r.text()?.to_owned();
        pairs.push((k, v));
    }
    r.finish()?;
    Ok(pairs)
}
