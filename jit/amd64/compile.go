package amd64

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"unsafe"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/jitrt"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/maps"
)

// The register map. eBPF's registers live in x86-64 registers for the
// whole run, as in Linux's JIT (arch/x86/net/bpf_jit_comp.c): the
// arguments r1-r5 where the System V ABI passes them, the callee-saved
// r6-r9 in callee-saved registers, r10 in the frame pointer.
//
//	eBPF  x86-64   role
//	r0    rax      return value (and the comparand of cmpxchg)
//	r1    rdi      argument 1
//	r2    rsi      argument 2
//	r3    rdx      argument 3 (clobbered by div: saved around it)
//	r4    rcx      argument 4 (cl is the shift count: saved around shifts)
//	r5    r8       argument 5
//	r6    rbx      callee-saved
//	r7    r13      callee-saved
//	r8    r14      callee-saved
//	r9    r15      callee-saved
//	r10   rbp      frame pointer, read-only
//	-     r10 r11  scratch within one instruction's code
//	-     r10      also "ax" (slot 11): a blinded constant (BlindConstants)
//	-     r9       the fuel slice left (ExecCtx.Fuel while the code runs)
//	-     r12      *jitrt.ExecCtx for the whole run
//	-     rsp      the machine stack (jitrt.Stack), never a goroutine's
var regMap = [16]Reg{RAX, RDI, RSI, RDX, RCX, R8, RBX, R13, R14, R15, RBP, R10}

// regAX is the slot of the register blinded constants are restored in,
// Linux's BPF_REG_AX: r10 of x86-64, which no eBPF register maps to and
// which an instruction's code only uses as scratch after reading its
// source.
const regAX isa.Register = 11

const (
	ecReg = R12 // *jitrt.ExecCtx
	tmp   = R11 // scratch
	tmp2  = R10 // scratch
	// fuelReg holds the fuel slice while the code runs: a back-edge
	// spends it without touching memory. Every exit stores it in
	// ExecCtx.Fuel and every entry and resumption loads it back.
	fuelReg = R9
)

// Frame layout. A function's prologue pushes the caller's r10 and r6-r9
// and points rbp (r10) at the last of them; the 512 bytes of eBPF stack
// lie below rbp, and below them the frame's may_goto budget:
//
//	rbp+40  return address
//	rbp+32  caller's rbp (r10)
//	rbp+24  caller's rbx (r6)
//	rbp+16  caller's r13 (r7)
//	rbp+8   caller's r14 (r8)
//	rbp+0   caller's r15 (r9)
//	rbp-512 ... rbp-1   the eBPF stack (r10-512 to r10-1)
//	rbp-520 may_goto budget (4 bytes used)
//	rsp = rbp-528
const (
	stackSize  = 512
	loopsOff   = -stackSize - 8
	frameBelow = stackSize + 16 // keeps rsp 16-byte aligned relative to entry
	maxFrames  = 8              // MAX_CALL_FRAMES
)

// ExecCtx field offsets, from the type itself.
var (
	offGoSP     = int32(unsafe.Offsetof(jitrt.ExecCtx{}.GoSP))
	offGoBP     = int32(unsafe.Offsetof(jitrt.ExecCtx{}.GoBP))
	offExit     = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Exit))
	offR0       = int32(unsafe.Offsetof(jitrt.ExecCtx{}.R0))
	offResumePC = int32(unsafe.Offsetof(jitrt.ExecCtx{}.ResumePC))
	offResumeSP = int32(unsafe.Offsetof(jitrt.ExecCtx{}.ResumeSP))
	offSite     = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Site))
	offProg     = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Prog))
	offArgs     = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Args))
	offRet      = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Ret))
	offTail     = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Tail))
	offTarget   = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Target))
	offFuel     = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Fuel))
	offDepth    = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Depth))
	offPC       = int32(unsafe.Offsetof(jitrt.ExecCtx{}.PC))
	offFault    = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Fault))
	offCtx      = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Ctx))
	offWorker   = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Worker))
	offRand     = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Rand))
	offRepeat   = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Repeat))
	offFuel0    = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Fuel0))
	offBItem    = int32(unsafe.Offsetof(jitrt.ExecCtx{}.BatchItem))
	offBMin     = int32(unsafe.Offsetof(jitrt.ExecCtx{}.BatchMin))
	offBSpan    = int32(unsafe.Offsetof(jitrt.ExecCtx{}.BatchSpan))
	offBGuarded = int32(unsafe.Offsetof(jitrt.ExecCtx{}.BatchGuarded))
	offBGuards  = int32(unsafe.Offsetof(jitrt.ExecCtx{}.BatchGuards))
	offBStride  = int32(unsafe.Offsetof(jitrt.ExecCtx{}.BatchStride))
	offBRetOff  = int32(unsafe.Offsetof(jitrt.ExecCtx{}.BatchRetOff))
	offBLeft    = int32(unsafe.Offsetof(jitrt.ExecCtx{}.BatchLeft))
	offBDone    = int32(unsafe.Offsetof(jitrt.ExecCtx{}.BatchDone))
	offBFrame   = int32(unsafe.Offsetof(jitrt.ExecCtx{}.BatchFrame))
	offBUsed    = int32(unsafe.Offsetof(jitrt.ExecCtx{}.BatchUsed))
	offBEnds    = int32(unsafe.Offsetof(jitrt.ExecCtx{}.BatchEnds))
)

// siteKind says what Go does at an exit from a call site.
type siteKind uint8

const (
	siteHelper siteKind = iota // a helper by id
	siteTail                   // bpf_tail_call: then continue in ExecCtx.Tail if set
	siteCallX                  // callx: the helper id is in ExecCtx.Ret
	siteLdAbs                  // LD_ABS: offset imm
	siteLdInd                  // LD_IND: offset ExecCtx.Ret + imm
	siteWake                   // wake the reader of ring ExecCtx.Wake, flags in argument imm
)

// site is a place where the code exits to Go.
type site struct {
	kind siteKind
	pc   int
	id   int32 // helper id
	fn   helpers.Func
	imm  int32 // LD_ABS/LD_IND offset
	size uint8 // LD_ABS/LD_IND bytes
}

// compiled is a program's machine code before it is mapped.
type compiled struct {
	code  []byte
	entry int         // the entry stub: calls ExecCtx.Target with r1-r5 from Args
	batch int         // the batch stub: the entry stub's runs over a packet batch
	funcs map[int]int // function entry slot -> offset of its prologue
	sites []site
	// pcs maps code offsets back to slots, sorted: pcs[k] is the first
	// offset of slot k's code (-1 for a lddw's second slot).
	pcs []int
	// stubs are the offsets of the shared code, by name, for listings.
	stubs map[string]int
}

// options are what compile needs of engine.Options.
type options struct {
	helpers  helpers.Table
	budgeted bool
	costs    map[int]uint64
	funcBase uint64 // the address of the program's first slot (PseudoFunc values)
	// blind keeps immediates out of the code (BlindConstants).
	blind bool
	// inline allows native code for helpers whose semantics it has
	// (array lookups): only for verified programs, whose map arguments
	// are handles of the program's maps, and whose calls hold no lock.
	inline bool
	// variants and faults are engine.Options.ContextVariants and
	// ContextFaults: accesses that run in another form, or fault, when
	// their base register holds the run's context.
	variants map[int]isa.Instruction
	faults   map[int]error
}

// compiler holds the state of one compile.
type compiler struct {
	a      Asm
	sizes  []int // the loops' sizes, by head slot (loopSizes), if known
	prog   []isa.Instruction
	opts   options
	insn   []Label // the code of each slot, after any prologue
	fn     map[int]Label
	sites  []site
	cold   []cold
	exitGo Label // restore Go's SP and BP and return from jitrt.Jump
	callGo Label // save state, exit to Go for a call site, resume
	yield  Label // save state, exit to Go for more fuel, resume
	fault  Label // ExitFault with PC and Fault set
	entry  Label
	batch  Label // the entry stub's loop over a packet batch
	loops  bool  // the program has may_goto
	// exits are the conditional backward jumps that leave an inner loop
	// (loopExits): they spend fuel out of line, the others in line.
	exits map[int]bool
	// hashLookup is the shared routine of inline hash lookups, emitted
	// once at the end if a call site uses it.
	hashLookup Label
	// lpmLookup is the shared routine of inline trie lookups
	// (emitLPMLookup), emitted once at the end if a call site uses it.
	lpmLookup Label
	// ringReserveL, ringCommitL and ringOutputL are the shared routines
	// of native ring buffer reservations, commits and outputs, and
	// ringCoreL the reservation the first and last share (ringbuf.go),
	// emitted once at the end if a call site uses them.
	ringReserveL, ringCommitL, ringOutputL, ringCoreL Label
	// saved are the registers of r6-r9 each function saves (savedRegs),
	// by entry; cur are those of the function being compiled.
	saved map[int][]Reg
	cur   []Reg
	// targets and halves mark the slots jumps go to and the second slots
	// of lddws (knownMap), computed on first use.
	targets, halves []bool
	// consts are the values the program's lddws load: a map handle in r1
	// that is one of them is a map the program names, whose trie the run
	// holds in its section before it starts (waggle.Program).
	consts []uint64
}

// cold is out-of-line code at label: a fault at pc with reason, or,
// with retry set, a yield for cost fuel and then a jump back to retry.
type cold struct {
	label  Label
	pc     int
	reason uint64
	cost   uint64
	retry  Label
	// target, for spendTaken, is where the jump goes once it spent cost.
	target Label
	// recheck, for a latch, is its comparison, made again.
	recheck *latchCheck
}

// compile translates a validated program. It translates it twice, as
// Linux's JIT makes passes until the code's size settles: the second time
// with the forward jumps short that the first code says reach (backward
// jumps are short wherever they reach on either pass), and again with
// those long that alignment padding put out of reach, if any.
//
// The first code also gives the size of each loop, which the second
// places so that a loop of at most 64 bytes sits in one 64-byte line
// (fib32 ran at 1.7x the kernel's JIT with its loop of 39 bytes across
// two lines, at 1.0x in one).
func compile(prog []isa.Instruction, opts options) (*compiled, error) {
	out, short, err := compileWith(prog, opts, nil, nil)
	if err != nil {
		return out, err
	}
	sizes := loopSizes(prog, out.pcs, len(out.code))
	if !slices.Contains(short, true) && !slices.ContainsFunc(sizes, func(n int) bool { return n > 0 && n <= 64 }) {
		return out, nil // the second code would be the first
	}
	for range 4 {
		again, _, err := compileWith(prog, opts, short, sizes)
		var far *FarJumpsError
		if !errors.As(err, &far) {
			return again, err
		}
		for _, j := range far.Jumps {
			short[j] = false
		}
	}
	return out, nil
}

