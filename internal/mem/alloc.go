package mem

// Off-heap memory: the storage of maps (and later of JIT code) that native
// code holds raw pointers into.
//
// Invariants this file and its per-OS halves rely on:
//   - Memory from Alloc is not part of any Go object on platforms with mmap
//     (every unix): the GC never scans, moves or frees it, so addresses into
//     it may be stored anywhere (in registers of JIT code, in off-heap
//     headers) for as long as the owner has not called Free. It holds no Go
//     pointers and must never be given any.
//   - Alloc returns zeroed, page-aligned, readable and writable memory. The
//     slice has length n; its capacity is n rounded up to whole pages, all of
//     which belong to the mapping.
//   - Pages are committed on first touch: a mapping costs address space, not
//     memory, until it is used. Large mappings are made with MAP_NORESERVE on
//     Linux so that reserving address space for max_entries elements never
//     fails merely because it exceeds the commit limit; touching more memory
//     than the machine has ends the process, as for any Go allocation.
//   - Free is given exactly a slice Alloc returned (same first byte and
//     capacity), once. Afterwards every address inside it is invalid;
//     touching it faults, which kills the process: owners make sure nothing
//     uses the memory any more before they call Free.
//   - Elsewhere (no mmap) Alloc falls back to the Go heap: a []uint64
//     allocation, over-sized by a page and sliced at a page boundary. Go's
//     heap does not move objects, so addresses stay valid while the owner
//     keeps the returned slice reachable (it must, until Free); Free only
//     drops nothing and lets the GC reclaim the memory once unreferenced.
//     Such memory is visible to GOMEMLIMIT and to the race detector; mmap'd
//     memory is visible to neither.

import (
	"fmt"
	"math"
	"os"
)

// PageSize is the host's memory page size.
func PageSize() int { return os.Getpagesize() }

// Alloc returns n bytes of zeroed, page-aligned memory off the Go heap (see
// the invariants above). n must be positive.
func Alloc(n int) ([]byte, error) {
	if n <= 0 {
		return nil, fmt.Errorf("mem: allocate %d bytes: size must be positive", n)
	}
	ps := PageSize()
	rounded := (uint64(n) + uint64(ps) - 1) &^ (uint64(ps) - 1)
	if rounded > maxAlloc || rounded > math.MaxInt {
		return nil, fmt.Errorf("mem: allocate %d bytes: larger than the address space allows", n)
	}
	b, err := alloc(int(rounded))
	if err != nil {
		return nil, fmt.Errorf("mem: allocate %d bytes: %w", n, err)
	}
	return b[:n:rounded], nil
}

// Free releases memory returned by Alloc. Using the memory afterwards is a
// fatal error.
func Free(b []byte) error {
	if cap(b) == 0 {
		return nil
	}
	if err := free(b[:cap(b)]); err != nil {
		return fmt.Errorf("mem: free %d bytes: %w", cap(b), err)
	}
	return nil
}

// Populate backs b, memory from Alloc, with pages of its own now, as
// Linux's vmalloc backs a map at creation, rather than at first write.
// Until written, anonymous memory reads as the host's one shared zero
// page: a program reading a never-written 1 MiB array value then read one
// 4 KiB page through 256 addresses, and took 1.7-2.8x the time the same
// copy took from written memory (memcpy_1m of waggle bench). Best effort:
// memory it cannot populate stays lazily backed.
func Populate(b []byte) {
	if len(b) == 0 || populate(b) == nil {
		return
	}
	ps := PageSize()
	for i := 0; i < len(b); i += ps {
		b[i] = 0 // a write fault gives the page its own memory
	}
}
