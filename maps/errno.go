package maps

import (
	"errors"
	"fmt"
)

// Errno is a Linux error number. Map operations fail with the errno the
// kernel's would, on the Go side as an error and on the program side as the
// negative return value of the helper, so a program sees in waggle what it
// sees in Linux.
type Errno int32

// The errno values map operations return (Linux numbering, the same on
// every architecture Linux runs eBPF on).
const (
	EPERM      Errno = 1
	ENOENT     Errno = 2
	E2BIG      Errno = 7
	EBADF      Errno = 9
	EAGAIN     Errno = 11
	ENOMEM     Errno = 12
	EFAULT     Errno = 14
	EBUSY      Errno = 16
	EEXIST     Errno = 17
	ENODEV     Errno = 19
	EINVAL     Errno = 22
	ENOSPC     Errno = 28
	ERANGE     Errno = 34
	EDEADLK    Errno = 35
	ELOOP      Errno = 40
	EOVERFLOW  Errno = 75
	EOPNOTSUPP Errno = 95
	EUCLEAN    Errno = 117 // "structure needs cleaning": Linux's EFSCORRUPTED
	ENOTSUPP   Errno = 524 // kernel-internal "operation not supported", seen by programs
)

var errnoNames = map[Errno]string{
	EPERM: "EPERM", ENOENT: "ENOENT", E2BIG: "E2BIG", EBADF: "EBADF", EAGAIN: "EAGAIN",
	ENOMEM: "ENOMEM", EFAULT: "EFAULT", EBUSY: "EBUSY", EEXIST: "EEXIST", EINVAL: "EINVAL",
	ENOSPC: "ENOSPC", ERANGE: "ERANGE", EDEADLK: "EDEADLK", ELOOP: "ELOOP",
	EOPNOTSUPP: "EOPNOTSUPP", EUCLEAN: "EUCLEAN", ENOTSUPP: "ENOTSUPP",
}

var errnoText = map[Errno]string{
	EPERM: "operation not permitted", ENOENT: "key does not exist", E2BIG: "map is full",
	EBADF: "bad map", EAGAIN: "try again", ENOMEM: "out of memory", EFAULT: "bad address",
	EBUSY: "busy", EEXIST: "key already exists", ENODEV: "no such device", EINVAL: "invalid argument",
	ENOSPC: "no space left", ERANGE: "out of range", EDEADLK: "deadlock",
	ELOOP: "too many levels of nesting", EOVERFLOW: "value too large",
	EOPNOTSUPP: "operation not supported by this map type",
	EUCLEAN:    "map state is corrupt",
	ENOTSUPP:   "operation not supported",
}

// Error names the errno the way strerror and errno(1) do, with its
// symbolic name: "key does not exist (ENOENT)".
func (e Errno) Error() string {
	if t, ok := errnoText[e]; ok {
		return fmt.Sprintf("%s (%s)", t, errnoNames[e])
	}
	return fmt.Sprintf("errno %d", int32(e))
}

// Sentinel errors with cilium/ebpf's names, for errors.Is.
var (
	ErrKeyNotExist  = ENOENT // lookup or delete of a missing key; NextKey past the last key
	ErrKeyExist     = EEXIST // UpdateNoExist of a present key
	ErrFull         = E2BIG  // no room for a new key
	ErrNotSupported = EOPNOTSUPP

	// ErrCorrupt is the error of an operation that found the map's memory
	// in a state no operation leaves it in: a link, index, length or
	// position out of range, a chain or trie that loops, an element in the
	// wrong place. Only a write into the map's internals does that (a
	// program writing past its value, a bug in native code). The operation
	// fails without touching what it found, the error says which map and
	// what was wrong, and programs get -EUCLEAN, the errno Linux's
	// filesystems give for corrupt metadata (EFSCORRUPTED). See the package
	// documentation for what a corrupted map still answers.
	ErrCorrupt = EUCLEAN
)

// Return converts an error of a map operation to the value a helper
// returns: 0 for nil, -errno otherwise. The errno is found with errors.As,
// so errors wrapped with context keep theirs; errors without one give
// -EINVAL.
func Return(err error) uint64 {
	if err == nil {
		return 0
	}
	e, ok := err.(Errno)
	if !ok && !errors.As(err, &e) {
		e = EINVAL
	}
	return uint64(-int64(e))
}

// errnoOf returns the errno an error carries, EINVAL if none.
func errnoOf(err error) Errno {
	if e, ok := err.(Errno); ok {
		return e
	}
	var e Errno
	if errors.As(err, &e) {
		return e
	}
	return EINVAL
}