// compileWith translates prog with the forward jumps short that short
// says and loops placed for the sizes in loops (loopSizes; nil for none
// known), and returns which forward jumps would reach short.
func compileWith(prog []isa.Instruction, opts options, short []bool, loops []int) (*compiled, []bool, error) {
	c := &compiler{prog: prog, opts: opts, fn: map[int]Label{}, exits: loopExits(prog), sizes: loops}
	c.a.SetShortJumps(short)
	for pc := 0; pc+1 < len(prog); pc++ {
		if ins := prog[pc]; ins.IsLoadImm64() && ins.Src == 0 {
			c.consts = append(c.consts, isa.Imm64(ins, prog[pc+1]))
			pc++
		}
	}
	c.insn = make([]Label, len(prog))
	for pc := range prog {
		c.insn[pc] = c.a.NewLabel()
	}
	for e := range opts.costs {
		c.fn[e] = c.a.NewLabel()
	}
	if _, ok := c.fn[0]; !ok {
		c.fn[0] = c.a.NewLabel()
	}
	for _, ins := range prog {
		if ins.IsMayGoto() {
			c.loops = true
		}
	}
	c.saved = savedRegs(prog, c.fn)
	heads := loopHeads(prog)
	c.exitGo, c.callGo, c.fault, c.entry, c.yield = c.a.NewLabel(), c.a.NewLabel(), c.a.NewLabel(), c.a.NewLabel(), c.a.NewLabel()
	c.batch = c.a.NewLabel()
	pcs := make([]int, len(prog))
	for pc := 0; pc < len(prog); pc++ {
		if l, ok := c.fn[pc]; ok {
			c.a.Bind(l)
			c.cur = c.saved[pc]
			c.prologue()
		}
		if heads[pc] {
			c.a.Nop(c.headPad(pc))
		}
		c.a.Bind(c.insn[pc])
		pcs[pc] = c.a.Len()
		if c.fusable(pc) {
			if err := c.fusedLatch(pc); err != nil {
				return nil, nil, fmt.Errorf("instructions %d and %d (%s; %s): %w", pc, pc+1, prog[pc], prog[pc+1], err)
			}
			pc++
			c.a.Bind(c.insn[pc])
			pcs[pc] = c.a.Len()
			continue
		}
		n, err := c.slot(pc)
		if err != nil {
			return nil, nil, fmt.Errorf("instruction %d (%s): %w", pc, prog[pc], err)
		}
		if n == 2 {
			pc++
			pcs[pc] = -1
			c.a.Bind(c.insn[pc])
		}
	}
	for _, k := range c.cold {
		c.a.Bind(k.label)
		if k.target != 0 {
			c.a.ALUImm(SUB, W64, fuelReg, int32(k.cost))
			c.a.Jcc(CondAE, k.target)
			k.retry = k.label
		}
		if r := k.recheck; r != nil {
			// A latch short of fuel: falling through spends nothing.
			cc, err := c.compare(r.ins, r.wide, r.dst, r.src)
			if err != nil {
				return nil, nil, err
			}
			if r.negate {
				cc ^= 1 // x86's conditions come in pairs: cc and its negation
			}
			taken := c.a.NewLabel()
			c.a.Jcc(cc, taken)
			c.a.ALUImm(ADD, W64, fuelReg, int32(k.cost))
			c.a.Jmp(r.cont)
			c.a.Bind(taken)
		}
		c.a.StoreImm(8, ecReg, offPC, int32(k.pc))
		if k.retry != 0 {
			c.a.StoreImm(8, ecReg, offSite, int32(k.cost))
			c.a.Call(c.yield)
			c.a.Jmp(k.retry)
			continue
		}
		c.a.MovImm32(tmp, uint32(k.reason))
		c.a.Jmp(c.fault)
	}
	// The shared code goes after the program's, which starts the code's
	// page: so the program's place in memory (and its loops', which
	// matters, see above) is the same whatever the stubs hold.
	c.stubs()
	if c.hashLookup != 0 {
		c.emitHashLookup()
	}
	if c.lpmLookup != 0 {
		c.emitLPMLookup()
	}
	if c.ringReserveL != 0 {
		c.emitRingReserve()
	}
	if c.ringCommitL != 0 {
		c.emitRingCommit()
	}
	if c.ringOutputL != 0 {
		c.emitRingOutput()
	}
	if c.ringCoreL != 0 {
		c.emitRingCore()
	}
	code, err := c.a.Finish()
	if err != nil {
		return nil, nil, err
	}
	out := &compiled{code: code, funcs: map[int]int{}, sites: c.sites, pcs: pcs, stubs: map[string]int{}}
	out.entry, _ = c.a.Offset(c.entry)
	out.batch, _ = c.a.Offset(c.batch)
	for name, l := range map[string]Label{"entry": c.entry, "batch": c.batch, "exitGo": c.exitGo, "callGo": c.callGo, "yield": c.yield, "fault": c.fault, "hashLookup": c.hashLookup, "lpmLookup": c.lpmLookup, "ringReserve": c.ringReserveL, "ringCommit": c.ringCommitL, "ringOutput": c.ringOutputL, "ringCore": c.ringCoreL} {
		if l == 0 {
			continue // not emitted
		}
		if off, ok := c.a.Offset(l); ok {
			out.stubs[name] = off
		}
	}
	for e, l := range c.fn {
		out.funcs[e], _ = c.a.Offset(l)
	}
	return out, c.a.ShortJumps(), nil
}

// stubs emits the code every program shares: the entry, the exit to Go
// and back for call sites, and the fault exit.
func (c *compiler) stubs() {
	a := &c.a
	// entry: call ExecCtx.Target with r1-r5 = Args, then exit with its
	// r0. jitrt.Jump enters here on a fresh stack, for a run and for each
	// callback a helper runs.
	//
	// While ExecCtx.Repeat is not 0 it calls Target again, as
	// BPF_PROG_TEST_RUN's loop calls the program: each run from Args and
	// Fuel0, on the stack and frame depth the run before left (both as
	// at the start, since a function returns to the depth it was called
	// at).
	a.Bind(c.entry)
	a.Load(8, fuelReg, ecReg, offFuel)
	again := a.NewLabel()
	a.Bind(again)
	for i, r := range regMap[1:6] {
		a.Load(8, r, ecReg, offArgs+int32(8*i))
	}
	a.Load(8, tmp, ecReg, offTarget)
	a.CallReg(tmp)
	done := a.NewLabel()
	a.ALUMemImm(CMP, W64, ecReg, offRepeat, 0)
	a.Jcc(CondE, done)
	a.ALUMemImm(SUB, W64, ecReg, offRepeat, 1)
	a.Load(8, fuelReg, ecReg, offFuel0)
	a.StoreImm(8, ecReg, offTail, 0)
	a.Jmp(again)

	// batch: the runs of a packet batch (jitrt.ExecCtx.Batch*), each as
	// the entry stub's, after its packet is copied into the frame. Its
	// state lives in the ExecCtx, which the code's calls keep in ecReg:
	// the program's functions may use every other register.
	a.Bind(c.batch)
	next, refuse, guarded := a.NewLabel(), a.NewLabel(), a.NewLabel()
	// The item's address stays in rbx, r6's register, and three guard
	// offsets in r13-r15, r7-r9's: the program's functions save and
	// restore them (calleeSaved).
	a.Load(8, RBX, ecReg, offBItem)
	a.Load(8, R13, ecReg, offBGuards)
	a.Load(8, R14, ecReg, offBGuards+8)
	a.Load(8, R15, ecReg, offBGuards+16)
	a.Bind(next)
	a.Load(8, RCX, RBX, 8) // the packet's length
	a.Mov(W64, RAX, RCX)
	a.ALULoad(SUB, W64, RAX, ecReg, offBMin)
	a.ALULoad(CMP, W64, RAX, ecReg, offBSpan)
	a.Jcc(CondA, refuse)
	a.ALUMemImm(CMP, W64, ecReg, offBGuarded, 0)
	a.Jcc(CondE, guarded)
	a.Load64Index(RDX, RBX, R13)
	a.ALULoad64Index(OR, RDX, RBX, R14)
	a.ALULoad64Index(OR, RDX, RBX, R15)
	a.Load(8, RAX, ecReg, offBGuards+24)
	a.ALULoad64Index(OR, RDX, RBX, RAX)
	a.Jcc(CondNE, refuse)
	a.Bind(guarded)
	a.Load(8, RDI, ecReg, offBFrame) // where it goes
	a.LeaIndex(RAX, RDI, RCX, 1, 0)  // its end
	a.Load(8, RDX, ecReg, offBUsed)  // the length of the one before
	a.Store(8, ecReg, offBUsed, RCX)
	for k := range int32(2) {
		a.Load(8, tmp2, ecReg, offBEnds+8*k) // (never 0: see RunPackets)
		a.Store(8, tmp2, 0, RAX)
	}
	copyPacket := a.NewLabel()
	a.ALU(SUB, W64, RDX, RCX)
	a.Jcc(CondBE, copyPacket)
	// The packet before was longer: zero its bytes past this one's end.
	a.Mov(W64, RDI, RAX)
	a.Mov(W64, RCX, RDX)
	a.ALU(XOR, W32, RAX, RAX)
	a.RepStosb()
	a.Load(8, RCX, RBX, 8)
	a.Load(8, RDI, ecReg, offBFrame)
	a.Bind(copyPacket)
	a.Load(8, RSI, RBX, 0)
	// Packets of 8 to 256 bytes go 16 (or 8) bytes at a time, the last
	// 16 (or 8) first, overlapping the others where the length is not a
	// multiple: rep movsb costs more to start than such a copy takes.
	// (xmm0 is scratch in both of Go's ABIs; Go's ABI0-to-Go wrapper
	// zeroes its own xmm15 again after Jump.)
	repCopy, words, blocks, copied := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	a.ALUImm(CMP, W64, RCX, 256)
	a.Jcc(CondA, repCopy)
	a.ALUImm(CMP, W64, RCX, 16)
	a.Jcc(CondB, words)
	a.LeaIndex(R8, RSI, RCX, 1, -16)
	a.LeaIndex(tmp2, RDI, RCX, 1, -16)
	a.MovdquLoad(0, R8, 0)
	a.MovdquStore(tmp2, 0, 0)
	a.Bind(blocks)
	a.MovdquLoad(0, RSI, 0)
	a.MovdquStore(RDI, 0, 0)
	a.ALUImm(ADD, W64, RSI, 16)
	a.ALUImm(ADD, W64, RDI, 16)
	a.ALU(CMP, W64, RSI, R8)
	a.Jcc(CondB, blocks)
	a.Jmp(copied)
	a.Bind(words)
	a.ALUImm(CMP, W64, RCX, 8)
	a.Jcc(CondB, repCopy)
	a.Load(8, RAX, RSI, 0) // 8 to 15 bytes: two words, overlapping
	a.Store(8, RDI, 0, RAX)
	a.LeaIndex(R8, RSI, RCX, 1, -8)
	a.LeaIndex(tmp2, RDI, RCX, 1, -8)
	a.Load(8, RAX, R8, 0)
	a.Store(8, tmp2, 0, RAX)
	a.Jmp(copied)
	a.Bind(repCopy)
	a.RepMovsb()
	a.Bind(copied)
	// A verified program reads r2-r5 only after writing them (the
	// verifier marks them uninitialized at entry), and only tail call
	// sites read Tail.
	args := regMap[1:6]
	if c.opts.inline {
		args = args[:1]
	}
	for i, r := range args {
		a.Load(8, r, ecReg, offArgs+int32(8*i))
	}
	a.Load(8, fuelReg, ecReg, offFuel0)
	if slices.ContainsFunc(c.sites, func(s site) bool { return s.kind == siteTail }) {
		a.StoreImm(8, ecReg, offTail, 0)
	}
	a.Load(8, tmp, ecReg, offTarget)
	a.CallReg(tmp)
	if c.ringReserveL != 0 {
		// A run that ended holding records (only native reservations
		// leave them here) stops the batch uncounted: Go takes the
		// records and judges the run.
		a.ALUMemImm(CMP, W64, ecReg, offNRecords, 0)
		a.Jcc(CondNE, done)
	}
	a.Load(8, tmp2, ecReg, offBRetOff)
	a.ALU(ADD, W64, tmp2, RBX)
	a.Store(4, tmp2, 0, RAX)
	a.ALULoad(ADD, W64, RBX, ecReg, offBStride)
	a.Store(8, ecReg, offBItem, RBX)
	a.ALUMemImm(ADD, W64, ecReg, offBDone, 1)
	// Left-1, looping while it was above 1 (a cut left 0: all ones then).
	a.ALUMemImm(SUB, W64, ecReg, offBLeft, 1)
	a.Jcc(CondA, next)
	a.Jmp(done)
	a.Bind(refuse) // an item for Go: stop before it
	a.StoreImm(8, ecReg, offBLeft, 0)

	a.Bind(done)
	a.Store(8, ecReg, offR0, RAX)
	a.StoreImm(8, ecReg, offExit, jitrt.ExitOK)
	a.Bind(c.exitGo)
	a.Store(8, ecReg, offFuel, fuelReg)
	a.Load(8, RSP, ecReg, offGoSP)
	a.Load(8, RBP, ecReg, offGoBP)
	a.Ret()

	// callGo: a call site stored its index in Site and the address to
	// resume at in rax, and jumped here. Save what Go will clobber (r1-r10
	// of the eBPF frame), hand r1-r5 and the program's identity (its
	// code's address) to Go, and exit. Go resumes at the call site's own
	// continuation (callSite), on this stack, which restores the
	// registers. Neither way is a call or a return: the only ones on the
	// path are Go's call of jitrt.Jump and the exit's return from it,
	// which match, so the processor predicts both returns.
	a.Bind(c.callGo)
	a.Store(8, ecReg, offResumePC, RAX)
	for _, r := range callGoSaved {
		a.Push(r)
	}
	for i, r := range regMap[1:6] {
		a.Store(8, ecReg, offArgs+int32(8*i), r)
	}
	a.LeaLabel(RAX, c.entry)
	a.Store(8, ecReg, offProg, RAX)
	a.Store(8, ecReg, offResumeSP, RSP)
	a.StoreImm(8, ecReg, offExit, jitrt.ExitCall)
	a.Jmp(c.exitGo)

	// yield: the fuel ran out; PC and Site (the fuel needed) are stored.
	// As callGo, but called (it is rare), and r0 is live too, and Go
	// changes no register.
	a.Bind(c.yield)
	saved := append(callGoSaved[:len(callGoSaved):len(callGoSaved)], RAX)
	for _, r := range saved {
		a.Push(r)
	}
	a.LeaLabel(RAX, c.entry)
	a.Store(8, ecReg, offProg, RAX)
	a.Store(8, ecReg, offResumeSP, RSP)
	resumeYield := a.NewLabel()
	a.LeaLabel(RAX, resumeYield)
	a.Store(8, ecReg, offResumePC, RAX)
	a.StoreImm(8, ecReg, offExit, jitrt.ExitYield)
	a.Jmp(c.exitGo)
	a.Bind(resumeYield)
	for i := len(saved) - 1; i >= 0; i-- {
		a.Pop(saved[i])
	}
	a.Load(8, fuelReg, ecReg, offFuel)
	a.Ret()

	// fault: PC is stored, the reason is in tmp.
	a.Bind(c.fault)
	a.Store(8, ecReg, offFault, tmp)
	a.LeaLabel(RAX, c.entry)
	a.Store(8, ecReg, offProg, RAX)
	a.StoreImm(8, ecReg, offExit, jitrt.ExitFault)
	a.Jmp(c.exitGo)
}

