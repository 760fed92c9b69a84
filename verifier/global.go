package verifier

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/btfkind"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/progtype"
)

// Global functions (BTF linkage BTF_FUNC_GLOBAL in the program's func
// info) are verified as Linux verifies them: once, on their own, with
// arguments built from their BTF prototype, rather than inline for each
// caller's state as static functions are. A call checks the caller's
// registers against the prototype, clobbers r1-r5 and leaves r0 an unknown
// scalar. After the main program, every global function some verified
// path called is verified in turn (transitively, the lowest-numbered
// first, as do_check_subprogs does); one only ever called from dead code
// is not. Without BTF every function is static.

// globalArgKind is what a global function's argument is
// (bpf_subprog_arg_info's arg_type).
type globalArgKind uint8

const (
	gArgScalar  globalArgKind = iota // an int or enum: ARG_ANYTHING
	gArgCtx                          // the program's context: ARG_PTR_TO_CTX
	gArgMem                          // sized memory: ARG_PTR_TO_MEM
	gArgArena                        // __arg_arena: ARG_PTR_TO_ARENA
	gArgTrusted                      // __arg_trusted: ARG_PTR_TO_BTF_ID | PTR_TRUSTED, a kernel object
	gArgDynptr                       // struct bpf_dynptr *: ARG_PTR_TO_DYNPTR|MEM_RDONLY
)

// globalArg is one argument of a global function.
type globalArg struct {
	kind globalArgKind
	// size is the memory's size, for gArgMem.
	size uint32
	// nullable is set for gArgMem unless the argument is __arg_nonnull,
	// and for gArgTrusted with __arg_nullable.
	nullable bool
	// kernelType is, for gArgTrusted, the name of the kernel struct it
	// points to (the prototype's, without a CO-RE flavor suffix).
	kernelType string
}

// globalFn is what the verifier knows of one global function.
type globalFn struct {
	prepared bool
	args     []globalArg
	// bad says why the prototype cannot be used (the log line of
	// btf_prepare_func_args); set once prepared.
	bad string
	// called: a verified path calls it; verified: it was verified.
	called, verified bool
	// changesPkt says whether it, or a function it calls, calls a helper
	// that changes packet data.
	changesPkt bool
}

// argTag bits: the "arg:..." BTF decl tags of a parameter.
const (
	tagCtx = 1 << iota
	tagNonnull
	tagTrusted
	tagNullable
	tagArena
)

// initGlobals prepares v.globals, one per subprogram, with what each
// function's effects on packet pointers are (mark_subprog_changes_pkt_data
// and merge_callee_effects).
func (v *verifier) initGlobals() {
	v.globals = make([]globalFn, len(v.subprogs))
	any := false
	for _, sp := range v.subprogs {
		any = any || sp.global
	}
	if !any {
		return
	}
	for changed := true; changed; {
		changed = false
		for si, sp := range v.subprogs {
			if v.globals[si].changesPkt {
				continue
			}
			for pc := sp.start; pc < sp.end; pc++ {
				ins := v.insns[pc]
				c := false
				switch {
				case ins.IsHelperCall():
					c = v.p.Helpers[ins.Imm].ChangesPktData
				case ins.IsLocalCall():
					if t := v.subprogAt(pc + 1 + int(ins.Imm)); t >= 0 {
						c = v.globals[t].changesPkt
					}
				}
				if c {
					v.globals[si].changesPkt = true
					changed = true
					break
				}
			}
		}
	}
}

// verifyGlobals verifies, after the main program, every global function
// that a verified path called, until no new one is called
// (do_check_subprogs).
func (v *verifier) verifyGlobals() error {
	for {
		n := 0
		for si := 1; si < len(v.subprogs); si++ {
			g := &v.globals[si]
			if !v.subprogs[si].global || !g.called || g.verified {
				continue
			}
			if err := v.verifyGlobal(si); err != nil {
				return err
			}
			v.logf("Func#%d ('%s') is safe for any args that match its prototype\n", si, v.subprogs[si].name)
			g.verified = true
			n++
		}
		if n == 0 {
			return nil
		}
	}
}

