//go:build linux && amd64

package amd64

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/jitrt"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

// stackBytes is a Machine's machine stack. A run uses at most
// maxFrames frames of 576 bytes, the exits to Go 88 bytes each: 64 KiB
// leaves ten times that.
const stackBytes = 64 << 10

// Machine runs compiled programs: an execution context, a machine stack
// with a guard page, and what helpers see of the run (helpers.Env). One
// Machine runs one program at a time; give each goroutine its own.
type Machine struct {
	ec    jitrt.ExecCtx
	stack *jitrt.Stack
	err   error // NewMachine's, returned by every Run
	state *helpers.State
	empty helpers.State
	// packet is Args.Packet, for LD_ABS and LD_IND.
	packet []byte
	// entered are the programs this run entered: its own, then the
	// targets of its tail calls. ExecCtx.Prog names one of them.
	entered []*Program
	// final is the program the run's first frame runs now (tail calls
	// replace it), whose exit ends the run.
	final *Program
	// cur is the program whose call site Go serves now, for Env.Call.
	cur *Program
	// last and lastArgs are the program and arguments of the last Run,
	// which Rerun runs again.
	last     *Program
	lastArgs *engine.Args
	// cut is how many repeats (ExecCtx.Repeat) an exit to Go cancelled.
	cut uint64
	// batch is the packet batch RunPackets runs, and synced says an exit
	// called its Sync (cutBatch).
	batch  *engine.PacketBatch
	synced bool
	callPC int
	nested int // callbacks in progress (Env.Call)
	budget uint64
	// reserve is the run's budget beyond ExecCtx.Fuel; unbounded runs
	// (no Args.Budget) never spend it.
	reserve   uint64
	unbounded bool
	// fuel0 and reserve0 are ExecCtx.Fuel and reserve at the start of a
	// run of the last Run's budget, which Rerun starts from.
	fuel0, reserve0 uint64
	// top is the machine stack's top, where a run starts.
	top     uintptr
	stop    *atomic.Bool // the run's stop flag, polled when the fuel runs out
	never   atomic.Bool
	scratch []byte
	lent    [maxFrames + 1]uint64
}

// NewMachine returns a Machine with its own machine stack.
func (Engine) NewMachine() engine.Machine { return NewMachine() }

// NewMachine returns a Machine. If the machine stack cannot be mapped,
// every Run returns why.
func NewMachine() *Machine {
	m := &Machine{scratch: mem.Aligned((maxFrames + 1) * helpers.ScratchSize)}
	st, err := jitrt.NewStack(stackBytes)
	if err != nil {
		m.err = fmt.Errorf("jit: %w", err)
		return m
	}
	m.stack, m.top = st, st.Top()
	runtime.AddCleanup(m, func(s *jitrt.Stack) { s.Free() }, st)
	return m
}

// Run runs p, which the JIT compiled, with the inputs a, and returns r0.
func (m *Machine) Run(ep engine.Program, a *engine.Args) (uint64, error) {
	p, err := m.begin(ep, a)
	if err != nil {
		return 0, err
	}
	return m.run(p, p.addr)
}

