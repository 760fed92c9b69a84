//go:build linux

package inspect

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf/btf"
)

// LoadBTFByID reads the BTF object with the given id from the kernel (a
// program's or map's btf_id, or the kernel's and modules' own); a module's
// BTF is read on top of the kernel's.
func LoadBTFByID(id uint32) (*btf.Spec, error) {
	h, err := btf.NewHandleFromID(btf.ID(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("BTF id %d: no such BTF object", id)
	}
	if err != nil {
		return nil, fmt.Errorf("BTF id %d: %w", id, err)
	}
	defer h.Close()
	info, err := h.Info()
	if err != nil {
		return nil, fmt.Errorf("BTF id %d: %w", id, err)
	}
	var base *btf.Spec
	if info.IsModule() {
		if base, err = btf.LoadKernelSpec(); err != nil {
			return nil, fmt.Errorf("BTF id %d (module %s): the kernel's BTF: %w", id, info.Name, err)
		}
	}
	spec, err := h.Spec(base)
	if err != nil {
		return nil, fmt.Errorf("BTF id %d: %w", id, err)
	}
	return spec, nil
}
