//go:build unix

package mem

import "golang.org/x/sys/unix"

// maxAlloc bounds one mapping: 2^46 bytes fits every 64-bit address space
// Linux and the BSDs give user space; on 32-bit hosts mmap refuses earlier.
const maxAlloc = 1 << 46

// reserveThreshold is the size from which mappings are made without
// reserving swap (MAP_NORESERVE where the OS has it): prealloc'd maps
// reserve address space for max_entries elements and commit it lazily.
const reserveThreshold = 64 << 20

func alloc(n int) ([]byte, error) {
	flags := unix.MAP_PRIVATE | unix.MAP_ANON
	if n >= reserveThreshold {
		flags |= mapNoReserve
	}
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, flags)
}

func free(b []byte) error { return unix.Munmap(b) }
