package kernel

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// loadObject reads the ELF object at path, lets prepare change its spec
// (program types from the hook, no map pinning), and loads it into the
// kernel with cilium/ebpf. It is the one place AttachFile loads through:
// waggle's normalising loader (kernel.LoadCollection, issue 9) replaces it
// here, so that attach takes every object load takes.
func loadObject(path string, prepare func(*ebpf.CollectionSpec) error) (*ebpf.Collection, error) {
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if err := prepare(spec); err != nil {
		return nil, err
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{})
	if err != nil {
		return nil, fmt.Errorf("load %s into the kernel: %w", path, err)
	}
	return coll, nil
}
