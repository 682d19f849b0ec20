// Package weir is weir's Go SDK: write a stage as a type with the four
// operations of every weir SDK and register it from an init function.
//
//	type Enrich struct{ currency string }
//
//	func (s *Enrich) Init(c weir.Config) error { s.currency = c.Get("currency", "EUR"); return nil }
//	func (s *Enrich) Process(events []weir.Event) weir.Output { ... }
//
//	func init() { weir.Export(&Enrich{}) }
//	func main() {}
//
// Built with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, the plugin is a
// weir core module (plugins/abi/CORE-MODULE.md); `weir build` builds it.
package weir

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
	"unsafe"
)

// Header is one event header: a name and an opaque value.
type Header struct {
	Key   string
	Value []byte
}

// Event is one event. Key, Value and header values are views of the batch
// the host handed in, not copies: a stage that keeps one past Process
// copies it (as string(key) does), or it keeps the whole batch alive.
type Event struct {
	// Key is nil for an unkeyed event; keyed events keep their order per key.
	Key []byte
	// Value is the payload.
	Value []byte
	// Headers, in order; names may repeat.
	Headers []Header
	// Timestamp in milliseconds since the Unix epoch, when known.
	Timestamp *int64
	// Topic: on input where the event came from, on output where to publish it.
	Topic *string
}

// Header returns the value of the event's first header called name.
func (e *Event) Header(name string) ([]byte, bool) {
	for _, h := range e.Headers {
		if h.Key == name {
			return h.Value, true
		}
	}
	return nil, false
}

// AddHeader appends a header.
func (e *Event) AddHeader(name string, value []byte) {
	e.Headers = append(e.Headers, Header{Key: name, Value: value})
}

// EventError sends the input at Index to the dead-letter sink with Message.
type EventError struct {
	Index   uint32
	Message string
}

// Output is what Process returns: the events to emit, in order, and the
// inputs that failed.
type Output struct {
	Events []Event
	Errors []EventError
}

// Emit appends an event to the output.
func (o *Output) Emit(e Event) { o.Events = append(o.Events, e) }

// Reject sends input index to the dead-letter sink with message.
func (o *Output) Reject(index int, message string) {
	o.Errors = append(o.Errors, EventError{Index: uint32(index), Message: message})
}

// Config is the stage's config table.
type Config map[string]string

// Get returns the value of key, or def when it is not set.
func (c Config) Get(key, def string) string {
	if v, ok := c[key]; ok {
		return v
	}
	return def
}

// Stage is what a plugin implements. Init is called once per instance with
// the stage's config; an error refuses it (weir check shows it).
type Stage interface {
	Init(config Config) error
	Process(events []Event) Output
}

// Checkpointer is implemented by a stage with state: Export returns it as
// bytes, Import restores what Export of this or an earlier version returned.
type Checkpointer interface {
	CheckpointExport() []byte
	CheckpointImport(state []byte) error
}

// JSON parses the event's value as a JSON object; the error is the reason
// to give a dead letter.
func JSON(e *Event) (map[string]any, error) {
	// encoding/json would replace invalid UTF-8; weir's other SDKs refuse it.
	if !utf8.Valid(e.Value) {
		return nil, fmt.Errorf("value is not JSON: invalid UTF-8")
	}
	var v any
	if err := json.Unmarshal(e.Value, &v); err != nil {
		return nil, fmt.Errorf("value is not JSON: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("value is not a JSON object")
	}
	return m, nil
}

// WithJSON replaces the event's value with v as compact JSON.
func WithJSON(e *Event, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	e.Value = b
	return nil
}

// Log levels for Log.
const (
	Trace = iota
	Debug
	Info
	Warn
	Error
)

//go:wasmimport weir log
func hostLog(level int32, ptr unsafe.Pointer, n int32)

// Log writes message to the worker's log at level (Trace … Error).
func Log(level int, message string) {
	b := []byte(message)
	if len(b) == 0 {
		b = []byte{' '}
	}
	hostLog(int32(level), unsafe.Pointer(&b[0]), int32(len(b)))
}

var stage Stage

// Export registers the plugin's stage; call it from an init function.
func Export(s Stage) { stage = s }