// verifyGlobal explores global function si from its entry, its arguments
// what its prototype allows (do_check_common for a subprogram).
func (v *verifier) verifyGlobal(si int) error {
	sp := v.subprogs[si]
	v.logf("Validating %s() func#%d...\n", sp.name, si)
	g := v.prepareGlobal(si)
	if g.bad != "" {
		return v.globalErr(&Error{Program: v.p.Name, Insn: sp.start, Msg: g.bad}, si)
	}
	// A fresh exploration: the checkpoints of another function's paths
	// cannot cover these (free_states).
	v.explored = make([][]*checkpoint, len(v.insns))
	v.curStates = 0
	v.pending = nil
	f := newFrame(-1, si, 0)
	for i, a := range g.args {
		r := &f.regs[isa.R1+isa.Register(i)]
		switch a.kind {
		case gArgScalar, gArgArena:
			r.setUnknown()
		case gArgCtx:
			r.setPointer(ptrCtx)
		case gArgMem:
			r.setPointer(ptrMem)
			r.size = a.size
			if a.nullable {
				r.flags |= flagMaybeNull
			}
			r.id = v.nextID()
		case gArgTrusted:
			id, err := v.kernelTypes().structID(a.kernelType)
			if err != nil {
				return v.globalErr(v.trustedArgErr(sp.start, i, a, err), si)
			}
			r.setPointer(ptrBTFID)
			r.mapIdx = int32(id)
			r.flags = flagTrusted
			if a.nullable {
				r.flags |= flagMaybeNull
			}
			r.id = v.nextID()
		case gArgDynptr:
			// Any initialised dynptr, taken for a local one, which the
			// function may read through but not change or release.
			r.setPointer(ptrDynptr)
			r.dyn = dynLocal | dynFirst
			r.id = v.nextID()
		}
	}
	st := &state{frames: []*frame{f}, branches: 1, insn: sp.start}
	if err := v.exploreFrom(st); err != nil {
		if e, ok := err.(*Error); ok {
			return v.globalErr(e, si)
		}
		return err
	}
	return nil
}

// globalErr adds to the hint of an error found in a global function that
// the function was verified on its own.
func (v *verifier) globalErr(e *Error, si int) *Error {
	note := fmt.Sprintf("%s() is a global function: Linux verifies it once, for any arguments its BTF prototype allows, not for what its callers pass; check its arguments inside it, or make it static", v.subprogs[si].name)
	if e.Hint == "" {
		e.Hint = note
	} else {
		e.Hint += "; " + note
	}
	return e
}

// isGlobalCall reports whether the local call at pc calls a global
// function (its callee is then not walked in the caller's frame).
func (v *verifier) isGlobalCall(pc int) bool {
	ins := v.insns[pc]
	if !ins.IsLocalCall() || len(v.globals) == 0 {
		return false
	}
	si := v.subprogAt(pc + 1 + int(ins.Imm))
	return si > 0 && v.subprogs[si].global
}

// callGlobal is check_func_call for a global callee: the arguments are
// checked against its prototype, and the call returns an unknown scalar.
func (v *verifier) callGlobal(si int) error {
	pc := v.insnIdx
	s := v.cur
	sp := v.subprogs[si]
	g := v.prepareGlobal(si)
	bad := func(detail string) error {
		v.logf("%s\n", detail)
		return v.errorf(pc, "Caller passes invalid args into func#%d ('%s'): %s", si, sp.name, detail)
	}
	if g.bad != "" {
		return bad(g.bad)
	}
	if s.lock != 0 {
		return hinted(v.errorf(pc, "global function calls are not allowed while holding a lock, use static function instead"),
			"release the bpf_spin_lock before calling %s(), or make it static", sp.name)
	}
	caller := s.cur()
	for i, a := range g.args {
		rn := isa.R1 + isa.Register(i)
		detail, err := v.globalArg(i, a, rn, &caller.regs[rn])
		if e, ok := err.(*Error); ok {
			// The memory check's own error, said as the call's.
			v.logf("%s\n", e.Msg)
			e.Msg = fmt.Sprintf("Caller passes invalid args into func#%d ('%s'): %s", si, sp.name, e.Msg)
			return e
		}
		if err != nil {
			return err
		}
		if detail != "" {
			return bad(detail)
		}
	}
	// The callee may write the memory it was given.
	for i, a := range g.args {
		if r := &caller.regs[isa.R1+isa.Register(i)]; a.kind == gArgMem && r.typ == ptrStack {
			v.clobberStack(r, int(a.size))
		}
	}
	v.logf("Func#%d ('%s') is global and assumed valid.\n", si, sp.name)
	if g.changesPkt {
		v.cur.forEachReg(func(o *reg) {
			if o.isPkt() || o.typ == ptrPacketEnd {
				if v.allowPtrLeaks {
					o.setUnknown()
				} else {
					*o = reg{}
				}
			}
		})
	}
	g.called = true
	for r := isa.R1; r <= isa.R5; r++ {
		caller.regs[r] = reg{}
	}
	caller.regs[isa.R0].setUnknown()
	s.insn = pc + 1
	return nil
}

