package progtype

// This file finds which loads and stores of a program go through its
// context pointer, so that they can be rewritten. It is a stand-in for the
// verifier, which tracks every register's type anyway (kernel/bpf/verifier.c
// records PTR_TO_CTX accesses in insn_aux_data[].ptr_type, and
// convert_ctx_accesses rewrites exactly those). When waggle's verifier
// exists, it supplies the same list and this analysis goes away.
//
// It is a forward data-flow analysis to a fixed point over the control-flow
// graph. Each register, and each 8-byte stack slot of each call frame,
// holds an abstract value:
//
//	scalar     anything not tracked (numbers, packet and map pointers)
//	number     a value that is no pointer in a program the kernel accepts
//	ctx+k      the context pointer plus a constant
//	ctx+k|num  ctx+k on some paths, a number on the others
//	ctx+?      the context pointer plus an unknown amount
//	fp[f]+k    the frame pointer of call frame f plus a constant
//	fp+?       some frame pointer at an unknown offset
//	func(t)    the address of the subprogram at slot t (lddw PseudoFunc)
//	mixed      the context on some paths, something else on others
//
// r1 holds ctx+0 at entry. mov copies values, add and sub with an
// immediate move ctx and frame pointers, 8-byte stores to the stack spill
// them and 8-byte loads fill them back, bpf-to-bpf calls pass r1-r5 to the
// callee (analysed once per call chain, so a subprogram called with the
// context and with something else is told apart), callbacks of bpf_loop,
// bpf_for_each_map_elem, bpf_find_vma and bpf_user_ringbuf_drain receive
// what the helper passes them, and helper calls clobber r0-r5. Where paths
// meet, values join: equal values stay, different offsets become unknown,
// the context against anything else becomes mixed.
//
// A load or store through ctx+0 is a context access. Through ctx+k (k ≠ 0)
// or ctx+? it is an error, as in the kernel ("dereference of modified ctx
// ptr"), and so is one through a mixed register: the rewrite cannot be
// right on every path (the kernel: "same insn cannot be used with different
// pointers"). Atomic operations on the context are errors too.
//
// What it does not do: track scalar values, so a branch that only one
// value could take is assumed taken both ways, and a store through a stack
// pointer whose offset is not constant may have overwritten any spilled
// value; nor follow a pointer stored through a pointer it does not track
// (into a map value). The kernel, which tracks values and paths, accepts
// programs this imprecision would make ambiguous. One rule, justified by
// what the kernel accepts, resolves them:
//
// Context or number. A register or slot that holds the context on some
// paths and a number on the others (a constant, a 32-bit result, a load
// narrower than 8 bytes, a stack slot a partial or variable-offset store
// may have overwritten) is the context wherever it is dereferenced. In a
// program the kernel accepted, no path dereferences a number ("R6 invalid
// mem access 'scalar'"), and a variable-offset stack store turns the spills
// it may cover into numbers (check_stack_write_var_off marks them
// STACK_MISC), so the number paths to such an access are paths the kernel
// proved infeasible: the context is the only value it can see there. In a
// program the kernel refused, the rewrite may be applied to a number: the
// checked interpreter then validates that access as any other, and it
// faults (a number is no address the run owns) instead of reading the wrong
// memory. The rule is not extended to the context against an untracked
// value ("scalar", which may be a packet or map pointer) or a stack
// pointer: there both could be real, and the kernel refuses one
// instruction that sees the context and another pointer ("same insn cannot
// be used with different pointers"), so that stays an error.
//
// Context or another pointer. A load or store whose base is the unmodified
// context on some paths and an untracked value or a stack pointer on
// others is ambiguous here, where the kernel, path by path, saw only one
// of them on the paths it found feasible (it refuses an instruction that
// sees both). Kind.Rewrite settles it with the type's context rules: if
// the kernel would refuse it as a context access (an 8-byte load of
// xdp_md.data, a narrow load of a pointer field), no feasible path makes it
// one, and it is left as it is; if its rewrite changes nothing (most fields
// keep their UAPI offset and size in the shadow context), it is right
// either way; only an access the rewrite would change is an error.
//
// Programs it accepts are rewritten as the kernel would rewrite them;
// programs the kernel rejects may be analysed imprecisely, but never crash
// it.