// begin sets the Machine up for a run of ep with a: what Run does
// before it enters the code.
func (m *Machine) begin(ep engine.Program, a *engine.Args) (*Program, error) {
	if m.err != nil {
		return nil, m.err
	}
	p, ok := ep.(*Program)
	if !ok {
		return nil, fmt.Errorf("jit: cannot run a %T, which another engine loaded: %w", ep, engine.ErrNotSupported)
	}
	if (a.Budget != 0 || a.Stop != nil) && !p.budgeted {
		return nil, errors.New("jit: Args.Budget and Args.Stop need a program loaded with Options.Budgeted")
	}
	ec := &m.ec
	ec.Args, ec.Ctx = a.Regs, a.Regs[0]
	ec.Target = p.entry
	ec.Depth, ec.Tail = 0, 0
	m.budget, m.unbounded = a.Budget, a.Budget == 0
	ec.Fuel, m.reserve = fuelSlice, 0
	if !m.unbounded {
		ec.Fuel = min(a.Budget, fuelSlice)
		m.reserve = a.Budget - ec.Fuel
	}
	ec.Fuel0, ec.Repeat = ec.Fuel, 0
	m.fuel0, m.reserve0 = ec.Fuel, m.reserve
	// Pointer fields are stored only when they change, and kept after the
	// run: a pointer store costs a write barrier check, and the fields
	// are few (the interpreter does the same with its regions).
	stop := a.Stop
	if stop == nil {
		stop = &m.never
	}
	if m.stop != stop {
		m.stop = stop
	}
	st := a.State
	if st == nil {
		// Only what helpers change: the rest stays zero.
		st = &m.empty
		st.Rand, st.TailCall, st.TailCalls, st.Held = 0, nil, 0, 0
		st.Records = st.Records[:0]
	}
	if m.state != st {
		m.state = st
	}
	ec.Worker = uint64(st.CPU)
	ec.Rand = uintptr(unsafe.Pointer(&st.Rand))
	if len(a.Packet) != len(m.packet) || len(a.Packet) != 0 && &a.Packet[0] != &m.packet[0] {
		m.packet = a.Packet
	}
	if len(m.entered) != 1 || m.entered[0] != p {
		clear(m.entered)
		m.entered = append(m.entered[:0], p)
	}
	if m.final != p {
		m.final = p
	}
	if m.cur != p {
		m.cur = p
	}
	if m.last != p {
		m.last = p
	}
	if m.lastArgs != a {
		m.lastArgs = a
	}
	return p, nil
}

// RunPackets implements engine.PacketBatcher: Run's setup once, then the
// batch stub runs the items (jitrt.ExecCtx.Batch*) without leaving the
// code, until they are done or a run exits to Go, which calls b.Sync
// first (cutBatch) and ends the batch with that run.
func (m *Machine) RunPackets(ep engine.Program, a *engine.Args, b *engine.PacketBatch) (int, error) {
	if b.N <= 0 {
		return 0, nil
	}
	p, err := m.begin(ep, a)
	if err != nil {
		return 0, err
	}
	ec := &m.ec
	if b.Min > b.Room || b.Min < 0 {
		return 0, nil // no packet fits
	}
	ec.BatchItem, ec.BatchStride, ec.BatchRetOff = b.Items, b.Stride, b.RetOff
	ec.BatchMin, ec.BatchSpan = uint64(b.Min), uint64(b.Room-b.Min)
	ec.BatchGuarded, ec.BatchGuards = 0, b.Guards
	for _, g := range b.Guards {
		if g != 0 {
			// Unused guards repeat a used one: the stub checks four.
			ec.BatchGuarded = 1
			for k := range ec.BatchGuards {
				if ec.BatchGuards[k] == 0 {
					ec.BatchGuards[k] = g
				}
			}
			break
		}
	}
	ec.BatchLeft, ec.BatchDone = uint64(b.N), 0
	ec.BatchFrame, ec.BatchUsed, ec.BatchEnds = b.Frame, uint64(b.Used), b.Ends
	for k, e := range ec.BatchEnds {
		if e == 0 {
			// The stub stores each end: an unused one goes to a word
			// nobody reads.
			ec.BatchEnds[k] = uintptr(unsafe.Pointer(&ec.BatchSink))
		}
	}
	m.batch, m.synced = b, false
	r0, err := m.run(p, p.batchAddr)
	m.batch = nil
	done := int(ec.BatchDone)
	b.Used = int(ec.BatchUsed)
	if left := ec.BatchLeft; err == nil && left != 0 && left != ^uint64(0) {
		// The stub stopped at a run that ended holding records, which
		// m.run took back without an error: the run counts.
		binary.LittleEndian.PutUint32(mem.Bytes(uint64(ec.BatchItem+b.RetOff), 4), uint32(r0))
		done++
	}
	ec.BatchLeft = 0
	if err != nil && !m.synced && b.Sync != nil {
		b.Sync(done) // a run that failed without an exit (held records)
	}
	return done, err
}

// Batches implements engine.PacketBatcher: the batch stub runs any of
// the JIT's programs, those that exit to Go one run at a time.
func (m *Machine) Batches(p engine.Program) bool {
	_, ok := p.(*Program)
	return ok
}

