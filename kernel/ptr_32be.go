//go:build linux && (mips || mips64p32 || armbe)

package kernel

import "unsafe"

// ptr is a __aligned_u64 of bpf_attr that holds a user-space address; on a
// 32-bit big-endian machine the pointer is its low half, the second word.
// See ptr_64.go.
type ptr struct {
	pad uint32
	p   unsafe.Pointer
}

func newPtr(p unsafe.Pointer) ptr { return ptr{p: p} }
