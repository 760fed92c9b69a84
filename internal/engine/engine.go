package engine

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/maps"
)

// Engine turns prepared programs into runnable ones: the interpreter in
// checked mode, the interpreter in fast mode, and (later) the JIT. An
// Engine is stateless and safe for concurrent use.
//
//	Engine.Load(insns, Options) -> Program   once per program
//	Engine.NewMachine()         -> Machine   once per goroutine (pooled)
//	Machine.Run(Program, *Args) -> r0        once per run
type Engine interface {
	// Name says which engine this is ("interp", "interp-fast"), for
	// errors, benchmarks and test names.
	Name() string
	// Checked reports whether the engine confines every memory access
	// of a run to the memory the run owns (Args.Regions, its stack,
	// Options.Memory), so that it may run programs no verifier accepted.
	Checked() bool
	// Load prepares insns to run. Unless Options.Verified is set, it
	// validates them (isa.ValidateProgram) first; an engine that is not
	// Checked refuses unverified programs (ErrUnverifiedFast) unless
	// Options.UnsafeFastUnverified is set. The Program keeps insns: do
	// not modify them afterwards.
	Load(insns []isa.Instruction, opts Options) (Program, error)
	// NewMemory prepares the map memory a program may reach besides its
	// stack and its run's regions, for Options.Memory. A region with a
	// Stride allows only the Len bytes at Offset of each slot, as
	// maps.Region describes; overlapping regions are an error.
	NewMemory(regions []maps.Region) (Memory, error)
	// NewMachine returns an execution context: registers, call frames
	// and stack. One Machine runs one program at a time.
	NewMachine() Machine
}

// Program is a loaded program. It is immutable and safe for concurrent use
// by many Machines of the Engine that loaded it. A Program is also what
// bpf_tail_call continues in (helpers.State.TailCall): an engine accepts
// tail-call targets it loaded itself, and ends the run with a Fault
// wrapping ErrHelper for any other.
type Program interface {
	// Instructions returns the program's slots. The slice must not be
	// modified.
	Instructions() []isa.Instruction
	// Engine returns the engine that loaded the program.
	Engine() Engine
}

// Machine is an execution context, standing in for a CPU: it runs one
// program at a time; give each goroutine its own.
type Machine interface {
	// Run runs p, which the Machine's engine loaded, with the inputs a
	// and returns r0. A run that stops at an instruction returns a
	// *Fault.
	Run(p Program, a *Args) (uint64, error)
}

// Rerunner is a Machine that runs the program and arguments of its last
// Run again for less than Run costs, skipping what Run checks and
// converts that cannot have changed: the repeats of BPF_PROG_TEST_RUN.
// The caller must not have changed the Args (their fields or what their
// pointers reach, but for the memory the run may change) since that Run,
// nor run the Machine otherwise.
//
// Rerun makes up to n (at least 1) runs in a row, each on what the one
// before left, and returns the last one's r0 and how many it made. It
// makes fewer than n only after a run that needed the engine's runtime
// (a helper served in Go, a refill of fuel), so that the caller does what
// it does between runs (helpers.State.Release) before going on; runs
// that need nothing of it need nothing between them either. An error
// ends the run it happened in, which counts.
type Rerunner interface {
	Rerun(n uint32) (r0 uint64, ran uint32, err error)
}

// PacketBatcher is a Machine that runs a program over a batch of
// packets that take turns in one frame: the runs of an XDP
// Program.RunBatch, each with its own packet and nothing else changed
// between them, for less than a Run per packet costs.
//
// RunPackets runs p once per item of b, in order, each run with a's
// arguments (as Run would: r1-r5 from a.Regs, the whole budget) after
// copying the item's packet to b.Frame, and writes each run's return
// value into its item. It returns how many runs completed; an error ends
// the run b's item done made, which does not count.
//
// A run that needs the engine's runtime (a helper served in Go, a refill
// of fuel, a fault) ends the batch: RunPackets calls b.Sync with its
// item's index before the runtime does anything for it, so that the
// caller makes its own state (what Go helpers read) that of the item's
// packet, and returns after that run. A run that needs nothing of Go
// changes nothing the next one starts from but the packet's bytes, which
// the next copy replaces.
//
// Batches reports whether RunPackets runs p's packets for less than a
// Run each: an engine that must stop after every run of p (one that
// serves each of p's helper calls in Go, say) says false, and the caller
// runs p's packets otherwise.
type PacketBatcher interface {
	RunPackets(p Program, a *Args, b *PacketBatch) (done int, err error)
	Batches(p Program) bool
}

