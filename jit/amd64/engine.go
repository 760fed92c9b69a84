package amd64

import (
	"errors"
	"fmt"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/jitrt"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/maps"
)

// Name is the engine's name, as the CLI's --engine flag spells it.
const Name = "jit"

// Engine is the JIT as an engine.Engine: Load compiles a program to
// x86-64 machine code, Machine.Run runs it natively. It runs only
// programs the verifier accepted (or, for tests, Options
// .UnsafeFastUnverified ones): its memory accesses are unchecked
// machine instructions, and a bad one crashes the process.
type Engine struct{}

// The JIT implements the seam.
var (
	_ engine.Engine  = Engine{}
	_ engine.Program = (*Program)(nil)
)

// ErrUnverified is Load's answer to a program neither Options.Verified
// nor Options.UnsafeFastUnverified vouches for.
var ErrUnverified = errors.New("jit: machine code runs memory accesses unchecked and is only for programs the verifier has accepted (Options.Verified); run an unverified program on the checked interpreter")

// Supported returns why the JIT cannot run here (it runs on linux/amd64
// only), or nil.
func Supported() error { return jitrt.Supported() }

// Name returns "jit".
func (Engine) Name() string { return Name }

// String returns Name.
func (e Engine) String() string { return e.Name() }

// Checked reports false: machine code checks no memory access.
func (Engine) Checked() bool { return false }

// NewMemory returns a Memory that only counts the regions: machine code
// checks no access, so it needs no map of them.
func (Engine) NewMemory(regions []maps.Region) (engine.Memory, error) {
	return memory(len(regions)), nil
}

type memory int

func (m memory) Len() int { return int(m) }

// Program is a compiled program. It is immutable and safe for concurrent
// use by many Machines; its code is unmapped when it is no longer
// reachable (or by Free).
type Program struct {
	insns []isa.Instruction
	code  *code
	funcs map[int]uintptr // function entry slot -> address
	entry uintptr         // funcs[0], the program's start
	addr  uint64          // its entry stub's address: where runs start, and what its exits report (ExecCtx.Prog)
	// batchAddr is its batch stub's address, where the runs of a
	// packet batch start (Machine.RunPackets).
	batchAddr uint64
	sites     []site
	table     helpers.Table // for callx
	pcs       []int
	costs     map[int]uint64
	// entryCost is costs[0], what a tail call into the program spends.
	entryCost uint64
	budgeted  bool
	faults    map[int]error // engine.Options.ContextFaults
}

// Instructions returns the program's slots. The slice must not be
// modified.
func (p *Program) Instructions() []isa.Instruction { return p.insns }

// Engine returns Engine{}.
func (p *Program) Engine() engine.Engine { return Engine{} }

// Code returns the program's machine code, for disassembly.
func (p *Program) Code() []byte { return p.code.bytes() }

// Load compiles insns. It refuses what only a checked engine may run
// (unverified programs unless opts.UnsafeFastUnverified), and what the
// JIT does not do (tracing, the context rewrites of unverified programs)
// with errors wrapping engine.ErrNotSupported.
func (e Engine) Load(insns []isa.Instruction, opts engine.Options) (engine.Program, error) {
	if err := jitrt.Supported(); err != nil {
		return nil, fmt.Errorf("jit: %w: %w", engine.ErrNotSupported, err)
	}
	if !opts.Verified {
		if !opts.UnsafeFastUnverified {
			return nil, ErrUnverified
		}
		if err := isa.ValidateProgram(insns); err != nil {
			return nil, err
		}
	}
	if opts.Trace != nil {
		return nil, fmt.Errorf("jit: tracing each instruction: %w (trace on the interpreter)", engine.ErrNotSupported)
	}
	for pc, reason := range opts.ContextFaults {
		if _, ok := opts.ContextVariants[pc]; ok || reason == nil || pc < 0 || pc >= len(insns) {
			return nil, fmt.Errorf("jit: context fault at slot %d: a slot of the program, with a reason, and no context variant", pc)
		}
	}
	for pc := range opts.ContextVariants {
		if pc < 0 || pc >= len(insns) {
			return nil, fmt.Errorf("jit: context variant at slot %d, outside the %d-slot program", pc, len(insns))
		}
	}
	insns = insns[:len(insns):len(insns)]
	costs := engine.FrameCosts(insns)
	c, err := compile(insns, options{
		helpers:  opts.Helpers,
		budgeted: opts.Budgeted,
		costs:    costs,
		funcBase: mem.SliceAddr(insns),
		inline:   opts.Verified,
		blind:    opts.BlindConstants,
		variants: opts.ContextVariants,
		faults:   opts.ContextFaults,
	})
	if err != nil {
		return nil, err
	}
	cm, err := newCode(c.code)
	if err != nil {
		return nil, err
	}
	p := &Program{insns: insns, code: cm, funcs: map[int]uintptr{}, sites: c.sites, table: opts.Helpers, pcs: c.pcs, costs: costs, entryCost: costs[0], budgeted: opts.Budgeted, faults: opts.ContextFaults}
	for pc, off := range c.funcs {
		p.funcs[pc] = cm.addr() + uintptr(off)
	}
	p.entry, p.addr = p.funcs[0], uint64(cm.addr())+uint64(c.entry)
	p.batchAddr = uint64(cm.addr()) + uint64(c.batch)
	cm.release(p)
	return p, nil
}

// funcPC returns the slot a callback address (the value of a PseudoFunc
// lddw of this program) designates, if it is a function entry.
func (p *Program) funcPC(fn uint64) (int, bool) {
	base := mem.SliceAddr(p.insns)
	if fn < base || (fn-base)%isa.InstructionSize != 0 {
		return 0, false
	}
	pc := int((fn - base) / isa.InstructionSize)
	if _, ok := p.funcs[pc]; !ok || pc >= len(p.insns) {
		return 0, false
	}
	return pc, true
}