// globalArg checks one argument of a call of a global function
// (btf_check_func_arg_match). It returns what is wrong, or an error of
// the memory check itself.
func (v *verifier) globalArg(i int, a globalArg, rn isa.Register, r *reg) (string, error) {
	switch a.kind {
	case gArgScalar:
		if r.typ != scalarReg {
			return fmt.Sprintf("R%d is not a scalar", rn), nil
		}
	case gArgArena:
		if r.typ != scalarReg {
			return fmt.Sprintf("R%d is not a pointer to arena or scalar.", rn), nil
		}
	case gArgCtx:
		if d := ptrOffDetail(rn, r); d != "" {
			return d, nil
		}
		if r.typ != ptrCtx {
			return fmt.Sprintf("arg#%d expects pointer to ctx", i), nil
		}
	case gArgTrusted:
		// check_reg_type for ARG_PTR_TO_BTF_ID | PTR_TRUSTED: a kernel
		// object of the struct (or one starting with it), not untrusted;
		// NULL only when nullable.
		if r.isNull() && a.nullable {
			v.markPrecise(v.cur, rn)
			return "", nil
		}
		if r.typ != ptrBTFID || r.flags&flagUntrusted != 0 || r.maybeNull() && !a.nullable || r.flags&flagTrusted != 0 && r.flags&flagRCU != 0 {
			return fmt.Sprintf("R%d type=%s expected=ptr_, trusted_ptr_, rcu_ptr_", rn, r.typeName()), nil
		}
		if _, err := v.kernelTypes().structID(a.kernelType); err != nil {
			return "", v.trustedArgErr(v.insnIdx, i, a, err)
		}
		return "", v.btfArg(rn, r, a.kernelType, false, false)
	case gArgDynptr:
		if d := ptrOffDetail(rn, r); d != "" {
			return d, nil
		}
		if r.typ != ptrStack && r.typ != ptrDynptr {
			return fmt.Sprintf("arg#%d expected pointer to stack or const struct bpf_dynptr", i), nil
		}
		meta := callMeta{mapIdx: -1, funcStart: -1, constKey: -1}
		return "", v.dynptrArg(rn, r, helpers.ArgPtrToDynptr|helpers.ArgReadOnly, &meta)
	case gArgMem:
		if d := ptrOffDetail(rn, r); d != "" {
			return d, nil
		}
		if r.isNull() {
			// NULL, which only a nullable argument takes (Linux 6.18
			// refuses it for __arg_nonnull; 6.12 let it through). The
			// verdict depends on the value: it is precise.
			v.markPrecise(v.cur, rn)
			if !a.nullable {
				return fmt.Sprintf("arg#%d is expected to be non-NULL", i), nil
			}
			return "", nil
		}
		p := *r
		p.flags &^= flagMaybeNull
		if err := v.globalMem(rn, &p, int(a.size)); err != nil {
			return "", err
		}
		if !a.nullable && r.maybeNull() {
			return fmt.Sprintf("arg#%d is expected to be non-NULL", i), nil
		}
	}
	return "", nil
}

// trustedArgErr is the error for an __arg_trusted argument whose struct
// the kernel's BTF lacks, or without kernel BTF.
func (v *verifier) trustedArgErr(pc, i int, a globalArg, err error) *Error {
	if _, serr := v.kernelTypes().Spec(); serr != nil {
		return v.noBTF(pc, fmt.Sprintf("arg#%d (__arg_trusted struct %s *)", i, a.kernelType), serr)
	}
	return v.errorf(pc, "arg#%d has type struct %s, but no matching kernel type: %v", i, a.kernelType, err)
}

