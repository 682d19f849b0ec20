//! JSON objects as written: the top-level members of an object's text, and
//! that text with members set, without parsing it into a tree and writing
//! it back. Everything a stage does not touch (key order, number spelling,
//! escapes, spacing) stays byte for byte. Every weir SDK has the same
//! helpers; validate the text first (e.g. with `serde_json`), as these only
//! find the structure.

use std::ops::Range;

/// One top-level member of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The key, unescaped.
    pub key: String,
    /// Where the member's value is in the text.
    pub value: Range<usize>,
}

/// The top-level members of the JSON object `text`, in order (a key that
/// appears twice is listed twice). An error when `text` is not an object.
pub fn members(text: &[u8]) -> Result<Vec<Member>, String> {
    let mut s = Scan { b: text, i: 0 };
    s.ws();
    if !s.eat(b'{') {
        return Err("value is not a JSON object".into());
    }
    let mut out = Vec::new();
    s.ws();
    if s.eat(b'}') {
        return Ok(out);
    }
    loop {
        s.ws();
        let start = s.i;
        s.string()?;
        let key = unescape(&text[start + 1..s.i - 1])?;
        s.ws();
        if !s.eat(b':') {
            return Err(s.error("':'"));
        }
        s.ws();
        let value = s.i;
        s.value()?;
        out.push(Member {
            key,
            value: value..s.i,
        });
        s.ws();
        if s.eat(b',') {
            continue;
        }
        if s.eat(b'}') {
            return Ok(out);
        }
        return Err(s.error("',' or '}'"));
    }
}

/// `text` (an object whose `members` were found) with each `(key, value)`
/// of `set` in it: the value (JSON text) of every member with that key is
/// replaced, and a key the object does not have is added at its end, in
/// the order given.
pub fn set_members(text: &[u8], members: &[Member], set: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 64);
    let mut at = 0;
    for m in members {
        if let Some((_, v)) = set.iter().find(|(k, _)| *k == m.key) {
            out.extend_from_slice(&text[at..m.value.start]);
            out.extend_from_slice(v.as_bytes());
            at = m.value.end;
        }
    }
    let close = text.iter().rposition(|&b| b == b'}').unwrap_or(text.len());
    out.extend_from_slice(&text[at..close]);
    let mut first = members.is_empty();
    for (k, v) in set {
        if members.iter().any(|m| m.key == *k) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(quote(k).as_bytes());
        out.push(b':');
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(&text[close..]);
    out
}

/// `s` as a JSON string: `"` and `\` escaped, control characters as `\n`,
/// `\t`… or `\u00XX`, everything else as it is.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.b.get(self.i) == Some(&c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn error(&self, wanted: &str) -> String {
        format!(
            "value is not a JSON object: expected {wanted} at byte {}",
            self.i
        )
    }

    fn string(&mut self) -> Result<(), String> {
        if !self.eat(b'"') {
            return Err(self.error("a string"));
        }
        while let Some(&c) = self.b.get(self.i) {
            self.i += 1;
            match c {
                b'"' => return Ok(()),
                b'\\' => self.i += 1,
                _ => {}
            }
        }
        Err(self.error("the end of a string"))
    }

    fn value(&mut self) -> Result<(), String> {
        match self.b.get(self.i) {
            Some(b'"') => self.string(),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                while let Some(&c) = self.b.get(self.i) {
                    match c {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                Err(self.error("the end of a value"))
            }
            Some(_) => {
                let start = self.i;
                while !matches!(
                    self.b.get(self.i),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.i += 1;
                }
                if self.i == start {
                    return Err(self.error("a value"));
                }
                Ok(())
            }
            None => Err(self.error("a value")),
        }
    }
}

/// The characters of a JSON string's body.
fn unescape(body: &[u8]) -> Result<String, String> {
    let bad = || "value is not a JSON object: a key is not a valid string".to_string();
    let text = std::str::from_utf8(body).map_err(|_| bad())?;
    if !text.contains('\\') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    let hex = |chars: &mut std::str::Chars<'_>| -> Result<u32, String> {
        let h: String = chars.by_ref().take(4).collect();
        u32::from_str_radix(&h, 16).map_err(|_| bad())
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('/') => out.push('/'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('u') => {
                let mut code = hex(&mut chars)?;
                if (0xd800..0xdc00).contains(&code) {
                    let rest = chars.as_str();
                    if rest.starts_with("\\u") {
                        chars.next();
                        chars.next();
                        let low = hex(&mut chars)?;
                        code =
                            0x10000 + ((code - 0xd800) << 10) + (low.wrapping_sub(0xdc00) & 0x3ff);
                    }
                }
                out.push(char::from_u32(code).ok_or_else(bad)?);
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn members_are_found_and_set_as_written() {
        let text = br#" { "b" : 1.50, "a":{"x":[1,"}"]}, "am\u006funt":"7" } "#;
        let m = super::members(text).unwrap();
        let keys: Vec<&str> = m.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["b", "a", "amount"]);
        assert_eq!(&text[m[0].value.clone()], b"1.50");
        assert_eq!(&text[m[1].value.clone()], br#"{"x":[1,"}"]}"#);
        let out = super::set_members(text, &m, &[("amount", "7"), ("c", "\"d\"")]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#" { "b" : 1.50, "a":{"x":[1,"}"]}, "am\u006funt":7 ,"c":"d"} "#
        );
        let empty = super::members(b"{}").unwrap();
        assert_eq!(
            super::set_members(b"{}", &empty, &[("k", "1")]),
            br#"{"k":1}"#
        );
        assert!(super::members(b"[1]").is_err());
        assert_eq!(super::quote("a\"\\\n\u{1}é"), "\"a\\\"\\\\\\n\\u0001é\"");
    }
}
