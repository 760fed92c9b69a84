package kernel

import (
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// NewCollection loads spec into the kernel (cilium/ebpf's NewCollection).
// A program Linux's verifier rejects fails the whole load, with its log
// (cilium/ebpf's *ebpf.VerifierError, "%+v" prints it all); lack of
// privilege is an error wrapping ErrNotSupported.
//
// cilium/ebpf encodes the instructions itself: what it reads from an ELF
// file it writes back unchanged, but see the package documentation for
// instructions built otherwise.
func NewCollection(spec *ebpf.CollectionSpec) (*Collection, error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("load into the kernel: %w", err)
	}
	return adopt(coll)
}

// NewCollectionFrom holds what LoadCollection or LoadObject loaded as a
// Collection, whose programs Run with BPF_PROG_TEST_RUN. The Collection
// takes lc's programs and maps: closing it closes them.
func NewCollectionFrom(lc *LoadedCollection) (*Collection, error) {
	if lc == nil || lc.Collection == nil {
		return nil, fmt.Errorf("no loaded collection")
	}
	return adopt(lc.Collection)
}

// adopt holds coll's programs as Programs, and coll, which Close closes.
func adopt(coll *ebpf.Collection) (*Collection, error) {
	c := &Collection{Programs: map[string]*Program{}, coll: coll}
	for name, ep := range coll.Programs {
		// The Program owns a descriptor of its own, so that closing it
		// and closing cilium/ebpf's are independent.
		fd, err := unix.FcntlInt(uintptr(ep.FD()), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("program %s: duplicate its descriptor: %w", name, err)
		}
		p := &Program{fd: fd, typ: ProgType(ep.Type())}
		p.cleanup = runtime.AddCleanup(p, closeFD, fd)
		c.Programs[name] = p
	}
	return c, nil
}