// ptrOffDetail is check_func_arg_reg_off for an argument of a global
// function: pointers other than to memory (the context, sockets) must not
// have been moved.
func ptrOffDetail(rn isa.Register, r *reg) string {
	switch r.typ {
	case scalarReg, ptrStack, ptrPacket, ptrPacketMeta, ptrMapKey, ptrMapValue, ptrMem:
		return ""
	case ptrBTFID:
		if !r.v.IsConst() || r.v.Var.Value != 0 {
			return fmt.Sprintf("variable %s access var_off=%s disallowed", r.typeName(), r.v.Var)
		}
		return ""
	}
	switch {
	case r.off < 0:
		return fmt.Sprintf("negative offset %s ptr R%d off=%d disallowed", r.typeName(), rn, r.off)
	case r.off != 0:
		return fmt.Sprintf("dereference of modified %s ptr R%d off=%d disallowed", r.typeName(), rn, r.off)
	case !r.v.IsConst() || r.v.Var.Value != 0:
		return fmt.Sprintf("variable %s access var_off=%s disallowed", r.typeName(), r.v.Var)
	}
	return ""
}

// globalMem is check_mem_reg: size bytes at r must be readable and
// writable, as the callee may do either.
func (v *verifier) globalMem(rn isa.Register, r *reg, size int) error {
	pc := v.insnIdx
	switch r.typ {
	case ptrCtx:
		// Program types whose context is not rewritten check the last
		// byte as a context access; the others cannot pass it as memory.
		switch v.p.Kind.Type() {
		case progtype.Kprobe, progtype.Tracepoint, progtype.RawTracepoint, progtype.RawTracepointW:
			if size == 0 {
				return nil
			}
			for _, write := range []bool{false, true} {
				if _, err := v.p.Kind.CheckAccess(size-1, 1, write, false); err != nil {
					return hinted(v.errorf(pc, "invalid bpf_context access off=%d size=%d", size-1, 1), "%v", err)
				}
			}
			return nil
		}
		return v.typeMismatch(rn, r, "fp")
	case ptrMem:
		if r.flags&flagRdonly != 0 {
			return v.errorf(pc, "R%d cannot write into %s", rn, r.typeName())
		}
	}
	return v.helperMem(rn, r, size, false, &callMeta{mapIdx: -1, funcStart: -1, constKey: -1, write: true})
}

// clobberStack forgets what the stack bytes a global function was given
// held: it may have written anything there (check_stack_range_initialized
// for a helper access that is not raw).
func (v *verifier) clobberStack(r *reg, size int) {
	fr := v.cur.frames[r.frame]
	fr.own()
	lo := int(r.off) + int(r.v.SMin)
	hi := int(r.off) + int(r.v.SMax) + size
	for off := lo; off < hi && off < 0; off++ {
		if off < -maxStack {
			continue
		}
		v.growStack(fr, -off)
		s, k := byteAt(fr, off)
		if s.spilled() {
			for j := range s.kinds {
				if s.kinds[j] != stackInvalid {
					s.kinds[j] = stackMisc
				}
			}
			s.sp = nil
			if spi := (-off - 1) / 8; spi < 64 {
				fr.spillPrecise &^= 1 << uint(spi)
			}
		}
		if s.kinds[k] == stackZero || s.kinds[k] == stackInvalid {
			s.kinds[k] = stackMisc
		}
	}
}

// prepareGlobal reads global function si's prototype into the kinds of
// its arguments (btf_prepare_func_args), once.
func (v *verifier) prepareGlobal(si int) *globalFn {
	g := &v.globals[si]
	if g.prepared {
		return g
	}
	g.prepared = true
	g.args, g.bad = globalArgs(v.funcBTF(si), v.p.Kind)
	return g
}

// funcBTF returns the BTF of subprogram si, or nil.
func (v *verifier) funcBTF(si int) *btf.Func {
	for _, f := range v.p.Funcs {
		if f.Start == v.subprogs[si].start {
			return f.BTF
		}
	}
	return nil
}

