package weir

// A strict JSON reader over bytes, in one pass and without allocating: the
// grammar of RFC 8259, UTF-8 inside strings, and numbers within a double,
// as every weir SDK reads JSON. It backs ValidJSON and Members; nothing is
// decoded but the keys Members is asked for.

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

type parser struct {
	b     []byte
	i     int
	depth int
}

func (p *parser) fail(wanted string) error {
	if p.i >= len(p.b) {
		return fmt.Errorf("value is not JSON: unexpected end, expected %s", wanted)
	}
	return fmt.Errorf("value is not JSON: expected %s at byte %d, found %q", wanted, p.i, p.b[p.i])
}

func (p *parser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value reads one value at p.i.
func (p *parser) value() error {
	if p.i >= len(p.b) {
		return p.fail("a value")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(nil)
	case c == '[':
		return p.array()
	case c == '"':
		_, err := p.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	}
	return p.fail("a value")
}

func (p *parser) literal(word string) error {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return p.fail(word)
	}
	p.i += len(word)
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return fmt.Errorf("value is not JSON: nested more than %d deep", maxDepth)
	}
	p.i++
	p.space()
	return nil
}

// object reads an object at p.i; with found, it appends its members.
func (p *parser) object(found *[]Member) error {
	if err := p.enter(); err != nil {
		return err
	}
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		p.depth--
		return nil
	}
	for {
		k := p.i
		escaped, err := p.str()
		if err != nil {
			return err
		}
		keyEnd := p.i
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return p.fail("':'")
		}
		p.i++
		p.space()
		start := p.i
		if err := p.value(); err != nil {
			return err
		}
		if found != nil {
			var key string
			if escaped {
				// Valid by now; only the decoding is left.
				_ = json.Unmarshal(p.b[k:keyEnd], &key)
			} else {
				key = string(p.b[k+1 : keyEnd-1])
			}
			*found = append(*found, Member{Key: key, Start: start, End: p.i})
		}
		p.space()
		if p.i < len(p.b) && p.b[p.i] == ',' {
			p.i++
			p.space()
			continue
		}
		if p.i < len(p.b) && p.b[p.i] == '}' {
			p.i++
			p.depth--
			return nil
		}
		return p.fail("',' or '}'")
	}
}

func (p *parser) array() error {
	if err := p.enter(); err != nil {
		return err
	}
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		p.depth--
		return nil
	}
	for {
		if err := p.value(); err != nil {
			return err
		}
		p.space()
		if p.i < len(p.b) && p.b[p.i] == ',' {
			p.i++
			p.space()
			continue
		}
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			p.depth--
			return nil
		}
		return p.fail("',' or ']'")
	}
}

// str reads a string at p.i; escaped says whether it has escapes.
func (p *parser) str() (escaped bool, err error) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return false, p.fail("a string")
	}
	b := p.b
	i := p.i + 1
	for i < len(b) {
		if i+8 <= len(b) && plain8(*(*uint64)(unsafe.Pointer(&b[i]))) {
			i += 8
			continue
		}
		c := b[i]
		switch {
		case c == '"':
			p.i = i + 1
			return escaped, nil
		case c == '\\':
			escaped = true
			n, ok := escapeLen(b[i:])
			if !ok {
				p.i = i
				return false, p.fail("an escape")
			}
			i += n
		case c < 0x20:
			p.i = i
			return false, p.fail("no control character in a string")
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return false, fmt.Errorf("value is not JSON: invalid UTF-8 at byte %d", i)
			}
			i += size
		}
	}
	p.i = i
	return false, p.fail("the end of a string")
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain8 says whether the 8 bytes of x (read from memory, little-endian)
// are all plain string bytes: no quote, backslash, control character or
// byte of a multi-byte character. Most of a string is, and checking 8 at
// once takes a few instructions and one branch instead of several per byte
// (in Go's wasm port every branch goes through a jump table).
func plain8(x uint64) bool {
	quote := x ^ (ones * '"')
	slash := x ^ (ones * '\\')
	// (v - ones) &^ v has a byte's high bit set when some byte of v is 0
	// (and (x - ones*0x20) &^ x when some byte is below 0x20); x itself has
	// one set for a byte of 0x80 or more.
	special := (x-ones*0x20)&^x | (quote-ones)&^quote | (slash-ones)&^slash | x
	return special&highs == 0
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

func (p *parser) digits() int {
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

// number reads a number at p.i and refuses one beyond a double.
func (p *parser) number() error {
	start := p.i
	if p.b[p.i] == '-' {
		p.i++
	}
	if p.i < len(p.b) && p.b[p.i] == '0' {
		p.i++
	} else if p.digits() == 0 {
		return p.fail("a digit")
	}
	long := false
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return p.fail("a digit")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		long = true
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return p.fail("a digit")
		}
	}
	// Only an exponent or some 309 digits can leave a double's range.
	if long || p.i-start > 300 {
		if _, err := strconv.ParseFloat(string(p.b[start:p.i]), 64); err != nil {
			return fmt.Errorf("value is not JSON: number %s is beyond a double", p.b[start:p.i])
		}
	}
	return nil
}

// end checks that nothing but whitespace follows the value.
func (p *parser) end() error {
	p.space()
	if p.i != len(p.b) {
		return p.fail("the end of the value")
	}
	return nil
}

// ValidJSON checks that text is one strict JSON value (UTF-8, no
// byte-order mark, numbers within a double), without decoding it. The
// error is the reason to give a dead letter.
func ValidJSON(text []byte) error {
	p := parser{b: text}
	p.space()
	if err := p.value(); err != nil {
		return err
	}
	return p.end()
}

// Members checks that text is one strict JSON object, as ValidJSON does,
// and lists its top-level members in order (a key that appears twice is
// listed twice). The error is the reason to give a dead letter.
func Members(text []byte) ([]Member, error) {
	p := parser{b: text}
	p.space()
	if p.i >= len(text) || text[p.i] != '{' {
		if err := ValidJSON(text); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("value is not a JSON object")
	}
	found := make([]Member, 0, 8)
	if err := p.object(&found); err != nil {
		return nil, err
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	return found, nil
}
