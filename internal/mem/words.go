package mem

import (
	"sync/atomic"
	"unsafe"
)

// Atomic loads, stores and compare-and-swap for the off-heap data
// structures of maps (bucket heads, free lists, locks, ring positions),
// and typed views of off-heap words.
//
// Invariants (beyond those at the top of mem.go):
//   - Addresses are naturally aligned (4 for 32-bit, 8 for 64-bit words);
//     callers lay out their structures so.
//   - On addresses outside the Go heap, the race detector neither checks
//     these operations nor derives happens-before edges from them. Data
//     guarded by an off-heap lock must therefore live off-heap too.

// AtomicLoad32 loads the 32-bit word at addr atomically.
func AtomicLoad32(addr uint64) uint32 { return atomic.LoadUint32((*uint32)(ptrOf(addr))) }

// AtomicLoad64 loads the 64-bit word at addr atomically.
func AtomicLoad64(addr uint64) uint64 { return atomic.LoadUint64((*uint64)(ptrOf(addr))) }

// AtomicStore32 stores v at addr atomically.
func AtomicStore32(addr uint64, v uint32) { atomic.StoreUint32((*uint32)(ptrOf(addr)), v) }

// AtomicStore64 stores v at addr atomically.
func AtomicStore64(addr, v uint64) { atomic.StoreUint64((*uint64)(ptrOf(addr)), v) }

// CompareAndSwap32 stores v at addr if it holds old, and reports whether it
// did.
func CompareAndSwap32(addr uint64, old, v uint32) bool {
	return atomic.CompareAndSwapUint32((*uint32)(ptrOf(addr)), old, v)
}

// CompareAndSwap64 stores v at addr if it holds old, and reports whether it
// did.
func CompareAndSwap64(addr, old, v uint64) bool {
	return atomic.CompareAndSwapUint64((*uint64)(ptrOf(addr)), old, v)
}

// Uint32s views b as 32-bit words: len(b)/4 of them, aliasing b. b must
// start 4-byte aligned (off-heap memory from Alloc does); nil otherwise.
func Uint32s(b []byte) []uint32 {
	if len(b) < 4 || Addr(b)%4 != 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}
