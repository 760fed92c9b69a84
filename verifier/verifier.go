package verifier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/loader"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
)

// Program is what Verify checks: one linked program and everything it may
// reach.
type Program struct {
	// Name names the program in errors and logs.
	Name string
	// Insns is the linked program (loader.Program.Insns): bpf-to-bpf calls
	// are "call pc+N", map references are lddw with src
	// isa.PseudoMapIdx or isa.PseudoMapIdxValue and an index into Maps.
	Insns []isa.Instruction
	// Kind is the program type: its context rules and return values.
	Kind *progtype.Kind
	// Maps are the maps the program's map references index.
	Maps []Map
	// Helpers are the helpers the program may call, with their
	// prototypes, by id. When nil, Verify takes those of Options.Target
	// (progtype.Kind.TargetHelpers).
	Helpers map[int32]helpers.Proto
	// GPL says whether the license is GPL-compatible (GPL-only helpers).
	GPL bool
	// Lines is the BTF line info per slot (loader.Program.Lines), for
	// errors; it may be nil.
	Lines []loader.Line
	// Funcs are the program's functions (loader.Program.Funcs); with BTF,
	// global functions are verified on their own.
	Funcs []loader.Func
	// Sleepable programs (BPF_F_SLEEPABLE: "uprobe.s", "lsm.s") run
	// outside an RCU read section: fields of kernel objects they read
	// are untrusted, even those the kernel lists as RCU-protected.
	Sleepable bool
}

// Map is one map a program refers to.
type Map struct {
	Spec maps.Spec
	// ReadOnly maps (BPF_F_RDONLY_PROG: .rodata) may not be written by the
	// program. When Frozen is set too, it is the map's value (of key 0, an
	// array's only element), and loads at constant offsets give constants,
	// as the kernel reads a frozen read-only map at verification.
	ReadOnly bool
	Frozen   []byte
	// WriteOnly maps (BPF_F_WRONLY_PROG) may not be read by the program.
	WriteOnly bool
	// SpinLock is where the value holds its struct bpf_spin_lock (from
	// the map's BTF), or -1 for none.
	SpinLock int
	// Timer is where the value holds its struct bpf_timer (from the map's
	// BTF), or -1 for none. Loads and stores may not touch its 16 bytes;
	// the bpf_timer_* helpers take a pointer to it.
	Timer int
	// NoBTF says the map was created without BTF (a legacy map
	// definition): its values have no special fields, and Linux names
	// the missing BTF when a program passes one to bpf_timer_init.
	NoBTF bool
	// Inner is, for a map of maps (Spec.InnerMap), what is known of the
	// special fields of the maps it holds: its SpinLock, Timer and NoBTF
	// apply to them (its Spec is not used). nil: none.
	Inner *Map
}

// Options tune a verification. The zero Options verify a privileged
// program (CAP_BPF and CAP_PERFMON) for waggle's runtime with the
// kernel's budget.
type Options struct {
	// Target is what the program is verified for, which decides the
	// helpers it may call when Program.Helpers is nil:
	// progtype.TargetUser (the default) the helpers waggle's runtime
	// implements, progtype.TargetLinux those upstream Linux 6.18 offers
	// the program type, progtype.TargetHost those the running kernel
	// offers (probed; it also checks that the kernel has the program's
	// type and its maps' types, and needs root). A call to a helper the
	// target lacks is rejected with Linux's message ("program of this
	// type cannot use helper bpf_xdp_adjust_meta#54") and why.
	Target progtype.Target
	// Unprivileged applies the rules for programs loaded without CAP_BPF:
	// no pointer leaks, no pointer comparisons, no uninitialised stack
	// reads, no loops.
	Unprivileged bool
	// NoPerfmon applies the rules for programs loaded with CAP_BPF but
	// without CAP_PERFMON (nor CAP_SYS_ADMIN): loops are allowed, but
	// pointer leaks, pointer comparisons and uninitialised stack reads
	// are not (Linux's allow_ptr_leaks and allow_uninit_stack need
	// CAP_PERFMON).
	NoPerfmon bool
	// StrictAlignment is BPF_F_STRICT_ALIGNMENT: every load and store
	// must be aligned to its size, packet data counted from 2 bytes
	// before the packet (NET_IP_ALIGN).
	StrictAlignment bool
	// MaxInsns is the budget of processed instructions; 0 means the
	// kernel's 1,000,000 (BPF_COMPLEXITY_LIMIT_INSNS).
	MaxInsns int
	// Log, when not nil, receives a kernel-style log in the layout of
	// the Linux verifier's level 2 log (log.go): one line per processed
	// instruction with the registers and stack slots it used, the state
	// where each path starts, the pruned paths ("safe") and the counts.
	Log io.Writer
	// KernelTypes is the kernel's BTF, which programs that read kernel
	// objects need (BTF-typed pointers from helpers such as
	// bpf_get_current_task_btf, loads through map pointers). Share one
	// between verifications to read it once; when nil, a verification
	// that needs it loads the running kernel's (NewKernelTypes).
	KernelTypes *KernelTypes
	// LogLevel is the kernel's log level for Log, a set of bits: with 1
	// and not 2, only the last path explored is logged, as the kernel's
	// level 1 does (the log of a path that ended well is taken back when
	// the next one starts at its branch, so that a rejection shows the
	// path to the error); otherwise (2, the default) every path is. 4
	// (BPF_LOG_STATS) adds the verification time and each function's
	// stack depth ("stack depth 32+16") before the counts.
	LogLevel int
}

