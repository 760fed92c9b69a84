package progtype

import (
	"errors"
	"fmt"

	"github.com/waggle-bpf/waggle/isa"
)

// ErrUnsupported is returned (wrapped) for a program type waggle does not
// run and for inputs it cannot set up (multi-buffer XDP).
var ErrUnsupported = errors.New("not supported in user space")

// Kind describes one program type as waggle runs it: its context layout,
// the rules and rewrite of context accesses, the helpers it may call and
// how a run is set up. Kinds are immutable and safe for concurrent use.
type Kind struct {
	typ    Type
	attach AttachType
	name   string
	layout *Layout
	rules  func(k *Kind, a ctxAccess) (conversion, string)
	// allowed is the type's get_func_proto: whether a helper id may be
	// called.
	allowed func(k *Kind, id int32) bool
	// run is the kind of run state NewRun builds.
	run runKind
	// hook is set for user-defined hooks.
	hook *hookSpec
}

// runKind selects the run state of a Kind.
type runKind uint8

const (
	runXDP runKind = iota
	runSKB
	runTrace
	runHook
	runSock     // cgroup_sock: a bpf_sock
	runSockAddr // cgroup_sock_addr: a bpf_sock_addr and its socket
	runSockOps  // sock_ops: a bpf_sock_ops and its socket
	runFlow     // flow_dissector: a packet and bpf_flow_keys
	runSkLookup // sk_lookup: a bpf_sk_lookup
)

// Lookup returns the Kind of a program type with the default attach type.
func Lookup(t Type) (*Kind, error) { return LookupAttach(t, AttachNone) }

// LookupAttach returns the Kind of a program type loaded with an expected
// attach type (BPF_PROG_LOAD's expected_attach_type), which changes what
// some types may do: an XDP program attached to a devmap may read
// xdp_md.egress_ifindex.
func LookupAttach(t Type, a AttachType) (*Kind, error) {
	k := &Kind{typ: t, attach: a, name: t.String()}
	switch t {
	case XDP:
		k.layout, k.rules, k.run, k.allowed = xdpLayout, xdpRules, runXDP, xdpAllowed
	case SocketFilter:
		k.layout, k.rules, k.run, k.allowed = skbLayout, skbRules, runSKB, sockFilterAllowed
	case SchedCLS, SchedACT:
		k.layout, k.rules, k.run, k.allowed = skbLayout, skbRules, runSKB, tcAllowed
	case CgroupSKB:
		k.layout, k.rules, k.run, k.allowed = skbLayout, skbRules, runSKB, cgSKBAllowed
	case LWTIn, LWTOut, LWTXmit, LWTSeg6Local:
		k.layout, k.rules, k.run, k.allowed = skbLayout, skbRules, runSKB, lwtAllowed
	case CgroupSock:
		switch a {
		case AttachNone:
			// bpf_prog_load_fixup_attach_type (kernel/bpf/syscall.c)
			k.attach = AttachCgroupInetSockCreate
		case AttachCgroupInetSockCreate, AttachCgroupInetSockRelease, AttachCgroupInet4PostBind, AttachCgroupInet6PostBind:
		default:
			// bpf_prog_load_check_attach
			return nil, fmt.Errorf("progtype: cgroup_sock programs attach at socket creation, release or post-bind, not at expected_attach_type %d: %w", a, ErrUnsupported)
		}
		k.layout, k.rules, k.run, k.allowed = bpfSockLayout, sockRules, runSock, cgSockAllowed
	case SockOps:
		k.layout, k.rules, k.run, k.allowed = sockOpsLayout, sockOpsRules, runSockOps, sockOpsAllowed
	case FlowDissector:
		k.layout, k.rules, k.run, k.allowed = skbLayout, flowDissectorRules, runFlow, flowDissectorAllowed
	case SkLookup:
		k.layout, k.rules, k.run, k.allowed = skLookupLayout, skLookupRules, runSkLookup, skLookupAllowed
	case Kprobe:
		k.layout, k.rules, k.run, k.allowed = ptRegsLayout, kprobeRules, runTrace, kprobeAllowed
	case Tracepoint:
		k.layout, k.rules, k.run, k.allowed = tracepointLayout, tracepointRules, runTrace, tracepointAllowed
	case RawTracepoint:
		k.layout, k.rules, k.run, k.allowed = rawTPLayout, rawTPRules, runTrace, rawTPAllowed
	case PerfEvent:
		k.layout, k.rules, k.run, k.allowed = perfEventLayout, perfEventRules, runTrace, perfEventAllowed
	case CgroupSockAddr:
		if !k.sockAddr4() && !k.sockAddr6() {
			return nil, fmt.Errorf("progtype: cgroup_sock_addr programs need an IPv4 or IPv6 attach type (expected_attach_type %d; sections cgroup/connect4, cgroup/sendmsg6, ...): %w", a, ErrUnsupported)
		}
		k.layout, k.rules, k.run, k.allowed = sockAddrLayout, sockAddrRules, runSockAddr, sockAddrAllowed
	case UserHook:
		return nil, fmt.Errorf("progtype: user hooks are made with NewHook or NewHookFields, not looked up")
	default:
		return nil, fmt.Errorf("progtype: %s: %w (%s)", t, ErrUnsupported, unsupportedHint)
	}
	return k, nil
}

