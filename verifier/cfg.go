package verifier

import (
	"errors"
	"fmt"
	"sort"

	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/isa"
)

// checkIntReturns is check_btf_func's rule for functions other than the
// entry: one with LD_ABS or LD_IND (whose failure returns 0 from it) or a
// tail call (which returns the callee's result from it) must return an
// int or an enum by its BTF prototype. A program without BTF func info
// may have neither outside its entry (check_abnormal_return).
func (v *verifier) checkIntReturns() error {
	protos := map[int]*btf.FuncProto{}
	for _, f := range v.p.Funcs {
		if f.BTF == nil {
			continue
		}
		if fp, ok := f.BTF.Type.(*btf.FuncProto); ok {
			protos[f.Start] = fp
		}
	}
	for _, sp := range v.subprogs[1:] {
		fp := protos[sp.start]
		if fp == nil {
			if len(protos) > 0 {
				continue
			}
			for pc := sp.start; pc < sp.end; pc++ {
				ins := v.insns[pc]
				switch {
				case v.mid[pc]:
				case ins.Op.Class() == isa.ClassLD && (ins.Op.Mode() == isa.ModeABS || ins.Op.Mode() == isa.ModeIND):
					return hinted(v.shapeErr(pc, "LD_ABS is not allowed in subprogs without BTF"),
						"build with -g (BTF): a function using LD_ABS or LD_IND needs its prototype")
				case ins.IsHelperCall() && ins.Imm == helpers.IDTailCall:
					return hinted(v.shapeErr(pc, "tail_call is not allowed in subprogs without BTF"),
						"build with -g (BTF): a function making a tail call needs its prototype")
				}
			}
			continue
		}
		var ldAbs, tailCall bool
		for pc := sp.start; pc < sp.end; pc++ {
			ins := v.insns[pc]
			switch {
			case ins.IsLoadImm64():
				pc++
			case ins.Op.Class() == isa.ClassLD && (ins.Op.Mode() == isa.ModeABS || ins.Op.Mode() == isa.ModeIND):
				ldAbs = true
			case ins.IsHelperCall() && ins.Imm == helpers.IDTailCall:
				tailCall = true
			}
		}
		scalarRet := false
		switch t := btf.UnderlyingType(fp.Return).(type) {
		case *btf.Int:
			scalarRet = t.Size <= 8
		case *btf.Enum:
			scalarRet = true
		}
		switch {
		case scalarRet:
		case ldAbs:
			return hinted(v.shapeErr(sp.start, "LD_ABS is only allowed in functions that return 'int'."),
				"function %s loads from the packet with LD_ABS or LD_IND, which return 0 from it when the load fails: declare it to return int", sp.name)
		case tailCall:
			return hinted(v.shapeErr(sp.start, "tail_call is only allowed in functions that return 'int'."),
				"function %s makes a tail call, whose program's result it returns: declare it to return int", sp.name)
		}
	}
	return nil
}

