//go:build !linux

package verifuzz

import (
	"errors"
	"time"

	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/kernel"
)

var errNotLinux = errors.New("the kernel's verifier is only on Linux")

// Kernel is Linux's verifier and test run; elsewhere NewKernel fails.
type Kernel struct{ LoadTime, RunTime time.Duration }

// NewKernel fails: not Linux.
func NewKernel() (*Kernel, error) { return nil, errNotLinux }

// Close does nothing.
func (k *Kernel) Close() {}

// Load fails: not Linux.
func (k *Kernel) Load(*fuzzgen.PtrProgram) (*kernel.Program, error) { return nil, errNotLinux }

// Run fails: not Linux.
func (k *Kernel) Run(*kernel.Program, *fuzzgen.PtrProgram, int) Outcome {
	return Outcome{Err: errNotLinux}
}

// MayEvict reports false: there is no kernel LRU here.
func (k *Kernel) MayEvict(*fuzzgen.PtrProgram) bool { return false }
