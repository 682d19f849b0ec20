// Adds currency (from the stage config, default EUR) and amount_cents (the
// amount × 100 from its decimal digits, halves away from zero) to JSON
// objects as written; values that are not JSON objects go to the
// dead-letter sink, and so do amounts whose cents pass a 64-bit integer.
package main

import (
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
func cents(text string) (c int64, ok bool, err error) {
	negative := strings.HasPrefix(text, "-")
	body := strings.TrimPrefix(text, "-")
	if body == "" || body[0] < '0' || body[0] > '9' {
		return 0, false, nil
	}
	mantissa, exp := body, "0"
	if i := strings.IndexAny(body, "eE"); i >= 0 {
		mantissa, exp = body[:i], body[i+1:]
	}
	exponent, perr := strconv.ParseInt(strings.TrimPrefix(exp, "+"), 10, 64)
	if perr != nil || exponent > 100000 || exponent < -100000 {
		exponent = 100000
		if strings.HasPrefix(exp, "-") {
			exponent = -100000
		}
	}
	whole, fraction, _ := strings.Cut(mantissa, ".")
	digits := whole + fraction
	shift := exponent - int64(len(fraction)) + 2
	kept, dropped := digits, ""
	if shift < 0 {
		keep := int64(len(digits)) + shift
		if keep < 0 {
			keep = 0
		}
		kept, dropped = digits[:keep], digits[keep:]
	}
	const limit = uint64(1) << 63
	var magnitude uint64
	for _, d := range []byte(kept) {
		if magnitude > (limit-uint64(d-'0'))/10 {
			return 0, true, errTooBig
		}
		magnitude = magnitude*10 + uint64(d-'0')
	}
	for ; shift > 0 && magnitude > 0; shift-- {
		if magnitude > limit/10 {
			return 0, true, errTooBig
		}
		magnitude *= 10
	}
	if dropped != "" && dropped[0] >= '5' {
		magnitude++
	}
	if magnitude > limit || (magnitude == limit && !negative) {
		return 0, true, errTooBig
	}
	if negative {
		return -int64(magnitude - 1) - 1, true, nil
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
		c, ok, err := cents(string(value[found[j].Start:found[j].End]))
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
	for i := range events {
		value := events[i].Value
		// Strict JSON, an object: checked as its members are found,
		// without decoding it.
		found, err := weir.Members(value)
		if err != nil {
			out.Reject(i, err.Error())
			continue
		}
		amountCents, err := centsOfAmount(value, found)
		if err != nil {
			out.Reject(i, err.Error())
			continue
		}
		events[i].Value = weir.SetMembers(value, found, []weir.KV{
			{Key: "currency", JSON: currency},
			{Key: "amount_cents", JSON: amountCents},
		})
		out.Emit(events[i])
	}
	return out
}

func init() { weir.Export(&Enrich{}) }

func main() {}