// Type returns the program type.
func (k *Kind) Type() Type { return k.typ }

// AttachType returns the expected attach type the Kind was looked up with.
func (k *Kind) AttachType() AttachType { return k.attach }

// String returns the type's name, or a user hook's name.
func (k *Kind) String() string { return k.name }

// Context returns the layout of the context the type's programs receive.
func (k *Kind) Context() *Layout { return k.layout }

// ctxAccess is one load or store through the context pointer, at UAPI
// offset off.
type ctxAccess struct {
	off, size int
	write     bool
	signExt   bool  // BPF_MEMSX
	store     bool  // BPF_ST: the value is imm
	imm       int32 // BPF_ST's value
}

// conversion is the rewrite of one access: the runtime offset and, if not
// 0, the new access size; or a no-op (ja +0).
type conversion struct {
	off  int
	size int
	noop bool
}

// Access is one context access of a program, as Convert found and
// rewrote it.
type Access struct {
	Insn  int    // slot index of the load or store
	Field string // what it touches: "__sk_buff.cb[2]", "xdp_md.data"
	Off   int    // UAPI offset
	Size  int    // bytes accessed
	Write bool
	// Rewritten is the instruction that replaces it.
	Rewritten isa.Instruction
	// Variant marks an access of a program Rewrite prepared, which may be
	// a context access: Rewritten runs when its base holds the context,
	// the program's own instruction otherwise (Program.Variants).
	Variant bool
}

// CheckAccess reports whether a program of this type may access size bytes
// of its context at UAPI offset off (a store if write, a sign-extending
// load if signExt), as the kernel's is_valid_access decides, and where the
// access lands in the runtime layout. A refusal is an *AccessError with
// Insn -1.
func (k *Kind) CheckAccess(off, size int, write, signExt bool) (runtimeOff int, err error) {
	c, reason := k.check(ctxAccess{off: off, size: size, write: write, signExt: signExt})
	if reason != "" {
		return 0, k.accessError(-1, ctxAccess{off: off, size: size, write: write}, reason)
	}
	return c.off, nil
}

func (k *Kind) check(a ctxAccess) (conversion, string) {
	switch a.size {
	case 1, 2, 4, 8:
	default:
		return conversion{}, fmt.Sprintf("invalid access size %d", a.size)
	}
	return k.rules(k, a)
}

func (k *Kind) accessError(insn int, a ctxAccess, reason string) *AccessError {
	return &AccessError{Insn: insn, Ctx: k.layout.Name, Where: k.layout.describe(a.off),
		Off: a.off, Size: a.size, Write: a.write, Rule: reason}
}

// Program is a program rewritten for a Kind, ready for an engine.
type Program struct {
	Kind *Kind
	// Insns is the rewritten program: same length, same slot indices.
	Insns []isa.Instruction
	// Accesses lists the context accesses, in slot order: for a program
	// Rewrite prepared, the loads and stores that may be (Variants).
	Accesses []Access
	// ContextEnd is one past the last context byte the program accesses
	// (the kernel's prog->aux->max_ctx_offset).
	ContextEnd int
	// Variants are, for a program Rewrite prepared (no verifier told which
	// accesses are the context's), the loads and stores whose conversion
	// changes them: by slot, the instruction to run when the base holds the
	// context (engine.Options.ContextVariants). Insns keeps the program's
	// own instruction there.
	Variants map[int]isa.Instruction
	// Faults are, for a program Rewrite prepared, the loads, stores and
	// atomic operations that are no valid context access: by slot, the
	// *AccessError a run faults with when the base holds the context
	// (engine.Options.ContextFaults).
	Faults map[int]error
	// dynamic is set for a program Rewrite prepared.
	dynamic bool
}

