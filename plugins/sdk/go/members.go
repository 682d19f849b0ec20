package weir

// JSON objects as written: the top-level members of an object's bytes, and
// those bytes with members set, without decoding into a map and encoding
// back. What a stage does not touch (key order, number spelling, escapes,
// spacing) stays byte for byte. Members also validates the whole value
// (parse.go).

import (
	"bytes"
	"fmt"
	"strings"
)

// Member is one top-level member of a JSON object: its key and where its
// value is (text[Start:End]).
type Member struct {
	Key        string
	Start, End int
}

// KV is a member to set: its key and its value as JSON text.
type KV struct{ Key, JSON string }

// SetMembers returns text (an object whose Members were found) with each
// member of set in it: the value of every member with that key is
// replaced, and a key the object does not have is added at its end, in
// order.
func SetMembers(text []byte, found []Member, set []KV) []byte {
	return AppendSetMembers(make([]byte, 0, len(text)+64), text, found, set)
}

// AppendSetMembers is SetMembers appending to out, so that a stage can
// write the values of a whole batch into one block (slicing each value off
// it) instead of allocating one per event.
func AppendSetMembers(out, text []byte, found []Member, set []KV) []byte {
	at := 0
	has := func(key string) bool {
		for _, m := range found {
			if m.Key == key {
				return true
			}
		}
		return false
	}
	for _, m := range found {
		for _, kv := range set {
			if kv.Key == m.Key {
				out = append(out, text[at:m.Start]...)
				out = append(out, kv.JSON...)
				at = m.End
				break
			}
		}
	}
	end := bytes.LastIndexByte(text, '}')
	out = append(out, text[at:end]...)
	first := len(found) == 0
	for _, kv := range set {
		if has(kv.Key) {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		if plainString(kv.Key) {
			out = append(out, '"')
			out = append(out, kv.Key...)
			out = append(out, '"')
		} else {
			out = append(out, Quote(kv.Key)...)
		}
		out = append(out, ':')
		out = append(out, kv.JSON...)
	}
	return append(out, text[end:]...)
}

// Quote returns s as a JSON string: '"' and '\' escaped, control
// characters as \n, \t… or \u00XX, everything else as it is (as every weir
// SDK writes it; encoding/json would also escape <, >, & and U+2028).
func Quote(s string) string {
	if plainString(s) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// plainString says whether s is ASCII that needs no escape in JSON, as
// most keys are.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}
