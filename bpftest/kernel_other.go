//go:build !linux

package bpftest

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Kernel is the engine of the running kernel. Outside Linux there is none:
// Load fails with an error wrapping ebpf.ErrNotSupported.
type Kernel struct {
	// LogSize is the verifier log buffer size; unused outside Linux.
	LogSize int
}

// Name returns "kernel".
func (Kernel) Name() string { return "kernel" }

// Load fails outside Linux.
func (Kernel) Load(obj *Object) (Instance, error) {
	return nil, fmt.Errorf("%s: the kernel engine needs Linux: %w", obj.Name, ebpf.ErrNotSupported)
}
