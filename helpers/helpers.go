package helpers

import (
	"errors"
	"fmt"
)

// Env is what a helper sees of the run that called it. Engines implement it,
// so pointer arguments are validated the same way whichever engine runs.
type Env interface {
	// Memory returns the n bytes of program-visible memory at addr, or an
	// error if the run does not own all of them (or, with write, may not
	// write them). The slice aliases the program's memory.
	Memory(addr, n uint64, write bool) ([]byte, error)
}

// Func implements one helper: args holds r1-r5 at the call, the result is
// r0. A non-nil error aborts the run; it is for faults the kernel would
// never let happen (a bad pointer in an unverified program), not for errno
// results, which helpers return in r0 as Linux does.
type Func func(env Env, args *[5]uint64) (uint64, error)

// Table maps helper ids (Linux numbering, include/uapi/linux/bpf.h) to their
// implementations.
type Table map[int32]Func

// ErrUnknown is returned (wrapped) when a program calls a helper id the table
// does not have.
var ErrUnknown = errors.New("unknown helper")

// Lookup returns the helper with the given id.
func (t Table) Lookup(id int32) (Func, error) {
	if f, ok := t[id]; ok && f != nil {
		return f, nil
	}
	return nil, fmt.Errorf("helper %d: %w", id, ErrUnknown)
}
