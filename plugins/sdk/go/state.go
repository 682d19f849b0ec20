package weir

import (
	"encoding/binary"
	"unsafe"
)

// Keyed state the host keeps for the stage: values under keys, scoped to
// the stage and to the partition the instance serves. The host holds it
// beside the worker thread, persists only what changed, and hands it to
// every new instance and version of the stage: the stage needs no
// checkpoint functions for it, and what a batch costs depends on the keys
// it changes, not on how many the state holds. It is reachable while
// Process runs, in a stage that is not stateless. The writes of a batch
// take effect when Process returns; a batch that fails leaves no trace in
// the state.
//
// Keys are at most 4 KiB, values at most 1 MiB, a partition's state at
// most the stage's state_max_bytes; a write past a limit returns a
// *StateError with the host's reason. StateGetInt and StateSetInt keep
// integers as 8 bytes, little-endian, like the other SDKs.

//go:wasmimport weir state_get
func stateGet(kp unsafe.Pointer, kl int32, op unsafe.Pointer, oc int32) int64

//go:wasmimport weir state_get_many
func stateGetMany(kp unsafe.Pointer, kl int32, op unsafe.Pointer, oc int32) int64

//go:wasmimport weir state_set
func stateSet(kp unsafe.Pointer, kl int32, vp unsafe.Pointer, vl int32) int32

//go:wasmimport weir state_delete
func stateDelete(kp unsafe.Pointer, kl int32) int32

//go:wasmimport weir state_set_many
func stateSetMany(ep unsafe.Pointer, el int32) int32

//go:wasmimport weir state_error
func stateError(op unsafe.Pointer, oc int32) int32

// StateError is a state operation the host refused; Reason says why.
type StateError struct{ Reason string }

func (e *StateError) Error() string { return e.Reason }

// StateEntry is one write of StateSetMany: Value under Key, or Key
// removed when Delete is set.
type StateEntry struct {
	Key    []byte
	Value  []byte
	Delete bool
}

// noValue stands for "no value" in the host's buffers.
const noValue = 0xFFFF_FFFF

var one [1]byte

// statePtr is the address of b's first byte (of a placeholder when b is empty:
// the host reads no byte then).
func statePtr(b []byte) unsafe.Pointer {
	if cap(b) == 0 {
		return unsafe.Pointer(&one[0])
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

func stateRefused() error {
	buf := make([]byte, 256)
	n := int(stateError(statePtr(buf), int32(len(buf))))
	if n > len(buf) {
		buf = make([]byte, n)
		stateError(statePtr(buf), int32(n))
	}
	return &StateError{Reason: string(buf[:n])}
}

// stateAnswer calls f with a buffer until the host's answer fits; ok is false
// for "no value".
func stateAnswer(f func(op unsafe.Pointer, oc int32) int64) (out []byte, ok bool, err error) {
	buf := make([]byte, 64)
	for {
		n := f(statePtr(buf), int32(len(buf)))
		switch {
		case n == -1:
			return nil, false, nil
		case n < 0:
			return nil, false, stateRefused()
		case int(n) <= len(buf):
			return buf[:n], true, nil
		}
		buf = make([]byte, n)
	}
}

func statePush(buf []byte, b []byte, none bool) []byte {
	if none {
		return binary.LittleEndian.AppendUint32(buf, noValue)
	}
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(b)))
	return append(buf, b...)
}

func stateStatus(r int32) error {
	if r < 0 {
		return stateRefused()
	}
	return nil
}

// StateGet returns the value under key; ok is false when it has none.
func StateGet(key []byte) (value []byte, ok bool, err error) {
	return stateAnswer(func(op unsafe.Pointer, oc int32) int64 {
		return stateGet(statePtr(key), int32(len(key)), op, oc)
	})
}

// StateGetMany returns the values under keys, in their order (nil for a
// key without one), in one host call.
func StateGetMany(keys [][]byte) ([][]byte, error) {
	var req []byte
	for _, k := range keys {
		req = statePush(req, k, false)
	}
	ans, _, err := stateAnswer(func(op unsafe.Pointer, oc int32) int64 {
		return stateGetMany(statePtr(req), int32(len(req)), op, oc)
	})
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(keys))
	for len(ans) >= 4 {
		n := binary.LittleEndian.Uint32(ans)
		ans = ans[4:]
		if n == noValue {
			out = append(out, nil)
			continue
		}
		out = append(out, ans[:n:n])
		ans = ans[n:]
	}
	return out, nil
}

// StateSet sets key to value.
func StateSet(key, value []byte) error {
	return stateStatus(stateSet(statePtr(key), int32(len(key)), statePtr(value), int32(len(value))))
}

// StateDelete removes key.
func StateDelete(key []byte) error {
	return stateStatus(stateDelete(statePtr(key), int32(len(key))))
}

// StateSetMany applies several writes in one host call, all or nothing.
func StateSetMany(entries []StateEntry) error {
	var buf []byte
	for _, e := range entries {
		buf = statePush(buf, e.Key, false)
		buf = statePush(buf, e.Value, e.Delete)
	}
	return stateStatus(stateSetMany(statePtr(buf), int32(len(buf))))
}

// StateGetInt returns the integer under key (8 bytes, little-endian), or 0.
func StateGetInt(key []byte) (int64, error) {
	v, ok, err := StateGet(key)
	if err != nil || !ok || len(v) != 8 {
		return 0, err
	}
	return int64(binary.LittleEndian.Uint64(v)), nil
}

// StateSetInt stores n under key as 8 bytes, little-endian.
func StateSetInt(key []byte, n int64) error {
	return StateSet(key, binary.LittleEndian.AppendUint64(nil, uint64(n)))
}