// prologue starts a function's frame (see the frame layout above).
func (c *compiler) prologue() {
	a := &c.a
	a.Push(RBP)
	for _, r := range c.cur {
		a.Push(r)
	}
	a.Mov(W64, RBP, RSP)
	// The return address, rbp and the saved registers above, the
	// frame below: rsp stays 16-byte aligned relative to the entry.
	below := int32(frameBelow)
	if len(c.cur)%2 == 1 {
		below += 8
	}
	a.ALUImm(SUB, W64, RSP, below)
	if c.loops {
		a.StoreImm(4, RBP, loopsOff, isa.MaxLoops)
	}
}

// epilogue ends a function's frame, restoring the caller's r6-r10 that
// the function saved, and leaves the return address on top of the stack.
func (c *compiler) epilogue() {
	a := &c.a
	a.Mov(W64, RSP, RBP)
	for i := len(c.cur) - 1; i >= 0; i-- {
		a.Pop(c.cur[i])
	}
	a.Pop(RBP)
}

// calleeSaved are the machine registers of r6-r9, which a function
// keeps for its caller: it saves those it uses.
var calleeSaved = [4]Reg{RBX, R13, R14, R15}

// savedRegs returns, per function entry (fn's keys), the registers of
// r6-r9 the function names in any instruction, which its prologue saves
// and its epilogue restores, as Linux's JIT saves only the callee-saved
// registers a program uses. Code whose jumps leave their function, or
// whose functions do not end in an exit or a jump, runs one function's
// slots in another's frame: every function saves all four then.
func savedRegs(prog []isa.Instruction, fn map[int]Label) map[int][]Reg {
	entries := make([]int, 0, len(fn))
	for e := range fn {
		entries = append(entries, e)
	}
	slices.Sort(entries)
	out := make(map[int][]Reg, len(entries))
	all := calleeSaved[:]
	for k, e := range entries {
		end := len(prog)
		if k+1 < len(entries) {
			end = entries[k+1]
		}
		var used [4]bool
		wellFormed := end > e
		for pc := e; pc < end && wellFormed; pc++ {
			ins := prog[pc]
			for _, r := range []isa.Register{ins.Dst, ins.Src} {
				if r >= 6 && r <= 9 {
					used[r-6] = true
				}
			}
			if ins.IsLoadImm64() {
				pc++
				continue
			}
			if c := ins.Op.Class(); c == isa.ClassJMP || c == isa.ClassJMP32 {
				if ins.IsLocalCall() {
					continue
				}
				if t, ok := ins.JumpTarget(pc); ok && (t < e || t >= end) {
					wellFormed = false
				}
			}
		}
		if last := prog[end-1]; !wellFormed || last.Op.Class() != isa.ClassJMP ||
			last.Op.JumpOp() != isa.Exit && last.Op.JumpOp() != isa.JumpA {
			return allSaved(entries, all)
		}
		var regs []Reg
		for i, u := range used {
			if u {
				regs = append(regs, calleeSaved[i])
			}
		}
		out[e] = regs
	}
	return out
}

// allSaved gives every entry every register of all.
func allSaved(entries []int, all []Reg) map[int][]Reg {
	out := make(map[int][]Reg, len(entries))
	for _, e := range entries {
		out[e] = all
	}
	return out
}

// coldFault returns a label whose code ends the run with a fault at pc.
func (c *compiler) coldFault(pc int, reason uint64) Label {
	l := c.a.NewLabel()
	c.cold = append(c.cold, cold{label: l, pc: pc, reason: reason})
	return l
}

// spend emits the budget check of slot pc: cost fuel, as the
// interpreter spends it (engine.Args.Budget). The fuel in ExecCtx is a
// slice of the run's budget: when it runs out the code yields, and Go
// refills it (or ends the run with the budget fault the interpreter
// gives at this slot) and polls the stop flag, so the hot path is two
// instructions.
func (c *compiler) spend(pc int, cost uint64) {
	a := &c.a
	check, yield := a.NewLabel(), a.NewLabel()
	a.Bind(check)
	a.ALUImm(SUB, W64, fuelReg, int32(cost))
	a.Jcc(CondB, yield)
	c.cold = append(c.cold, cold{label: yield, pc: pc, cost: cost, retry: check})
}

// spendTaken returns the label of cold code that spends the budget of a
// backward conditional jump at slot pc, cost fuel, and goes on to target:
// the jump goes there instead of to target, so that the budget is spent
// only when the jump is taken. Without enough fuel it yields as spend
// does, and spends again when Go resumes it.
func (c *compiler) spendTaken(pc int, cost uint64, target Label) Label {
	l := c.a.NewLabel()
	c.cold = append(c.cold, cold{label: l, pc: pc, cost: cost, target: target})
	return l
}

// callGoSaved are the registers an exit to Go saves on the machine
// stack, in push order.
var callGoSaved = []Reg{RBP, RBX, R13, R14, R15, RDI, RSI, RDX, RCX, R8}

// callSite emits an exit to Go for site s, and the continuation Go
// resumes at, which restores the registers and takes r0 from Ret; it
// returns the site's index.
func (c *compiler) callSite(s site) int {
	a := &c.a
	c.sites = append(c.sites, s)
	k := len(c.sites) - 1
	cont := a.NewLabel()
	a.StoreImm(8, ecReg, offSite, int32(k))
	a.LeaLabel(RAX, cont)
	a.Jmp(c.callGo)
	a.Bind(cont)
	for i := len(callGoSaved) - 1; i >= 0; i-- {
		a.Pop(callGoSaved[i])
	}
	a.Load(8, RAX, ecReg, offRet)
	a.Load(8, fuelReg, ecReg, offFuel)
	return k
}

func width(wide bool) Width {
	if wide {
		return W64
	}
	return W32
}

// bpfALU maps eBPF ALU operations with an x86 two-operand form.
var bpfALU = map[isa.ALUOp]ALUOp{isa.ALUAdd: ADD, isa.ALUSub: SUB, isa.ALUOr: OR, isa.ALUAnd: AND, isa.ALUXor: XOR}

var shiftOps = map[isa.ALUOp]ShiftOp{isa.ALULsh: SHL, isa.ALURsh: SHR, isa.ALUArsh: SAR}

// conds maps eBPF conditional jumps to x86 condition codes after cmp
// (JSET: after test).
var conds = map[isa.JumpOp]Cond{
	isa.JumpEq: CondE, isa.JumpNE: CondNE, isa.JumpSet: CondNE,
	isa.JumpGT: CondA, isa.JumpGE: CondAE, isa.JumpLT: CondB, isa.JumpLE: CondBE,
	isa.JumpSGT: CondG, isa.JumpSGE: CondGE, isa.JumpSLT: CondL, isa.JumpSLE: CondLE,
}

// slot emits slot pc and returns the slots it took (2 for lddw): the
// instruction, behind a test of its base register where it has a
// context form.
func (c *compiler) slot(pc int) (int, error) {
	ins := c.prog[pc]
	alt, isVariant := c.opts.variants[pc]
	_, isFault := c.opts.faults[pc]
	if !isVariant && !isFault {
		return c.instruction(pc, ins)
	}
	base, ok := accessBase(ins)
	if !ok {
		return 0, fmt.Errorf("a context variant or fault needs a load, store or atomic operation")
	}
	a := &c.a
	other, done := a.NewLabel(), a.NewLabel()
	a.Load(8, tmp, ecReg, offCtx)
	a.ALU(CMP, W64, regMap[base&15], tmp)
	a.Jcc(CondNE, other)
	switch {
	case isFault:
		a.Jmp(c.coldFault(pc, jitrt.FaultContext))
	case alt == (isa.Instruction{Op: isa.OpJA}): // a store the context ignores
	default:
		if _, err := c.instruction(pc, alt); err != nil {
			return 0, fmt.Errorf("context variant %s: %w", alt, err)
		}
	}
	a.Jmp(done)
	a.Bind(other)
	n, err := c.instruction(pc, ins)
	a.Bind(done)
	return n, err
}

// accessBase returns the base register of a load, store or atomic
// operation.
func accessBase(i isa.Instruction) (isa.Register, bool) {
	switch c, m := i.Op.Class(), i.Op.Mode(); {
	case c == isa.ClassLDX && (m == isa.ModeMEM || m == isa.ModeMEMSX):
		return i.Src, true
	case c == isa.ClassST && m == isa.ModeMEM, c == isa.ClassSTX && (m == isa.ModeMEM || m == isa.ModeATOMIC):
		return i.Dst, true
	}
	return 0, false
}

