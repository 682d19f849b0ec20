package weir

// A strict JSON reader over bytes, in one pass and without allocating: the
// grammar of RFC 8259, UTF-8 inside strings, and numbers within a double,
// as every weir SDK reads JSON. It backs ValidJSON and Members; nothing is
// decoded but the keys Members is asked for.
//
// Written for Go's wasm port, where every branch goes through a jump table
// and a call costs as much as reading a few dozen bytes: one loop with a
// stack of the open arrays and objects instead of a function per kind of
// value, scanners that take and return the position (so that it stays in a
// local, not in memory), and strings read 8 or 32 bytes at a time.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// maxDepth is how deeply arrays and objects may nest (encoding/json's
// limit), so that a hostile value cannot grow the stack without bound.
const maxDepth = 10000

// failAt is the reason text is not JSON: wanted was expected at i.
func failAt(b []byte, i int, wanted string) error {
	if i >= len(b) {
		return fmt.Errorf("value is not JSON: unexpected end, expected %s", wanted)
	}
	return fmt.Errorf("value is not JSON: expected %s at byte %d, found %q", wanted, i, b[i])
}

// skipSpace is the position of the first byte at or after i that is not
// whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// parse reads one value at i and returns where it ends. With found, the
// members of the value (an object) are appended to it: its keys and where
// their values are.
func parse(b []byte, i int, found *[]Member) (int, error) {
	var open [32]bool // true for an object, false for an array; grows
	stack := open[:0]
	var key, keyEnd, start int // the top-level member being read
	var escaped bool
	var err error
	for {
		// A value.
		if i >= len(b) {
			return i, failAt(b, i, "a value")
		}
		switch c := b[i]; {
		case c == '"':
			i, _, err = scanString(b, i)
		case c == '-' || (c >= '0' && c <= '9'):
			i, err = scanNumber(b, i)
		case c == '{' || c == '[':
			if len(stack) == maxDepth {
				return i, fmt.Errorf("value is not JSON: nested more than %d deep", maxDepth)
			}
			stack = append(stack, c == '{')
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' and ']' follow '{' and '[' by 2
				i++
				stack = stack[:len(stack)-1]
				break
			}
			if c == '[' {
				continue // its first element
			}
			goto member
		case c == 't':
			i, err = scanWord(b, i, "true")
		case c == 'f':
			i, err = scanWord(b, i, "false")
		case c == 'n':
			i, err = scanWord(b, i, "null")
		default:
			return i, failAt(b, i, "a value")
		}
		if err != nil {
			return i, err
		}
	next:
		// After a value: the end, the next member or element, or the end
		// of the innermost array or object.
		if len(stack) == 0 {
			return i, nil
		}
		if len(stack) == 1 && found != nil {
			*found = append(*found, Member{Key: memberKey(b[key:keyEnd], escaped), Start: start, End: i})
		}
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			if !stack[len(stack)-1] {
				continue
			}
			goto member
		}
		if close := byte(']'); i < len(b) {
			if stack[len(stack)-1] {
				close = '}'
			}
			if b[i] == close {
				i++
				stack = stack[:len(stack)-1]
				goto next
			}
		}
		if stack[len(stack)-1] {
			return i, failAt(b, i, "',' or '}'")
		}
		return i, failAt(b, i, "',' or ']'")
	member:
		// A member's key and colon; its value comes next. Only a top-level
		// member is kept.
		k := i
		if i >= len(b) || b[i] != '"' {
			return i, failAt(b, i, "a string")
		}
		var e bool
		if i, e, err = scanString(b, i); err != nil {
			return i, err
		}
		top := len(stack) == 1
		if top {
			key, keyEnd, escaped = k, i, e
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return i, failAt(b, i, "':'")
		}
		i = skipSpace(b, i+1)
		if top {
			start = i
		}
	}
}

// memberKey is the key whose quoted text is quoted.
func memberKey(quoted []byte, escaped bool) string {
	if !escaped {
		return string(quoted[1 : len(quoted)-1])
	}
	// Valid by now; only the decoding is left.
	var key string
	_ = json.Unmarshal(quoted, &key)
	return key
}

// scanWord reads the literal word (true, false, null) at i.
func scanWord(b []byte, i int, word string) (int, error) {
	if len(b)-i < len(word) || string(b[i:i+len(word)]) != word {
		return i, failAt(b, i, word)
	}
	return i + len(word), nil
}