// checkShape checks what does not depend on values (check_subprogs and
// check_cfg): valid instructions, functions that end in exit or a jump,
// jumps that stay in their function and land on an instruction, no
// unreachable instruction, no loops for unprivileged programs. It marks
// the slots where checkpoints may be stored.
func (v *verifier) checkShape() error {
	for pc := 0; pc+1 < len(v.insns); pc++ {
		lo, hi := v.insns[pc], v.insns[pc+1]
		if !lo.IsLoadImm64() {
			continue
		}
		// resolve_pseudo_ldimm64: a map itself has nothing in the second
		// slot's imm (a map value has its offset there).
		if hi.Op == 0 && hi.Dst == 0 && hi.Src == 0 && hi.Off == 0 && hi.Imm != 0 &&
			(lo.Src == isa.PseudoMapIdx || lo.Src == isa.PseudoMapFD) {
			return v.shapeErr(pc, "unrecognized bpf_ld_imm64 insn")
		}
		pc++
	}
	if err := isa.ValidateProgram(v.insns); err != nil {
		var ie *isa.Error
		if errors.As(err, &ie) {
			if ie.Detail != "" {
				return v.shapeErr(ie.Index, "%v: %s", ie.Err, ie.Detail)
			}
			return v.shapeErr(ie.Index, "%v", ie.Err)
		}
		return v.shapeErr(-1, "%v", err)
	}
	n := len(v.insns)
	v.mid = make([]bool, n)
	for pc := 0; pc < n; pc++ {
		if v.insns[pc].IsLoadImm64() && pc+1 < n {
			v.mid[pc+1] = true
			pc++
		}
	}
	// Functions: the entry, every bpf-to-bpf call target and every
	// function pointer.
	starts := map[int]bool{0: true}
	for pc := 0; pc < n; pc++ {
		ins := v.insns[pc]
		if v.opts.Unprivileged && (ins.IsLocalCall() || ins.IsLoadImm64() && ins.Src == isa.PseudoFunc) {
			return hinted(v.shapeErr(pc, "loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN"),
				"unprivileged programs are one function: mark the callee __always_inline, or load with CAP_BPF")
		}
		switch {
		case ins.IsLocalCall():
			t := pc + 1 + int(ins.Imm)
			if t < 0 || t >= n {
				return v.shapeErr(pc, "function calls to an offset out of range: call pc%+d goes to insn %d, outside the program (%d insns)", ins.Imm, t, n)
			}
			starts[t] = true
		case ins.IsLoadImm64() && ins.Src == isa.PseudoFunc:
			t := pc + 1 + int(ins.Imm)
			if t < 0 || t >= n {
				return v.shapeErr(pc, "function pointer to insn %d is outside the program (%d insns)", t, n)
			}
			starts[t] = true
		case ins.Op.Class() == isa.ClassJMP && ins.Src == isa.PseudoKfuncCall && ins.Op == isa.OpCall:
			return v.shapeErr(pc, "calls of kernel functions (kfuncs) are not supported")
		}
		if ins.IsLoadImm64() {
			pc++
		}
	}
	var list []int
	for s := range starts {
		list = append(list, s)
	}
	sort.Ints(list)
	names := map[int]string{}
	global := map[int]bool{}
	for _, f := range v.p.Funcs {
		names[f.Start] = f.Name
		if f.BTF != nil && f.BTF.Linkage == 1 && f.Start != 0 { // btf.GlobalFunc
			global[f.Start] = true
		}
	}
	for i, s := range list {
		end := n
		if i+1 < len(list) {
			end = list[i+1]
		}
		sp := subprog{start: s, end: end, name: names[s], global: global[s]}
		for pc := s; pc < end; pc++ {
			if ins := v.insns[pc]; ins.IsHelperCall() && ins.Imm == helpers.IDTailCall && !v.mid[pc] {
				sp.tailCall = true
			}
		}
		v.subprogs = append(v.subprogs, sp)
	}
	if v.subprogs[0].name == "" {
		v.subprogs[0].name = v.p.Name
	}
	// Jumps stay in their function; functions end in exit or ja.
	for si, sp := range v.subprogs {
		for pc := sp.start; pc < sp.end; pc++ {
			ins := v.insns[pc]
			if ins.IsLoadImm64() {
				if pc+1 >= sp.end {
					return v.shapeErr(pc, "the second half of ldimm64 insn %d is in another function", pc)
				}
				pc++
				continue
			}
			if ins.Op.Class() != isa.ClassJMP && ins.Op.Class() != isa.ClassJMP32 {
				continue
			}
			if ins.IsLocalCall() || ins.IsHelperCall() || ins.IsExit() || ins.Op == isa.OpCall {
				continue
			}
			t, ok := ins.JumpTarget(pc)
			if !ok {
				continue
			}
			if t < sp.start || t >= sp.end {
				return v.shapeErr(pc, "jump out of range from insn %d to %d", pc, t)
			}
		}
		last := v.insns[sp.end-1]
		if sp.end-2 >= sp.start && v.insns[sp.end-2].IsLoadImm64() {
			last = isa.Instruction{}
		}
		if !last.IsExit() && !isJA(last) {
			return v.shapeErr(sp.end-1, "last insn is not an exit or jmp (function %s falls off its end at insn %d)", v.funcName(si), sp.end-1)
		}
	}
	if err := v.checkIntReturns(); err != nil {
		return err
	}
	return v.checkCFG()
}

func isJA(ins isa.Instruction) bool {
	return (ins.Op.Class() == isa.ClassJMP || ins.Op.Class() == isa.ClassJMP32) && ins.Op.JumpOp() == isa.JumpA && ins.Src == 0 && ins.Op.Source() == isa.SourceK
}

func (v *verifier) funcName(si int) string {
	if n := v.subprogs[si].name; n != "" {
		return n
	}
	return fmt.Sprintf("at insn %d", v.subprogs[si].start)
}

// successors returns the slots control may go to after pc, and whether
// the edge to each is a branch (a jump taken) rather than a fall-through.
func (v *verifier) successors(pc int, buf []int) []int {
	ins := v.insns[pc]
	next := pc + ins.Width()
	cls := ins.Op.Class()
	if cls != isa.ClassJMP && cls != isa.ClassJMP32 {
		return append(buf, next)
	}
	switch {
	case ins.IsExit():
		return buf
	case ins.Op == isa.OpCall:
		buf = append(buf, next)
		if ins.IsLocalCall() {
			t, _ := ins.JumpTarget(pc)
			buf = append(buf, t)
		}
		return buf
	}
	t, _ := ins.JumpTarget(pc)
	if isJA(ins) {
		return append(buf, t)
	}
	return append(buf, next, t)
}