import (
	"fmt"
	"sort"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/isa"
)

// Limits of the analysis.
const (
	maxFrames     = 8       // MAX_CALL_FRAMES (include/linux/bpf_verifier.h)
	stackSlots    = 512 / 8 // MAX_BPF_STACK / 8
	analysisLimit = 1 << 20 // instructions processed, BPF_COMPLEXITY_LIMIT_INSNS
)

// vkind is the kind of an abstract value.
type vkind uint8

const (
	vScalar vkind = iota
	vNum
	vCtx
	vCtxNum
	vCtxVar
	vStack
	vStackVar
	vFunc
	vCtxOr // ctx+off on some paths, an untracked value or a stack pointer on the others
	vMixed
)

// value is an abstract register or stack-slot value.
type value struct {
	kind  vkind
	frame uint8 // vStack: the call frame
	off   int32 // vCtx, vCtxNum, vStack: the constant offset; vFunc: the target slot
}

var (
	scalar = value{}
	number = value{kind: vNum}
)

func (v value) isCtx() bool   { return v.kind == vCtx || v.kind == vCtxNum || v.kind == vCtxVar }
func (v value) isStack() bool { return v.kind == vStack || v.kind == vStackVar }

// ambiguous reports whether v is the context on some paths and something
// else, not a number, on others.
func (v value) ambiguous() bool { return v.kind == vCtxOr || v.kind == vMixed }

func (v value) String() string {
	switch v.kind {
	case vNum:
		return "number"
	case vCtx:
		return fmt.Sprintf("ctx%+d", v.off)
	case vCtxNum:
		return fmt.Sprintf("ctx%+d|number", v.off)
	case vCtxVar:
		return "ctx+?"
	case vStack:
		return fmt.Sprintf("fp[%d]%+d", v.frame, v.off)
	case vStackVar:
		return "fp+?"
	case vFunc:
		return fmt.Sprintf("func(%d)", v.off)
	case vCtxOr:
		return fmt.Sprintf("ctx%+d|other", v.off)
	case vMixed:
		return "mixed"
	}
	return "scalar"
}

// join is the least upper bound of two values.
func join(a, b value) value {
	if b.kind == vNum || b.kind == vCtxNum && a.kind == vCtx {
		a, b = b, a
	}
	switch {
	case a == b:
		return a
	case a.kind == vMixed || b.kind == vMixed:
		return value{kind: vMixed}
	case a.kind == vNum && (b.kind == vCtx || b.kind == vCtxNum):
		return value{kind: vCtxNum, off: b.off} // see "Context or number"
	case a.kind == vCtxNum && b.kind == vCtx && a.off == b.off:
		return a
	case a.kind == vNum && b.kind == vCtxVar:
		return b
	case a.kind == vCtxOr || b.kind == vCtxOr:
		if b.kind == vCtxOr {
			a, b = b, a
		}
		if b.isCtx() && (b.kind == vCtxVar || b.off != a.off) {
			return value{kind: vMixed}
		}
		return a
	case a.isCtx() && b.isCtx():
		return value{kind: vCtxVar}
	case a.kind == vCtx || a.kind == vCtxNum:
		return value{kind: vCtxOr, off: a.off} // see "Context or another pointer"
	case b.kind == vCtx || b.kind == vCtxNum:
		return value{kind: vCtxOr, off: b.off}
	case a.isCtx() || b.isCtx():
		return value{kind: vMixed}
	case a.isStack() && b.isStack():
		return value{kind: vStackVar}
	case a.isStack() || b.isStack():
		// A stack pointer on some paths only: stores through it may
		// overwrite spilled values, so it stays a (vague) stack pointer.
		return value{kind: vStackVar}
	}
	return scalar
}

