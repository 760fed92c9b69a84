//go:build linux && (386 || arm || mipsle || mips64p32le || amd64p32)

package kernel

import "unsafe"

// ptr is a __aligned_u64 of bpf_attr that holds a user-space address; on a
// 32-bit little-endian machine the pointer is its low half. See ptr_64.go.
type ptr struct {
	p   unsafe.Pointer
	pad uint32
}

func newPtr(p unsafe.Pointer) ptr { return ptr{p: p} }
