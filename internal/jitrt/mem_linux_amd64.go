//go:build linux && amd64

package jitrt

import (
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Supported reports whether this platform runs machine code (nil on
// linux/amd64).
func Supported() error { return nil }

// Code is machine code in memory of its own, mapped read-execute after it
// was written while read-write: never both at once.
type Code struct {
	mu   sync.Mutex
	mem  []byte // the mapping, nil once freed
	size int    // bytes of code
}

// NewCode copies code into a new mapping and makes it executable.
func NewCode(code []byte) (*Code, error) {
	if len(code) == 0 {
		return nil, fmt.Errorf("jitrt: no code")
	}
	page := os.Getpagesize()
	n := (len(code) + page - 1) &^ (page - 1)
	m, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("jitrt: map %d bytes of code: %w", n, err)
	}
	copy(m, code)
	// The rest of the last page traps if ever reached.
	for i := len(code); i < n; i++ {
		m[i] = 0xcc // int3
	}
	if err := unix.Mprotect(m, unix.PROT_READ|unix.PROT_EXEC); err != nil {
		unix.Munmap(m)
		return nil, fmt.Errorf("jitrt: make code executable: %w", err)
	}
	return &Code{mem: m, size: len(code)}, nil
}

// Addr returns the address of the code's first byte.
func (c *Code) Addr() uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(c.mem))) }

// Bytes returns the code (read-only memory: do not write it).
func (c *Code) Bytes() []byte { return c.mem[:c.size:c.size] }

// Free unmaps the code. Nothing may run it, now or later.
func (c *Code) Free() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mem == nil {
		return nil
	}
	err := unix.Munmap(c.mem)
	c.mem = nil
	return err
}

// Stack is memory machine code runs on: size bytes above a page that
// faults on any access, so that running off the bottom kills the process
// at once rather than corrupting what lies below. (The code generator
// bounds its stack use; the guard is the second line.)
type Stack struct {
	mem []byte
}

// NewStack maps a stack of size bytes (rounded up to pages) and its guard
// page.
func NewStack(size int) (*Stack, error) {
	page := os.Getpagesize()
	size = (size + page - 1) &^ (page - 1)
	m, err := unix.Mmap(-1, 0, size+page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("jitrt: map a %d-byte stack: %w", size, err)
	}
	if err := unix.Mprotect(m[:page], unix.PROT_NONE); err != nil {
		unix.Munmap(m)
		return nil, fmt.Errorf("jitrt: guard page: %w", err)
	}
	return &Stack{mem: m}, nil
}

// Top returns the address one past the stack's highest byte (16-byte
// aligned), where a run's stack pointer starts.
func (s *Stack) Top() uintptr {
	return uintptr(unsafe.Pointer(unsafe.SliceData(s.mem))) + uintptr(len(s.mem))
}

// Guard returns the address range of the guard page.
func (s *Stack) Guard() (lo, hi uintptr) {
	lo = uintptr(unsafe.Pointer(unsafe.SliceData(s.mem)))
	return lo, lo + uintptr(os.Getpagesize())
}

// Free unmaps the stack.
func (s *Stack) Free() error {
	if s.mem == nil {
		return nil
	}
	err := unix.Munmap(s.mem)
	s.mem = nil
	return err
}
