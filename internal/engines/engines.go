// Package engines lists waggle's engines (implementations of the seam in
// internal/engine) by name: the one place outside the engines' own tests
// that names a concrete engine. The runtime, the CLI, the conformance
// runner and the differential harnesses pick engines here and then use
// them only through the seam's interfaces.
package engines

import (
	"fmt"
	"strings"

	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/interp"
	"github.com/waggle-bpf/waggle/jit/amd64"
)

// Names of the engines, as ByName and the CLI spell them.
const (
	Interp     = "interp"      // the interpreter, checking every access
	InterpFast = "interp-fast" // the interpreter, for verified programs
	JIT        = amd64.Name    // x86-64 machine code, for verified programs (linux/amd64)
)

// All returns every engine, checked ones first. An engine-matrix test
// runs each case on each of them.
func All() []engine.Engine {
	return []engine.Engine{interp.Engine{Mode: interp.Checked}, interp.Engine{Mode: interp.Fast}, amd64.Engine{}}
}

// JITSupported returns why the JIT cannot run on this platform, or nil
// where it can (linux/amd64): what picks the default engine.
func JITSupported() error { return amd64.Supported() }

// Names returns the names of All's engines, in order.
func Names() []string {
	var names []string
	for _, e := range All() {
		names = append(names, e.Name())
	}
	return names
}

// ByName returns the engine called name (Engine.Name).
func ByName(name string) (engine.Engine, error) {
	for _, e := range All() {
		if e.Name() == name {
			return e, nil
		}
	}
	return nil, fmt.Errorf("unknown engine %q, want one of %s: %w", name, strings.Join(Names(), ", "), engine.ErrNotSupported)
}