// cutBatch is what an exit to Go during a packet batch does first: the
// caller's state becomes that of the run's packet (PacketBatch.Sync),
// and the batch ends with the run.
func (m *Machine) cutBatch() {
	m.synced = true
	m.ec.BatchLeft = 0
	if m.batch.Sync != nil {
		m.batch.Sync(int(m.ec.BatchDone))
	}
}

// Rerun implements engine.Rerunner: the program and Args of the last Run,
// with only what a run changes set again. The entry stub makes the n
// runs itself (ExecCtx.Repeat) until one exits to Go.
func (m *Machine) Rerun(n uint32) (uint64, uint32, error) {
	p, a := m.last, m.lastArgs
	if p == nil || n == 0 {
		// (Run sets last only once NewMachine's error is known to be nil.)
		return 0, 0, errors.Join(errors.New("jit: Rerun without a Run before it, or of no runs"), m.err)
	}
	ec := &m.ec
	ec.Args, ec.Ctx = a.Regs, a.Regs[0]
	ec.Target = p.entry
	ec.Depth, ec.Tail = 0, 0
	ec.Fuel, ec.Fuel0, m.reserve = m.fuel0, m.fuel0, m.reserve0
	ec.Repeat, m.cut = uint64(n-1), 0
	if m.final != p {
		m.final = p
	}
	if m.cur != p {
		m.cur = p
	}
	r0, err := m.run(p, p.addr)
	return r0, n - uint32(m.cut), err
}

// run runs p once its run's state is set, entering its code at stub
// (the entry stub, or the batch stub), and ends the run.
func (m *Machine) run(p *Program, stub uint64) (uint64, error) {
	m.nested = 0
	ec := &m.ec
	jitrt.Jump(uintptr(stub), m.top, ec) // the stub starts the code
	// A run that never exits to Go is the common case: Jump returns with
	// its r0, and there is no exit to serve (as loop would, for a call).
	r0, exited, err := ec.R0, true, error(nil)
	if ec.Exit != jitrt.ExitOK {
		r0, exited, err = m.exits()
	}
	if ec.NRecords != 0 {
		// Records native code reserved before an exit that ended the run
		// (a helper's error, a failed packet load, or an exit with a
		// record held): Release gives them back.
		err = cmp.Or(err, m.takeRecords())
	}
	if st := m.state; err == nil && exited && (st.Held != 0 || len(st.Records) != 0) {
		err = m.unreleased()
	}
	if len(m.entered) > 1 {
		// Tail calls entered others: keep only the run's program. (The
		// slots keep the others, programs of the same collection, alive
		// until overwritten: clearing them cost write barriers per run.)
		m.entered = m.entered[:1]
	}
	runtime.KeepAlive(m.lastArgs)
	return r0, err
}

// loop enters p's code (its entry stub calls ExecCtx.Target) with the
// stack pointer sp and serves its exits until the call returns: with its
// r0 and exited set, or with r0 = 0 where a legacy packet load failed,
// which ends the frame the loop started (the run, or a callback) as in
// Linux.
func (m *Machine) loop(p *Program, sp uintptr) (r0 uint64, exited bool, err error) {
	jitrt.Jump(uintptr(p.addr), sp, &m.ec) // the entry stub starts the code
	return m.exits()
}

