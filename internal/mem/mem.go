// Package mem owns raw memory access for the engines: loads, stores and
// atomics at the machine addresses eBPF programs compute, in the host's byte
// order.
//
// Invariants this file relies on:
//   - An address given to a Load, Store or atomic function points into memory
//     that stays valid and reachable for the whole call: Go heap objects the
//     caller keeps alive (Go's heap does not move), or off-heap mappings.
//     Engines guarantee this either by the verifier's proof or, in checked
//     mode, by validating the address against the regions a run owns before
//     calling here.
//   - Addresses are reinterpreted through a pointer-typed view of the integer
//     (ptrOf) rather than unsafe.Pointer(uintptr(x)): the value may point
//     outside any Go object (off-heap maps), which checkptr would reject, and
//     the object it points into is kept alive by its owner, not by this
//     conversion.
//   - amd64 and arm64 allow unaligned plain loads and stores; atomics are
//     only called on naturally aligned addresses (checked by the caller).
//   - Plain loads and stores are //go:norace. eBPF programs running on
//     several Machines share memory the way programs on several CPUs do:
//     a plain load racing with another CPU's atomic add is the program's
//     business, as in the kernel, and not a bug of the Go process. The race
//     detector keeps watching every Go-side access.
package mem

import (
	"sync/atomic"
	"unsafe"
)

// Addr returns the address of b[0] as a program would see it, or 0 for an
// empty slice. The caller must keep b alive while the address is in use.
func Addr(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// SliceAddr returns the address of s[0], or 0 for an empty slice. The
// caller must keep s alive while the address is in use.
func SliceAddr[T any](s []T) uint64 {
	if len(s) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(s))))
}

// Aligned returns a zeroed n-byte slice whose first byte is 8-byte aligned,
// so programs can use atomics on its 8-byte words.
func Aligned(n int) []byte {
	if n == 0 {
		return nil
	}
	words := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), n)
}

//go:nosplit
func ptrOf(addr uint64) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&addr))
}

// Load8 loads one byte.
//
//go:norace
func Load8(addr uint64) uint64 { return uint64(*(*uint8)(ptrOf(addr))) }

// Load16 loads two bytes.
//
//go:norace
func Load16(addr uint64) uint64 { return uint64(*(*uint16)(ptrOf(addr))) }

// Load32 loads four bytes.
//
//go:norace
func Load32(addr uint64) uint64 { return uint64(*(*uint32)(ptrOf(addr))) }

// Load64 loads eight bytes.
//
//go:norace
func Load64(addr uint64) uint64 { return *(*uint64)(ptrOf(addr)) }

// Store8 stores the low byte of v.
//
//go:norace
func Store8(addr, v uint64) { *(*uint8)(ptrOf(addr)) = uint8(v) }

// Store16 stores the low two bytes of v.
//
//go:norace
func Store16(addr, v uint64) { *(*uint16)(ptrOf(addr)) = uint16(v) }

// Store32 stores the low four bytes of v.
//
//go:norace
func Store32(addr, v uint64) { *(*uint32)(ptrOf(addr)) = uint32(v) }

// Store64 stores v.
//
//go:norace
func Store64(addr, v uint64) { *(*uint64)(ptrOf(addr)) = v }

// Bytes returns the n bytes at addr as a slice aliasing that memory.
func Bytes(addr, n uint64) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(ptrOf(addr)), n)
}

// AtomicAdd32 adds v to the word at addr and returns the old value.
func AtomicAdd32(addr uint64, v uint32) uint32 {
	return atomic.AddUint32((*uint32)(ptrOf(addr)), v) - v
}

// AtomicAdd64 adds v to the word at addr and returns the old value.
func AtomicAdd64(addr, v uint64) uint64 {
	return atomic.AddUint64((*uint64)(ptrOf(addr)), v) - v
}

// AtomicOr32 ors v into the word at addr and returns the old value.
func AtomicOr32(addr uint64, v uint32) uint32 { return atomic.OrUint32((*uint32)(ptrOf(addr)), v) }

// AtomicOr64 ors v into the word at addr and returns the old value.
func AtomicOr64(addr, v uint64) uint64 { return atomic.OrUint64((*uint64)(ptrOf(addr)), v) }

// AtomicAnd32 ands v into the word at addr and returns the old value.
func AtomicAnd32(addr uint64, v uint32) uint32 { return atomic.AndUint32((*uint32)(ptrOf(addr)), v) }

// AtomicAnd64 ands v into the word at addr and returns the old value.
func AtomicAnd64(addr, v uint64) uint64 { return atomic.AndUint64((*uint64)(ptrOf(addr)), v) }

// AtomicXor32 xors v into the word at addr and returns the old value.
func AtomicXor32(addr uint64, v uint32) uint32 {
	p := (*uint32)(ptrOf(addr))
	for {
		old := atomic.LoadUint32(p)
		if atomic.CompareAndSwapUint32(p, old, old^v) {
			return old
		}
	}
}

// AtomicXor64 xors v into the word at addr and returns the old value.
func AtomicXor64(addr, v uint64) uint64 {
	p := (*uint64)(ptrOf(addr))
	for {
		old := atomic.LoadUint64(p)
		if atomic.CompareAndSwapUint64(p, old, old^v) {
			return old
		}
	}
}

// AtomicXchg32 stores v at addr and returns the old value.
func AtomicXchg32(addr uint64, v uint32) uint32 { return atomic.SwapUint32((*uint32)(ptrOf(addr)), v) }

// AtomicXchg64 stores v at addr and returns the old value.
func AtomicXchg64(addr, v uint64) uint64 { return atomic.SwapUint64((*uint64)(ptrOf(addr)), v) }

// AtomicCmpXchg32 stores v at addr if it holds old, and returns the value it
// held before.
func AtomicCmpXchg32(addr uint64, old, v uint32) uint32 {
	p := (*uint32)(ptrOf(addr))
	for {
		if atomic.CompareAndSwapUint32(p, old, v) {
			return old
		}
		if cur := atomic.LoadUint32(p); cur != old {
			return cur
		}
	}
}

// AtomicCmpXchg64 stores v at addr if it holds old, and returns the value it
// held before.
func AtomicCmpXchg64(addr, old, v uint64) uint64 {
	p := (*uint64)(ptrOf(addr))
	for {
		if atomic.CompareAndSwapUint64(p, old, v) {
			return old
		}
		if cur := atomic.LoadUint64(p); cur != old {
			return cur
		}
	}
}

// SliceAt returns the []byte whose header (address, length, capacity) is
// stored at addr, in memory the caller keeps alive: a batch's items, which
// the caller gives by address.
func SliceAt(addr uint64) []byte { return *(*[]byte)(ptrOf(addr)) }