// globalArgs turns a global function's prototype into its arguments, or
// says why it cannot, in the kernel's words.
func globalArgs(fn *btf.Func, kind *progtype.Kind) ([]globalArg, string) {
	if fn == nil {
		return nil, "Global functions need valid BTF"
	}
	proto, ok := fn.Type.(*btf.FuncProto)
	if !ok {
		return nil, fmt.Sprintf("Invalid type of function %s()", fn.Name)
	}
	if len(proto.Params) > 5 {
		return nil, fmt.Sprintf("Global function %s() with %d > 5 args. Buggy compiler.", fn.Name, len(proto.Params))
	}
	if !isScalarType(skipModifiers(proto.Return)) {
		return nil, fmt.Sprintf("Global function %s() doesn't return scalar. Only those are supported.", fn.Name)
	}
	args := make([]globalArg, len(proto.Params))
	for i, prm := range proto.Params {
		tags := 0
		if i < len(fn.ParamTags) {
			for _, tag := range fn.ParamTags[i] {
				name, ok := strings.CutPrefix(tag, "arg:")
				if !ok {
					continue
				}
				switch name {
				case "ctx":
					tags |= tagCtx
				case "trusted":
					tags |= tagTrusted
				case "nonnull":
					tags |= tagNonnull
				case "nullable":
					tags |= tagNullable
				case "arena":
					tags |= tagArena
				default:
					return nil, fmt.Sprintf("arg#%d has unsupported set of tags", i)
				}
			}
		}
		combo := fmt.Sprintf("arg#%d has invalid combination of tags", i)
		t := skipModifiers(prm.Type)
		ptr, isPtr := t.(*btf.Pointer)
		if !isPtr {
			if tags != 0 {
				return nil, fmt.Sprintf("arg#%d has pointer tag, but is not a pointer type", i)
			}
			if !isScalarType(t) {
				return nil, fmt.Sprintf("Arg#%d type %s in %s() is not supported yet.", i, btfKind(t), fn.Name)
			}
			args[i] = globalArg{kind: gArgScalar}
			continue
		}
		switch {
		case tags&tagCtx != 0 || isProgCtxType(ptr, kind.Type()):
			if tags&^tagCtx != 0 {
				return nil, combo
			}
			if tags&tagCtx != 0 {
				if msg := validateCtxTag(ptr, i, kind.Type()); msg != "" {
					return nil, msg
				}
			}
			args[i] = globalArg{kind: gArgCtx}
		case isDynptr(ptr):
			if tags != 0 {
				return nil, combo
			}
			args[i] = globalArg{kind: gArgDynptr}
		case tags&tagTrusted != 0:
			if tags&tagNonnull != 0 || tags&^(tagTrusted|tagNullable) != 0 {
				return nil, combo
			}
			// btf_get_ptr_to_btf_id: a struct (or its forward
			// declaration), found in the kernel's BTF by name.
			target := skipModifiers(ptr.Target)
			name := target.TypeName()
			switch tt := target.(type) {
			case *btf.Struct:
			case *btf.Fwd:
				if tt.Kind != btf.FwdStruct {
					return nil, fmt.Sprintf("arg#%d reference type('%s %s') is not a struct", i, btfKind(target), name)
				}
			default:
				return nil, fmt.Sprintf("arg#%d reference type('%s %s') is not a struct", i, btfKind(target), name)
			}
			if k := strings.Index(name, "___"); k > 0 {
				name = name[:k] // a CO-RE flavor: task_struct___local
			}
			args[i] = globalArg{kind: gArgTrusted, nullable: tags&tagNullable != 0, kernelType: name}
		case tags&tagArena != 0:
			if tags&^tagArena != 0 {
				return nil, fmt.Sprintf("arg#%d arena cannot be combined with any other tags", i)
			}
			args[i] = globalArg{kind: gArgArena}
		default:
			if tags&tagNullable != 0 {
				return nil, combo
			}
			target := skipModifiers(ptr.Target)
			size, ok := btfSize(target)
			if !ok {
				return nil, fmt.Sprintf("arg#%d reference type('%s %s') size cannot be determined: -22", i, btfKind(target), target.TypeName())
			}
			args[i] = globalArg{kind: gArgMem, size: size, nullable: tags&tagNonnull == 0}
		}
	}
	return args, ""
}

// skipModifiers skips typedefs, qualifiers and type tags
// (btf_type_skip_modifiers).
func skipModifiers(t btf.Type) btf.Type { return btf.UnderlyingType(t) }

// skipQualifiers skips qualifiers but stops at a typedef.
func skipQualifiers(t btf.Type) btf.Type { return btf.QualifiedType(t) }

func isScalarType(t btf.Type) bool {
	switch t.(type) {
	case *btf.Int, *btf.Enum:
		return true
	}
	return false
}

// btfSize is btf_resolve_size: the size of a type, through typedefs,
// qualifiers and arrays; false for types without one.
func btfSize(t btf.Type) (uint32, bool) {
	_, size, _, _, err := resolveSize(t)
	return uint32(size), err == nil
}

// btfKind names a type's BTF kind as the kernel's messages do
// (btf_type_str), where void is kind 0, "UNKNOWN".
func btfKind(t btf.Type) string {
	if _, ok := t.(*btf.Void); ok {
		return "UNKNOWN"
	}
	return btfkind.Name(t)
}