// slot is a stack slot that holds something other than a number. A slot
// that is absent holds a number: it was never written (the kernel lets
// privileged programs read such bytes, as a scalar), or only with numbers.
type slot struct {
	frame, idx uint8
	v          value
}

// state is the abstract machine state before an instruction.
type state struct {
	regs  [11]value
	slots []slot // sorted by (frame, idx)
}

func (s *state) clone() *state {
	c := &state{regs: s.regs}
	c.slots = append([]slot(nil), s.slots...)
	return c
}

func slotLess(a, b slot) bool {
	return a.frame < b.frame || a.frame == b.frame && a.idx < b.idx
}

func (s *state) find(frame, idx uint8) int {
	return sort.Search(len(s.slots), func(i int) bool {
		return !slotLess(s.slots[i], slot{frame: frame, idx: idx})
	})
}

func (s *state) get(frame, idx uint8) value {
	i := s.find(frame, idx)
	if i < len(s.slots) && s.slots[i].frame == frame && s.slots[i].idx == idx {
		return s.slots[i].v
	}
	return number
}

func (s *state) set(frame, idx uint8, v value) {
	i := s.find(frame, idx)
	present := i < len(s.slots) && s.slots[i].frame == frame && s.slots[i].idx == idx
	switch {
	case present && v == number:
		s.slots = append(s.slots[:i], s.slots[i+1:]...)
	case present:
		s.slots[i].v = v
	case v != number:
		s.slots = append(s.slots, slot{})
		copy(s.slots[i+1:], s.slots[i:])
		s.slots[i] = slot{frame: frame, idx: idx, v: v}
	}
}

// clobberAll models a store through a pointer into the stack at an unknown
// place: every spilled value may have been overwritten, and those it was
// are numbers (the kernel's check_stack_write_var_off makes them
// STACK_MISC).
func (s *state) clobberAll() {
	for i := range s.slots {
		s.slots[i].v = join(s.slots[i].v, number)
	}
}

// dropFrames forgets frames deeper than depth (after a return) and values
// pointing into them.
func (s *state) dropFrames(depth int) {
	kept := s.slots[:0]
	for _, sl := range s.slots {
		if int(sl.frame) <= depth {
			if sl.v.kind == vStack && int(sl.v.frame) > depth {
				sl.v = scalar
			}
			if sl.v != number {
				kept = append(kept, sl)
			}
		}
	}
	s.slots = kept
	for r := range s.regs {
		if s.regs[r].kind == vStack && int(s.regs[r].frame) > depth {
			s.regs[r] = scalar
		}
	}
}

// joinInto joins src into dst and reports whether dst changed.
func joinInto(dst, src *state) bool {
	changed := false
	for r := range dst.regs {
		if j := join(dst.regs[r], src.regs[r]); j != dst.regs[r] {
			dst.regs[r], changed = j, true
		}
	}
	// Slots absent on one side hold a number there.
	var out []slot
	i, j := 0, 0
	for i < len(dst.slots) || j < len(src.slots) {
		var a, b slot
		switch {
		case j == len(src.slots) || i < len(dst.slots) && slotLess(dst.slots[i], src.slots[j]):
			a = dst.slots[i]
			b = slot{frame: a.frame, idx: a.idx, v: number}
			i++
		case i == len(dst.slots) || slotLess(src.slots[j], dst.slots[i]):
			b = src.slots[j]
			a = slot{frame: b.frame, idx: b.idx, v: number}
			j++
		default:
			a, b = dst.slots[i], src.slots[j]
			i++
			j++
		}
		v := join(a.v, b.v)
		if v != a.v {
			changed = true
		}
		if v != number {
			out = append(out, slot{frame: a.frame, idx: a.idx, v: v})
		}
	}
	dst.slots = out
	return changed
}

