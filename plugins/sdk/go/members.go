package weir

// JSON objects as written: the top-level members of an object's bytes, and
// those bytes with members set, without decoding into a map and encoding
// back. What a stage does not touch (key order, number spelling, escapes,
// spacing) stays byte for byte. Validate the value first (e.g. with JSON).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Member is one top-level member of a JSON object: its key and where its
// value is (text[Start:End]).
type Member struct {
	Key        string
	Start, End int
}

// KV is a member to set: its key and its value as JSON text.
type KV struct{ Key, JSON string }

type scan struct {
	b []byte
	i int
}

func (s *scan) ws() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *scan) fail(wanted string) error {
	return fmt.Errorf("value is not a JSON object: expected %s at byte %d", wanted, s.i)
}

func (s *scan) str() error {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return s.fail("a string")
	}
	for s.i++; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			s.i++
		case '"':
			s.i++
			return nil
		}
	}
	return s.fail("the end of a string")
}

func (s *scan) value() error {
	if s.i >= len(s.b) {
		return s.fail("a value")
	}
	switch s.b[s.i] {
	case '"':
		return s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if err := s.str(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return nil
				}
			}
			s.i++
		}
		return s.fail("the end of a value")
	}
	start := s.i
	for s.i < len(s.b) && !isSpace(s.b[s.i]) && !strings.ContainsRune(",}]", rune(s.b[s.i])) {
		s.i++
	}
	if s.i == start {
		return s.fail("a value")
	}
	return nil
}

// Members lists the top-level members of the JSON object text, in order
// (a key that appears twice is listed twice).
func Members(text []byte) ([]Member, error) {
	s := &scan{b: text}
	s.ws()
	if s.i >= len(text) || text[s.i] != '{' {
		return nil, fmt.Errorf("value is not a JSON object")
	}
	s.i++
	s.ws()
	var found []Member
	if s.i < len(text) && text[s.i] == '}' {
		return found, nil
	}
	for {
		s.ws()
		k := s.i
		if err := s.str(); err != nil {
			return nil, err
		}
		var key string
		if err := json.Unmarshal(text[k:s.i], &key); err != nil {
			return nil, fmt.Errorf("value is not a JSON object: %v", err)
		}
		s.ws()
		if s.i >= len(text) || text[s.i] != ':' {
			return nil, s.fail("':'")
		}
		s.i++
		s.ws()
		start := s.i
		if err := s.value(); err != nil {
			return nil, err
		}
		found = append(found, Member{Key: key, Start: start, End: s.i})
		s.ws()
		if s.i < len(text) && text[s.i] == ',' {
			s.i++
			continue
		}
		if s.i < len(text) && text[s.i] == '}' {
			return found, nil
		}
		return nil, s.fail("',' or '}'")
	}
}

// SetMembers returns text (an object whose Members were found) with each
// member of set in it: the value of every member with that key is
// replaced, and a key the object does not have is added at its end, in
// order.
func SetMembers(text []byte, found []Member, set []KV) []byte {
	out := make([]byte, 0, len(text)+64)
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
		out = append(out, Quote(kv.Key)...)
		out = append(out, ':')
		out = append(out, kv.JSON...)
	}
	return append(out, text[end:]...)
}

// Quote returns s as a JSON string: '"' and '\' escaped, control
// characters as \n, \t… or \u00XX, everything else as it is (as every weir
// SDK writes it; encoding/json would also escape <, >, & and U+2028).
func Quote(s string) string {
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

// ValidJSON checks that text is one strict JSON value, as JSON reads it
// (UTF-8, no byte-order mark, numbers within a double), without decoding
// it: the check to run before Members and SetMembers. The error is the
// reason to give a dead letter.
func ValidJSON(text []byte) error {
	if !utf8.Valid(text) {
		return fmt.Errorf("value is not JSON: invalid UTF-8")
	}
	if !json.Valid(text) {
		var raw json.RawMessage
		err := json.Unmarshal(text, &raw)
		if err == nil {
			err = fmt.Errorf("invalid JSON")
		}
		return fmt.Errorf("value is not JSON: %v", err)
	}
	// json.Valid checks the grammar only: a number beyond a double is
	// refused here, as JSON refuses it.
	inString := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '-' || (c >= '0' && c <= '9'):
			start := i
			long := false
			for i < len(text) && strings.IndexByte("+-.eE0123456789", text[i]) >= 0 {
				if text[i] == 'e' || text[i] == 'E' {
					long = true
				}
				i++
			}
			if long || i-start > 300 {
				if _, err := strconv.ParseFloat(string(text[start:i]), 64); err != nil {
					return fmt.Errorf("value is not JSON: number %s is beyond a double", text[start:i])
				}
			}
			i--
		}
	}
	return nil
}
