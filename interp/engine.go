package interp

import (
	"errors"
	"fmt"

	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/maps"
)

// Engine is the interpreter as an engine.Engine: Engine{Checked} checks
// every memory access, Engine{Fast} runs verified programs unchecked. The
// runtime, the CLI and the test harnesses hold it as an engine.Engine;
// Load, NewMachine and Machine.Run stay for this package's own tests and
// for callers that want the interpreter and nothing else.
type Engine struct {
	Mode Mode
}

// The interpreter implements the seam.
var (
	_ engine.Engine  = Engine{}
	_ engine.Program = (*Program)(nil)
	_ engine.Machine = machine{}
	_ engine.Memory  = (*Memory)(nil)
)

// Name returns "interp" for checked mode and "interp-fast" for fast mode.
func (e Engine) Name() string {
	if e.Mode == Fast {
		return "interp-fast"
	}
	return "interp"
}

// Checked reports whether the engine checks every memory access.
func (e Engine) Checked() bool { return e.Mode == Checked }

// Load loads insns in the engine's mode (Load with opts converted).
// opts.Memory must return Memory values of this package (NewMemory): any
// other is no memory.
func (e Engine) Load(insns []isa.Instruction, opts engine.Options) (engine.Program, error) {
	o := Options{
		Mode:                 e.Mode,
		Helpers:              opts.Helpers,
		Trace:                opts.Trace,
		Budgeted:             opts.Budgeted,
		Verified:             opts.Verified,
		UnsafeFastUnverified: opts.UnsafeFastUnverified,
		StrictStack:          opts.StrictStack,
		ContextVariants:      opts.ContextVariants,
		ContextFaults:        opts.ContextFaults,
	}
	if f := opts.Memory; f != nil {
		o.Memory = func() *Memory {
			mm, _ := f().(*Memory)
			return mm
		}
	}
	p, err := Load(insns, o)
	if err != nil {
		return nil, err // a nil *Program must not become a non-nil interface
	}
	return p, nil
}

// NewMemory is NewMemory as the engine seam asks for it.
func (e Engine) NewMemory(regions []maps.Region) (engine.Memory, error) {
	mm, err := NewMemory(regions)
	if err != nil {
		return nil, err
	}
	return mm, nil
}

// NewMachine returns a new Machine (NewMachine) behind the seam's
// interface.
func (e Engine) NewMachine() engine.Machine { return machine{NewMachine()} }

// Engine returns the engine that loaded p: Engine{p.Mode()}.
func (p *Program) Engine() engine.Engine { return Engine{p.mode} }

// machine is a Machine behind engine.Machine, whose Run takes any
// engine.Program. It is one pointer, so converting it to the interface
// does not allocate.
type machine struct{ m *Machine }

// Run runs p, which must be an interpreter Program, on the Machine.
func (em machine) Run(p engine.Program, a *Args) (uint64, error) {
	ip, ok := p.(*Program)
	if !ok {
		return 0, fmt.Errorf("interp: cannot run a %T, which another engine loaded: %w", p, engine.ErrNotSupported)
	}
	m := em.m
	// (Pointers are stored only when they change: a store costs a write
	// barrier check.)
	if m.last != ip {
		m.last = ip
	}
	if m.lastArgs != a {
		m.lastArgs = a
	}
	return m.Run(ip, a)
}

// The interpreter repeats runs for less than a Run each.
var _ engine.Rerunner = machine{}

// Rerun implements engine.Rerunner: the program and Args of the last Run,
// n times in a row with what Run set up once. A program that may run Go
// (a helper, a legacy packet load) makes one run per Rerun, so that the
// caller does what it does between runs.
func (em machine) Rerun(n uint32) (uint64, uint32, error) {
	m := em.m
	p, a := m.last, m.lastArgs
	if p == nil || n == 0 {
		return 0, 0, errors.New("interp: Rerun without a Run before it, or of no runs")
	}
	if p.goes {
		n = 1
	}
	r0, err := m.run(p, a, nil, n)
	return r0, m.ran, err
}

// String returns Name, so that engines print by name.
func (e Engine) String() string { return e.Name() }
