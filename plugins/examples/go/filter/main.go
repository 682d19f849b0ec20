// Keeps JSON objects whose numeric field (default amount) is at least min
// (default 0) and drops the others; values that are not JSON objects, or
// lack the field, go to the dead-letter sink.
package main

import (
	"fmt"
	"strconv"

	weir "weir.dev/plugin"
)

type Filter struct {
	field string
	min   float64
}

func (s *Filter) Init(c weir.Config) error {
	s.field = c.Get("field", "amount")
	raw := c.Get("min", "0")
	min, err := strconv.ParseFloat(raw, 64)
	if err != nil {
		return fmt.Errorf("min must be a number, got %q", raw)
	}
	s.min = min
	return nil
}

func (s *Filter) Process(events []weir.Event) weir.Output {
	var out weir.Output
	for i := range events {
		value, err := weir.JSON(&events[i])
		if err != nil {
			out.Reject(i, "value is not a JSON object")
			continue
		}
		amount, ok := value[s.field].(float64)
		switch {
		case !ok:
			out.Reject(i, fmt.Sprintf("field %q is missing or not a number", s.field))
		case amount >= s.min:
			out.Emit(events[i])
		}
	}
	return out
}

func init() { weir.Export(&Filter{}) }

func main() {}
