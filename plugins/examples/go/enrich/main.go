// Adds currency (from the stage config, default EUR) and amount_cents (the
// amount × 100 from its decimal digits, halves away from zero) to JSON
// objects as written; values that are not JSON objects go to the
// dead-letter sink, and so do amounts whose cents pass a 64-bit integer.
package main

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	weir "weir.dev/plugin"
)

type Enrich struct{ currency string }

func (s *Enrich) Init(c weir.Config) error {
	s.currency = c.Get("currency", "EUR")
	return nil
}

var errTooBig = errors.New("amount_cents is beyond a 64-bit integer")

// cents is the JSON number text × 100, rounded half away from zero; ok is
// false when text is not a number.
func cents(text []byte) (c int64, ok bool, err error) {
	negative := len(text) > 0 && text[0] == '-'
	body := text
	if negative {
		body = body[1:]
	}
	if len(body) == 0 || body[0] < '0' || body[0] > '9' {
		return 0, false, nil
	}
	mantissa, exp := body, []byte("0")
	if i := bytes.IndexAny(body, "eE"); i >= 0 {
		mantissa, exp = body[:i], body[i+1:]
	}
	exponent, perr := strconv.ParseInt(strings.TrimPrefix(string(exp), "+"), 10, 64)
	if perr != nil || exponent > 100000 || exponent < -100000 {
		exponent = 100000
		if len(exp) > 0 && exp[0] == '-' {
			exponent = -100000
		}
	}
	whole, fraction, _ := bytes.Cut(mantissa, []byte("."))
	// The digits are whole then fraction; value = digits × 10^shift.
	digit := func(i int) byte {
		if i < len(whole) {
			return whole[i]
		}
		return fraction[i-len(whole)]
	}
	n := len(whole) + len(fraction)
	shift := exponent - int64(len(fraction)) + 2
	keep := n
	if shift < 0 {
		keep = n + int(max(shift, -int64(n)))
	}
	const limit = uint64(1) << 63
	var magnitude uint64
	for i := 0; i < keep; i++ {
		d := uint64(digit(i) - '0')
		if magnitude > (limit-d)/10 {
			return 0, true, errTooBig
		}
		magnitude = magnitude*10 + d
	}
	for ; shift > 0 && magnitude > 0; shift-- {
		if magnitude > limit/10 {
			return 0, true, errTooBig
		}
		magnitude *= 10
	}
	if keep < n && digit(keep) >= '5' {
		magnitude++
	}
	if magnitude > limit || (magnitude == limit && !negative) {
		return 0, true, errTooBig
	}
	if negative {
		return -int64(magnitude-1) - 1, true, nil
	}
	return int64(magnitude), true, nil
}

// centsOfAmount is amount_cents as JSON text: from the last member called
// amount (the last of duplicate keys counts, as in every JSON parser), or
// null when there is none or it is not a number.
func centsOfAmount(value []byte, found []weir.Member) (string, error) {
	for j := len(found) - 1; j >= 0; j-- {
		if found[j].Key != "amount" {
			continue
		}
		c, ok, err := cents(value[found[j].Start:found[j].End])
		if err != nil || !ok {
			return "null", err
		}
		return strconv.FormatInt(c, 10), nil
	}
	return "null", nil
}

func (s *Enrich) Process(events []weir.Event) weir.Output {
	out := weir.Output{Events: make([]weir.Event, 0, len(events))}
	currency := weir.Quote(s.currency)
	// The new values of the whole batch go into one block, each sliced off
	// it, and one members slice serves every event: a few allocations per
	// batch instead of a few per event keep the garbage collector idle.
	size := 0
	for i := range events {
		size += len(events[i].Value) + 64
	}
	block := make([]byte, 0, size)
	var found []weir.Member
	for i := range events {
		value := events[i].Value
		// Strict JSON, an object: checked as its members are found,
		// without decoding it.
		var err error
		found, err = weir.AppendMembers(found[:0], value)
		if err != nil {
			out.Reject(i, err.Error())
			continue
		}
		amountCents, err := centsOfAmount(value, found)
		if err != nil {
			out.Reject(i, err.Error())
			continue
		}
		start := len(block)
		block = weir.AppendSetMembers(block, value, found, []weir.KV{
			{Key: "currency", JSON: currency},
			{Key: "amount_cents", JSON: amountCents},
		})
		events[i].Value = block[start:len(block):len(block)]
		out.Emit(events[i])
	}
	return out
}

func init() { weir.Export(&Enrich{}) }

func main() {}