// isDynptr reports whether a pointer points to struct bpf_dynptr
// (btf_is_dynptr_ptr).
func isDynptr(p *btf.Pointer) bool {
	switch t := skipModifiers(p.Target).(type) {
	case *btf.Struct:
		return t.Name == "bpf_dynptr"
	case *btf.Fwd:
		return t.Kind == btf.FwdStruct && t.Name == "bpf_dynptr"
	}
	return false
}

// ctxStruct is the name of the struct a program type's context is
// (include/linux/bpf_types.h), "" where it is not a named struct.
func ctxStruct(t progtype.Type) string {
	switch t {
	case progtype.SocketFilter, progtype.SchedCLS, progtype.SchedACT, progtype.CgroupSKB,
		progtype.LWTIn, progtype.LWTOut, progtype.LWTXmit, progtype.LWTSeg6Local,
		progtype.SkSKB, progtype.FlowDissector:
		return "__sk_buff"
	case progtype.XDP:
		return "xdp_md"
	case progtype.CgroupSock:
		return "bpf_sock"
	case progtype.CgroupSockAddr:
		return "bpf_sock_addr"
	case progtype.SockOps:
		return "bpf_sock_ops"
	case progtype.SkMsg:
		return "sk_msg_md"
	case progtype.Kprobe:
		return "pt_regs" // bpf_user_pt_regs_t on x86
	case progtype.PerfEvent:
		return "bpf_perf_event_data"
	case progtype.RawTracepoint, progtype.RawTracepointW:
		return "bpf_raw_tracepoint_args"
	case progtype.CgroupDevice:
		return "bpf_cgroup_dev_ctx"
	case progtype.CgroupSysctl:
		return "bpf_sysctl"
	case progtype.CgroupSockopt:
		return "bpf_sockopt"
	case progtype.SkReuseport:
		return "sk_reuseport_md"
	case progtype.SkLookup:
		return "bpf_sk_lookup"
	case progtype.Netfilter:
		return "bpf_nf_ctx"
	}
	return ""
}

// isProgCtxType reports whether a pointer argument is the program type's
// context by its struct's name (btf_is_prog_ctx_type): struct __sk_buff
// (or sk_buff) for a tc program, struct xdp_md (or xdp_buff) for XDP.
func isProgCtxType(p *btf.Pointer, typ progtype.Type) bool {
	if typ == progtype.Kprobe {
		if td, ok := skipQualifiers(p.Target).(*btf.Typedef); ok && td.Name == "bpf_user_pt_regs_t" {
			return true
		}
	}
	s, ok := skipModifiers(p.Target).(*btf.Struct)
	if !ok || s.Name == "" {
		return false
	}
	want := ctxStruct(typ)
	switch {
	case want == "":
		return false
	case want == "__sk_buff" && s.Name == "sk_buff", want == "xdp_md" && s.Name == "xdp_buff",
		typ == progtype.Kprobe && s.Name == "bpf_user_pt_regs_t":
		return true
	}
	return s.Name == want
}

// validateCtxTag checks the type of an __arg_ctx argument
// (btf_validate_prog_ctx_type): void *, or the context's own type.
func validateCtxTag(p *btf.Pointer, i int, typ progtype.Type) string {
	if typ == progtype.Kprobe || typ == progtype.PerfEvent {
		if td, ok := skipQualifiers(p.Target).(*btf.Typedef); ok && td.Name == "bpf_user_pt_regs_t" {
			return ""
		}
	}
	t := skipModifiers(p.Target)
	if _, ok := t.(*btf.Void); ok {
		return ""
	}
	name := t.TypeName()
	if name == "" {
		return fmt.Sprintf("arg#%d type doesn't have a name", i)
	}
	_, isStruct := t.(*btf.Struct)
	switch typ {
	case progtype.Kprobe, progtype.PerfEvent:
		if isStruct && name == "pt_regs" {
			return ""
		}
	case progtype.RawTracepoint, progtype.RawTracepointW, progtype.Tracing, progtype.LSM, progtype.StructOps:
		if in, ok := t.(*btf.Int); ok && in.Size == 8 {
			return ""
		}
	case progtype.Tracepoint, progtype.Syscall, progtype.Ext:
		return ""
	}
	want := ctxStruct(typ)
	if want == "" {
		return fmt.Sprintf("arg#%d should be void pointer", i)
	}
	if !isStruct || name != want {
		return fmt.Sprintf("arg#%d should be `struct %s *`", i, want)
	}
	return ""
}