// Convert rewrites the context accesses at the given slot indices (as
// the verifier finds them, verifier.Result.CtxAccesses) from the UAPI layout to the
// runtime layout, one instruction for one. prog is not modified. An access
// the kernel would refuse is an *AccessError naming the instruction, the
// field and the rule.
//
// This is the kernel's convert_ctx_accesses (kernel/bpf/verifier.c) with
// the type's convert_ctx_access (net/core/filter.c), onto the shadow struct
// described by Layout.
func (k *Kind) Convert(prog []isa.Instruction, at []int) (*Program, error) {
	p := &Program{Kind: k, Insns: append([]isa.Instruction(nil), prog...), Accesses: make([]Access, 0, len(at))}
	for _, pc := range at {
		if pc < 0 || pc >= len(prog) {
			return nil, fmt.Errorf("progtype: context access at instruction %d outside the program (%d slots)", pc, len(prog))
		}
		a, err := k.convertAccess(pc, prog[pc])
		if err != nil {
			return nil, err
		}
		p.Insns[pc] = a.Rewritten
		p.add(a)
	}
	return p, nil
}

// add records a converted access.
func (p *Program) add(a Access) {
	p.Accesses = append(p.Accesses, a)
	p.ContextEnd = max(p.ContextEnd, a.Off+a.Size)
}

// convertAccess checks and rewrites the context access ins at slot pc.
func (k *Kind) convertAccess(pc int, ins isa.Instruction) (Access, error) {
	a, ok := accessOf(ins)
	if !ok {
		if ins.Op.Class() == isa.ClassSTX && ins.Op.Mode() == isa.ModeATOMIC {
			a = ctxAccess{off: int(ins.Off), size: ins.Op.Size().Bytes(), write: true}
			return Access{}, k.accessError(pc, a, "atomic operations on the context are not allowed")
		}
		return Access{}, fmt.Errorf("progtype: instruction %d (%s) is not a load or store", pc, ins.Op)
	}
	c, reason := k.check(a)
	if reason != "" {
		return Access{}, k.accessError(pc, a, reason)
	}
	nw := ins
	switch {
	case c.noop:
		nw = isa.Instruction{Op: isa.OpJA}
	default:
		if c.off < -1<<15 || c.off >= 1<<15 {
			return Access{}, fmt.Errorf("progtype: instruction %d: runtime offset %d does not fit an instruction", pc, c.off)
		}
		nw.Off = int16(c.off)
		if c.size != 0 && c.size != a.size {
			nw.Op = ins.Op&^0x18 | isa.Opcode(sizeCode(c.size))
		}
	}
	return Access{Insn: pc, Field: k.layout.describe(a.off), Off: a.off, Size: a.size, Write: a.write, Rewritten: nw}, nil
}

// Rewrite prepares the context accesses of a program no verifier has
// analysed, which runs in the checked interpreter: with no analysis to say
// which loads and stores go through the context pointer, each is decided
// at run time, by whether its base register holds the run's context. Every
// load and store whose conversion (Convert's) changes it becomes a
// Variant, run converted on the context and as it is elsewhere; every one
// the type's rules refuse as a context access, and every atomic operation,
// becomes a Fault, an error on the context and an ordinary access
// elsewhere. Accesses through r10 are never the context. prog is not
// modified: Insns is a copy.
//
// This is what the kernel's convert_ctx_accesses does for the accesses
// its verifier found (insn_aux_data[].ptr_type == PTR_TO_CTX), decided
// where the kernel decides it statically. Why at run time: a static
// analysis without the verifier's value tracking cannot tell, on paths it
// cannot prove infeasible, whether a register holds the context or another
// pointer, and the verifier itself stops at the first error, where an
// unverified program must still run. At run time the question has an exact
// answer. A program the kernel accepts reaches its context only through
// the unmodified context pointer (check_ctx_access: "dereference of
// modified ctx ptr"), so on the paths it takes each access sees the same
// conversion as the kernel's; no other pointer of a run equals the
// context's address, as regions do not overlap. A program the kernel
// refuses may reach the context another way (through the context plus an
// offset, which is no context access here and reads the runtime layout as
// any memory): the checked interpreter keeps it to the run's memory, as it
// keeps every unverified access.
//
// ContextEnd is 0: the accesses are not known before the run. A raw
// tracepoint's run then has exactly ctx_in for a context, and a read past
// it fails the run with EINVAL (Program.NewRun, Run.ContextFault) where
// BPF_PROG_TEST_RUN fails before the run.
func (k *Kind) Rewrite(prog []isa.Instruction) (*Program, error) {
	p := &Program{Kind: k, Insns: append([]isa.Instruction(nil), prog...), dynamic: true}
	for pc := 0; pc < len(prog); pc++ {
		ins := prog[pc]
		if ins.IsLoadImm64() {
			pc++
			continue
		}
		base, ok := accessBase(ins)
		if !ok || base == isa.R10 {
			continue
		}
		a, err := k.convertAccess(pc, ins)
		switch {
		case err != nil:
			if p.Faults == nil {
				p.Faults = make(map[int]error)
			}
			p.Faults[pc] = err
		case a.Rewritten != ins:
			if p.Variants == nil {
				p.Variants = make(map[int]isa.Instruction)
			}
			p.Variants[pc] = a.Rewritten
			a.Variant = true
			p.Accesses = append(p.Accesses, a)
		}
	}
	return p, nil
}