// PacketBatch is the batch of a PacketBatcher's run. It gives the
// caller's memory by address: the caller keeps it alive, in memory that
// does not move (the heap, or off-heap memory), until RunPackets returns.
type PacketBatch struct {
	// Items is the address of the first item, and item i is at Items +
	// i*Stride, for i < N. An item starts with a []byte (the packet's
	// address at +0, its length at +8) and has at RetOff the uint32 that
	// gets the low 32 bits of its run's r0.
	Items, Stride, RetOff uintptr
	N                     int
	// The batch stops before an item whose packet is shorter than Min or
	// longer than Room, or whose 8-byte words at the non-zero offsets
	// Guards are not all zero (pointers to what the item asks for besides
	// its return value): RunPackets returns its index, without an error,
	// and the caller runs it otherwise.
	Min    int
	Guards [4]uintptr
	// Frame is where each packet is copied to, and Room how many bytes
	// it has. Used is how many bytes from Frame the packet before the
	// batch left: bytes past the end of a shorter packet are zeroed
	// before its run, so that every run finds the frame as a fresh one
	// holds its packet. RunPackets sets Used to the last packet's length.
	Frame      uintptr
	Room, Used int
	// Ends are the addresses of 8-byte words that get Frame plus the
	// packet's length before each run: the packet's end in the context
	// the program reads (xdp_md.data_end) and in the bounds of the
	// packet's region. A zero address is skipped.
	Ends [2]uintptr
	// Sync, if not nil, is called as the runtime is about to serve a run
	// (see PacketBatcher), with the index of its item.
	Sync func(i int)
}

// Memory is map memory prepared by Engine.NewMemory. It is immutable and
// safe for concurrent use; build a new one when the set changes.
type Memory interface {
	// Len returns the number of regions.
	Len() int
}

// Options configure Engine.Load. They describe the program, not the
// engine: the same Options load it on every engine.
type Options struct {
	// Helpers resolves "call N". A program calling an id missing here
	// fails to load.
	Helpers helpers.Table
	// Trace, if set, is called before every instruction executes, with
	// its slot index and the registers r0-r10. It is for debugging and
	// for counting instructions; a program loaded without it pays
	// nothing. Engines that cannot trace refuse it (ErrNotSupported).
	Trace func(pc int, regs *[11]uint64)
	// Budgeted makes runs bounded by Args.Budget and stoppable by
	// Args.Stop; without it both must be unset.
	Budgeted bool
	// Memory returns the map memory runs of the program may reach
	// (Engine.NewMemory of the same engine), called when a run starts and
	// when a tail call enters the program. nil means none.
	Memory func() Memory
	// Verified says waggle's verifier accepted the program, and that it
	// was changed since only as the verifier's findings direct. Engines
	// that are not Checked run only verified programs. Never set it for a
	// program the verifier did not accept.
	Verified bool
	// UnsafeFastUnverified lets an engine that is not Checked run a
	// program no verifier accepted. It is for tests and the conformance
	// suite, whose programs are known to be safe.
	UnsafeFastUnverified bool
	// BlindConstants has an engine that generates machine code (the JIT)
	// keep the program's immediates out of it, as Linux's
	// bpf_jit_harden does: each is stored xor a random key and restored
	// in a register at run time, so that a program cannot plant chosen
	// bytes in executable memory (JIT spraying). Interpreters ignore it.
	BlindConstants bool
	// StrictStack makes checked runs fault (ErrUninitStack) on a read of
	// stack bytes the frame has not written in this run, the
	// unprivileged rule of Linux's verifier. Engines that are not
	// Checked ignore it.
	StrictStack bool
	// ContextVariants are loads and stores that run in another form when
	// their base register holds the run's context, by slot: the
	// context-access rewrite of a program no verifier has checked
	// (progtype.Program's Variants).
	ContextVariants map[int]isa.Instruction
	// ContextFaults are accesses that end the run with a fault
	// (ErrContext) when their base register holds the run's context
	// (progtype.Program's Faults).
	ContextFaults map[int]error
}