// frameCtx is one subprogram analysed for one call chain.
type frameCtx struct {
	entry  int       // first slot of the subprogram
	end    int       // one past its last slot
	depth  int       // its call frame: 0 for the main program
	caller *frameCtx // nil for the main program
	site   int       // the call instruction in the caller
	call   *state    // joined caller state at the call
	in     map[int]*state
	exit   *state               // joined state at its exits
	subs   map[[2]int]*frameCtx // callees by (call site, target)
	callbk bool                 // entered from a helper (a callback), not a call
}

// FlowError is an instruction whose memory access the analysis cannot
// classify, or that uses the context pointer in a way the kernel refuses.
type FlowError struct {
	Insn   int
	Reg    isa.Register // the register at fault; NoRegister if none
	Reason string
}

// NoRegister is FlowError.Reg for errors that concern no register.
const NoRegister isa.Register = 0xff

// Error returns "instruction N: reason".
func (e *FlowError) Error() string { return fmt.Sprintf("instruction %d: %s", e.Insn, e.Reason) }

// Unwrap returns ErrContextAccess.
func (e *FlowError) Unwrap() error { return ErrContextAccess }

// analysis is the state of one run of the data-flow analysis.
type analysis struct {
	prog    []isa.Instruction
	entries []int  // subprogram entries, sorted
	leader  []bool // slots that start a block
	uses    []value
	reached []bool
	work    []workItem
	steps   int
}

type workItem struct {
	f  *frameCtx
	pc int
}

// ContextAccesses returns, in increasing order, the slot indices of the
// loads and stores whose address is the context pointer (r1 at entry, as it
// flows through moves, spills, fills and calls). It validates the program
// first (isa.ValidateProgram). Loads and stores through a register that
// holds the context on some paths only, or the context plus an offset, and
// atomic operations on the context are errors, as they are in the kernel.
// Code no path reaches is not classified.
//
// This analysis stands in for the verifier, which will supply the same
// list; see the comment at the top of flow.go. Kind.Rewrite resolves some
// accesses this function calls ambiguous with the type's context rules.
func ContextAccesses(prog []isa.Instruction) ([]int, error) {
	at, ambiguous, err := contextAccesses(prog)
	if err != nil {
		return nil, err
	}
	if len(ambiguous) > 0 {
		ins := prog[ambiguous[0]]
		base := ins.Dst
		if ins.Op.Class() == isa.ClassLDX {
			base = ins.Src
		}
		return nil, ambiguityError(ambiguous[0], base)
	}
	return at, nil
}

// contextAccesses is ContextAccesses, with the accesses whose base is the
// unmodified context on some paths and an untracked value or a stack
// pointer on others listed apart, in ambiguous.
func contextAccesses(prog []isa.Instruction) (at, ambiguous []int, err error) {
	if err := isa.ValidateProgram(prog); err != nil {
		return nil, nil, err
	}
	a := &analysis{prog: prog}
	if err := a.run(); err != nil {
		return nil, nil, err
	}
	for pc, v := range a.uses {
		if !a.reached[pc] {
			continue
		}
		switch v.kind {
		case vCtx, vCtxNum:
			at = append(at, pc)
		case vCtxOr:
			ambiguous = append(ambiguous, pc)
		}
	}
	return at, ambiguous, nil
}

func (a *analysis) run() error {
	n := len(a.prog)
	a.uses = make([]value, n)
	a.reached = make([]bool, n)
	a.leader = make([]bool, n+1)
	entries := map[int]bool{0: true}
	for pc := 0; pc < n; pc++ {
		ins := a.prog[pc]
		if t, ok := ins.JumpTarget(pc); ok {
			a.leader[t] = true
			if ins.IsLocalCall() || ins.IsLoadImm64() {
				entries[t] = true
			}
		}
		if c := ins.Op.Class(); c.IsJump() {
			a.leader[pc+1] = true
		}
		if ins.IsLoadImm64() {
			pc++
		}
	}
	for e := range entries {
		a.entries = append(a.entries, e)
		a.leader[e] = true
	}
	sort.Ints(a.entries)

	main := a.newFrame(0, 0, nil, -1)
	st := &state{}
	st.regs[isa.R1] = value{kind: vCtx}
	st.regs[isa.R10] = value{kind: vStack, frame: 0}
	main.in[0] = st
	a.work = append(a.work, workItem{main, 0})
	for len(a.work) > 0 {
		it := a.work[len(a.work)-1]
		a.work = a.work[:len(a.work)-1]
		if err := a.block(it.f, it.pc); err != nil {
			return err
		}
	}
	return nil
}