// checkCFG walks the control-flow graph depth first from the entry: every
// slot must be reached, no jump may land in the middle of a lddw, and an
// unprivileged program may not loop (a back edge).
func (v *verifier) checkCFG() error {
	n := len(v.insns)
	const (
		white = iota
		grey
		black
	)
	color := make([]uint8, n)
	mid := v.mid
	type item struct {
		pc   int
		next int // index of the next successor to visit
	}
	var succ []int
	stack := []item{{pc: 0}}
	color[0] = grey
	// Function pointers are entries too.
	var extra []int
	for pc := 0; pc < n; pc++ {
		ins := v.insns[pc]
		if ins.IsLoadImm64() && ins.Src == isa.PseudoFunc {
			extra = append(extra, pc+1+int(ins.Imm))
		}
	}
	mark := func(pc int) { v.aux[pc].prune = true }
	for len(stack) > 0 || len(extra) > 0 {
		if len(stack) == 0 {
			e := extra[0]
			extra = extra[1:]
			if color[e] == white {
				color[e] = grey
				stack = append(stack, item{pc: e})
			}
			continue
		}
		top := &stack[len(stack)-1]
		succ = v.successors(top.pc, succ[:0])
		if top.next >= len(succ) {
			color[top.pc] = black
			stack = stack[:len(stack)-1]
			continue
		}
		w := succ[top.next]
		top.next++
		from := top.pc
		ins := v.insns[from]
		if w < 0 || w >= n {
			return v.shapeErr(from, "jump out of range from insn %d to %d", from, w)
		}
		if mid[w] {
			return v.shapeErr(from, "jump into the middle of ldimm64 insn %d", w-1)
		}
		// Checkpoint slots, as the kernel marks them (visit_insn).
		cls := ins.Op.Class()
		if cls == isa.ClassJMP || cls == isa.ClassJMP32 {
			switch {
			case ins.Op == isa.OpCall:
				mark(from + 1)
				if ins.IsLocalCall() {
					mark(from)
				}
				if ins.IsHelperCall() && v.p.Helpers[ins.Imm].Callback != nil {
					mark(from)
					v.aux[from].loopHead = true
				}
			case ins.IsMayGoto():
				mark(from)
				v.aux[from].loopHead = true
				mark(w)
			case isJA(ins):
				mark(w)
			case !ins.IsExit():
				// A conditional jump and its branch target, not its
				// fall-through (push_insn marks BRANCH edges only).
				mark(from)
				if w != from+1 || ins.Off == 0 {
					mark(w)
				}
			}
		}
		switch color[w] {
		case white:
			color[w] = grey
			stack = append(stack, item{pc: w})
		case grey:
			// A back edge: a loop.
			if ins.IsLocalCall() && w != from+1 {
				return v.shapeErr(from, "recursive call from insn %d to %d", from, w)
			}
			if v.opts.Unprivileged {
				return v.shapeErr(from, "back-edge from insn %d to %d", from, w)
			}
			v.aux[w].loopHead = true
			mark(w)
		}
	}
	for pc := 0; pc < n; pc++ {
		if mid[pc] {
			continue
		}
		if color[pc] == white {
			return v.shapeErr(pc, "unreachable insn %d", pc)
		}
	}
	return nil
}

// computeLiveness finds, for every slot, the registers that may be read
// before being written on some path from there (a backward data-flow
// analysis within each function; calls read r1-r5 and write r0-r5).
func (v *verifier) computeLiveness() {
	n := len(v.insns)
	changed := true
	var succ []int
	for changed {
		changed = false
		for pc := n - 1; pc >= 0; pc-- {
			if v.mid[pc] {
				continue // the second half of a lddw is never executed
			}
			use, def := v.useDef(pc)
			var out uint16
			ins := v.insns[pc]
			succ = v.successors(pc, succ[:0])
			for _, s := range succ {
				if s < 0 || s >= n {
					continue
				}
				if ins.IsLocalCall() && s != pc+1 {
					continue // the callee has its own liveness
				}
				out |= v.aux[s].live
			}
			in := use | out&^def
			if in != v.aux[pc].live {
				v.aux[pc].live = in
				changed = true
			}
		}
	}
}

func (v *verifier) liveIn(pc int) uint16 {
	if pc < 0 || pc >= len(v.aux) {
		return 0x3ff
	}
	return v.aux[pc].live
}