// Region is memory a run owns besides its stack: input memory, a context,
// a packet. Checked engines allow accesses only inside regions (reads
// anywhere in one, writes only if Writable), and an access must lie inside
// one region. Data must stay alive and must not be resized while the run
// uses it.
type Region struct {
	Data     []byte
	Writable bool
	// Bounds, when not nil, narrows the region to the bytes of Data from
	// the address Bounds[0] up to (not including) the address Bounds[1],
	// as they are at each access: memory whose extent helpers change
	// during a run, such as a packet from data to data_end, which
	// bpf_xdp_adjust_head and bpf_skb_change_tail move. Whoever moves the
	// memory updates Bounds; the engine reads them and needs no refresh.
	// Bounds must stay alive while the run uses the region.
	Bounds *[2]uint64
	// Name says what the region is in fault messages ("the packet (data
	// to data_end)"); "" for none.
	Name string
}

// Args are the inputs of one run.
type Args struct {
	Regs    [5]uint64 // r1-r5 at entry
	Regions []Region  // memory the run owns besides its stack
	// Packet is the socket buffer data legacy LD_ABS and LD_IND read from
	// (socket filters); a load outside it ends the program with r0 = 0, as
	// in Linux.
	Packet []byte
	// Budget bounds the instructions a run executes, 0 for no bound. It
	// is counted where a program can run code again, not per instruction:
	// a backward jump from slot p to slot t (a loop iteration) spends
	// p-t+1 each time it is taken (a may_goto each time it executes),
	// and each frame a bpf-to-bpf call, a callback invocation (each call
	// bpf_loop or bpf_for_each_map_elem makes) or a tail call starts
	// spends the size of the function it enters (the rest of the program
	// for malformed code). The sum bounds the instructions executed from
	// above, so a run never executes more than Budget plus one function's
	// length: between two taken backward jumps a frame runs forward, and
	// the distances telescope to at most the function's length.
	// Exceeding it ends the run with ErrBudget. It needs a program loaded
	// with Options.Budgeted.
	Budget uint64
	// Stop, when set to true by another goroutine, ends the run at its
	// next backward jump, call or callback with ErrStopped (what a
	// context's cancellation or deadline does, through context.AfterFunc).
	// It needs a program loaded with Options.Budgeted.
	Stop *atomic.Bool
	// State is what the run shares with helpers (CPU, maps, the hook's
	// state, tail calls); nil gives helpers an empty State.
	State *helpers.State
}

// Errors a run can end with. Faults are *Fault values wrapping one of them.
var (
	ErrMemory    = errors.New("memory access outside the run's regions")
	ErrBudget    = errors.New("instruction budget exhausted")
	ErrStopped   = errors.New("run stopped")
	ErrCallDepth = errors.New("call stack too deep")
	ErrHelper    = errors.New("helper failed")
	// ErrUnreleased ends a run that exits holding a bpf_spin_lock or ring
	// buffer records it has not submitted or discarded, and a helper call
	// made while holding a lock: Linux's verifier refuses such programs.
	ErrUnreleased = errors.New("resource not released")
	// ErrUninitStack ends a run with Options.StrictStack that reads stack
	// bytes its frame has not written.
	ErrUninitStack = errors.New("read of uninitialised stack")
	// ErrContext ends a run that accesses its context in a way the
	// program type's rules refuse (Options.ContextFaults).
	ErrContext = errors.New("invalid context access")
)

// ErrNotSupported is what an engine answers for an option or program it
// cannot run yet; the error wrapping it says which.
var ErrNotSupported = errors.New("not supported by this engine")

// Fault describes a run that stopped at an instruction: a memory access a
// checked engine refused, an exhausted budget, a call too deep or a failing
// helper. PC is the slot index.
type Fault struct {
	PC    int
	Insn  isa.Instruction
	Addr  uint64 // the address accessed, for ErrMemory and ErrUninitStack
	Size  int    // bytes accessed, for ErrMemory and ErrUninitStack
	Write bool
	Err   error // ErrMemory, ErrUninitStack, ErrBudget, ErrStopped, ErrCallDepth, ErrHelper, ErrUnreleased or ErrContext
	Cause error // what the helper returned, for ErrHelper
	// Program is the program PC is a slot of: the one the run started
	// with, or one a tail call entered.
	Program Program
	// Detail explains the fault (which regions the access missed, what
	// the helper said); "" for none.
	Detail string
}

func (f *Fault) Error() string {
	s := fmt.Sprintf("instruction %d (%s): %v", f.PC, f.Insn, f.Err)
	if f.Detail != "" {
		s += ": " + f.Detail
	}
	return s
}

// Unwrap returns the fault's class (Err) and, for a failing helper, what
// it returned (Cause).
func (f *Fault) Unwrap() []error {
	if f.Cause != nil {
		return []error{f.Err, f.Cause}
	}
	return []error{f.Err}
}
