package interp

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	syncatomic "sync/atomic"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/isa"
)

// Mode selects how the interpreter treats memory accesses.
type Mode int

const (
	// Checked validates every access against the memory the run owns. It is
	// the zero value, so a Program is safe unless asked otherwise.
	Checked Mode = iota
	// Fast accesses memory without checks. Use it only for programs the
	// verifier has accepted: a bad address crashes the process. Load
	// refuses it unless Options.Verified (or, for tests,
	// Options.UnsafeFastUnverified) is set.
	Fast
)

func (m Mode) String() string {
	switch m {
	case Checked:
		return "checked"
	case Fast:
		return "fast"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Limits of a run, as in the kernel (include/linux/bpf.h, bpf_verifier.h).
const (
	StackSize     = 512 // MAX_BPF_STACK: bytes of stack per frame
	MaxCallFrames = 8   // MAX_CALL_FRAMES: the main program and 7 nested calls
)

// Options configure Load.
type Options struct {
	Mode Mode
	// Helpers resolves "call N". A program calling an id missing here fails
	// to load.
	Helpers helpers.Table
	// Trace, if set, is called before every instruction executes, with its
	// slot index and the registers r0-r10. It is for debugging and for
	// counting instructions; a program loaded without it pays nothing.
	Trace func(pc int, regs *[11]uint64)
	// Budgeted makes the program count its loops, calls and callbacks,
	// so runs can bound them with Args.Budget and stop them with
	// Args.Stop (needed for unverified code that may loop forever). Each
	// loop iteration then spends fuel; without it loops cost nothing extra
	// and Args.Budget and Args.Stop must be unset.
	Budgeted bool
	// Memory returns the memory runs of the program may reach besides
	// their stack and Args.Regions: the values of the maps it references.
	// Checked runs call it when they start and when a tail call enters the
	// program, so what it returns may change between runs (a map stored
	// into a map-in-map). nil means none.
	Memory func() *Memory
	// Verified says waggle's verifier accepted the program, and that it
	// was changed since only as the verifier's findings direct (its
	// context accesses rewritten, its map references linked), which keeps
	// it valid. Load then allows Mode Fast, whose accesses the verifier
	// proved in bounds, and does not run isa.ValidateProgram again: the
	// verifier ran it, and a preparation validates a program once. Never
	// set it for a program the verifier did not accept.
	Verified bool
	// UnsafeFastUnverified allows Mode Fast for a program no verifier has
	// accepted. A fast run of a program with a bad access reads or writes
	// any memory of the process. It is for tests and the conformance
	// suite, whose programs are known to be safe; never set it for
	// programs from elsewhere.
	UnsafeFastUnverified bool
	// StrictStack makes checked runs fault (ErrUninitStack) on a read of
	// stack bytes the frame has not written in this run, as Linux's
	// verifier rejects such reads ("invalid read from stack") for programs
	// loaded without CAP_PERFMON (env->allow_uninit_stack false,
	// check_stack_read_fixed_off). Privileged programs may read them; here
	// they then read zero, or what an earlier frame at the same depth of
	// the run left. A frame starts with nothing written: the run's first,
	// each bpf-to-bpf call and callback, and a tail call's program. An
	// Env.Memory write (a helper's output) initialises its bytes, as the
	// kernel marks a helper's MEM_UNINIT memory; an Env.Memory read must
	// find them initialised, as check_stack_range_initialized does. It is
	// the soundness oracle of an unprivileged verifier. Fast mode ignores
	// it.
	StrictStack bool
	// ContextVariants are loads and stores that run in another form when
	// their base register holds the run's context (Args.Regs[0], what r1
	// holds at entry), by slot: the context-access rewrite of an access
	// that may be one, in a program no verifier has checked
	// (progtype.Program's Variants). The instruction at the slot runs otherwise. Both must be
	// loads, or both stores, through the same base register; the context
	// form of a store may also be "ja +0", a store the context ignores.
	ContextVariants map[int]isa.Instruction
	// ContextFaults are loads, stores and atomic operations that end the
	// run with a fault (ErrContext, with the error given) when their base
	// register holds the run's context, and run as they are otherwise:
	// accesses the context's rules refuse, in a program no verifier has
	// checked (progtype.Program's Faults). A slot may not be in both.
	ContextFaults map[int]error
}

// variant is an access with a context form (Options.ContextVariants), or
// one that faults on the context (Options.ContextFaults).
type variant struct {
	base  uint8
	code  [2]insn // [0] as the program has it, [1] on the context
	skip  bool    // on the context: nothing (a store the context ignores)
	fault error   // on the context: the fault's reason
}

// Program is a validated, predecoded program. It is immutable and safe for
// concurrent use by many Machines.
type Program struct {
	insns    []isa.Instruction
	code     []insn // with Options.Budgeted, backward jumps are opBack, which spends fuel
	funcs    []helpers.Func
	table    helpers.Table
	mode     Mode
	budgeted bool
	strict   bool // Options.StrictStack, in checked mode
	memory   func() *Memory
	// costs is the fuel of a frame starting at each function entry
	// (engine.FrameCosts): slot 0 for tail calls, callbacks for Machine.Call.
	costs map[int]uint64
	// With Options.Trace, every op is opTrace and traced holds the real ones.
	trace  func(pc int, regs *[11]uint64)
	traced []uint8
	// variants are the slots whose op is opCtxVariant.
	variants map[int]*variant
	// goes says runs may run Go code besides the interpreter's loop: a
	// helper call (and so a tail call or a callback), a legacy packet load
	// (which may ask the hook) or a trace function. Batches sync the
	// caller's state for each such run (RunPackets).
	goes bool
	// verified says a verifier accepted the program (Options.Verified).
	verified bool
}

// Load validates prog (isa.ValidateProgram, unless Options.Verified says
// the verifier did) and prepares it to run. The Program keeps prog (for
// error messages and callback addresses): do not modify it afterwards.
// Memory safety is not checked here: that is the verifier's job, or
// Checked mode's at run time.
func Load(prog []isa.Instruction, opts Options) (*Program, error) {
	if !opts.Verified {
		if err := isa.ValidateProgram(prog); err != nil {
			return nil, err
		}
	}
	if opts.Mode != Checked && opts.Mode != Fast {
		return nil, fmt.Errorf("interp: unknown mode %d", opts.Mode)
	}
	if opts.Mode == Fast && !opts.Verified && !opts.UnsafeFastUnverified {
		return nil, ErrUnverifiedFast
	}
	insns := prog[:len(prog):len(prog)]
	code, funcs, err := decode(insns, opts.Mode, opts.Helpers, mem.SliceAddr(insns))
	if err != nil {
		return nil, err
	}
	p := &Program{
		insns:  insns,
		code:   code,
		funcs:  funcs,
		table:  opts.Helpers,
		mode:   opts.Mode,
		trace:  opts.Trace,
		memory: opts.Memory,
		strict: opts.StrictStack && opts.Mode == Checked,
		// (A verified program reads r0 and r2-r9 only after writing
		// them: the verifier marks them uninitialized at entry.)
		verified: opts.Verified,
		costs:    engine.FrameCosts(insns),
		// Tracing counts every instruction anyway, so it keeps opBack.
		budgeted: opts.Budgeted || opts.Trace != nil,
	}
	for pc := range code {
		if code[pc].op == opCallLocal {
			code[pc].imm = int64(p.costs[int(code[pc].off)])
		}
	}
	if !p.budgeted {
		for pc, i := range code {
			if i.op == opBack {
				code[pc].op = i.sz
			}
		}
	}
	if len(opts.ContextVariants)+len(opts.ContextFaults) > 0 {
		p.variants = make(map[int]*variant, len(opts.ContextVariants)+len(opts.ContextFaults))
		for pc, alt := range opts.ContextVariants {
			v, err := decodeVariant(insns, pc, alt, opts.Mode)
			if err != nil {
				return nil, err
			}
			v.code[0] = code[pc]
			p.variants[pc] = v
			code[pc].op = opCtxVariant
		}
		for pc, reason := range opts.ContextFaults {
			if pc < 0 || pc >= len(insns) {
				return nil, fmt.Errorf("interp: context fault at slot %d, outside the %d-slot program", pc, len(insns))
			}
			b, ok := accessBase(insns[pc])
			if !ok && insns[pc].Op.Class() == isa.ClassSTX && insns[pc].Op.Mode() == isa.ModeATOMIC {
				b, ok = insns[pc].Dst, true
			}
			if !ok || reason == nil || p.variants[pc] != nil {
				return nil, fmt.Errorf("interp: slot %d: a context fault needs a load, store or atomic operation, a reason, and no context variant", pc)
			}
			p.variants[pc] = &variant{base: uint8(b), code: [2]insn{code[pc]}, fault: reason}
			code[pc].op = opCtxVariant
		}
	}
	for _, i := range code {
		switch i.op {
		case opCall, opCallX, opLdAbs, opLdInd:
			p.goes = true
		}
	}
	if p.trace != nil {
		p.goes = true
		p.traced = make([]uint8, len(code))
		for pc := range code {
			p.traced[pc], code[pc].op = code[pc].op, opTrace
		}
	}
	return p, nil
}

// decodeVariant checks and predecodes the context form alt of the access
// at slot pc.
func decodeVariant(prog []isa.Instruction, pc int, alt isa.Instruction, mode Mode) (*variant, error) {
	if pc < 0 || pc >= len(prog) {
		return nil, fmt.Errorf("interp: context variant at slot %d, outside the %d-slot program", pc, len(prog))
	}
	ins := prog[pc]
	b1, ok1 := accessBase(ins)
	b2, ok2 := accessBase(alt)
	if ok1 && ins.Op.Class() != isa.ClassLDX && alt == (isa.Instruction{Op: isa.OpJA}) {
		return &variant{base: uint8(b1), skip: true}, nil // a store the context ignores
	}
	if !ok1 || !ok2 || b1 != b2 || ins.Op.Class() != alt.Op.Class() {
		return nil, fmt.Errorf("interp: slot %d: context variant %s of %s: both must be loads or stores through one base register", pc, isa.Format(alt, isa.Instruction{}), isa.Format(ins, isa.Instruction{}))
	}
	code, _, err := decode([]isa.Instruction{alt}, mode, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("interp: slot %d: context variant: %w", pc, err)
	}
	return &variant{base: uint8(b1), code: [2]insn{1: code[0]}}, nil
}

// accessBase returns the base register of a load or store.
func accessBase(i isa.Instruction) (isa.Register, bool) {
	switch c, m := i.Op.Class(), i.Op.Mode(); {
	case c == isa.ClassLDX && (m == isa.ModeMEM || m == isa.ModeMEMSX):
		return i.Src, true
	case (c == isa.ClassST || c == isa.ClassSTX) && m == isa.ModeMEM:
		return i.Dst, true
	}
	return 0, false
}

// funcPC returns the slot a callback address (the value of a PseudoFunc
// lddw of this program) designates.
func (p *Program) funcPC(fn uint64) (int, bool) {
	base := mem.SliceAddr(p.insns)
	if fn < base || (fn-base)%isa.InstructionSize != 0 {
		return 0, false
	}
	pc := (fn - base) / isa.InstructionSize
	if pc >= uint64(len(p.code)) || p.code[pc].op == opInvalid {
		return 0, false
	}
	return int(pc), true
}

// Instructions returns the program's slots. The slice must not be modified.
func (p *Program) Instructions() []isa.Instruction { return p.insns }

// Mode returns the mode the program was loaded in.
func (p *Program) Mode() Mode { return p.mode }

// Region is memory a run owns besides its stack (engine.Region).
type Region = engine.Region

// Addr returns the address a program sees for b[0], to pass in Args.Regs;
// 0 for an empty slice. Keep b alive, and list it in Args.Regions, for as
// long as the program may use the address.
func Addr(b []byte) uint64 { return mem.Addr(b) }

// Args are the inputs of one run (engine.Args).
type Args = engine.Args

// Errors a run can end with: the engine seam's (package
// internal/engine). Faults are *Fault values wrapping ErrMemory.
var (
	ErrMemory      = engine.ErrMemory
	ErrBudget      = engine.ErrBudget
	ErrStopped     = engine.ErrStopped
	ErrCallDepth   = engine.ErrCallDepth
	ErrHelper      = engine.ErrHelper
	ErrUnreleased  = engine.ErrUnreleased
	ErrUninitStack = engine.ErrUninitStack
	ErrContext     = engine.ErrContext
)

// ErrUnverifiedFast is Load's answer to Mode Fast for a program neither
// Options.Verified nor Options.UnsafeFastUnverified vouches for.
var ErrUnverifiedFast = errors.New("interp: fast mode runs memory accesses unchecked and is only for programs the verifier has accepted (Options.Verified); run an unverified program in checked mode (UnsafeFastUnverified exists for tests and the conformance suite)")

// Fault describes a run that stopped at an instruction (engine.Fault).
// Its Program is the *Program the instruction belongs to.
type Fault = engine.Fault

// frame is a saved caller state of a bpf-to-bpf call or callback.
type frame struct {
	prog           *Program // the caller, which a tail call may have left
	ret            int
	r6, r7, r8, r9 uint64
	fp             uint64
	loops          uint32 // the caller's may_goto budget
}

// Machine is an execution context: registers, call frames and stack. It
// stands in for a CPU, so one Machine runs one program at a time; give each
// goroutine its own. The zero value is not usable; call NewMachine.
type Machine struct {
	regs [256]uint64 // r0-r10; 256 so that a byte index needs no bounds check
	// last and lastArgs are the program and arguments of the last run
	// through the engine.Machine (machine.Run), which Rerun runs again;
	// ran is how many runs the last run made.
	last     *Program
	lastArgs *Args
	ran      uint32
	// sink is where a packet batch stores an end it was given no
	// address for.
	sink [1]uint64
	// args holds helper arguments per frame depth, so a helper's arguments
	// survive the helpers its callbacks call, and calls do not allocate.
	args    [MaxCallFrames][5]uint64
	stack   []byte // 8 frames of 512 bytes, frameStride apart (stack.go), 8-byte aligned
	top     uint64 // address one past the stack, r10 of frame 0
	depth   int
	frames  [MaxCallFrames]frame
	spans   []span   // checked mode: the Regions of the current run
	regions []Region // checked mode: Args.Regions of the last run, for their names
	prog    *Program // the program running now (tail calls change it)
	packet  []byte
	state   *helpers.State
	empty   helpers.State // the State of runs that bring none
	// scratch is Env.Scratch's memory: helpers.ScratchSize bytes per call
	// depth, read-only to the program, and only the lent bytes (lent[d]) of
	// depths whose helper call is in progress.
	scratch []byte
	lent    [MaxCallFrames]uint64
	fuel    uint64 // instructions left (see Args.Budget)
	// loops is the running frame's may_goto budget: the fall-throughs its
	// may_goto instructions have left together. Every frame (the run, a
	// bpf-to-bpf call, a callback, a tail call's program) starts with
	// isa.MaxLoops, as Linux's verifier sets it up in each function's
	// prologue.
	loops  uint32
	budget uint64
	cbProg *Program // the callback whose cost Call found last, and the cost
	cbPC   int
	cbCost uint64
	stop   *syncatomic.Bool // Args.Stop, or never
	never  syncatomic.Bool
	memory *Memory // checked mode: the running program's Options.Memory
	hit    *span   // checked mode: the map span the last access found (never nil: &noSpan)
	// dirty is, per frame, the lowest stack address the run wrote
	// (checked mode), the frame's r10 if none; dirtied has bit k set when
	// frame k's is not.
	dirty   [MaxCallFrames]uint64
	dirtied uint8
	// init has, per frame, a bit for each stack byte the frame wrote
	// (checked mode with Options.StrictStack, when strict is set).
	init   [MaxCallFrames][StackSize / 64]uint64
	strict bool
	callPC int    // the helper call in progress, for faults in its callbacks
	ctx    uint64 // Args.Regs[0], for Options.ContextVariants
}

// NewMachine returns a Machine with a zeroed stack.
func NewMachine() *Machine {
	m := &Machine{stack: mem.Aligned(stackBytes), scratch: mem.Aligned(MaxCallFrames * helpers.ScratchSize)}
	m.top = mem.Addr(m.stack) + stackBytes
	for k := range m.dirty {
		m.dirty[k] = m.framePointer(k)
	}
	m.stop = &m.never
	m.hit = &noSpan
	return m
}

var machines = sync.Pool{New: func() any { return NewMachine() }}

// RunMemory runs p with r1 pointing to mem and r2 holding len(mem), the
// convention of the conformance suite, on a pooled Machine. mem is the only
// region besides the stack, and it is writable.
func (p *Program) RunMemory(data []byte) (uint64, error) {
	m := machines.Get().(*Machine)
	defer machines.Put(m)
	a := Args{Regs: [5]uint64{mem.Addr(data), uint64(len(data))}}
	a.Regions = []Region{{Data: data, Writable: true}}
	return m.Run(p, &a)
}

// Run executes p on m and returns r0 at the final exit. In checked mode
// the stack a run wrote is cleared when it ends, so no run reads what an
// earlier one left there.
func (m *Machine) Run(p *Program, a *Args) (uint64, error) {
	return m.run(p, a, nil, 1)
}

// errUnbudgeted is Run's answer to a budget or a stop flag for a program
// that does not count its loops.
var errUnbudgeted = errors.New("interp: Args.Budget and Args.Stop need a program loaded with Options.Budgeted")

// run is Run, and with a batch b the runs of RunPackets (batch.go), which
// share everything Run sets up before its run and does after it: there is
// one copy of that, and Run, which inlines, costs no call more for it.
// With b, it returns how many of b's runs completed instead of r0.
// Without, it makes n runs in a row (Rerun), each on what the one before
// left, until one fails, and sets m.ran to how many it made.
func (m *Machine) run(p *Program, a *Args, b *engine.PacketBatch, n uint32) (uint64, error) {
	if (a.Budget != 0 || a.Stop != nil) && !p.budgeted {
		return 0, errUnbudgeted
	}
	if p.mode == Checked {
		m.spans = m.spans[:0]
		for i := range a.Regions {
			r := &a.Regions[i]
			if len(r.Data) == 0 {
				continue
			}
			var bounds uint64
			if r.Bounds != nil {
				bounds = mem.SliceAddr(r.Bounds[:])
			}
			lo := mem.Addr(r.Data)
			m.spans = append(m.spans, span{lo: lo, hi: lo + uint64(len(r.Data)), writable: r.Writable, bounds: bounds, region: uint32(i + 1)})
		}
		// Kept after the run, and stored only when it changes: a pointer
		// store costs a write barrier while the collector marks.
		if len(m.regions) != len(a.Regions) || len(a.Regions) != 0 && &m.regions[0] != &a.Regions[0] {
			m.regions = a.Regions
		}
		m.enter(p)
	}
	m.strict = p.strict
	if m.strict {
		m.init[0] = [StackSize / 64]uint64{}
	}
	m.stop = &m.never
	if a.Stop != nil {
		m.stop = a.Stop
	}
	m.prog = p
	m.packet = a.Packet
	m.depth = 0
	m.state = a.State
	if m.state == nil {
		// Only what helpers change: the rest stays zero.
		e := &m.empty
		e.Rand, e.TailCall, e.TailCalls, e.Held = 0, nil, 0, 0
		e.Records = e.Records[:0]
		m.state = e
	}
	m.loops = isa.MaxLoops
	m.fuel, m.budget = a.Budget, a.Budget
	if a.Budget == 0 {
		m.fuel = ^uint64(0)
	}
	m.ctx = a.Regs[0]
	m.lent = [MaxCallFrames]uint64{}
	var r0 uint64
	var err error
	if b == nil {
		fuel := m.fuel
		for k := uint32(1); ; k++ {
			r := &m.regs
			r[0], r[1], r[2], r[3], r[4], r[5] = 0, a.Regs[0], a.Regs[1], a.Regs[2], a.Regs[3], a.Regs[4]
			r[6], r[7], r[8], r[9], r[10] = 0, 0, 0, 0, m.top
			r0, err = m.exec(p, 0)
			if p.mode == Checked {
				m.clearStack()
			}
			if err != nil || k >= n {
				m.ran = k
				break
			}
			// The next run starts as this one did: what a run without
			// helpers changes (Rerun repeats no other).
			if m.strict {
				m.init[0] = [StackSize / 64]uint64{}
			}
			m.depth, m.loops, m.fuel = 0, isa.MaxLoops, fuel
		}
	} else {
		r0, err = m.packets(p, a, b)
	}
	m.prog, m.packet, m.state, m.memory, m.stop = nil, nil, nil, nil, &m.never
	runtime.KeepAlive(a)
	return r0, err
}

// noSpan is the empty span m.hit starts from.
var noSpan span

// enter makes p's memory the map memory of checked accesses: at the start
// of a run and when a tail call enters p.
func (m *Machine) enter(p *Program) {
	m.memory = nil
	if p.memory != nil {
		m.memory = p.memory()
	}
	m.hit = &noSpan
}

// spend spends cost fuel for a frame that a call, callback or tail call at
// pc starts, and polls the stop flag.
func (m *Machine) spend(pc int, cost uint64) error {
	if m.fuel < cost {
		return m.budgetFault(pc)
	}
	m.fuel -= cost
	if m.stop.Load() {
		return m.fault(pc, ErrStopped, "")
	}
	return nil
}

func (m *Machine) budgetFault(pc int) *Fault {
	return m.fault(pc, ErrBudget, "the run was allowed %d instructions", m.budget)
}

// Scratch implements helpers.Env.
func (m *Machine) Scratch(n uint64) (uint64, []byte, error) {
	if n > helpers.ScratchSize {
		return 0, nil, fmt.Errorf("scratch of %d bytes, at most %d", n, helpers.ScratchSize)
	}
	b := m.scratch[m.depth*helpers.ScratchSize:][:n:n]
	m.lent[m.depth] = n
	return mem.Addr(m.scratch) + uint64(m.depth*helpers.ScratchSize), b, nil
}

// State implements helpers.Env.
func (m *Machine) State() *helpers.State { return m.state }

// Call implements helpers.Env: it runs the callback fn of the running
// program (the value of its PseudoFunc lddw) in a new frame, as a
// bpf-to-bpf call, with r1-r5 = args, and returns the callback's r0. The
// caller's r6-r9 are preserved; r0-r5 are the helper's to set.
func (m *Machine) Call(fn uint64, args [5]uint64) (uint64, error) {
	p := m.prog
	if p == nil {
		return 0, errors.New("interp: Call outside a run")
	}
	pc, ok := p.funcPC(fn)
	if !ok {
		return 0, fmt.Errorf("callback address %#x is not a function of the running program", fn)
	}
	if m.depth+1 >= MaxCallFrames {
		return 0, fmt.Errorf("%w: a callback would be frame %d, the limit is %d", ErrCallDepth, m.depth+2, MaxCallFrames)
	}
	if m.cbProg != p || m.cbPC != pc {
		m.cbProg, m.cbPC, m.cbCost = p, pc, p.costs[pc]
	}
	if err := m.spend(m.callPC, m.cbCost); err != nil {
		return 0, err
	}
	r := &m.regs
	m.frames[m.depth] = frame{prog: p, ret: -1, r6: r[6], r7: r[7], r8: r[8], r9: r[9], fp: r[10], loops: m.loops}
	m.enterFrame()
	r[1], r[2], r[3], r[4], r[5] = args[0], args[1], args[2], args[3], args[4]
	v, err := m.exec(p, pc)
	if err != nil {
		return 0, err
	}
	m.ret()
	m.prog = p
	return v, nil
}

// Memory implements helpers.Env: in checked mode the n bytes at addr must lie
// inside one region or one live stack frame. With Options.StrictStack, the
// stack bytes of a read must have been written, and those of a write count
// as written from now on.
func (m *Machine) Memory(addr, n uint64, write bool) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if m.prog != nil && m.prog.mode == Checked {
		if why := m.allowed(addr, n, write); why != "" {
			return nil, fmt.Errorf("%w: %d bytes at %#x: %s", ErrMemory, n, addr, why)
		}
		if m.strict {
			if write {
				m.markInit(addr, n)
			} else if why := m.uninit(addr, n); why != "" {
				return nil, fmt.Errorf("%w: %d bytes at %#x: %s", ErrUninitStack, n, addr, why)
			}
		}
	}
	return mem.Bytes(addr, n), nil
}

// allowed returns "" if [addr, addr+n) lies in memory the run owns, and
// otherwise why not. The order is the order of likelihood: the stack, the
// map span the previous map access found (its slot window tested inline),
// the run's few regions (context, packet), then, out of line, the
// program's map memory (binary search) and what helpers lend.
func (m *Machine) allowed(addr, n uint64, write bool) string {
	// The running frame: the 512 bytes below r10. Callers' frames, which
	// it reaches through pointers they passed, are tested out of line.
	if fp := m.regs[10]; addr < fp && fp-addr <= StackSize {
		if fp-addr < n {
			return m.stackWhy(addr, n)
		}
		if write && addr < m.dirty[m.depth] {
			m.dirty[m.depth] = addr
			m.dirtied |= 1 << m.depth
		}
		return ""
	}
	if h := m.hit; addr >= h.lo && addr < h.hi && h.hi-addr >= n && (h.stride == 0 || h.window(addr-h.lo, n)) {
		if write && !h.writable {
			return "the region is read-only"
		}
		return ""
	}
	for i := range m.spans {
		s := &m.spans[i]
		if addr < s.lo || addr >= s.hi {
			continue
		}
		hi := s.hi
		if s.bounds != 0 {
			lo := mem.Load64(s.bounds)
			if hi = min(hi, mem.Load64(s.bounds+8)); addr < lo || addr >= hi {
				continue // another region may lie in the same memory
			}
		}
		if hi-addr < n {
			return s.why(addr, n, m.name(s))
		}
		if write && !s.writable {
			return "the region is read-only"
		}
		return ""
	}
	return m.allowedElsewhere(addr, n, write)
}

// allowedElsewhere is allowed for memory other than the running frame and
// the run's regions.
func (m *Machine) allowedElsewhere(addr, n uint64, write bool) string {
	if base := m.top - stackBytes; addr >= base && addr < m.top {
		if k, fp := m.frameOf(addr); k < m.depth && fp-addr <= StackSize && fp-addr >= n {
			if write && addr < m.dirty[k] {
				m.dirty[k] = addr
				m.dirtied |= 1 << k
			}
			return ""
		}
		return m.stackWhy(addr, n)
	}
	near := m.memory.find(addr)
	if near != nil && near.holds(addr, n) {
		m.hit = near
		if write && !near.writable {
			return "the region is read-only"
		}
		return ""
	}
	if base := mem.Addr(m.scratch); !write && addr >= base && addr-base < uint64(len(m.scratch)) {
		d := (addr - base) / helpers.ScratchSize
		off := (addr - base) % helpers.ScratchSize
		if off < m.lent[d] && m.lent[d]-off >= n {
			return ""
		}
	}
	if st := m.state; st != nil {
		for _, rec := range st.Records {
			if addr >= rec.Addr && addr-rec.Addr < rec.Size && rec.Size-(addr-rec.Addr) >= n {
				return ""
			}
		}
	}
	if near != nil {
		return near.why(addr, n, "")
	}
	// Inside the memory a moving region lies in, outside where it lies
	// now: name the nearest such region (a non-empty one on a tie).
	var best *span
	var bestDist uint64
	for i := range m.spans {
		s := &m.spans[i]
		if s.bounds == 0 || addr < s.lo || addr >= s.hi {
			continue
		}
		lo, hi := s.extent()
		d := addr - hi + 1
		if addr < lo {
			d = lo - addr
		}
		if best == nil || d < bestDist || d == bestDist && lo < hi {
			best, bestDist = s, d
		}
	}
	if best != nil {
		lo, hi := best.extent()
		name := m.name(best)
		if name == "" {
			name = "the region"
		}
		return fmt.Sprintf("the access lies outside %s [%#x, %#x)", name, lo, hi)
	}
	return fmt.Sprintf("the run owns the stack frame [%#x, %#x) (r10-512 to r10 of frame %d, the running one), its callers' frames and %s", m.regs[10]-StackSize, m.regs[10], m.depth, m.describeSpans())
}

// name returns the Name of the region s is a span of, "" for none.
func (m *Machine) name(s *span) string {
	if s.region == 0 || int(s.region) > len(m.regions) {
		return ""
	}
	return m.regions[s.region-1].Name
}

func (m *Machine) describeSpans() string {
	var parts []string
	for i := range m.spans {
		sp := &m.spans[i]
		lo, hi := sp.extent()
		p := fmt.Sprintf("[%#x, %#x)", lo, hi)
		if name := m.name(sp); name != "" {
			p = name + " " + p
		}
		parts = append(parts, p)
	}
	if n := m.memory.Len(); n > 0 {
		parts = append(parts, fmt.Sprintf("the values of %d regions of map memory", n))
	}
	if st := m.state; st != nil {
		for _, rec := range st.Records {
			parts = append(parts, fmt.Sprintf("the ring buffer record [%#x, %#x)", rec.Addr, rec.Addr+rec.Size))
		}
	}
	if len(parts) == 0 {
		return "no other memory"
	}
	return strings.Join(parts, ", ")
}

func (m *Machine) fault(pc int, err error, format string, args ...any) *Fault {
	return &Fault{PC: pc, Insn: m.prog.insns[pc], Err: err, Program: m.prog, Detail: fmt.Sprintf(format, args...)}
}

func (m *Machine) memFault(pc int, addr uint64, n int, write bool) *Fault {
	f := m.fault(pc, ErrMemory, "%s", m.allowed(addr, uint64(n), write))
	f.Addr, f.Size, f.Write = addr, n, write
	kind := "read"
	if write {
		kind = "write"
	}
	f.Detail = fmt.Sprintf("%s of %d bytes at %#x: %s", kind, n, addr, f.Detail)
	if addr < 4096 {
		f.Detail += " (a NULL pointer: check a map lookup's result before using it)"
	}
	return f
}

// load performs a checked load of n bytes.
func (m *Machine) load(pc int, addr uint64, n uint8) (uint64, error) {
	if m.allowed(addr, uint64(n), false) != "" {
		return 0, m.memFault(pc, addr, int(n), false)
	}
	if m.strict {
		if why := m.uninit(addr, uint64(n)); why != "" {
			return 0, m.uninitFault(pc, addr, int(n), why)
		}
	}
	switch n {
	case 1:
		return mem.Load8(addr), nil
	case 2:
		return mem.Load16(addr), nil
	case 4:
		return mem.Load32(addr), nil
	}
	return mem.Load64(addr), nil
}

// store performs a checked store of the low n bytes of v.
func (m *Machine) store(pc int, addr, v uint64, n uint8) error {
	if m.allowed(addr, uint64(n), true) != "" {
		return m.memFault(pc, addr, int(n), true)
	}
	if m.strict {
		m.markInit(addr, uint64(n))
	}
	switch n {
	case 1:
		mem.Store8(addr, v)
	case 2:
		mem.Store16(addr, v)
	case 4:
		mem.Store32(addr, v)
	default:
		mem.Store64(addr, v)
	}
	return nil
}

// atomic executes a BPF_ATOMIC instruction (RFC 9669 §5.3). Atomics are
// really atomic, so programs sharing memory on several Machines see each
// other's updates as they would on several CPUs.
func (m *Machine) atomic(pc int, i *insn) error {
	r := &m.regs
	addr := r[i.dst] + uint64(int64(i.off))
	if m.prog.mode == Checked {
		if m.allowed(addr, uint64(i.sz), true) != "" {
			return m.memFault(pc, addr, int(i.sz), true)
		}
		if addr%uint64(i.sz) != 0 {
			f := m.fault(pc, ErrMemory, "misaligned atomic access of %d bytes at %#x", i.sz, addr)
			f.Addr, f.Size, f.Write = addr, int(i.sz), true
			return f
		}
		// An atomic reads what it changes.
		if m.strict {
			if why := m.uninit(addr, uint64(i.sz)); why != "" {
				return m.uninitFault(pc, addr, int(i.sz), why)
			}
		}
	}
	src := r[i.src]
	op := isa.AtomicOp(i.imm)
	if i.sz == 8 {
		var old uint64
		switch op &^ isa.AtomicFetch {
		case isa.AtomicAdd:
			old = mem.AtomicAdd64(addr, src)
		case isa.AtomicOr:
			old = mem.AtomicOr64(addr, src)
		case isa.AtomicAnd:
			old = mem.AtomicAnd64(addr, src)
		case isa.AtomicXor:
			old = mem.AtomicXor64(addr, src)
		case isa.AtomicXchg &^ isa.AtomicFetch:
			old = mem.AtomicXchg64(addr, src)
		case isa.AtomicCmpXchg &^ isa.AtomicFetch:
			r[0] = mem.AtomicCmpXchg64(addr, r[0], src)
			return nil
		}
		if op.Fetches() {
			r[i.src] = old
		}
		return nil
	}
	var old uint32
	s := uint32(src)
	switch op &^ isa.AtomicFetch {
	case isa.AtomicAdd:
		old = mem.AtomicAdd32(addr, s)
	case isa.AtomicOr:
		old = mem.AtomicOr32(addr, s)
	case isa.AtomicAnd:
		old = mem.AtomicAnd32(addr, s)
	case isa.AtomicXor:
		old = mem.AtomicXor32(addr, s)
	case isa.AtomicXchg &^ isa.AtomicFetch:
		old = mem.AtomicXchg32(addr, s)
	case isa.AtomicCmpXchg &^ isa.AtomicFetch:
		// The old value is zero-extended into r0 (RFC 9669 §5.3.2).
		r[0] = uint64(mem.AtomicCmpXchg32(addr, uint32(r[0]), s))
		return nil
	}
	if op.Fetches() {
		r[i.src] = uint64(old)
	}
	return nil
}

// ldAbs is a legacy packet load (engine.LoadPacket).
func (m *Machine) ldAbs(off int32, n uint8) (uint64, bool) {
	return engine.LoadPacket(m.state, m.packet, off, n)
}

// traceHook reports the instruction at pc to the program's trace function.
func (m *Machine) traceHook(pc int) {
	regs := (*[11]uint64)(m.regs[:11])
	m.prog.trace(pc, regs)
}

// call runs the helper f, whose id is id, with r1-r5 and leaves the result
// in r0. A fault in one of the helper's callbacks (a budget spent, a bad
// access) is returned as it is, naming the callback's instruction.
func (m *Machine) call(pc int, id int32, f helpers.Func) error {
	if m.state.Held != 0 && id != helpers.IDSpinUnlock {
		what := "a helper call"
		if id == helpers.IDSpinLock {
			what = "a second bpf_spin_lock"
		}
		return m.fault(pc, ErrUnreleased, "%s while the run holds the bpf_spin_lock at %#x: Linux allows only bpf_spin_unlock until it is released (\"function calls are not allowed while holding a lock\")", what, m.state.Held)
	}
	r := &m.regs
	args := &m.args[m.depth]
	*args = [5]uint64{r[1], r[2], r[3], r[4], r[5]}
	saved := m.callPC
	m.callPC = pc
	v, err := f(m, args)
	m.callPC = saved
	m.lent[m.depth] = 0 // scratch is lent for the helper call only
	if err != nil {
		var inner *Fault
		if errors.As(err, &inner) {
			return inner
		}
		flt := m.fault(pc, ErrHelper, "%v", err)
		flt.Cause = err
		return flt
	}
	r[0] = v
	return nil
}

// unreleased returns the fault of a final exit at pc that leaves a spin
// lock held or ring buffer records reserved, nil otherwise.
func (m *Machine) unreleased(pc int) error {
	st := m.state
	switch {
	case st.Held != 0:
		return m.fault(pc, ErrUnreleased, "the program exits holding the bpf_spin_lock at %#x; Linux's verifier refuses this (\"bpf_spin_unlock is missing\"); the lock was released", st.Held)
	case len(st.Records) != 0:
		return m.fault(pc, ErrUnreleased, "the program exits with %d ring buffer records reserved and neither submitted nor discarded; Linux's verifier refuses this (\"Unreleased reference\"); they were discarded", len(st.Records))
	}
	return nil
}

// callLocal enters a bpf-to-bpf call: the callee gets a fresh 512-byte frame
// below the caller's, and r6-r9 are saved for the return.
func (m *Machine) callLocal(pc, ret int, cost uint64) error {
	if m.depth+1 >= MaxCallFrames {
		return m.fault(pc, ErrCallDepth, "%d frames is the limit", MaxCallFrames)
	}
	if err := m.spend(pc, cost); err != nil {
		return err
	}
	r := &m.regs
	m.frames[m.depth] = frame{prog: m.prog, ret: ret, r6: r[6], r7: r[7], r8: r[8], r9: r[9], fp: r[10], loops: m.loops}
	m.enterFrame()
	return nil
}

// ret leaves a bpf-to-bpf call or callback and returns the caller's next
// pc and program.
func (m *Machine) ret() (int, *Program) {
	m.depth--
	f := &m.frames[m.depth]
	r := &m.regs
	r[6], r[7], r[8], r[9], r[10] = f.r6, f.r7, f.r8, f.r9, f.fp
	m.loops = f.loops
	return f.ret, f.prog
}

// tailCall replaces the running program with the one bpf_tail_call asked
// for, as the kernel does: the new program starts at its first slot in the
// current frame with r1 = the context given to bpf_tail_call.
func (m *Machine) tailCall(pc int) (*Program, error) {
	st := m.state
	next, ok := st.TailCall.(*Program)
	st.TailCall = nil
	if !ok {
		return nil, m.fault(pc, ErrHelper, "bpf_tail_call target is %T, not an interpreter program", next)
	}
	if next.mode != m.prog.mode {
		return nil, m.fault(pc, ErrHelper, "bpf_tail_call from a %s program into a %s one", m.prog.mode, next.mode)
	}
	if next.budgeted {
		if err := m.spend(pc, next.costs[0]); err != nil {
			return nil, err
		}
	}
	m.regs[1] = m.args[m.depth][0]
	m.loops = isa.MaxLoops // the new program's prologue sets its own
	m.prog = next
	if next.mode == Checked {
		m.enter(next)
		// The new program's frame starts with nothing written, as the
		// verifier sees it.
		m.strict = next.strict
		if m.strict {
			m.init[m.depth] = [StackSize / 64]uint64{}
		}
	}
	return next, nil
}