// newFrame makes the analysis context of the subprogram starting at entry.
func (a *analysis) newFrame(entry, depth int, caller *frameCtx, site int) *frameCtx {
	i := sort.SearchInts(a.entries, entry)
	end := len(a.prog)
	if i+1 < len(a.entries) {
		end = a.entries[i+1]
	}
	return &frameCtx{entry: entry, end: end, depth: depth, caller: caller, site: site,
		in: map[int]*state{}, subs: map[[2]int]*frameCtx{}}
}

// flowTo joins s into the block starting at pc of f and queues it if its
// state changed.
func (a *analysis) flowTo(f *frameCtx, from, pc int, s *state) error {
	if pc < f.entry || pc >= f.end {
		return &FlowError{Insn: from, Reg: NoRegister, Reason: fmt.Sprintf("jump to instruction %d leaves the subprogram [%d, %d)", pc, f.entry, f.end)}
	}
	if old, ok := f.in[pc]; ok {
		if !joinInto(old, s) {
			return nil
		}
	} else {
		f.in[pc] = s.clone()
	}
	a.work = append(a.work, workItem{f, pc})
	return nil
}

// block runs the transfer functions from the block start pc to the end of
// the block.
func (a *analysis) block(f *frameCtx, pc int) error {
	s := f.in[pc].clone()
	for {
		if a.steps++; a.steps > analysisLimit {
			return &FlowError{Insn: pc, Reg: NoRegister, Reason: fmt.Sprintf("program too complex for the context analysis (more than %d instructions processed)", analysisLimit)}
		}
		ins := a.prog[pc]
		next := pc + ins.Width()
		switch c := ins.Op.Class(); {
		case c == isa.ClassLDX, c == isa.ClassST, c == isa.ClassSTX:
			if err := a.memory(s, pc, ins); err != nil {
				return err
			}
		case c == isa.ClassLD:
			if ins.IsLoadImm64() {
				switch ins.Src {
				case isa.PseudoFunc:
					t, _ := ins.JumpTarget(pc)
					s.regs[ins.Dst] = value{kind: vFunc, off: int32(t)}
				case 0:
					s.regs[ins.Dst] = number
				default: // a map, a map value, a kernel symbol
					s.regs[ins.Dst] = scalar
				}
			} else { // legacy packet loads clobber r0-r5 like a call
				for r := isa.R1; r <= isa.R5; r++ {
					s.regs[r] = scalar
				}
				s.regs[isa.R0] = number
			}
		case c.IsALU():
			alu(s, ins)
		case c.IsJump():
			return a.jump(f, s, pc, ins)
		}
		a.reached[pc] = true
		if next >= f.end || next >= len(a.prog) {
			return &FlowError{Insn: pc, Reg: NoRegister, Reason: "execution runs past the end of the subprogram"}
		}
		pc = next
		if a.leader[pc] {
			return a.flowTo(f, pc, pc, s)
		}
	}
}

