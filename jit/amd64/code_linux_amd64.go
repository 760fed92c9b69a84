//go:build linux && amd64

package amd64

import (
	"runtime"

	"github.com/waggle-bpf/waggle/internal/jitrt"
)

// code is a program's mapped machine code.
type code struct{ c *jitrt.Code }

func newCode(b []byte) (*code, error) {
	c, err := jitrt.NewCode(b)
	if err != nil {
		return nil, err
	}
	return &code{c}, nil
}

func (c *code) addr() uintptr { return c.c.Addr() }
func (c *code) bytes() []byte { return c.c.Bytes() }

// release unmaps the code once p is unreachable: no Machine runs p then,
// since a running Machine holds it (Machine.entered).
func (c *code) release(p *Program) {
	runtime.AddCleanup(p, func(c *jitrt.Code) { c.Free() }, c.c)
}