// useDef returns the registers an instruction reads and writes.
func (v *verifier) useDef(pc int) (use, def uint16) {
	ins := v.insns[pc]
	bit := func(r isa.Register) uint16 { return 1 << r }
	const args = 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5
	const clobber = args | 1
	switch ins.Op.Class() {
	case isa.ClassALU, isa.ClassALU64:
		op := ins.Op.ALUOp()
		if op != isa.ALUMov {
			use |= bit(ins.Dst)
		}
		if ins.Op.Source() == isa.SourceX && op != isa.ALUNeg && op != isa.ALUEnd {
			use |= bit(ins.Src)
		}
		def |= bit(ins.Dst)
	case isa.ClassLDX:
		use |= bit(ins.Src)
		def |= bit(ins.Dst)
	case isa.ClassST:
		use |= bit(ins.Dst)
	case isa.ClassSTX:
		use |= bit(ins.Dst) | bit(ins.Src)
		if ins.Op.Mode() == isa.ModeATOMIC {
			switch {
			case isa.AtomicOp(ins.Imm) == isa.AtomicCmpXchg:
				use |= 1
				def |= 1
			case isa.AtomicOp(ins.Imm)&isa.AtomicFetch != 0:
				def |= bit(ins.Src)
			}
		}
	case isa.ClassLD:
		if ins.IsLoadImm64() {
			def |= bit(ins.Dst)
		} else { // LD_ABS, LD_IND
			use |= 1 << 6
			if ins.Op.Mode() == isa.ModeIND {
				use |= bit(ins.Src)
			}
			def |= clobber
		}
	case isa.ClassJMP, isa.ClassJMP32:
		switch {
		case ins.IsExit():
			use |= 1
		case ins.Op == isa.OpCall:
			use |= args
			def |= clobber
		case ins.IsMayGoto(), isJA(ins):
		default:
			use |= bit(ins.Dst)
			if ins.Op.Source() == isa.SourceX {
				use |= bit(ins.Src)
			}
		}
	}
	return use &^ (1 << 10), def
}

// checkStackDepth checks the stack of the deepest chain of calls
// (check_max_stack_depth): at most 512 bytes in all.
func (v *verifier) checkStackDepth() error {
	type edge struct{ from, to int }
	idx := func(start int) int {
		for i, sp := range v.subprogs {
			if sp.start == start {
				return i
			}
		}
		return -1
	}
	var calls [][]int = make([][]int, len(v.subprogs))
	for si, sp := range v.subprogs {
		for pc := sp.start; pc < sp.end; pc++ {
			ins := v.insns[pc]
			if ins.IsLocalCall() {
				if t := idx(pc + 1 + int(ins.Imm)); t >= 0 {
					calls[si] = append(calls[si], t)
				}
			}
		}
	}
	// Frames are rounded to 16 bytes, as Linux rounds them for the JIT
	// (round_up_stack_depth; its interpreter, which Debian's kernels
	// never use, rounds to 32).
	round := func(d int) int { return (d + 15) / 16 * 16 }
	seen := map[[3]int]bool{}
	var walk func(si, depth, total int, chain []int) error
	walk = func(si, depth, total int, chain []int) error {
		if si != 0 && v.subprogs[si].tailCall && total >= 256 {
			// A tail call unwinds its own frame, not its callers':
			// Linux keeps their stack under 256 bytes.
			return &Error{Program: v.p.Name, Insn: v.subprogs[si].start,
				Msg:  fmt.Sprintf("tail_calls are not allowed when call stack of previous frames is %d bytes. Too large", total),
				Hint: "a function that tail-calls must be reached with less than 256 bytes on its callers' stacks"}
		}
		total += round(v.subprogs[si].stackDepth)
		chain = append(chain, si)
		if total > maxStack {
			return &Error{Program: v.p.Name, Insn: v.subprogs[si].start, Msg: fmt.Sprintf("combined stack size of %d calls is %d. Too large", len(chain), total),
				Hint: "keep less on the stack: the functions on one chain of calls share 512 bytes"}
		}
		if depth > maxFrames {
			// Linux counts the frames below the one that does not fit.
			return &Error{Program: v.p.Name, Insn: v.subprogs[si].start, Msg: fmt.Sprintf("the call stack of %d frames is too deep !", depth-1)}
		}
		// A function reached again at the same depth with the same
		// stack below it has nothing new to tell: without this, calls
		// many times over (global functions are verified once, so
		// exploration does not bound them) take exponential time.
		k := [3]int{si, depth, total}
		if seen[k] {
			return nil
		}
		seen[k] = true
		for _, c := range calls[si] {
			// Global functions too: verified on their own, they still
			// run on their caller's stack.
			if err := walk(c, depth+1, total, chain); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(0, 1, 0, nil)
}