// MaxInsns is the kernel's budget of processed instructions
// (BPF_COMPLEXITY_LIMIT_INSNS).
const MaxInsns = 1_000_000

// maxUnprivInsns is the most instructions a program loaded without
// CAP_BPF may have (BPF_MAXINSNS).
const maxUnprivInsns = 4096

// Result is what a verification found.
type Result struct {
	// Processed counts processed instructions, as the kernel's
	// "processed N insns" does.
	Processed int
	// States counts the checkpoints stored (total_states); PeakStates is
	// the most stored at once (peak_states).
	States, PeakStates int
	// StackDepth is the stack each function uses, in bytes, in Funcs order.
	StackDepth []int
	// CtxAccesses are the slots that load or store through the context
	// pointer: the accesses the rewrite converts.
	CtxAccesses []int
	// FastcallNops are the spills and fills of bpf_fastcall patterns that
	// Linux removes, and whose stack StackDepth leaves out: an engine
	// that sizes frames from StackDepth must drop them too (they are
	// no-ops wherever helpers keep r1-r5).
	FastcallNops []int
	// Duration is how long the verification took.
	Duration time.Duration
}

// ErrRejected is the error every rejection wraps.
var ErrRejected = errors.New("rejected by the verifier")

// Verify checks that p is safe to run: it explores every path, as the
// Linux verifier does, and returns what it found, or an *Error that says
// why not. ctx cancels a verification. Verify never panics and never runs
// past opts.MaxInsns processed instructions.
func Verify(ctx context.Context, p *Program, opts *Options) (res *Result, err error) {
	if opts == nil {
		opts = &Options{}
	}
	start := time.Now()
	p, err = forTarget(p, opts)
	if err != nil {
		return nil, err
	}
	v := &verifier{p: p, start: start, opts: opts, ctx: ctx, maxInsns: opts.MaxInsns, log: opts.Log,
		allowUninit: !opts.Unprivileged && !opts.NoPerfmon, allowPtrLeaks: !opts.Unprivileged && !opts.NoPerfmon}
	if v.maxInsns <= 0 {
		v.maxInsns = MaxInsns
	}
	if ctx != nil && ctx.Err() != nil {
		return nil, v.stopped(0, ctx.Err())
	}
	defer func() {
		if r := recover(); r != nil {
			err = v.errorf(v.insnIdx, "internal error: %v", r)
			res = nil
		}
	}()
	if err := v.run(); err != nil {
		return nil, err
	}
	res = &Result{Processed: v.processed, States: v.totalStates, PeakStates: v.peakStates, Duration: time.Since(start)}
	for _, sp := range v.subprogs {
		res.StackDepth = append(res.StackDepth, sp.stackDepth)
	}
	res.FastcallNops = v.fastcallNops
	for i, a := range v.aux {
		if a.ctxAccess {
			res.CtxAccesses = append(res.CtxAccesses, i)
		}
	}
	return res, nil
}

// subprog is one function of the program.
type subprog struct {
	start, end int // [start, end) slots
	name       string
	stackDepth int
	global     bool
	// tailCall marks a function that calls bpf_tail_call.
	tailCall bool
	// fastcallOff is the lowest offset of the function's bpf_fastcall
	// slots (math.MinInt16 once something else touched them), and
	// keepFastcallStack says a pattern around a helper Linux does not
	// inline keeps them (fastcall.go).
	fastcallOff       int
	keepFastcallStack bool
	// async marks a function a helper runs later (a bpf_timer
	// callback): its stack is a root of its own (is_async_cb).
	async bool
}

