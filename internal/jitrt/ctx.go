package jitrt

// Exit reasons, in ExecCtx.Exit.
const (
	// ExitOK: the run's function returned; R0 holds its result.
	ExitOK = 1 + iota
	// ExitCall: the code wants Go to run something for it (a helper, a
	// legacy packet load): Site says which call site, Prog which program's
	// code, Args holds r1-r5. Go sets Ret and resumes at ResumePC on
	// ResumeSP.
	ExitCall
	// ExitFault: the run stopped at slot PC for the reason in Fault.
	ExitFault
	// ExitYield: the fuel ran out at slot PC, which needs Site fuel: Go
	// refills it from the run's budget (or ends the run), polls the stop
	// flag and resumes at ResumePC on ResumeSP, where the code spends
	// the fuel again.
	ExitYield
)

// Fault reasons, in ExecCtx.Fault.
const (
	FaultBudget    = 1 + iota // the instruction budget is spent
	FaultStopped              // the stop flag is set
	FaultCallDepth            // a call would exceed the frame limit
	FaultContext              // an access the context's rules refuse
)

// ExecCtx is what machine code and Go share during a run. The code holds
// its address in a register for the whole run and reads and writes the
// fields at offsets the generator takes from unsafe.Offsetof; Jump's
// assembly uses the go_asm.h names. It holds no Go pointers: the
// collector does not scan what the code holds.
type ExecCtx struct {
	GoSP, GoBP uintptr // Go's stack and frame pointers, saved by Jump
	Exit       uint64  // why the code came back (Exit*)
	R0         uint64  // ExitOK: the result
	ResumePC   uintptr // ExitCall: where to resume
	ResumeSP   uintptr // ExitCall: the stack pointer to resume with
	Site       uint64  // ExitCall: the call site's index in Prog's table
	Prog       uint64  // ExitCall: the code of the program that exited (its address)
	Args       [5]uint64
	Ret        uint64  // ExitCall: the value r0 gets when the code resumes
	Tail       uintptr // after a tail call site: the entry to continue in, 0 for none
	Target     uintptr // the function the entry stub calls
	Fuel       uint64  // fuel left before the code must yield (ExitYield)
	Depth      uint64  // frames below the run's first (bpf-to-bpf calls, callbacks)
	PC         uint64  // ExitFault: the slot; ExitOK: the exit instruction's slot
	Fault      uint64  // ExitFault: why (Fault*)
	Worker     uint64  // the CPU slot the run is on, for inline helpers
	Ctx        uint64  // the run's context (r1 at entry), for context variants
	// Rand is the address of the run's helpers.State.Rand, which inline
	// bpf_get_prandom_u32 advances. The Machine keeps the State alive;
	// it is a plain word, so the code's stores need no write barrier.
	Rand uintptr
	// Repeat is how many more times the entry stub calls Target after
	// the call returns, each time with r1-r5 from Args, Fuel from Fuel0
	// and Tail 0: the repeats of a test run, without leaving the code.
	// Go sets it to 0 whenever it serves an exit, so that a run which
	// needed Go ends the repeating and Go does its work between runs.
	Repeat uint64
	Fuel0  uint64 // the fuel each repeated run starts with
	// Records are the ring buffer records native bpf_ringbuf_reserve
	// made that native submit or discard has not yet taken back: the
	// first NRecords of them. Go moves them into helpers.State.Records
	// at every exit but calls of helpers that do not look at records, and
	// when the run ends, so that the helpers that take records back see
	// every record the run holds and a run that ends early (a fault, its
	// budget, its context) gives them back. A native reservation with
	// every slot taken goes to Go.
	NRecords uint64
	Records  [MaxRecords]Record
	// Wake is the handle of the ring buffer a native commit wants Go to
	// wake the reader of (a reader waits, or BPF_RB_FORCE_WAKEUP).
	Wake uint64
	// Batch* are a packet batch's (engine.PacketBatch) while the batch
	// stub runs it: before each run it copies the packet of the item at
	// BatchItem to BatchFrame (zeroing what is left of the BatchUsed
	// bytes of the packet before), stores its end at the non-zero
	// BatchEnds, calls Target as the entry stub does, stores the low 32
	// bits of r0 at BatchItem+BatchRetOff, counts the run in BatchDone
	// and steps BatchItem by BatchStride, until BatchLeft runs out. Go
	// sets BatchLeft to 0 when it serves an exit, so that the batch ends
	// with the run that needed Go (it then wraps to all ones). The batch
	// stops without counting a run that ended holding ring buffer
	// records (NRecords), which Go sees as BatchLeft neither 0 nor all
	// ones.
	BatchItem uintptr
	// BatchMin and BatchSpan bound a packet's length to [BatchMin,
	// BatchMin+BatchSpan]; where BatchGuarded is not 0, the words at the
	// offsets BatchGuards of an item must be 0 (unused ones repeat a used
	// one). The batch stops before an item that fails, setting BatchLeft
	// to 0.
	BatchMin, BatchSpan uint64
	BatchGuarded        uint64
	BatchGuards         [4]uintptr
	BatchStride         uintptr
	BatchRetOff         uintptr
	BatchLeft           uint64
	BatchDone           uint64
	BatchFrame          uintptr
	BatchUsed           uint64
	BatchEnds           [2]uintptr
	BatchSink           uint64 // where an unused end goes
}

// MaxRecords is how many ring buffer records native code holds for a
// run (ExecCtx.Records) between exits to Go.
const MaxRecords = 8

// Record is a ring buffer record native code reserved: Size bytes of
// sample at Addr in the ring whose map handle is Ring.
type Record struct {
	Addr, Size, Ring uint64
}
