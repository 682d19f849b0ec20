package weir

// The CBOR subset of weir's core-module ABI (plugins/abi/CORE-MODULE.md):
// definite lengths, text keys, byte and text strings, integers, null.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	majorUint  = 0
	majorNeg   = 1
	majorBytes = 2
	majorText  = 3
	majorArray = 4
	majorMap   = 5
	simpleNull = 0xf6
)

var errTruncated = errors.New("cbor: truncated input")

type decoder struct {
	buf []byte
	at  int
}

func (d *decoder) head() (major byte, arg uint64, err error) {
	if d.at >= len(d.buf) {
		return 0, 0, errTruncated
	}
	b := d.buf[d.at]
	d.at++
	major, info := b>>5, b&0x1f
	switch {
	case info < 24:
		return major, uint64(info), nil
	case info <= 27:
		n := 1 << (info - 24)
		if d.at+n > len(d.buf) {
			return 0, 0, errTruncated
		}
		var v uint64
		for _, c := range d.buf[d.at : d.at+n] {
			v = v<<8 | uint64(c)
		}
		d.at += n
		return major, v, nil
	default:
		return 0, 0, fmt.Errorf("cbor: unsupported additional info %d", info)
	}
}

func (d *decoder) isNull() bool {
	if d.at < len(d.buf) && d.buf[d.at] == simpleNull {
		d.at++
		return true
	}
	return false
}

func (d *decoder) expect(major byte) (uint64, error) {
	m, arg, err := d.head()
	if err != nil {
		return 0, err
	}
	if m != major {
		return 0, fmt.Errorf("cbor: expected major type %d, got %d", major, m)
	}
	return arg, nil
}

func (d *decoder) bytes(major byte) ([]byte, error) {
	n, err := d.expect(major)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.buf)-d.at) {
		return nil, errTruncated
	}
	// A view of the batch, not a copy: the batch stays alive as long as an
	// event refers to it, and the capacity ends with the view, so that an
	// append copies instead of writing over the next field.
	end := d.at + int(n)
	out := d.buf[d.at:end:end]
	d.at = end
	return out, nil
}

func (d *decoder) text() (string, error) {
	b, err := d.bytes(majorText)
	return string(b), err
}

// key reads a map key without making a string of it (switch on
// string(key) does not allocate).
func (d *decoder) key() ([]byte, error) {
	return d.bytes(majorText)
}

func (d *decoder) int() (int64, error) {
	m, arg, err := d.head()
	if err != nil {
		return 0, err
	}
	switch m {
	case majorUint:
		return int64(arg), nil
	case majorNeg:
		return -1 - int64(arg), nil
	}
	return 0, fmt.Errorf("cbor: expected an integer, got major type %d", m)
}

func decodeEvent(d *decoder) (Event, error) {
	var e Event
	n, err := d.expect(majorMap)
	if err != nil {
		return e, err
	}
	for i := uint64(0); i < n; i++ {
		k, err := d.key()
		if err != nil {
			return e, err
		}
		switch string(k) {
		case "key":
			if !d.isNull() {
				if e.Key, err = d.bytes(majorBytes); err != nil {
					return e, err
				}
				if e.Key == nil {
					e.Key = []byte{}
				}
			}
		case "value":
			if e.Value, err = d.bytes(majorBytes); err != nil {
				return e, err
			}
		case "headers":
			hn, err := d.expect(majorArray)
			if err != nil {
				return e, err
			}
			for j := uint64(0); j < hn; j++ {
				if pair, err := d.expect(majorArray); err != nil || pair != 2 {
					return e, fmt.Errorf("cbor: a header is a pair")
				}
				name, err := d.text()
				if err != nil {
					return e, err
				}
				value, err := d.bytes(majorBytes)
				if err != nil {
					return e, err
				}
				e.Headers = append(e.Headers, Header{Key: name, Value: value})
			}
		case "timestamp":
			if !d.isNull() {
				t, err := d.int()
				if err != nil {
					return e, err
				}
				e.Timestamp = &t
			}
		case "topic":
			if !d.isNull() {
				t, err := d.text()
				if err != nil {
					return e, err
				}
				e.Topic = &t
			}
		default:
			return e, fmt.Errorf("cbor: unknown event key %q", k)
		}
	}
	return e, nil
}