// instruction emits ins, the instruction of slot pc, and returns the
// slots it took (2 for lddw).
func (c *compiler) instruction(pc int, ins isa.Instruction) (int, error) {
	a := &c.a
	if c.opts.blind {
		ins = c.blindConstant(ins)
	}
	dst, src := regMap[ins.Dst&15], regMap[ins.Src&15]
	switch cl := ins.Op.Class(); cl {
	case isa.ClassALU, isa.ClassALU64:
		return 1, c.alu(ins, cl == isa.ClassALU64, dst, src)
	case isa.ClassLD:
		switch ins.Op.Mode() {
		case isa.ModeIMM:
			switch ins.Src {
			case 0:
				v := isa.Imm64(ins, c.prog[pc+1])
				if c.opts.blind {
					key := rand.Uint64()
					a.MovImm64(dst, v^key)
					a.MovImm64(regMap[regAX], key)
					a.ALU(XOR, W64, dst, regMap[regAX])
				} else {
					a.MovImm64(dst, v)
				}
			case isa.PseudoFunc:
				t, _ := ins.JumpTarget(pc)
				a.MovImm64(dst, c.opts.funcBase+uint64(t)*isa.InstructionSize)
			default:
				return 0, fmt.Errorf("lddw with pseudo source %d must be resolved by the loader before it runs", ins.Src)
			}
			return 2, nil
		case isa.ModeABS, isa.ModeIND:
			s := site{kind: siteLdAbs, pc: pc, imm: ins.Imm, size: uint8(ins.Op.Size().Bytes())}
			if ins.Op.Mode() == isa.ModeIND {
				s.kind = siteLdInd
				a.Store(8, ecReg, offRet, src)
			}
			c.callSite(s)
			return 1, nil
		}
	case isa.ClassLDX:
		n := ins.Op.Size().Bytes()
		if ins.Op.Mode() == isa.ModeMEMSX {
			a.LoadSX(n, dst, src, int32(ins.Off))
		} else {
			a.Load(n, dst, src, int32(ins.Off))
		}
		return 1, nil
	case isa.ClassST:
		a.StoreImm(ins.Op.Size().Bytes(), dst, int32(ins.Off), ins.Imm)
		return 1, nil
	case isa.ClassSTX:
		n := ins.Op.Size().Bytes()
		if ins.Op.Mode() == isa.ModeATOMIC {
			return 1, c.atomic(ins, n, dst, src)
		}
		a.Store(n, dst, int32(ins.Off), src)
		return 1, nil
	case isa.ClassJMP, isa.ClassJMP32:
		return 1, c.jump(pc, ins, cl == isa.ClassJMP, dst, src)
	}
	return 0, fmt.Errorf("no code for opcode %#02x", uint8(ins.Op))
}