// exits serves the exits of the code loop entered, until its call
// returns (see loop).
func (m *Machine) exits() (r0 uint64, exited bool, err error) {
	ec := &m.ec
	for {
		if m.batch != nil && !m.synced && ec.Exit != jitrt.ExitOK {
			m.cutBatch()
		}
		if ec.NRecords != 0 && ec.Exit != jitrt.ExitCall {
			if err := m.takeRecords(); err != nil {
				return 0, false, err
			}
		}
		if ec.Exit == jitrt.ExitOK {
			return ec.R0, true, nil
		}
		if ec.Repeat != 0 {
			// The run needs Go: it ends the repeating (Rerun), and
			// Go does what it does between runs before the next.
			m.cut += ec.Repeat
			ec.Repeat = 0
		}
		// Every other exit comes from code of a program the run entered,
		// which stored its address.
		q := m.program(ec.Prog)
		if q == nil {
			return 0, false, fmt.Errorf("jit: exit %d from code at %#x, which no program of the run owns", ec.Exit, ec.Prog)
		}
		switch ec.Exit {
		case jitrt.ExitCall:
			if ec.Site >= uint64(len(q.sites)) {
				return 0, false, fmt.Errorf("jit: an exit from call site %d, of %d", ec.Site, len(q.sites))
			}
			if ec.NRecords != 0 && q.sites[ec.Site].records() {
				if err := m.takeRecords(); err != nil {
					return 0, false, err
				}
			}
			v, ok, err := m.serve(q, &q.sites[ec.Site])
			if err != nil || !ok {
				return 0, false, err
			}
			ec.Ret = v
		case jitrt.ExitYield:
			// The code took Site from Fuel and found too little: what
			// was left is Fuel + Site (mod 2^64).
			ec.Fuel += ec.Site
			if err := m.spend(q, int(ec.PC), ec.Site); err != nil {
				return 0, false, err
			}
			ec.Fuel += ec.Site // the code spends it again when it resumes
		case jitrt.ExitFault:
			pc := int(ec.PC)
			switch ec.Fault {
			case jitrt.FaultBudget:
				return 0, false, m.budgetFault(q, pc)
			case jitrt.FaultStopped:
				return 0, false, m.fault(q, pc, engine.ErrStopped, "")
			case jitrt.FaultCallDepth:
				return 0, false, m.fault(q, pc, engine.ErrCallDepth, "%d frames is the limit", maxFrames)
			case jitrt.FaultContext:
				return 0, false, m.fault(q, pc, engine.ErrContext, "%v", q.faults[pc])
			}
			return 0, false, fmt.Errorf("jit: fault %d at instruction %d", ec.Fault, pc)
		default:
			return 0, false, fmt.Errorf("jit: the code exited with reason %d", ec.Exit)
		}
		jitrt.Jump(ec.ResumePC, ec.ResumeSP, ec)
	}
}

// program returns the program of the run whose code is at addr.
func (m *Machine) program(addr uint64) *Program {
	for _, p := range m.entered {
		if p.addr == addr {
			return p
		}
	}
	return nil
}

// serve does what call site s of p asks: a helper, a legacy packet load.
// ok is false where a failed packet load ends the frame with r0 = 0.
func (m *Machine) serve(p *Program, s *site) (v uint64, ok bool, err error) {
	ec := &m.ec
	ec.Tail = 0
	f, id := s.fn, s.id
	switch s.kind {
	case siteLdAbs:
		v, ok = engine.LoadPacket(m.state, m.packet, s.imm, s.size)
		return v, ok, nil
	case siteLdInd:
		v, ok = engine.LoadPacket(m.state, m.packet, int32(ec.Ret+uint64(int64(s.imm))), s.size)
		return v, ok, nil
	case siteWake:
		return 0, true, m.wake(p, s)
	case siteCallX:
		id = int32(ec.Ret)
		if f, err = p.table.Lookup(id); err != nil {
			return 0, false, m.fault(p, s.pc, engine.ErrHelper, "callx: %v", err)
		}
	}
	st := m.state
	if st.Held != 0 && id != helpers.IDSpinUnlock {
		what := "a helper call"
		if id == helpers.IDSpinLock {
			what = "a second bpf_spin_lock"
		}
		return 0, false, m.fault(p, s.pc, engine.ErrUnreleased, "%s while the run holds the bpf_spin_lock at %#x: Linux allows only bpf_spin_unlock until it is released (\"function calls are not allowed while holding a lock\")", what, st.Held)
	}
	// The helper reads its arguments where the code stored them: Call
	// puts them back after a callback's exits overwrote them. (Copying
	// them would cost a store-forwarding stall: the code has just written
	// them eight bytes at a time.)
	savedPC, savedCur := m.callPC, m.cur
	m.callPC, m.cur = s.pc, p
	v, err = f(m, &ec.Args)
	m.callPC, m.cur = savedPC, savedCur
	m.lent[ec.Depth] = 0 // scratch is lent for the helper call only
	if err != nil {
		var inner *engine.Fault
		if errors.As(err, &inner) {
			return 0, false, inner
		}
		flt := m.fault(p, s.pc, engine.ErrHelper, "%v", err)
		flt.Cause = err
		return 0, false, flt
	}
	if st.TailCall != nil {
		if err := m.tailCall(p, s.pc); err != nil {
			return 0, false, err
		}
	}
	return v, true, nil
}