// insnAux is what the verifier learns about one slot
// (struct bpf_insn_aux_data).
type insnAux struct {
	seen      bool
	prune     bool // a checkpoint may be stored here
	loopHead  bool // target of a back edge: always checkpoint
	ctxAccess bool
	// ptrType is the pointer type a load or store went through on the
	// paths seen so far (one instruction, one kind of pointer).
	ptrType regType
	ptrSeen bool
	// live is the set of registers that may be read before they are
	// written, starting here.
	live uint16
	// aluState and aluLimit are the Spectre mask of an unprivileged
	// pointer operation, which every path must share (alu_state,
	// alu_limit).
	aluState uint8
	aluLimit uint32
	// fastcallPattern marks a spill or fill of a bpf_fastcall pattern;
	// fastcallSpills, on the call, counts the pairs Linux removes.
	fastcallPattern bool
	fastcallSpills  uint8
	// nospec marks a speculation barrier before the instruction: a
	// speculative path was refused there (Linux 6.17's Spectre v1
	// fallback), so speculative paths stop there.
	nospec bool
	// tailMap is, for an unprivileged bpf_tail_call, 1 + the index of
	// the prog array the paths so far called through.
	tailMap int32
}

// checkpoint lists for one slot.
type verifier struct {
	p             *Program
	start         time.Time
	fastcallNops  []int
	opts          *Options
	ctx           context.Context
	log           io.Writer
	maxInsns      int
	allowUninit   bool
	allowPtrLeaks bool
	// exploreALULimits makes pruning compare scalars exactly, once an
	// unprivileged program moved a pointer by a register
	// (explore_alu_limits): paths must agree on every mask.
	exploreALULimits bool

	insns    []isa.Instruction
	subprogs []subprog
	aux      []insnAux
	mid      []bool // second halves of lddw

	explored [][]*checkpoint
	// loopEntries are the loop-head checkpoints a path came back to and
	// was pruned against while they were still being explored (a may_goto
	// or callback loop converging: the kernel's used_as_loop_entry).
	loopEntries map[*state]bool
	totalStates int
	curStates   int
	peakStates  int

	pending []*state
	// entry is the history entry of the instruction being processed.
	entry   histEntry
	cur     *state
	insnIdx int
	idGen   uint32

	// globals holds, per subprogram, what global functions need
	// (global.go).
	globals []globalFn

	processed       int
	jmpsProcessed   int
	prevJmps        int
	prevInsnsAtJump int
	// logBefore holds the registers before an instruction, to print what
	// it changed.
	logBefore [isa.MaxRegister + 1]reg
	// lg is the kernel-style log, nil without Options.Log.
	lg *logState
	// maxStatesPerInsn is the most checkpoints one slot had when a new
	// one was considered (max_states_per_insn).
	maxStatesPerInsn int
	// freeFrames are frames of finished paths, for clone to reuse.
	freeFrames []*frame
	// kt is the kernel's BTF (kernelTypes), nil until needed.
	kt *KernelTypes
	// links holds the linked registers of conditional jumps that
	// history entries name (histEntry.links).
	links []linkRef
}

type checkpoint struct {
	st          *state
	hit, miss   int
	loopEntries int
}

func (v *verifier) nextID() uint32 {
	v.idGen++
	return v.idGen
}

// run is the whole verification: the program's shape, then its paths.
func (v *verifier) run() error {
	p := v.p
	if p.Kind == nil {
		return &Error{Insn: -1, Msg: "no program type: the verifier needs one (progtype.Kind)"}
	}
	if len(p.Insns) == 0 {
		return &Error{Insn: -1, Msg: "empty program"}
	}
	if len(p.Insns) > MaxInsns {
		return &Error{Insn: -1, Msg: fmt.Sprintf("program is too large (%d insns): at most %d", len(p.Insns), MaxInsns)}
	}
	if v.opts.Unprivileged && len(p.Insns) > maxUnprivInsns {
		// bpf_prog_load refuses it (E2BIG) before the verifier runs.
		return &Error{Insn: -1, Msg: fmt.Sprintf("program is too large (%d insns): at most %d without CAP_BPF", len(p.Insns), maxUnprivInsns),
			Hint: "split the program with tail calls, or load it with CAP_BPF"}
	}
	v.insns = p.Insns
	v.aux = make([]insnAux, len(v.insns))
	v.explored = make([][]*checkpoint, len(v.insns))
	if err := v.checkShape(); err != nil {
		if v.log != nil {
			// The kernel's log has the message and the counts (0).
			v.lg = &logState{w: v.log}
			v.logError(err)
		}
		return err
	}
	v.computeLiveness()
	if v.log != nil {
		v.logStart()
	}
	v.initGlobals()
	v.markFastcall()
	err := v.explore()
	if err == nil {
		err = v.verifyGlobals()
	}
	if err == nil {
		v.fastcallNops = v.removeFastcall()
		err = v.checkStackDepth()
	}
	if v.lg != nil {
		if err != nil {
			v.logError(err)
		} else {
			v.logSummary()
		}
	}
	return err
}

// stopped is the error of a verification its context ended: no verdict,
// so not an *Error (it wraps the context's error, not ErrRejected).
func (v *verifier) stopped(pc int, err error) error {
	return fmt.Errorf("verifier: %s: verification stopped at insn %d after %d processed insns: %w", v.p.Name, pc, v.processed, err)
}