// memory classifies a load, store or atomic and applies its effect.
func (a *analysis) memory(s *state, pc int, ins isa.Instruction) error {
	base := ins.Dst
	if ins.Op.Class() == isa.ClassLDX {
		base = ins.Src
	}
	v := s.regs[base]
	u := v
	if a.reached[pc] {
		u = join(a.uses[pc], v)
	}
	a.uses[pc] = u
	a.reached[pc] = true
	atomic := ins.Op.Class() == isa.ClassSTX && ins.Op.Mode() == isa.ModeATOMIC
	switch u.kind {
	case vMixed:
		return ambiguityError(pc, base)
	case vCtxOr:
		if u.off != 0 {
			return ambiguityError(pc, base)
		}
		// The context or another pointer: Kind.Rewrite decides with the
		// type's rules (see "Context or another pointer").
	case vCtxVar:
		return &FlowError{Insn: pc, Reg: base, Reason: fmt.Sprintf("%s points into the context at an offset that is not constant; the context may only be accessed through the unmodified pointer, with the offset in the instruction", base)}
	case vCtx, vCtxNum:
		if u.off != 0 {
			return &FlowError{Insn: pc, Reg: base, Reason: fmt.Sprintf("dereference of modified ctx pointer %s (ctx%+d): put the offset in the instruction, %s", base, u.off, fmt.Sprintf("*(u32 *)(%s + %d)", base, int(u.off)+int(ins.Off)))}
		}
		if atomic {
			return &FlowError{Insn: pc, Reg: base, Reason: "atomic operations on the context are not allowed (the kernel: BPF_ATOMIC stores into ctx)"}
		}
	}
	size := ins.Op.Size().Bytes()
	switch ins.Op.Class() {
	case isa.ClassLDX:
		out := scalar
		switch {
		case ins.Op.Mode() == isa.ModeMEM && size == 8 && v.kind == vStack:
			if f, idx, ok := stackSlot(v, ins.Off); ok {
				out = s.get(f, idx)
			}
		case u.isCtx() || u.kind == vCtxOr:
			// A narrow context field may be a pointer (xdp_md.data).
		case size < 8 || ins.Op.Mode() == isa.ModeMEMSX:
			out = number // no pointer is loaded in pieces
		}
		s.regs[ins.Dst] = out
	case isa.ClassST, isa.ClassSTX:
		stored := number // an immediate, or the result of an atomic operation
		if ins.Op.Class() == isa.ClassSTX && !atomic && size == 8 {
			stored = s.regs[ins.Src]
		}
		switch v.kind {
		case vStack:
			lo := int(v.off) + int(ins.Off)
			for b := lo &^ 7; b < lo+size; b += 8 {
				if f, idx, ok := stackSlot(value{kind: vStack, frame: v.frame, off: int32(b)}, 0); ok {
					if b == lo && size == 8 {
						s.set(f, idx, stored)
					} else {
						s.set(f, idx, number) // a pointer overwritten in part is none
					}
				}
			}
		case vStackVar, vCtxOr:
			s.clobberAll()
		}
		if atomic {
			op := isa.AtomicOp(ins.Imm)
			if op == isa.AtomicCmpXchg {
				s.regs[isa.R0] = number
			} else if op.Fetches() {
				s.regs[ins.Src] = number
			}
		}
	}
	return nil
}

func ambiguityError(pc int, base isa.Register) *FlowError {
	return &FlowError{Insn: pc, Reg: base, Reason: fmt.Sprintf("cannot tell whether %s points to the context: it does on some paths and not on others, and one rewrite cannot serve both (the kernel: same insn cannot be used with different pointers)", base)}
}

// stackSlot returns the 8-byte slot a stack pointer plus off designates, if
// it is aligned and inside the frame.
func stackSlot(v value, off int16) (uint8, uint8, bool) {
	o := int(v.off) + int(off)
	if o < -512 || o >= 0 || o%8 != 0 {
		return 0, 0, false
	}
	return v.frame, uint8((o + 512) / 8), true
}

