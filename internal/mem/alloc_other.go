//go:build !unix

package mem

import "math"

// maxAlloc bounds one allocation on the Go-heap fallback.
const maxAlloc = math.MaxInt / 2

// alloc is the Go-heap fallback described at the top of alloc.go: a word
// slice over-sized by a page, sliced at a page boundary.
func alloc(n int) ([]byte, error) {
	ps := PageSize()
	b := Aligned(n + ps)
	off := 0
	if r := int(Addr(b) % uint64(ps)); r != 0 {
		off = ps - r
	}
	return b[off : off+n : off+n], nil
}

// free lets the GC reclaim the memory once the caller drops the slice.
func free([]byte) error { return nil }
