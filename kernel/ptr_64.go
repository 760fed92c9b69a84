//go:build linux && !(386 || arm || mips || mipsle || mips64p32 || mips64p32le || armbe || amd64p32)

package kernel

import "unsafe"

// ptr is a __aligned_u64 of bpf_attr that holds a user-space address. It is
// an unsafe.Pointer, not an integer, so that escape analysis moves what it
// points to onto the heap (the Go heap does not move) and the GC keeps it
// alive while the attr is reachable.
type ptr struct{ p unsafe.Pointer }

func newPtr(p unsafe.Pointer) ptr { return ptr{p} }