// alu applies an arithmetic instruction.
func alu(s *state, ins isa.Instruction) {
	d := s.regs[ins.Dst]
	src := scalar
	if ins.Op.Source() == isa.SourceX {
		src = s.regs[ins.Src]
	}
	op := ins.Op.ALUOp()
	if ins.Op.Class() == isa.ClassALU || op != isa.ALUMov && op != isa.ALUAdd && op != isa.ALUSub {
		// The kernel refuses these operations on pointers: where they see
		// a value that is a pointer on some paths only, the paths it is a
		// number on are the feasible ones.
		d, src = numberIfAmbiguous(d), numberIfAmbiguous(src)
	}
	if ins.Op.Class() == isa.ClassALU { // 32-bit: never a usable pointer
		if op == isa.ALUMov {
			d = scalar // the old value does not matter
		}
		switch {
		case d.ambiguous() || src.ambiguous():
			s.regs[ins.Dst] = value{kind: vMixed}
		case d.isCtx() || src.isCtx():
			s.regs[ins.Dst] = value{kind: vCtxVar}
		default:
			// The kernel refuses 32-bit arithmetic on pointers, and a
			// 32-bit copy of one is a number ("partial copy of pointer").
			s.regs[ins.Dst] = number
		}
		return
	}
	var out value
	switch {
	case op == isa.ALUMov && ins.Op.Source() == isa.SourceK:
		out = number
	case op == isa.ALUMov && ins.Off == 0:
		out = src
	case op == isa.ALUMov: // movsx
		out = pointerMangled(src)
	case (op == isa.ALUAdd || op == isa.ALUSub) && ins.Op.Source() == isa.SourceK:
		imm := ins.Imm
		if op == isa.ALUSub {
			imm = -imm
		}
		switch d.kind {
		case vCtx, vCtxNum, vCtxOr, vStack:
			out = value{kind: d.kind, frame: d.frame, off: d.off + imm}
		case vFunc:
			out = scalar
		default:
			out = d
		}
	case op == isa.ALUAdd:
		switch {
		case d.ambiguous() || src.ambiguous():
			out = value{kind: vMixed}
		case d.isCtx() || src.isCtx():
			out = value{kind: vCtxVar}
		case d.isStack() || src.isStack():
			out = value{kind: vStackVar}
		case d.kind == vNum && src.kind == vNum:
			out = number
		}
	case op == isa.ALUSub:
		switch {
		case d.ambiguous() || src.ambiguous():
			out = value{kind: vMixed}
		case d.isCtx() && src.isCtx(), d.isStack() && src.isStack():
			out = number // pointer difference
		case d.isCtx():
			out = value{kind: vCtxVar}
		case d.isStack():
			out = value{kind: vStackVar}
		case d.kind == vNum && src.kind == vNum:
			out = number
		}
	default:
		out = pointerMangled(d)
	}
	s.regs[ins.Dst] = out
}

// numberIfAmbiguous is v, or a number if v is a pointer on some paths
// only (the context or another pointer, or a number) and so a number on
// every path where an operation the kernel refuses on pointers runs.
func numberIfAmbiguous(v value) value {
	if v.kind == vCtxNum || v.ambiguous() {
		return number
	}
	return v
}

// pointerMangled is the value of an operation the kernel forbids on
// pointers (multiplication, shifts, bitwise operations, sign-extending
// moves): a context stays recognisably a context, so a later access
// through it is reported; anything else is a number, since a program that
// made it from a pointer is refused.
func pointerMangled(v value) value {
	switch {
	case v.ambiguous():
		return value{kind: vMixed}
	case v.isCtx():
		return value{kind: vCtxVar}
	case v.isStack():
		return value{kind: vStackVar}
	}
	return number
}