// takeRecords moves the ring buffer records native code reserved
// (ExecCtx.Records) into the run's helpers.State.Records, where Go's
// submit and discard find them and Release gives back those a run that
// ended early still holds. The loop calls it at every exit but calls of
// helpers that do not look at the records (site.records), so that a
// record reserved natively, filled by a helper served in Go (the
// firewall's bpf_xdp_load_bytes) and submitted is submitted natively;
// run calls it once the run ended, whichever way.
func (m *Machine) takeRecords() error {
	ec, st := &m.ec, m.state
	n := min(ec.NRecords, jitrt.MaxRecords)
	ec.NRecords = 0
	var err error
	for _, r := range ec.Records[:n] {
		rb, rerr := m.ring(r.Ring)
		if rerr != nil {
			// A run without the program's maps (helpers.State.Maps),
			// whose Go helpers fail too: give the record back here, as
			// Release would, so that the ring does not stop at it.
			h := r.Addr - maps.RingHdrSize
			if l := mem.AtomicLoad32(h); l&maps.RingBusy != 0 {
				mem.CompareAndSwap32(h, l, l^maps.RingBusy|maps.RingDiscard)
			}
			err = cmp.Or(err, rerr)
			continue
		}
		st.Records = append(st.Records, helpers.Record{Ring: rb, Addr: r.Addr, Size: r.Size})
	}
	return err
}

// ring returns the ring buffer whose handle native code used.
func (m *Machine) ring(h uint64) (maps.RingBuffer, error) {
	mp, err := m.state.Maps.Resolve(h)
	if err != nil {
		return nil, fmt.Errorf("jit: a ring buffer native code used: %w", err)
	}
	rb, ok := mp.(maps.RingBuffer)
	if !ok {
		return nil, fmt.Errorf("jit: native code used map %q, a %s, as a ring buffer", mp.Spec().Name, mp.Spec().Type)
	}
	return rb, nil
}

// wake serves a siteWake exit: a native commit to the ring ExecCtx.Wake
// found a reader waiting, or was asked to wake it (flags in argument
// s.imm, as the helper's).
func (m *Machine) wake(p *Program, s *site) error {
	rb, err := m.ring(m.ec.Wake)
	if err != nil {
		return m.fault(p, s.pc, engine.ErrHelper, "%v", err)
	}
	if w, ok := rb.(interface{ Wake(flags uint64) }); ok {
		w.Wake(m.ec.Args[s.imm])
	}
	return nil
}

// tailCall makes the code continue in the program bpf_tail_call asked
// for, in the current frame (ExecCtx.Tail, which the code after a helper
// call site checks), as the kernel does.
func (m *Machine) tailCall(p *Program, pc int) error {
	st := m.state
	next, ok := st.TailCall.(*Program)
	st.TailCall = nil
	if !ok {
		return m.fault(p, pc, engine.ErrHelper, "bpf_tail_call target is %T, not a program the JIT compiled", next)
	}
	if next.budgeted {
		if err := m.spend(p, pc, next.entryCost); err != nil {
			return err
		}
	}
	m.ec.Tail = next.entry
	if m.program(next.addr) == nil {
		m.entered = append(m.entered, next)
	}
	if m.ec.Depth == 0 && m.nested == 0 {
		m.final = next
	}
	return nil
}

// fuelSlice is the most fuel the code gets at once: when it is spent the
// code yields to Go, which polls the stop flag, so a run notices a stop
// within about this many instructions.
const fuelSlice = 1 << 20

// take spends cost fuel from ExecCtx.Fuel and the reserve behind it,
// refilling Fuel with up to a slice; false if the budget has less left.
func (m *Machine) take(cost uint64) bool {
	ec := &m.ec
	if ec.Fuel >= cost {
		ec.Fuel -= cost
		return true
	}
	if m.unbounded {
		ec.Fuel = fuelSlice
		return true
	}
	total := ec.Fuel + m.reserve
	if total < cost {
		return false
	}
	total -= cost
	ec.Fuel = min(total, fuelSlice)
	m.reserve = total - ec.Fuel
	return true
}

