// Adds currency (from the stage config, default EUR) and amount_cents to
// JSON objects; values that are not JSON objects go to the dead-letter sink.
package main

import (
	"math"

	weir "weir.dev/plugin"
)

type Enrich struct{ currency string }

func (s *Enrich) Init(c weir.Config) error {
	s.currency = c.Get("currency", "EUR")
	return nil
}

func (s *Enrich) Process(events []weir.Event) weir.Output {
	var out weir.Output
	for i := range events {
		order, err := weir.JSON(&events[i])
		if err != nil {
			out.Reject(i, err.Error())
			continue
		}
		order["currency"] = s.currency
		if amount, ok := order["amount"].(float64); ok {
			order["amount_cents"] = int64(math.Round(amount * 100))
		} else {
			order["amount_cents"] = nil
		}
		if err := weir.WithJSON(&events[i], order); err != nil {
			out.Reject(i, err.Error())
			continue
		}
		out.Emit(events[i])
	}
	return out
}

func init() { weir.Export(&Enrich{}) }

func main() {}
