package kernel

import (
	"github.com/cilium/ebpf"
)

// Collection is an object loaded into the running kernel: its maps
// created, its prog arrays filled as the object declares them, and its
// programs loaded through Linux's verifier, all by cilium/ebpf's
// NewCollection (as a Go loader would load it), and each program held as
// a Program whose Run is a BPF_PROG_TEST_RUN. Close releases it all.
type Collection struct {
	// Programs are the object's programs by name, as cilium/ebpf names
	// them (the function's name).
	Programs map[string]*Program

	coll *ebpf.Collection
}

// Close closes the programs and the maps.
func (c *Collection) Close() error {
	var first error
	for _, p := range c.Programs {
		if err := p.Close(); err != nil && first == nil {
			first = err
		}
	}
	if c.coll != nil {
		c.coll.Close()
	}
	return first
}