// spend spends cost fuel for a frame Go starts at pc of p (a callback, a
// tail call), and polls the stop flag, as the interpreter does at calls.
func (m *Machine) spend(p *Program, pc int, cost uint64) error {
	if !m.take(cost) {
		return m.budgetFault(p, pc)
	}
	if m.stop.Load() {
		return m.fault(p, pc, engine.ErrStopped, "")
	}
	return nil
}

func (m *Machine) fault(p *Program, pc int, err error, format string, args ...any) *engine.Fault {
	f := &engine.Fault{PC: pc, Err: err, Program: p, Detail: fmt.Sprintf(format, args...)}
	if pc >= 0 && pc < len(p.insns) {
		f.Insn = p.insns[pc]
	}
	return f
}

func (m *Machine) budgetFault(p *Program, pc int) *engine.Fault {
	return m.fault(p, pc, engine.ErrBudget, "the run was allowed %d instructions", m.budget)
}

// unreleased returns the fault of a final exit that leaves a spin lock
// held or ring buffer records reserved, nil otherwise.
func (m *Machine) unreleased() error {
	st, p, pc := m.state, m.final, int(m.ec.PC)
	switch {
	case st.Held != 0:
		return m.fault(p, pc, engine.ErrUnreleased, "the program exits holding the bpf_spin_lock at %#x; Linux's verifier refuses this (\"bpf_spin_unlock is missing\"); the lock was released", st.Held)
	case len(st.Records) != 0:
		return m.fault(p, pc, engine.ErrUnreleased, "the program exits with %d ring buffer records reserved and neither submitted nor discarded; Linux's verifier refuses this (\"Unreleased reference\"); they were discarded", len(st.Records))
	}
	return nil
}

// Memory implements helpers.Env. Machine code checks no access, and
// neither does this: the verifier proved the program's pointers good.
func (m *Machine) Memory(addr, n uint64, write bool) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	return mem.Bytes(addr, n), nil
}

// State implements helpers.Env.
func (m *Machine) State() *helpers.State { return m.state }

// Scratch implements helpers.Env.
func (m *Machine) Scratch(n uint64) (uint64, []byte, error) {
	if n > helpers.ScratchSize {
		return 0, nil, fmt.Errorf("scratch of %d bytes, at most %d", n, helpers.ScratchSize)
	}
	d := m.ec.Depth
	b := m.scratch[d*helpers.ScratchSize:][:n:n]
	m.lent[d] = n
	return mem.Addr(m.scratch) + d*helpers.ScratchSize, b, nil
}

// Call implements helpers.Env: it runs the callback fn of the program
// whose helper is running (the value of its PseudoFunc lddw) in a new
// frame on the machine stack below the helper's caller, with r1-r5 =
// args, and returns its r0.
func (m *Machine) Call(fn uint64, args [5]uint64) (uint64, error) {
	p := m.cur
	if p == nil {
		return 0, errors.New("jit: Call outside a run")
	}
	pc, ok := p.funcPC(fn)
	if !ok {
		return 0, fmt.Errorf("callback address %#x is not a function of the running program", fn)
	}
	ec := &m.ec
	d := ec.Depth
	if d+1 >= maxFrames {
		return 0, fmt.Errorf("%w: a callback would be frame %d, the limit is %d", engine.ErrCallDepth, d+2, maxFrames)
	}
	if p.budgeted {
		if err := m.spend(p, m.callPC, p.costs[pc]); err != nil {
			return 0, err
		}
	}
	// What the exit that called the helper left, for its resumption.
	resumePC, resumeSP, site, prog, saved := ec.ResumePC, ec.ResumeSP, ec.Site, ec.Prog, ec.Args
	ec.Args, ec.Target, ec.Depth = args, p.funcs[pc], d+1
	m.nested++
	v, _, err := m.loop(p, resumeSP&^15)
	m.nested--
	ec.ResumePC, ec.ResumeSP, ec.Site, ec.Prog, ec.Args, ec.Depth = resumePC, resumeSP, site, prog, saved, d
	m.cur = p
	if err != nil {
		return 0, err
	}
	return v, nil
}