func decodeBatch(buf []byte) ([]Event, error) {
	d := &decoder{buf: buf}
	n, err := d.expect(majorMap)
	if err != nil {
		return nil, err
	}
	var events []Event
	for i := uint64(0); i < n; i++ {
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		if string(k) != "events" {
			return nil, fmt.Errorf("cbor: unknown batch key %q", k)
		}
		en, err := d.expect(majorArray)
		if err != nil {
			return nil, err
		}
		events = make([]Event, 0, en)
		for j := uint64(0); j < en; j++ {
			e, err := decodeEvent(d)
			if err != nil {
				return nil, err
			}
			events = append(events, e)
		}
	}
	if d.at != len(buf) {
		return nil, errors.New("cbor: trailing bytes")
	}
	return events, nil
}

func decodeConfig(buf []byte) (Config, error) {
	d := &decoder{buf: buf}
	n, err := d.expect(majorMap)
	if err != nil {
		return nil, err
	}
	c := Config{}
	for i := uint64(0); i < n; i++ {
		k, err := d.text()
		if err != nil {
			return nil, err
		}
		v, err := d.text()
		if err != nil {
			return nil, err
		}
		c[k] = v
	}
	return c, nil
}

type encoder struct{ buf []byte }

func (e *encoder) head(major byte, arg uint64) {
	switch {
	case arg < 24:
		e.buf = append(e.buf, major<<5|byte(arg))
	case arg <= 0xff:
		e.buf = append(e.buf, major<<5|24, byte(arg))
	case arg <= 0xffff:
		e.buf = append(e.buf, major<<5|25)
		e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(arg))
	case arg <= 0xffffffff:
		e.buf = append(e.buf, major<<5|26)
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(arg))
	default:
		e.buf = append(e.buf, major<<5|27)
		e.buf = binary.BigEndian.AppendUint64(e.buf, arg)
	}
}

func (e *encoder) bytes(major byte, b []byte) {
	e.head(major, uint64(len(b)))
	e.buf = append(e.buf, b...)
}

func (e *encoder) text(s string) {
	e.head(majorText, uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) event(ev *Event) {
	fields := uint64(2)
	if ev.Key != nil {
		fields++
	}
	if ev.Timestamp != nil {
		fields++
	}
	if ev.Topic != nil {
		fields++
	}
	e.head(majorMap, fields)
	if ev.Key != nil {
		e.text("key")
		e.bytes(majorBytes, ev.Key)
	}
	e.text("value")
	e.bytes(majorBytes, ev.Value)
	e.text("headers")
	e.head(majorArray, uint64(len(ev.Headers)))
	for _, h := range ev.Headers {
		e.head(majorArray, 2)
		e.text(h.Key)
		e.bytes(majorBytes, h.Value)
	}
	if ev.Timestamp != nil {
		e.text("timestamp")
		if t := *ev.Timestamp; t >= 0 {
			e.head(majorUint, uint64(t))
		} else {
			e.head(majorNeg, uint64(-1-t))
		}
	}
	if ev.Topic != nil {
		e.text("topic")
		e.text(*ev.Topic)
	}
}

func encodeOutput(o *Output) []byte {
	// Sized once for the whole output, so that appends do not copy it over
	// and over as it grows.
	size := 32
	for i := range o.Events {
		ev := &o.Events[i]
		size += len(ev.Key) + len(ev.Value) + 48
		for _, h := range ev.Headers {
			size += len(h.Key) + len(h.Value) + 12
		}
		if ev.Topic != nil {
			size += len(*ev.Topic) + 8
		}
	}
	for _, er := range o.Errors {
		size += len(er.Message) + 24
	}
	e := &encoder{buf: make([]byte, 0, size)}
	e.head(majorMap, 2)
	e.text("events")
	e.head(majorArray, uint64(len(o.Events)))
	for i := range o.Events {
		e.event(&o.Events[i])
	}
	e.text("errors")
	e.head(majorArray, uint64(len(o.Errors)))
	for _, er := range o.Errors {
		e.head(majorMap, 2)
		e.text("index")
		e.head(majorUint, uint64(er.Index))
		e.text("message")
		e.text(er.Message)
	}
	return e.buf
}
