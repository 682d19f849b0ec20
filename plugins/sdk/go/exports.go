package weir

// The core-module exports. Buffers handed to the host stay referenced here
// until the next call, so the garbage collector leaves them in place while
// the host copies them out.

import (
	"fmt"
	"os"
	"unsafe"
)

var (
	inbox  [][]byte // buffers the host writes into, until they are consumed
	result []byte   // the last result, until the next call
)

func pack(b []byte) uint64 {
	result = b
	if len(b) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&b[0])))<<32 | uint64(len(b))
}

// take returns the buffer the host wrote at ptr and releases it.
func take(ptr, n uint32) []byte {
	for i, b := range inbox {
		if len(b) > 0 && uint32(uintptr(unsafe.Pointer(&b[0]))) == ptr {
			inbox = append(inbox[:i], inbox[i+1:]...)
			return b[:n]
		}
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(ptr))), n)
}

func status(err error) uint64 {
	if err == nil {
		result = nil
		return 0
	}
	msg := err.Error()
	if msg == "" {
		msg = "refused"
	}
	return pack([]byte(msg))
}

// fail reports a panic on stderr in one line (weir puts the plugin's last
// stderr lines into the dead letter's reason) and ends the instance; weir
// starts a fresh one.
func fail(v any) {
	fmt.Fprintf(os.Stderr, "panic: %v\n", v)
	os.Exit(2)
}

func mustStage() Stage {
	if stage == nil {
		fail("no stage registered: call weir.Export(&YourStage{}) from an init function")
	}
	return stage
}

//go:wasmexport weir_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport weir_alloc
func alloc(n uint32) uint32 {
	b := make([]byte, n+1) // never empty, so it has an address
	inbox = append(inbox, b)
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

//go:wasmexport weir_init
func initStage(ptr, n uint32) uint64 {
	config, err := decodeConfig(take(ptr, n))
	if err != nil {
		return status(fmt.Errorf("config: %v", err))
	}
	return status(call(func() error { return mustStage().Init(config) }))
}

//go:wasmexport weir_process
func process(ptr, n uint32) uint64 {
	events, err := decodeBatch(take(ptr, n))
	if err != nil {
		fail(err)
	}
	var out Output
	func() {
		defer func() {
			if r := recover(); r != nil {
				fail(r)
			}
		}()
		out = mustStage().Process(events)
	}()
	return pack(encodeOutput(&out))
}

//go:wasmexport weir_checkpoint_export
func checkpointExport() uint64 {
	c, ok := mustStage().(Checkpointer)
	if !ok {
		return pack(nil)
	}
	return pack(c.CheckpointExport())
}

//go:wasmexport weir_checkpoint_import
func checkpointImport(ptr, n uint32) uint64 {
	state := take(ptr, n)
	c, ok := mustStage().(Checkpointer)
	if !ok {
		if len(state) == 0 {
			return status(nil)
		}
		return status(fmt.Errorf("the stage keeps no state"))
	}
	return status(call(func() error { return c.CheckpointImport(state) }))
}

// call runs f, turning a panic into its error.
func call(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}
