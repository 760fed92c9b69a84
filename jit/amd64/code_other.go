//go:build !(linux && amd64)

package amd64

import (
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/jitrt"
)

type code struct{}

func newCode([]byte) (*code, error) { return nil, jitrt.Supported() }
func (*code) addr() uintptr         { return 0 }
func (*code) bytes() []byte         { return nil }
func (*code) release(*Program)      {}

// NewMachine returns a Machine whose runs fail: the JIT runs on
// linux/amd64 only (Load refuses programs here, so none reach it).
func (Engine) NewMachine() engine.Machine { return noMachine{} }

type noMachine struct{}

func (noMachine) Run(engine.Program, *engine.Args) (uint64, error) {
	return 0, jitrt.Supported()
}
