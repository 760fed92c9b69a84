package kernel

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/loader"
)

// loadObject reads the ELF object at path with waggle's loader (so that
// objects cilium/ebpf alone refuses attach too), lets prepare change its
// spec (program types from the hook, maps unpinned, counters added), and
// loads it with LoadObject. It is the one place AttachFile loads through.
// What prepare decides is final: the loader's programs take the types
// and attach types their specs have after it.
func loadObject(path string, prepare func(*ebpf.CollectionSpec) error) (*ebpf.Collection, error) {
	obj, err := loader.LoadFile(path, loader.Options{})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if obj.Spec == nil {
		return nil, fmt.Errorf("read %s: the loader kept no CollectionSpec", path)
	}
	if err := prepare(obj.Spec); err != nil {
		return nil, err
	}
	for _, p := range obj.Programs {
		if ps := obj.Spec.Programs[p.Name]; ps != nil && ps.Type != ebpf.UnspecifiedProgram {
			p.Type, p.AttachType = ps.Type, ps.AttachType
		}
	}
	lc, err := LoadObject(obj, &CollectionOptions{})
	if err != nil {
		return nil, fmt.Errorf("load %s into the kernel: %w", path, err)
	}
	return lc.Collection, nil
}