// blindConstant returns ins with its immediate moved into regAX,
// emitting the code that puts it there from the immediate xor a random
// key and the key (bpf_jit_blind_insn in Linux): ALU operations but
// shifts, conditional jumps, stores of an immediate. A lddw is loaded
// blinded in place. Other instructions come back unchanged.
func (c *compiler) blindConstant(ins isa.Instruction) isa.Instruction {
	a := &c.a
	key := int32(rand.Uint32())
	load := func() {
		// Both sign-extended: ax = sign-extended imm.
		a.MovImm64(regMap[regAX], uint64(int64(ins.Imm^key)))
		a.ALUImm(XOR, W64, regMap[regAX], key)
	}
	switch cl := ins.Op.Class(); {
	case (cl == isa.ClassALU || cl == isa.ClassALU64) && ins.Op.Source() == isa.SourceK:
		switch ins.Op.ALUOp() {
		case isa.ALUAdd, isa.ALUSub, isa.ALUMul, isa.ALUDiv, isa.ALUMod, isa.ALUOr, isa.ALUAnd, isa.ALUXor, isa.ALUMov:
			load()
			ins.Op |= isa.Opcode(isa.SourceX)
			ins.Src, ins.Imm = regAX, 0
		}
	case (cl == isa.ClassJMP || cl == isa.ClassJMP32) && ins.Op.Source() == isa.SourceK:
		switch ins.Op.JumpOp() {
		case isa.JumpA, isa.JumpCond, isa.Call, isa.Exit:
		default:
			load()
			ins.Op |= isa.Opcode(isa.SourceX)
			ins.Src, ins.Imm = regAX, 0
		}
	case cl == isa.ClassST && ins.Op.Mode() == isa.ModeMEM:
		load()
		ins.Op = isa.Opcode(isa.ClassSTX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(ins.Op.Size())
		ins.Src, ins.Imm = regAX, 0
	}
	return ins
}

func (c *compiler) alu(ins isa.Instruction, wide bool, dst, src Reg) error {
	a := &c.a
	w := width(wide)
	x := ins.Op.Source() == isa.SourceX
	op := ins.Op.ALUOp()
	imm := ins.Imm
	switch op {
	case isa.ALUAdd, isa.ALUSub, isa.ALUOr, isa.ALUAnd, isa.ALUXor:
		if x {
			a.ALU(bpfALU[op], w, dst, src)
		} else {
			a.ALUImm(bpfALU[op], w, dst, imm)
		}
	case isa.ALUMov:
		switch {
		case x && ins.Off != 0: // movsx
			if ins.Off == 32 {
				a.Movsx(W64, dst, src, 4)
			} else {
				a.Movsx(w, dst, src, int(ins.Off)/8)
			}
		case x:
			a.Mov(w, dst, src)
		case wide:
			a.MovImm64(dst, uint64(int64(imm)))
		default:
			a.MovImm32(dst, uint32(imm))
		}
	case isa.ALUMul:
		if x {
			a.Imul(w, dst, src)
		} else {
			a.ImulImm(w, dst, dst, imm)
		}
	case isa.ALUNeg:
		a.Neg(w, dst)
	case isa.ALULsh, isa.ALURsh, isa.ALUArsh:
		sh := shiftOps[op]
		if !x {
			mask := int32(31)
			if wide {
				mask = 63
			}
			if n := uint8(imm & mask); n != 0 {
				a.ShiftImm(sh, w, dst, n)
			} else if !wide {
				a.Mov(W32, dst, dst) // a 32-bit op zero-extends even by 0
			}
			return nil
		}
		switch {
		case src == RCX:
			a.Shift(sh, w, dst)
		case dst == RCX:
			a.Mov(W64, tmp, RCX)
			a.Mov(W64, RCX, src)
			a.Shift(sh, w, tmp)
			a.Mov(W64, RCX, tmp)
		default:
			a.Mov(W64, tmp, RCX)
			a.Mov(W64, RCX, src)
			a.Shift(sh, w, dst)
			a.Mov(W64, RCX, tmp)
		}
	case isa.ALUDiv, isa.ALUMod:
		c.divmod(op == isa.ALUMod, ins.Off == 1, wide, x, dst, src, imm)
	case isa.ALUEnd:
		c.endian(ins, wide, dst)
	default:
		return fmt.Errorf("no code for ALU operation %#02x", uint8(op))
	}
	return nil
}

// divmod emits BPF_DIV/BPF_MOD (signed with off 1) with Linux's rules:
// division by zero gives 0, modulo by zero leaves the dividend (its low
// half for 32 bits), and INT_MIN / -1 is INT_MIN, INT_MIN % -1 is 0,
// where the hardware would trap.
func (c *compiler) divmod(mod, signed, wide, x bool, dst, src Reg, imm int32) {
	a := &c.a
	w := width(wide)
	if !x {
		switch {
		case imm == 0 && mod:
			if !wide {
				a.Mov(W32, dst, dst)
			}
			return
		case imm == 0:
			a.MovImm32(dst, 0)
			return
		case imm == -1 && signed && mod:
			a.MovImm32(dst, 0)
			return
		case imm == -1 && signed:
			a.Neg(w, dst)
			return
		}
		if wide {
			a.MovImm64(tmp, uint64(int64(imm)))
		} else {
			a.MovImm32(tmp, uint32(imm))
		}
	} else {
		a.Mov(W64, tmp, src)
	}
	var done, zero, minus1 Label
	if x {
		done, zero = a.NewLabel(), a.NewLabel()
		a.Test(w, tmp, tmp)
		a.Jcc(CondE, zero)
		if signed {
			minus1 = a.NewLabel()
			a.ALUImm(CMP, w, tmp, -1)
			a.Jcc(CondE, minus1)
		}
	}
	// rdx:rax / tmp, with r0 kept on the stack and r3 in tmp2.
	a.Push(RAX)
	a.Mov(W64, tmp2, RDX)
	a.Mov(W64, RAX, dst)
	if signed {
		if wide {
			a.Cqo()
		} else {
			a.Cdq()
		}
		a.Idiv(w, tmp)
	} else {
		a.ALU(XOR, W32, RDX, RDX)
		a.Div(w, tmp)
	}
	res := RAX
	if mod {
		res = RDX
	}
	a.Mov(W64, tmp, res)
	a.Pop(RAX)
	a.Mov(W64, RDX, tmp2)
	a.Mov(w, dst, tmp)
	if !x {
		return
	}
	a.Jmp(done)
	// The divisor is 0.
	a.Bind(zero)
	switch {
	case !mod:
		a.MovImm32(dst, 0)
	case !wide:
		a.Mov(W32, dst, dst)
	}
	if signed {
		a.Jmp(done)
		// The divisor is -1: the hardware traps on INT_MIN / -1.
		a.Bind(minus1)
		if mod {
			a.MovImm32(dst, 0)
		} else {
			a.Neg(w, dst)
		}
	}
	a.Bind(done)
}

// endian emits the byte-order operations: to little-endian truncates on
// this host, to big-endian and bswap (ALU64) swap.
func (c *compiler) endian(ins isa.Instruction, wide bool, dst Reg) {
	a := &c.a
	swap := wide || ins.Op.Source() == isa.SourceBE
	switch ins.Imm {
	case 16:
		if swap {
			a.Ror16(dst, 8)
		}
		a.Movzx(dst, dst, 2)
	case 32:
		if swap {
			a.Bswap(W32, dst)
		} else {
			a.Mov(W32, dst, dst)
		}
	case 64:
		if swap {
			a.Bswap(W64, dst)
		}
	}
}

// atomic emits BPF_ATOMIC on [dst+off], n of 4 or 8 bytes.
func (c *compiler) atomic(ins isa.Instruction, n int, dst, src Reg) error {
	a := &c.a
	off := int32(ins.Off)
	op := isa.AtomicOp(ins.Imm)
	w := width(n == 8)
	switch op {
	case isa.AtomicAdd, isa.AtomicOr, isa.AtomicAnd, isa.AtomicXor:
		a.LockALU(bpfALU[isa.ALUOp(op)], n, dst, off, src)
	case isa.AtomicAdd | isa.AtomicFetch:
		a.LockXadd(n, dst, off, src)
	case isa.AtomicXchg:
		a.XchgMem(n, dst, off, src)
	case isa.AtomicCmpXchg:
		a.LockCmpxchg(n, dst, off, src)
		if n == 4 {
			a.Mov(W32, RAX, RAX) // the old value, zero-extended, also when equal
		}
	case isa.AtomicOr | isa.AtomicFetch, isa.AtomicAnd | isa.AtomicFetch, isa.AtomicXor | isa.AtomicFetch:
		// A cmpxchg loop: rax is the comparand, so r0 is kept in tmp2
		// (and used as the operand when src is r0).
		a.Lea(tmp, dst, off)
		a.Mov(W64, tmp2, RAX)
		operand := src
		if src == RAX {
			operand = tmp2
		}
		// The new value in a register neither the operand nor these,
		// kept on the stack.
		nv := RCX
		if src == RCX {
			nv = RDX
		}
		a.Push(nv)
		loop := a.NewLabel()
		a.Bind(loop)
		a.Load(n, RAX, tmp, 0)
		a.Mov(W64, nv, RAX)
		a.ALU(bpfALU[isa.ALUOp(op&^isa.AtomicFetch)], w, nv, operand)
		a.LockCmpxchg(n, tmp, 0, nv)
		a.Jcc(CondNE, loop)
		a.Pop(nv)
		if src != RAX {
			a.Mov(W64, src, RAX)
			a.Mov(W64, RAX, tmp2)
		}
	default:
		return fmt.Errorf("no code for atomic operation %#x", uint32(op))
	}
	return nil
}

func (c *compiler) jump(pc int, ins isa.Instruction, wide bool, dst, src Reg) error {
	a := &c.a
	switch op := ins.Op.JumpOp(); op {
	case isa.Exit:
		a.StoreImm(8, ecReg, offPC, int32(pc))
		c.epilogue()
		a.Ret()
		return nil
	case isa.Call:
		return c.call(pc, ins, dst)
	default:
		t, _ := ins.JumpTarget(pc)
		target := c.insn[t]
		if c.opts.budgeted && t <= pc {
			cost := uint64(pc + 1 - t)
			switch {
			case op == isa.JumpA || op == isa.JumpCond:
				c.spend(pc, cost) // always taken; may_goto always spends
			case c.exits[pc]:
				// Spent when taken (engine.Args.Budget), out of line:
				// the exit of an inner loop costs nothing while the
				// inner loop runs.
				target = c.spendTaken(pc, cost, target)
			default:
				// A loop's own back edge, mostly taken: spent in line
				// before the jump, given back when it falls through.
				return c.latch(pc, ins, false, wide, dst, src, cost, target)
			}
		}
		switch op {
		case isa.JumpA:
			a.Jmp(c.insn[t])
		case isa.JumpCond: // may_goto: jump once the frame's budget is spent
			a.ALUMemImm(CMP, W32, RBP, loopsOff, 0)
			a.Jcc(CondE, c.insn[t])
			a.ALUMemImm(SUB, W32, RBP, loopsOff, 1)
		default:
			cc, err := c.compare(ins, wide, dst, src)
			if err != nil {
				return err
			}
			a.Jcc(cc, target)
		}
		return nil
	}
}

// compare emits the comparison of conditional jump ins and returns the
// condition under which it jumps.
func (c *compiler) compare(ins isa.Instruction, wide bool, dst, src Reg) (Cond, error) {
	a := &c.a
	op := ins.Op.JumpOp()
	cc, ok := conds[op]
	if !ok {
		return 0, fmt.Errorf("no code for jump operation %#02x", uint8(op))
	}
	w := width(wide)
	x := ins.Op.Source() == isa.SourceX
	switch {
	case op == isa.JumpSet && x:
		a.Test(w, dst, src)
	case op == isa.JumpSet:
		a.TestImm(w, dst, ins.Imm)
	case x:
		a.ALU(CMP, w, dst, src)
	default:
		a.ALUImm(CMP, w, dst, ins.Imm)
	}
	return cc, nil
}

// latch emits the conditional backward jump at slot pc that is a loop's
// own back edge, spending cost fuel when it is taken: the fuel is taken
// before the comparison (the loop's path is the old two instructions and
// the jump) and given back when the jump falls through. Short of fuel, the
// cold path compares again: a jump that falls through spent nothing, one
// taken yields for more, as spend does.
//
// negate makes the latch jump when ins would not (fusedLatch).
func (c *compiler) latch(pc int, ins isa.Instruction, negate, wide bool, dst, src Reg, cost uint64, target Label) error {
	a := &c.a
	check, short, cont := a.NewLabel(), a.NewLabel(), a.NewLabel()
	a.Bind(check)
	a.ALUImm(SUB, W64, fuelReg, int32(cost))
	a.Jcc(CondB, short)
	cc, err := c.compare(ins, wide, dst, src)
	if err != nil {
		return err
	}
	if negate {
		cc ^= 1
	}
	a.Jcc(cc, target)
	a.ALUImm(ADD, W64, fuelReg, int32(cost))
	a.Bind(cont)
	c.cold = append(c.cold, cold{label: short, pc: pc, cost: cost, retry: check, recheck: &latchCheck{ins: ins, negate: negate, wide: wide, dst: dst, src: src, cont: cont}})
	return nil
}

// latchCheck is what the cold path of a latch compares again.
type latchCheck struct {
	ins          isa.Instruction
	negate, wide bool
	dst, src     Reg
	cont         Label // after the latch
}

// fusable reports whether slots pc and pc+1 are a loop's exit test and
// its back edge, "if cond goto pc+2; goto head", as clang lays out some
// loops, with nothing else jumping to the back edge. Their code is then
// one latch (fusedLatch): what Linux's JIT runs as a compare, a jump not
// taken and a jump taken is a compare and a jump taken, besides the
// budget's subtraction and its jump.
func (c *compiler) fusable(pc int) bool {
	if !c.opts.budgeted || c.opts.blind || pc+2 >= len(c.prog) {
		return false
	}
	ins, next := c.prog[pc], c.prog[pc+1]
	if cl := ins.Op.Class(); cl != isa.ClassJMP && cl != isa.ClassJMP32 {
		return false
	}
	switch ins.Op.JumpOp() {
	case isa.Exit, isa.Call, isa.JumpA, isa.JumpCond:
		return false
	}
	if t, ok := ins.JumpTarget(pc); !ok || t != pc+2 {
		return false
	}
	if next.Op != isa.OpJA {
		return false
	}
	if u, ok := next.JumpTarget(pc + 1); !ok || u > pc || u < 0 {
		return false
	}
	if c.targets == nil {
		c.targets = jumpTargets(c.prog)
	}
	_, entry := c.fn[pc+1]
	return !c.targets[pc+1] && !entry
}

// fusedLatch emits slots pc and pc+1, which fusable accepted, as the
// latch of the back edge in pc+1 taken when pc's condition does not
// hold; it falls through to pc+2. The budget is the back edge's (its
// cost, and its slot where it runs out), as if the two ran apart.
func (c *compiler) fusedLatch(pc int) error {
	ins, next := c.prog[pc], c.prog[pc+1]
	u, _ := next.JumpTarget(pc + 1)
	return c.latch(pc+1, ins, true, ins.Op.Class() == isa.ClassJMP, regMap[ins.Dst&15], regMap[ins.Src&15], uint64(pc+2-u), c.insn[u])
}

// headPad returns the padding before the head of a loop at slot pc: what
// puts a loop known (compiler.sizes) to be of at most 64 bytes in one
// 64-byte line, as the processor fetches and caches decoded code, and
// otherwise what starts its head a 16-byte block, so that where the code
// lands in memory changes little how its loop decodes and predicts.
func (c *compiler) headPad(pc int) int {
	at := c.a.Len()
	if pc < len(c.sizes) {
		if n := c.sizes[pc]; n > 0 && n <= 64 {
			if at%64+n <= 64 {
				return 0
			}
			return 64 - at%64
		}
	}
	return (16 - at%16) % 16
}

// loopSizes returns, for each slot a backward jump goes to, the bytes of
// code from it to the end of the farthest such jump, in code whose slot
// offsets are pcs (compiled.pcs) and whose length is end; 0 for other
// slots.
func loopSizes(prog []isa.Instruction, pcs []int, end int) []int {
	next := func(p int) int { // where slot p's code ends
		for q := p + 1; q < len(pcs); q++ {
			if pcs[q] >= 0 {
				return pcs[q]
			}
		}
		return end
	}
	sizes := make([]int, len(prog))
	for pc, ins := range prog {
		if c := ins.Op.Class(); c != isa.ClassJMP && c != isa.ClassJMP32 || ins.IsLocalCall() {
			continue
		}
		if t, ok := ins.JumpTarget(pc); ok && t <= pc && t >= 0 && pcs[t] >= 0 {
			sizes[t] = max(sizes[t], next(pc)-pcs[t])
		}
	}
	return sizes
}

// loopHeads marks the slots backward jumps go to.
func loopHeads(prog []isa.Instruction) []bool {
	heads := make([]bool, len(prog))
	for pc, ins := range prog {
		if c := ins.Op.Class(); c != isa.ClassJMP && c != isa.ClassJMP32 || ins.IsLocalCall() {
			continue
		}
		if t, ok := ins.JumpTarget(pc); ok && t <= pc && t >= 0 {
			heads[t] = true
		}
	}
	return heads
}

// loopExits returns the slots of the conditional backward jumps that
// leave an inner loop: p jumps back to t, and another backward jump q to
// u encloses p (u <= p < q) and starts after t (t < u). Such a jump is
// taken once per inner loop, and runs not taken on every iteration of it.
// So are those that jump back to the head of a loop whose own back edge
// comes later (q > p, u = t): a "continue", taken only on some paths.
func loopExits(prog []isa.Instruction) map[int]bool {
	type edge struct{ from, to int }
	var back []edge
	for pc, ins := range prog {
		if ins.Op.Class() != isa.ClassJMP && ins.Op.Class() != isa.ClassJMP32 {
			continue
		}
		switch ins.Op.JumpOp() {
		case isa.Exit, isa.Call:
			continue
		}
		if t, ok := ins.JumpTarget(pc); ok && t <= pc {
			back = append(back, edge{pc, t})
		}
	}
	exits := map[int]bool{}
	for _, e := range back {
		for _, f := range back {
			inner := f.to > e.to && f.to <= e.from && e.from < f.from
			// A "continue": the loop's own back edge comes after it
			// (array_lookup's "if (!v) continue" ran the latch's spend
			// and refund on every iteration, for a jump never taken).
			cont := f.to == e.to && f.from > e.from
			if inner || cont {
				exits[e.from] = true
				break
			}
		}
	}
	return exits
}

func (c *compiler) call(pc int, ins isa.Instruction, dst Reg) error {
	a := &c.a
	switch {
	case ins.Op.Source() == isa.SourceX: // callx
		a.Store(8, ecReg, offRet, dst)
		c.callSite(site{kind: siteCallX, pc: pc})
		c.tailCheck()
	case ins.Src == isa.PseudoCall:
		t, _ := ins.JumpTarget(pc)
		a.ALUMemImm(CMP, W64, ecReg, offDepth, maxFrames-1)
		a.Jcc(CondAE, c.coldFault(pc, jitrt.FaultCallDepth))
		if c.opts.budgeted {
			c.spend(pc, c.opts.costs[t])
		}
		a.ALUMemImm(ADD, W64, ecReg, offDepth, 1)
		a.Call(c.fn[t])
		a.ALUMemImm(SUB, W64, ecReg, offDepth, 1)
	case ins.Src == isa.PseudoKfuncCall:
		return fmt.Errorf("kfunc calls need a kernel; user space has no kernel functions")
	default:
		f, err := c.opts.helpers.Lookup(ins.Imm)
		if err != nil {
			return err
		}
		s := site{kind: siteHelper, pc: pc, id: ins.Imm, fn: f}
		if ins.Imm == helpers.IDTailCall {
			s.kind = siteTail
		}
		if c.opts.inline && helpers.IsStandard(ins.Imm, f) {
			switch ins.Imm {
			case helpers.IDMapLookupElem:
				c.mapLookup(s)
				return nil
			case helpers.IDGetSMPProcessorID:
				a.Load(8, RAX, ecReg, offWorker)
				return nil
			case helpers.IDGetPrandomU32:
				c.prandom(s)
				return nil
			case helpers.IDLoop:
				if c.loop(s) {
					return nil
				}
			case helpers.IDRingbufReserve:
				if c.ringReserve(s) {
					return nil
				}
			case helpers.IDRingbufSubmit, helpers.IDRingbufDiscard:
				c.ringCommit(s, ins.Imm == helpers.IDRingbufDiscard)
				return nil
			case helpers.IDRingbufOutput:
				if c.ringOutput(s) {
					return nil
				}
			}
		}
		c.callSite(s)
		if s.kind == siteTail {
			c.tailCheck()
		}
	}
	return nil
}

// mapLookup emits bpf_map_lookup_elem natively for the maps whose
// lookup needs nothing but the map's memory (maps/header.go): arrays and
// per-CPU arrays inline, as Linux's array_map_gen_lookup does (r0 = the
// value's address, or 0 for an index past the end), hashes and per-CPU
// hashes, per-CPU hashes and LRU hashes through a shared routine
// (emitHashLookup), tries the program names (an lddw of their handle: the
// run holds them in its section) through another (emitLPMLookup). Other
// maps (maps of maps; tries reached through one) and a lookup a routine
// cannot finish exit to Go (site s).
func (c *compiler) mapLookup(s site) {
	if h, ok := c.knownMap(s.pc); ok && c.knownLookup(s, h) {
		return
	}
	a := &c.a
	r1, r2 := regMap[1], regMap[2]
	array, percpu, hash, null, slow, done := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	a.Load(4, tmp, r1, maps.HeaderType)
	a.ALUImm(CMP, W32, tmp, int32(maps.Array))
	a.Jcc(CondE, array)
	a.ALUImm(CMP, W32, tmp, int32(maps.PerCPUArray))
	a.Jcc(CondE, percpu)
	a.ALUImm(CMP, W32, tmp, int32(maps.Hash))
	a.Jcc(CondE, hash)
	a.ALUImm(CMP, W32, tmp, int32(maps.PerCPUHash))
	a.Jcc(CondE, hash)
	a.ALUImm(CMP, W32, tmp, int32(maps.LRUHash))
	a.Jcc(CondE, hash)
	a.ALUImm(CMP, W32, tmp, int32(maps.LRUPerCPUHash))
	a.Jcc(CondE, hash)
	if len(c.consts) > 0 && len(c.consts) <= maxTrieConsts {
		// A trie the program names (an lddw of its handle), which the run
		// holds in its section: walked natively.
		lpm := a.NewLabel()
		a.ALUImm(CMP, W32, tmp, int32(maps.LPMTrie))
		a.Jcc(CondNE, slow)
		c.isConst(r1, lpm, slow)
		a.Bind(lpm)
		c.callRoutine(&c.lpmLookup)
		a.Test(W64, tmp, tmp)
		a.Jcc(CondE, done)
	}
	a.Jmp(slow)

	a.Bind(hash)
	c.callRoutine(&c.hashLookup)
	a.Test(W64, tmp, tmp)
	a.Jcc(CondE, done)
	a.Jmp(slow)

	// The index, checked; its value's address (CPU 0's for per-CPU).
	index := func() {
		a.Load(4, tmp, r2, 0)
		a.ALULoad(CMP, W32, tmp, r1, maps.HeaderMaxEntries)
		a.Jcc(CondAE, null)
		a.Load(4, tmp2, r1, maps.HeaderElemSize)
		a.Imul(W64, tmp, tmp2)
		a.ALULoad(ADD, W64, tmp, r1, maps.HeaderData)
	}
	a.Bind(array)
	index()
	a.Mov(W64, RAX, tmp)
	a.Jmp(done)

	a.Bind(percpu)
	index()
	a.Load(8, tmp2, ecReg, offWorker)
	a.ALULoad(CMP, W32, tmp2, r1, maps.HeaderCPUs)
	a.Jcc(CondAE, null)
	a.Load(4, RAX, r1, maps.HeaderValueStride)
	a.Imul(W64, tmp2, RAX)
	a.ALU(ADD, W64, tmp, tmp2)
	a.Mov(W64, RAX, tmp)
	a.Jmp(done)

	a.Bind(null)
	a.MovImm32(RAX, 0)
	a.Jmp(done)

	a.Bind(slow)
	c.callSite(s)
	a.Bind(done)
}

// maxLoopCallbacks is the most functions a native bpf_loop compares its
// callback with; a program with more calls bpf_loop through Go.
const maxLoopCallbacks = 16

// loop emits bpf_loop(nr_loops, callback, ctx, flags) natively, and
// reports whether it did: the loop of the helper (helpers' loop), calling
// the callback as a bpf-to-bpf call, so an iteration costs a call rather
// than an exit to Go and a re-entry. Each call is a frame, as Go's
// Machine.Call makes it: the depth goes up by one and the callback's
// frame cost is spent, at the call site's slot. What the helper would
// fail or refuse (flags, more than MaxLoops, a depth at the limit, a
// callback that is none of the program's functions) goes to Go (site s),
// which does as before.
//
// The loop keeps i, nr_loops and ctx on the machine stack, below the
// caller's frame, since every eBPF register is the callback's or the
// caller's.
func (c *compiler) loop(s site) bool {
	var entries []int
	for pc := range c.fn {
		if pc != 0 {
			entries = append(entries, pc)
		}
	}
	if len(entries) == 0 || len(entries) > maxLoopCallbacks {
		return false
	}
	slices.Sort(entries)
	a := &c.a
	r1, r2, r3, r4 := regMap[1], regMap[2], regMap[3], regMap[4]
	slow, done := a.NewLabel(), a.NewLabel()
	a.Test(W64, r4, r4)
	a.Jcc(CondNE, slow)
	a.ALUImm(CMP, W32, r1, int32(helpers.MaxLoops))
	a.Jcc(CondA, slow)
	a.ALUMemImm(CMP, W64, ecReg, offDepth, maxFrames-1)
	a.Jcc(CondAE, slow)
	bodies := make([]Label, len(entries))
	for k, t := range entries {
		bodies[k] = a.NewLabel()
		a.MovImm64(tmp, c.opts.funcBase+uint64(t)*isa.InstructionSize)
		a.ALU(CMP, W64, r2, tmp)
		a.Jcc(CondE, bodies[k])
	}
	a.Jmp(slow)
	for k, t := range entries {
		// [rsp] i, [rsp+8] nr_loops, [rsp+16] ctx; 32 bytes keep the
		// stack 16-byte aligned.
		top, end := a.NewLabel(), a.NewLabel()
		a.Bind(bodies[k])
		a.ALUImm(SUB, W64, RSP, 32)
		a.Mov(W32, r1, r1) // nr_loops is a u32
		a.Store(8, RSP, 8, r1)
		a.Store(8, RSP, 16, r3)
		a.StoreImm(8, RSP, 0, 0)
		a.Bind(top)
		a.Load(8, RAX, RSP, 0)
		a.ALULoad(CMP, W64, RAX, RSP, 8)
		a.Jcc(CondAE, end) // r0 = i = nr_loops
		if c.opts.budgeted {
			c.spend(s.pc, c.opts.costs[t])
		}
		a.ALUMemImm(ADD, W64, ecReg, offDepth, 1)
		a.Mov(W64, r1, RAX)
		a.Load(8, r2, RSP, 16)
		a.Call(c.fn[t])
		a.ALUMemImm(SUB, W64, ecReg, offDepth, 1)
		a.ALUMemImm(ADD, W64, RSP, 0, 1)
		a.Test(W64, RAX, RAX)
		a.Jcc(CondE, top)
		a.Load(8, RAX, RSP, 0) // the callback ended the loop: r0 = i + 1
		a.Bind(end)
		a.ALUImm(ADD, W64, RSP, 32)
		a.Jmp(done)
	}
	a.Bind(slow)
	c.callSite(s)
	a.Bind(done)
	return true
}

// prandom emits bpf_get_prandom_u32 inline: a splitmix64 step of the
// run's helpers.State.Rand, which the Machine points ExecCtx.Rand at, as
// the helper computes it. A state of 0 (not seeded yet) goes to Go
// (site s), which seeds it from the clock.
func (c *compiler) prandom(s site) {
	a := &c.a
	slow, done := a.NewLabel(), a.NewLabel()
	a.Load(8, tmp, ecReg, offRand)
	a.Load(8, RAX, tmp, 0)
	a.Test(W64, RAX, RAX)
	a.Jcc(CondE, slow)
	a.MovImm64(tmp2, 0x9e3779b97f4a7c15)
	a.ALU(ADD, W64, RAX, tmp2)
	a.Store(8, tmp, 0, RAX)
	for _, k := range []struct {
		shift uint8
		mul   uint64
	}{{30, 0xbf58476d1ce4e5b9}, {27, 0x94d049bb133111eb}} {
		a.Mov(W64, tmp2, RAX)
		a.ShiftImm(SHR, W64, tmp2, k.shift)
		a.ALU(XOR, W64, RAX, tmp2)
		a.MovImm64(tmp2, k.mul)
		a.Imul(W64, RAX, tmp2)
	}
	a.Mov(W64, tmp2, RAX)
	a.ShiftImm(SHR, W64, tmp2, 31)
	a.ALU(XOR, W32, RAX, tmp2) // and the upper half cleared
	a.Jmp(done)
	a.Bind(slow)
	c.callSite(s)
	a.Bind(done)
}

// knownMap returns the map handle r1 holds at the helper call in slot
// pc, when an lddw in the same basic block loads it and nothing after it
// writes r1: the clang pattern "r1 = map ll; ...; call". Only a verified
// program's code asks (options.inline): there the verifier proved r1 a
// map at the call, so the value is a handle of one of its maps.
func (c *compiler) knownMap(pc int) (uint64, bool) {
	if !c.opts.inline || c.opts.blind {
		return 0, false
	}
	if c.targets == nil {
		c.targets = jumpTargets(c.prog)
	}
	for q := pc - 1; q >= 0; q-- {
		if c.targets[q+1] {
			return 0, false // another path reaches the call
		}
		ins := c.prog[q]
		if c.second(q) {
			continue // the second slot of an lddw
		}
		if ins.IsLoadImm64() && ins.Dst == 1 {
			if ins.Src != 0 || q+1 >= len(c.prog) {
				return 0, false
			}
			return isa.Imm64(ins, c.prog[q+1]), true
		}
		if writesR1(ins) {
			return 0, false
		}
	}
	return 0, false
}

// second reports whether slot q is the second slot of an lddw.
func (c *compiler) second(q int) bool {
	if c.halves == nil {
		c.halves = make([]bool, len(c.prog)+1)
		for i := 0; i < len(c.prog); i++ {
			if c.prog[i].IsLoadImm64() {
				c.halves[i+1] = true
				i++
			}
		}
	}
	return c.halves[q]
}

// writesR1 reports whether ins may change r1: an ALU or load into it, a
// call (which clobbers r1-r5) or an atomic fetch into it; stores and
// jumps do not.
func writesR1(ins isa.Instruction) bool {
	switch ins.Op.Class() {
	case isa.ClassALU, isa.ClassALU64, isa.ClassLDX, isa.ClassLD:
		return ins.Dst == 1 || ins.Op.Class() == isa.ClassLD && ins.Op.Mode() != isa.ModeIMM
	case isa.ClassJMP, isa.ClassJMP32:
		return ins.Op.JumpOp() == isa.Call
	case isa.ClassSTX:
		return ins.Op.Mode() == isa.ModeATOMIC && (ins.Src == 1 || ins.Dst == 1)
	}
	return false
}

// jumpTargets marks the slots jumps and calls go to, and those after a
// jump (where a block starts too).
func jumpTargets(prog []isa.Instruction) []bool {
	t := make([]bool, len(prog)+1)
	for pc, ins := range prog {
		if c := ins.Op.Class(); c != isa.ClassJMP && c != isa.ClassJMP32 {
			continue
		}
		if to, ok := ins.JumpTarget(pc); ok && to >= 0 && to <= len(prog) {
			t[to] = true
		}
	}
	return t
}

// knownType returns the type of the map whose handle an lddw loads (h),
// if h is the address of a map's header.
func knownType(h uint64) (maps.Type, bool) {
	if h == 0 || h%8 != 0 || mem.Load32(h) != maps.HeaderMagic {
		return 0, false
	}
	return maps.Type(mem.Load32(h + maps.HeaderType)), true
}

// isConst emits the check that r is a map handle one of the program's
// lddws loads (c.consts): a jump to named if so, to other if not.
func (c *compiler) isConst(r Reg, named, other Label) {
	a := &c.a
	for _, v := range c.consts {
		a.MovImm64(tmp, v)
		a.ALU(CMP, W64, r, tmp)
		a.Jcc(CondE, named)
	}
	a.Jmp(other)
}

// knownLookup emits bpf_map_lookup_elem on the map whose handle is h, as
// Linux's verifier inlines lookups of a map it knows: an array's bounds
// check and address with its size and address as constants, a hash's or
// a trie's routine called without asking the map its type. It reports
// false, emitting nothing, for a map whose header it does not recognise
// or whose lookups have no native form.
func (c *compiler) knownLookup(s site, h uint64) bool {
	typ, ok := knownType(h)
	if !ok {
		return false
	}
	a := &c.a
	r2 := regMap[2]
	done, slow, null := a.NewLabel(), a.NewLabel(), a.NewLabel()
	switch typ {
	case maps.Array, maps.PerCPUArray:
		max, elem := mem.Load32(h+maps.HeaderMaxEntries), mem.Load32(h+maps.HeaderElemSize)
		data := mem.Load64(h + maps.HeaderData)
		if max > math.MaxInt32 || elem > math.MaxInt32 {
			return false
		}
		a.Load(4, tmp, r2, 0)
		a.ALUImm(CMP, W32, tmp, int32(max))
		a.Jcc(CondAE, null)
		if elem&(elem-1) == 0 && elem != 0 {
			a.ShiftImm(SHL, W64, tmp, uint8(bits.TrailingZeros64(elem)))
		} else {
			a.ImulImm(W64, tmp, tmp, int32(elem))
		}
		if typ == maps.PerCPUArray {
			cpus, stride := mem.Load32(h+maps.HeaderCPUs), mem.Load32(h+maps.HeaderValueStride)
			if stride > math.MaxInt32 {
				return false
			}
			a.Load(8, RAX, ecReg, offWorker)
			a.ALUImm(CMP, W64, RAX, int32(min(cpus, math.MaxInt32)))
			a.Jcc(CondAE, null)
			a.ImulImm(W64, RAX, RAX, int32(stride))
			a.ALU(ADD, W64, tmp, RAX)
		}
		a.MovImm64(RAX, data)
		a.ALU(ADD, W64, RAX, tmp)
		a.Jmp(done)
		a.Bind(null)
		a.MovImm32(RAX, 0)
		a.Bind(done)
		return true
	case maps.Hash, maps.PerCPUHash, maps.LRUHash, maps.LRUPerCPUHash:
		c.callRoutine(&c.hashLookup)
	case maps.LPMTrie:
		c.callRoutine(&c.lpmLookup)
	default:
		return false
	}
	a.Test(W64, tmp, tmp)
	a.Jcc(CondE, done)
	a.Bind(slow)
	c.callSite(s)
	a.Bind(done)
	return true
}

// callRoutine calls the shared routine whose label is *l (hashLookup,
// lpmLookup), which compile emits after the program once a call uses it.
func (c *compiler) callRoutine(l *Label) {
	if *l == 0 {
		*l = c.a.NewLabel()
	}
	c.a.Call(*l)
}

// maxTrieConsts bounds the lddw values a trie lookup compares its map
// with; a program with more looks tries up through Go.
const maxTrieConsts = 32

// emitLPMLookup emits the routine inline trie lookups call: with r1 (rdi)
// an LPM trie's handle and r2 (rsi) the key, it returns rax = the address
// of the value of the longest matching prefix or 0, and r11 = 0; or r11 = 1
// when the lookup must go to Go: a writer was changing the trie (the
// seqlock's counter odd, or moved during the walk) or a node failed the
// checks maps/lpm.go's walk makes (an index past the nodes, a prefix length
// past the key's bits or not longer than its parent's), which Go retries
// and, under the lock, tells from corruption. It follows lpm.go's lookup:
// from the root, the bits each node's prefix shares with the key, compared
// 8, 4 and 1 bytes at a time; a node whose prefix the key does not fully
// share ends the walk; the last real (not intermediate) node passed is the
// answer. It keeps every eBPF register but r0.
func (c *compiler) emitLPMLookup() {
	a := &c.a
	const (
		handle, key   = RDI, RSI
		data, n, best = RBX, R13, R14
		np            = R15 // the node's prefix length, the parent's once it moves on
		plen, maxP    = R8, RCX
		limit         = RDX
		prefix, x     = R10, R9
		node          = RAX
	)
	saved := []Reg{fuelReg, RDX, RCX, R8, RBX, R13, R14, R15}
	a.Bind(c.lpmLookup)
	for _, r := range saved {
		a.Push(r)
	}
	a.Push(RAX) // [rsp]: the seqlock's counter at the start
	ret, slow, null := a.NewLabel(), a.NewLabel(), a.NewLabel()

	// maxP = (key_size-4)*8; a prefix length past it matches nothing.
	a.Load(4, maxP, handle, maps.HeaderKeySize)
	a.ALUImm(SUB, W64, maxP, 4)
	a.ShiftImm(SHL, W64, maxP, 3)
	a.Load(4, plen, key, 0)
	a.ALU(CMP, W64, plen, maxP)
	a.Jcc(CondA, null)
	a.Load(4, x, handle, maps.HeaderLPMSeq)
	a.TestImm(W32, x, 1)
	a.Jcc(CondNE, slow)
	a.Store(8, RSP, 0, x)
	a.Load(8, data, handle, maps.HeaderData)
	a.Load(4, n, handle, maps.HeaderLPMRoot)
	a.MovImm32(best, 0)
	a.MovImm64(np, ^uint64(0)) // the root's parent: -1

	walk, done, exact := a.NewLabel(), a.NewLabel(), a.NewLabel()
	a.Bind(walk)
	a.Test(W32, n, n)
	a.Jcc(CondE, done)
	a.ALULoad(CMP, W32, n, handle, maps.HeaderLPMNodes)
	a.Jcc(CondAE, slow)
	a.Load(4, tmp, handle, maps.HeaderElemSize)
	a.Mov(W32, node, n)
	a.Imul(W64, node, tmp)
	a.ALU(ADD, W64, node, data)
	a.Load(4, tmp, node, 8) // prefixlen
	a.ALU(CMP, W64, tmp, maxP)
	a.Jcc(CondA, slow)
	a.ALU(CMP, W64, tmp, np)
	a.Jcc(CondLE, slow) // not longer than the parent's: a loop, or a writer
	a.Mov(W64, np, tmp)
	a.Mov(W64, limit, np)
	a.ALU(CMP, W64, plen, limit)
	a.Cmov(CondB, W64, limit, plen)

	// prefix = the leading bits the node's data and the key's agree on,
	// at most limit (lpm.go's match).
	a.MovImm32(prefix, 0)
	words, halves, bytes, matched, clamp := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	diff := func(size int) { // x != 0 at byte offset prefix/8: add its leading zeros
		a.Bsr(W64, tmp, x)
		a.ALUImm(SUB, W64, tmp, int32(8*size-1))
		a.ALU(SUB, W64, prefix, tmp) // prefix += 8*size-1 - bsr
		a.Jmp(clamp)
	}
	chunk := func(size int, self, next Label) {
		differs := a.NewLabel()
		a.Bind(self)
		a.Mov(W64, tmp, maxP)
		a.ALU(SUB, W64, tmp, prefix)
		a.ALUImm(CMP, W64, tmp, int32(8*size))
		a.Jcc(CondB, next)
		a.Mov(W64, tmp, prefix)
		a.ShiftImm(SHR, W64, tmp, 3)
		a.LeaIndex(x, node, tmp, 1, 16)
		a.Load(size, x, x, 0)
		a.LeaIndex(tmp, key, tmp, 1, 4)
		if size == 1 {
			a.Load(1, tmp, tmp, 0)
			a.ALU(XOR, W32, x, tmp)
		} else {
			a.ALULoad(XOR, width(size == 8), x, tmp, 0)
			a.Bswap(width(size == 8), x)
		}
		a.Test(W64, x, x)
		a.Jcc(CondNE, differs)
		a.ALUImm(ADD, W64, prefix, int32(8*size))
		a.ALU(CMP, W64, prefix, limit)
		a.Jcc(CondAE, clamp)
		a.Jmp(self)
		a.Bind(differs)
		diff(size)
	}
	chunk(8, words, halves)
	chunk(4, halves, bytes)
	chunk(1, bytes, matched)
	a.Bind(matched) // every byte agrees
	a.Bind(clamp)
	a.ALU(CMP, W64, prefix, limit)
	a.Cmov(CondA, W64, prefix, limit)

	a.ALU(CMP, W64, prefix, maxP)
	a.Jcc(CondE, exact)
	a.ALU(CMP, W64, prefix, np)
	a.Jcc(CondB, done)       // the key leaves the node's prefix
	a.Load(4, tmp, node, 12) // flags
	a.TestImm(W32, tmp, 1)   // an intermediate node holds no value
	skip := a.NewLabel()
	a.Jcc(CondNE, skip)
	a.Mov(W32, best, n)
	a.Bind(skip)
	// The child on the side of the key's bit after the node's prefix.
	a.Mov(W64, tmp, np)
	a.ShiftImm(SHR, W64, tmp, 3)
	a.LeaIndex(tmp, key, tmp, 1, 4)
	a.Load(1, x, tmp, 0)
	a.Push(RCX)
	a.Mov(W32, RCX, np)
	a.ALUImm(AND, W32, RCX, 7)
	a.Shift(SHL, W32, x)
	a.Pop(RCX)
	a.TestImm(W32, x, 0x80)
	right := a.NewLabel()
	a.Jcc(CondNE, right)
	a.Load(4, n, node, 0)
	a.Jmp(walk)
	a.Bind(right)
	a.Load(4, n, node, 4)
	a.Jmp(walk)

	a.Bind(exact)
	a.Mov(W32, best, n)
	a.Bind(done)
	// The walk saw one version of the trie only if no writer began.
	a.Load(4, tmp, handle, maps.HeaderLPMSeq)
	a.ALULoad(CMP, W32, tmp, RSP, 0)
	a.Jcc(CondNE, slow)
	a.Test(W32, best, best)
	a.Jcc(CondE, null)
	// The value: data + best*node_size + 16 + round8(key_size-4).
	a.Load(4, tmp, handle, maps.HeaderElemSize)
	a.Mov(W32, RAX, best)
	a.Imul(W64, RAX, tmp)
	a.ALU(ADD, W64, RAX, data)
	a.Load(4, tmp, handle, maps.HeaderKeySize)
	a.ALUImm(ADD, W64, tmp, 3)
	a.ALUImm(AND, W64, tmp, -8)
	a.ALU(ADD, W64, RAX, tmp)
	a.ALUImm(ADD, W64, RAX, 16)
	a.MovImm32(tmp, 0)
	a.Jmp(ret)
	a.Bind(null)
	a.MovImm32(RAX, 0)
	a.MovImm32(tmp, 0)
	a.Jmp(ret)
	a.Bind(slow)
	a.MovImm32(tmp, 1)
	a.Bind(ret)
	a.Pop(tmp2) // the counter's slot
	for i := len(saved) - 1; i >= 0; i-- {
		a.Pop(saved[i])
	}
	a.Ret()
}

// emitHashLookup emits the routine inline hash lookups call: with r1
// (rdi) the handle of a hash, per-CPU hash or LRU hash (which it stamps
// as lruState.touch does, sending an element to Go when it must be
// queued) and r2 (rsi) the key, it returns
// rax = the value's address (this worker's copy) or 0, and r11 = 0; or
// r11 = 1 when the lookup must go to Go (a chain it met being changed,
// HashRetries times). It follows maps/hash.go's find: jhash of the key
// with the map's seed (jhash2 is the same function for keys of whole
// words), the bucket's chain of elements, each compared by hash and
// key, the chain's end checked against the bucket's nulls. It keeps
// every eBPF register but r0.
func (c *compiler) emitHashLookup() {
	a := &c.a
	const (
		handle, key = RDI, RSI
		ra, rb, rc  = R9, R10, R11 // jhash's a, b, c
		cur, left   = R8, RCX      // key cursor, bytes left
		h           = RDX          // the hash
	)
	saved := []Reg{fuelReg, RDX, RCX, R8, RBX, R13, R14, R15}
	a.Bind(c.hashLookup)
	for _, r := range saved {
		a.Push(r)
	}
	// a = b = c = 0xdeadbeef + length + seed
	a.Load(4, left, handle, maps.HeaderKeySize)
	a.Lea(ra, left, 0)
	a.ALUImm(ADD, W32, ra, int32(-0x21524111)) // 0xdeadbeef
	a.ALULoad(ADD, W32, ra, handle, maps.HeaderSeed)
	a.Mov(W32, rb, ra)
	a.Mov(W32, rc, ra)
	a.Mov(W64, cur, key)
	rol := func(dst, src Reg, n uint8, op ALUOp) { // dst op= rol32(src, n)
		a.Mov(W32, RAX, src)
		a.ShiftImm(ROL, W32, RAX, n)
		a.ALU(op, W32, dst, RAX)
	}
	mix := func() {
		a.ALU(SUB, W32, ra, rc)
		rol(ra, rc, 4, XOR)
		a.ALU(ADD, W32, rc, rb)
		a.ALU(SUB, W32, rb, ra)
		rol(rb, ra, 6, XOR)
		a.ALU(ADD, W32, ra, rc)
		a.ALU(SUB, W32, rc, rb)
		rol(rc, rb, 8, XOR)
		a.ALU(ADD, W32, rb, ra)
		a.ALU(SUB, W32, ra, rc)
		rol(ra, rc, 16, XOR)
		a.ALU(ADD, W32, rc, rb)
		a.ALU(SUB, W32, rb, ra)
		rol(rb, ra, 19, XOR)
		a.ALU(ADD, W32, ra, rc)
		a.ALU(SUB, W32, rc, rb)
		rol(rc, rb, 4, XOR)
		a.ALU(ADD, W32, rb, ra)
	}
	blocks, tail, final, hashed := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	a.Bind(blocks)
	a.ALUImm(CMP, W64, left, 12)
	a.Jcc(CondBE, tail)
	a.ALULoad(ADD, W32, ra, cur, 0)
	a.ALULoad(ADD, W32, rb, cur, 4)
	a.ALULoad(ADD, W32, rc, cur, 8)
	mix()
	a.ALUImm(ADD, W64, cur, 12)
	a.ALUImm(SUB, W64, left, 12)
	a.Jmp(blocks)
	// The last 1 to 12 bytes, little-endian into a, b, c; none: c is
	// the hash.
	a.Bind(tail)
	a.Test(W64, left, left)
	a.Jcc(CondE, hashed)
	for i := range 12 {
		a.ALUImm(CMP, W64, left, int32(i))
		a.Jcc(CondBE, final)
		a.Load(1, RAX, cur, int32(i))
		if sh := uint8(8 * (i % 4)); sh != 0 {
			a.ShiftImm(SHL, W32, RAX, sh)
		}
		a.ALU(ADD, W32, []Reg{ra, rb, rc}[i/4], RAX)
	}
	a.Bind(final)
	rol2 := func(dst, src Reg, n uint8) { // dst ^= src; dst -= rol32(src, n)
		a.ALU(XOR, W32, dst, src)
		rol(dst, src, n, SUB)
	}
	rol2(rc, rb, 14)
	rol2(ra, rc, 11)
	rol2(rb, ra, 25)
	rol2(rc, rb, 16)
	rol2(ra, rc, 4)
	rol2(rb, ra, 14)
	rol2(rc, rb, 24)
	a.Bind(hashed)
	a.Mov(W32, h, rc)

	// The chain: rbx = the bucket's address, r14 = tries left; ecx = the
	// element index, r8 = steps, rax = the element; r10 = the bucket's
	// nulls where the chain ends (scratch while keys are compared).
	const (
		bucket, nulls, tries = RBX, R10, R14
		n, steps, elem       = RCX, R8, RAX
		kcur, ecur, kleft    = R13, R11, R15
		tmpv                 = R9
	)
	retry, walk, next, end, found, absent, slow, out := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	a.Mov(W32, nulls, h)
	a.ALULoad(AND, W32, nulls, handle, maps.HeaderMask)
	a.Load(8, bucket, handle, maps.HeaderData)
	a.LeaIndex(bucket, bucket, nulls, 8, 0)
	a.MovImm32(tries, maps.HashRetries)
	a.Bind(retry)
	a.Load(4, n, bucket, 0)
	a.MovImm32(steps, 0)
	a.Bind(walk)
	a.TestImm(W32, n, int32(-0x80000000))
	a.Jcc(CondNE, end)
	a.ALULoad(CMP, W32, n, handle, maps.HeaderHashTotal)
	a.Jcc(CondAE, end)
	a.ALULoad(CMP, W32, steps, handle, maps.HeaderHashTotal)
	a.Jcc(CondAE, end)
	a.Load(4, elem, handle, maps.HeaderElemSize)
	a.Imul(W64, elem, n)
	a.ALULoad(ADD, W64, elem, handle, maps.HeaderAux)
	a.ALULoad(CMP, W32, h, elem, 4)
	a.Jcc(CondNE, next)
	// Compare the key: 8 bytes at a time and the last 8 (overlapping)
	// for keys of 8 bytes or more; two overlapping 4- or 2-byte words,
	// or one byte, for shorter ones. Nothing outside either key is read.
	a.Mov(W64, kcur, key)
	a.Lea(ecur, elem, 8)
	a.Load(4, kleft, handle, maps.HeaderKeySize)
	words, small, tiny, one, equal := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	both := func(size int) { // the size bytes at kcur and ecur differ: next
		if size == 8 {
			a.Load(8, tmpv, kcur, 0)
			a.ALULoad(CMP, W64, tmpv, ecur, 0)
		} else {
			a.Load(size, tmpv, kcur, 0)
			a.Load(size, nulls, ecur, 0) // nulls is recomputed at the end
			a.ALU(CMP, W64, tmpv, nulls)
		}
		a.Jcc(CondNE, next)
	}
	toEnd := func(size int32) { // move both cursors to the last size bytes
		a.ALU(ADD, W64, kcur, kleft)
		a.ALUImm(SUB, W64, kcur, size)
		a.ALU(ADD, W64, ecur, kleft)
		a.ALUImm(SUB, W64, ecur, size)
	}
	a.ALUImm(CMP, W64, kleft, 8)
	a.Jcc(CondB, small)
	a.Bind(words)
	both(8)
	a.ALUImm(ADD, W64, kcur, 8)
	a.ALUImm(ADD, W64, ecur, 8)
	a.ALUImm(SUB, W64, kleft, 8)
	a.ALUImm(CMP, W64, kleft, 8)
	a.Jcc(CondAE, words)
	a.Test(W64, kleft, kleft)
	a.Jcc(CondE, equal)
	toEnd(8)
	both(8)
	a.Jmp(equal)
	a.Bind(small)
	a.ALUImm(CMP, W64, kleft, 4)
	a.Jcc(CondB, tiny)
	both(4)
	toEnd(4)
	both(4)
	a.Jmp(equal)
	a.Bind(tiny)
	a.ALUImm(CMP, W64, kleft, 2)
	a.Jcc(CondB, one)
	both(2)
	toEnd(2)
	both(2)
	a.Jmp(equal)
	a.Bind(one)
	both(1)
	a.Bind(equal)
	a.Jmp(found)
	a.Bind(next)
	a.Load(4, n, elem, 0)
	a.ALUImm(ADD, W32, steps, 1)
	a.Jmp(walk)
	a.Bind(end)
	a.Mov(W32, nulls, h)
	a.ALULoad(AND, W32, nulls, handle, maps.HeaderMask)
	a.ALUImm(OR, W32, nulls, int32(-0x80000000)) // maps.HashNulls
	a.ALU(CMP, W32, n, nulls)
	a.Jcc(CondE, absent)
	a.ALUImm(SUB, W32, tries, 1)
	a.Jcc(CondNE, retry)
	a.Jmp(slow)

	a.Bind(found)
	// An LRU hash's lookup makes the element the most recently used, as
	// lruState.touch does: a new tick of the map's clock stored at the
	// element's end, then, for an element not marked dirty (not queued for
	// the next drain), Go, which queues it.
	lru, value := a.NewLabel(), a.NewLabel()
	a.Load(4, tmpv, handle, maps.HeaderType)
	a.ALUImm(CMP, W32, tmpv, int32(maps.LRUHash))
	a.Jcc(CondE, lru)
	a.ALUImm(CMP, W32, tmpv, int32(maps.LRUPerCPUHash))
	a.Jcc(CondNE, value)
	a.Bind(lru)
	a.MovImm32(tmpv, 1)
	a.LockXadd(8, handle, maps.HeaderHashTick, tmpv)
	a.ALUImm(ADD, W64, tmpv, 1)
	a.Load(4, kleft, handle, maps.HeaderElemSize)
	a.ALU(ADD, W64, kleft, elem) // the element's end
	a.Store(8, kleft, maps.LRUHotTick-maps.LRUHotSize, tmpv)
	a.Load(4, tmpv, kleft, maps.LRUHotDirty-maps.LRUHotSize)
	a.Test(W32, tmpv, tmpv)
	a.Jcc(CondE, slow)
	a.Bind(value)
	// elem + 8 + roundUp8(key_size), plus this worker's copy.
	a.Load(4, tmpv, handle, maps.HeaderKeySize)
	a.ALUImm(ADD, W64, tmpv, 7)
	a.ALUImm(AND, W64, tmpv, -8)
	a.Lea(elem, elem, 8)
	a.ALU(ADD, W64, elem, tmpv)
	a.Load(4, tmpv, handle, maps.HeaderType)
	percpu := a.NewLabel()
	a.ALUImm(CMP, W32, tmpv, int32(maps.PerCPUHash))
	a.Jcc(CondE, percpu)
	a.ALUImm(CMP, W32, tmpv, int32(maps.LRUPerCPUHash))
	a.Jcc(CondNE, out)
	a.Bind(percpu)
	a.Load(8, tmpv, ecReg, offWorker)
	a.ALULoad(CMP, W32, tmpv, handle, maps.HeaderCPUs)
	a.Jcc(CondAE, absent)
	a.Load(4, kleft, handle, maps.HeaderValueStride)
	a.Imul(W64, tmpv, kleft)
	a.ALU(ADD, W64, elem, tmpv)
	a.Jmp(out)

	a.Bind(absent)
	a.MovImm32(RAX, 0)
	a.Bind(out)
	a.MovImm32(R11, 0)
	restore := a.NewLabel()
	a.Bind(restore)
	for i := len(saved) - 1; i >= 0; i-- {
		a.Pop(saved[i])
	}
	a.Ret()
	a.Bind(slow)
	a.MovImm32(R11, 1)
	a.Jmp(restore)
}

// tailCheck follows a call site that may take a tail call. Go set Tail
// to the target's entry if it is taken: leave this frame as if
// returning, with r1 the context given (rdi, as the exit to Go restored
// it), and enter the target, whose exit returns to this frame's caller.
func (c *compiler) tailCheck() {
	a := &c.a
	next := a.NewLabel()
	a.Load(8, tmp, ecReg, offTail)
	a.Test(W64, tmp, tmp)
	a.Jcc(CondE, next)
	c.epilogue()
	a.JmpReg(tmp)
	a.Bind(next)
}