// jump handles the last instruction of a block.
func (a *analysis) jump(f *frameCtx, s *state, pc int, ins isa.Instruction) error {
	a.reached[pc] = true
	switch {
	case ins.IsExit():
		return a.exit(f, s)
	case ins.IsLocalCall():
		t, _ := ins.JumpTarget(pc)
		entry := s.clone()
		for r := isa.R6; r <= isa.R9; r++ {
			entry.regs[r] = scalar
		}
		entry.regs[isa.R0] = scalar
		return a.call(f, s, pc, t, entry, false)
	case ins.Op.JumpOp() == isa.Call: // helper, kfunc or callx
		post := s.clone()
		for r := isa.R0; r <= isa.R5; r++ {
			post.regs[r] = scalar
		}
		if ins.IsHelperCall() {
			for r := isa.R1; r <= isa.R5; r++ {
				if v := s.regs[r]; v.kind == vFunc {
					entry := s.clone()
					for q := isa.R0; q <= isa.R9; q++ {
						entry.regs[q] = scalar
					}
					// The callback's registers that the helper
					// passes on from its arguments (the callback
					// context); the rest are numbers here.
					cb, _ := helpers.CallbackOf(ins.Imm)
					for i, r := range cb.Regs {
						if r.Kind == helpers.CallbackCallerArg {
							entry.regs[isa.R1+isa.Register(i)] = s.regs[isa.R1+isa.Register(r.Arg)]
						}
					}
					if err := a.call(f, post, pc, int(v.off), entry, true); err != nil {
						return err
					}
				}
			}
		}
		return a.flowTo(f, pc, pc+1, post)
	}
	t, _ := ins.JumpTarget(pc)
	if err := a.flowTo(f, pc, t, s); err != nil {
		return err
	}
	if ins.Op == isa.OpJA || ins.Op == isa.OpJA32 {
		return nil
	}
	return a.flowTo(f, pc, pc+1, s)
}

// call enters the subprogram at target from the call at pc with the
// caller's registers in entry (r10 is set here), for a bpf-to-bpf call or a
// helper's callback.
func (a *analysis) call(f *frameCtx, s *state, pc, target int, entry *state, callback bool) error {
	if f.depth+1 >= maxFrames {
		return &FlowError{Insn: pc, Reg: NoRegister, Reason: fmt.Sprintf("the call nests more than %d frames (MAX_CALL_FRAMES)", maxFrames)}
	}
	for c := f; c != nil; c = c.caller {
		if c.entry == target {
			return &FlowError{Insn: pc, Reg: NoRegister, Reason: fmt.Sprintf("recursive call of the subprogram at instruction %d", target)}
		}
	}
	key := [2]int{pc, target}
	sub := f.subs[key]
	if sub == nil {
		sub = a.newFrame(target, f.depth+1, f, pc)
		sub.callbk = callback
		f.subs[key] = sub
	}
	if sub.call == nil {
		sub.call = s.clone()
	} else {
		joinInto(sub.call, s)
	}
	// The callee's frame starts empty; then r10 points to it (in this
	// order: dropping the frames below the caller's would forget r10).
	entry.dropFrames(f.depth)
	entry.regs[isa.R10] = value{kind: vStack, frame: uint8(sub.depth)}
	if err := a.flowTo(sub, pc, target, entry); err != nil {
		return err
	}
	if sub.exit != nil {
		return a.flowTo(f, pc, pc+1, a.returnState(sub))
	}
	return nil
}

// exit joins the state at an exit of f into its exit state and, if it
// changed, flows the return into the caller.
func (a *analysis) exit(f *frameCtx, s *state) error {
	if f.caller == nil {
		return nil
	}
	if f.exit == nil {
		f.exit = s.clone()
	} else if !joinInto(f.exit, s) {
		return nil
	}
	return a.flowTo(f.caller, f.site, f.site+1, a.returnState(f))
}

// returnState is the caller's state after the call that entered f: its own
// r6-r9 and r10, the callee's r0 (a callback's is the helper's, a scalar),
// r1-r5 clobbered, and the stack as the callee left it.
func (a *analysis) returnState(f *frameCtx) *state {
	r := f.exit.clone()
	r.dropFrames(f.depth - 1)
	for q := isa.R6; q <= isa.R10; q++ {
		r.regs[q] = f.call.regs[q]
	}
	for q := isa.R1; q <= isa.R5; q++ {
		r.regs[q] = scalar
	}
	if f.callbk {
		r.regs[isa.R0] = scalar
	}
	return r
}