// accessBase returns the base register of a load, store or atomic
// operation.
func accessBase(ins isa.Instruction) (isa.Register, bool) {
	switch c, m := ins.Op.Class(), ins.Op.Mode(); {
	case c == isa.ClassLDX && (m == isa.ModeMEM || m == isa.ModeMEMSX):
		return ins.Src, true
	case (c == isa.ClassST || c == isa.ClassSTX) && m == isa.ModeMEM, c == isa.ClassSTX && m == isa.ModeATOMIC:
		return ins.Dst, true
	}
	return 0, false
}

// NewRun prepares a run of the program on in: Kind.NewRun, plus the checks
// BPF_PROG_TEST_RUN makes against the program (a raw tracepoint's ctx_in
// must cover every argument the program reads).
//
// For a program Rewrite prepared, whose context reads are known only as it
// runs, a raw tracepoint's context is exactly ctx_in: a read past it
// faults, and Run.ContextFault says it is that check's EINVAL.
func (p *Program) NewRun(in Input) (*Run, error) {
	if err := p.checkInput(&in); err != nil {
		return nil, err
	}
	r, err := p.Kind.NewRun(in)
	if err != nil {
		return nil, err
	}
	p.limit(r)
	return r, nil
}

// ResetRun is Run.Reset with the checks NewRun makes against the program,
// for a Run of this program reused on a new input.
func (p *Program) ResetRun(r *Run, in Input) error {
	if err := p.checkInput(&in); err != nil {
		return err
	}
	r.in = in
	if err := r.reset(); err != nil {
		return err
	}
	p.limit(r)
	return nil
}

// ResetRunData is ResetRun on the input of r's last Reset with data and
// ctx as its Data and Context: what a caller running the program over
// many packets or contexts resets r with between them, without passing
// the rest of the Input again.
func (p *Program) ResetRunData(r *Run, data, ctx []byte) error {
	r.in.Data, r.in.Context = data, ctx
	if r.resetXDPData(data, ctx) {
		return nil
	}
	if err := p.checkInput(&r.in); err != nil {
		return err
	}
	if err := r.reset(); err != nil {
		return err
	}
	p.limit(r)
	return nil
}

func (p *Program) checkInput(in *Input) error {
	if p.Kind.typ == RawTracepoint && len(in.Context) < p.ContextEnd {
		return fmt.Errorf("%s: %w", p.Kind.name, einval("ctx_in of %d bytes, the program reads %d", len(in.Context), p.ContextEnd))
	}
	return nil
}

// limit narrows a raw tracepoint's context to ctx_in (r's input) for a
// program whose reads are not known before it runs.
func (p *Program) limit(r *Run) {
	if p.dynamic && p.Kind.typ == RawTracepoint {
		r.ctxEnd, r.ctxLimited = len(r.in.Context), true
		r.buildRegions()
	}
}

// accessOf decodes a load or store into a context access.
func accessOf(ins isa.Instruction) (ctxAccess, bool) {
	c := ins.Op.Class()
	mode := ins.Op.Mode()
	a := ctxAccess{off: int(ins.Off), size: ins.Op.Size().Bytes()}
	switch {
	case c == isa.ClassLDX && (mode == isa.ModeMEM || mode == isa.ModeMEMSX):
		a.signExt = mode == isa.ModeMEMSX
	case c == isa.ClassSTX && mode == isa.ModeMEM:
		a.write = true
	case c == isa.ClassST && mode == isa.ModeMEM:
		a.write, a.store, a.imm = true, true, ins.Imm
	default:
		return a, false
	}
	return a, true
}

func sizeCode(n int) isa.Size {
	switch n {
	case 1:
		return isa.SizeB
	case 2:
		return isa.SizeH
	case 4:
		return isa.SizeW
	}
	return isa.SizeDW
}
