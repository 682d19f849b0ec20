// Routes each event to the topic prefix + the string field (default type) of
// its JSON value, or to fallback (or the sink's own topic) when the value
// has no such non-empty string.
package main

import weir "weir.dev/plugin"

type Router struct {
	field, prefix string
	fallback      *string
}

func (s *Router) Init(c weir.Config) error {
	s.field = c.Get("field", "type")
	s.prefix = c.Get("prefix", "")
	if f, ok := c["fallback"]; ok {
		s.fallback = &f
	}
	return nil
}

func (s *Router) Process(events []weir.Event) weir.Output {
	for i := range events {
		route := ""
		if value, err := weir.JSON(&events[i]); err == nil {
			route, _ = value[s.field].(string)
		}
		if route != "" {
			topic := s.prefix + route
			events[i].Topic = &topic
		} else {
			events[i].Topic = s.fallback
		}
	}
	return weir.Output{Events: events}
}

func init() { weir.Export(&Router{}) }

func main() {}