// scanString reads the string whose opening quote is at i and returns
// where it ends; escaped says whether it has escapes.
func scanString(b []byte, i int) (end int, escaped bool, err error) {
	i++
	for i < len(b) {
		// Plain bytes 8 at a time, and then 32 at a time while they last;
		// a flagged word is read byte by byte, up to its end.
		if i+8 <= len(b) && special(*(*uint64)(unsafe.Pointer(&b[i])))&highs == 0 {
			i += 8
			for i+32 <= len(b) {
				w := (*[4]uint64)(unsafe.Pointer(&b[i]))
				if (special(w[0])|special(w[1])|special(w[2])|special(w[3]))&highs != 0 {
					break
				}
				i += 32
			}
			continue
		}
		for stop := min(i+8, len(b)); i < stop; {
			c := b[i]
			switch {
			case c == '"':
				return i + 1, escaped, nil
			case c == '\\':
				escaped = true
				n, ok := escapeLen(b[i:])
				if !ok {
					return i, false, failAt(b, i, "an escape")
				}
				i += n
			case c < 0x20:
				return i, false, failAt(b, i, "no control character in a string")
			case c < utf8.RuneSelf:
				i++
			default:
				r, size := utf8.DecodeRune(b[i:])
				if r == utf8.RuneError && size == 1 {
					return i, false, fmt.Errorf("value is not JSON: invalid UTF-8 at byte %d", i)
				}
				i += size
			}
		}
	}
	return i, false, failAt(b, i, "the end of a string")
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special has the high bit set in each byte of x (8 bytes read from
// memory, little-endian) that may not be a plain string byte: a quote, a
// backslash, a control character or a byte of a multi-byte character.
// Bytes above a flagged one may be flagged too: a flag means "look byte by
// byte", nothing more.
func special(x uint64) uint64 {
	quote := x ^ (ones * '"')
	slash := x ^ (ones * '\\')
	// (v - ones) &^ v has a byte's high bit set when some byte of v is 0
	// (and (x - ones*0x20) &^ x when some byte is below 0x20); x itself has
	// one set for a byte of 0x80 or more.
	return (x-ones*0x20)&^x | (quote-ones)&^quote | (slash-ones)&^slash | x
}

// escapeLen is the length of the escape at the start of b (a backslash),
// and whether it is one.
func escapeLen(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, true
	case 'u':
		if len(b) < 6 {
			return 0, false
		}
		for _, h := range b[2:6] {
			if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
				return 0, false
			}
		}
		return 6, true
	}
	return 0, false
}

// skipDigits is the position of the first byte at or after i that is not
// a digit.
func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// scanNumber reads the number at i and refuses one beyond a double.
func scanNumber(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if j := skipDigits(b, i); j > i {
		i = j
	} else {
		return i, failAt(b, i, "a digit")
	}
	long := false
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return j, failAt(b, j, "a digit")
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		long = true
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return j, failAt(b, j, "a digit")
		}
		i = j
	}
	// Only an exponent or some 309 digits can leave a double's range.
	if long || i-start > 300 {
		if _, err := strconv.ParseFloat(string(b[start:i]), 64); err != nil {
			return i, fmt.Errorf("value is not JSON: number %s is beyond a double", b[start:i])
		}
	}
	return i, nil
}

// whole reads one value that is all of text but whitespace around it.
func whole(text []byte, found *[]Member) error {
	i, err := parse(text, skipSpace(text, 0), found)
	if err != nil {
		return err
	}
	if i = skipSpace(text, i); i != len(text) {
		return failAt(text, i, "the end of the value")
	}
	return nil
}

// ValidJSON checks that text is one strict JSON value (UTF-8, no
// byte-order mark, numbers within a double), without decoding it. The
// error is the reason to give a dead letter.
func ValidJSON(text []byte) error {
	return whole(text, nil)
}

// Members checks that text is one strict JSON object, as ValidJSON does,
// and lists its top-level members in order (a key that appears twice is
// listed twice). The error is the reason to give a dead letter.
func Members(text []byte) ([]Member, error) {
	return AppendMembers(make([]Member, 0, 8), text)
}

// AppendMembers is Members appending to dst, so that a stage can reuse one
// slice for every event: found, err = weir.AppendMembers(found[:0], value).
func AppendMembers(dst []Member, text []byte) ([]Member, error) {
	if i := skipSpace(text, 0); i >= len(text) || text[i] != '{' {
		if err := ValidJSON(text); err != nil {
			return dst, err
		}
		return dst, fmt.Errorf("value is not a JSON object")
	}
	err := whole(text, &dst)
	return dst, err
}
