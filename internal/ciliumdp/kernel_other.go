//go:build !linux

package ciliumdp

import (
	"fmt"

	"github.com/waggle-bpf/waggle/kernel"
)

// KernelPrograms is Programs with the running kernel's verdict on each;
// outside Linux there is no kernel to ask.
func KernelPrograms(objs []Built) ([]Program, error) {
	return nil, fmt.Errorf("%w: not linux", kernel.ErrNotSupported)
}
