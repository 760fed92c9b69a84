package verifier

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/isa"
)

// The kernel-style log (Options.Log) follows the layout of the Linux
// verifier's level 2 log (BPF_LOG_LEVEL2, what `bpftool prog load -d`
// prints), so that the two can be diffed line by line:
//
//	func#0 @0
//	0: R1=ctx() R10=fp0
//	; void *data = (void *)(long)ctx->data; @ counter.c:30
//	0: (61) r7 = *(u32 *)(r1 +4)          ; R1=ctx() R7=pkt_end()
//	...
//	7: (2d) if r1 > r7 goto pc+34         ; R1=pkt(off=34,r=34) R7=pkt_end()
//	...
//	43: (95) exit
//
//	from 7 to 42: R1=pkt(off=34,r=0) ...
//	42: R1=pkt(off=34,r=0) ...
//	42: (b4) w0 = 2                       ; R0=2
//	43: safe
//	processed 52 insns (limit 1000000) max_states_per_insn 1 total_states 3 peak_states 3 mark_read 0
//
// The rules, as the kernel applies them:
//   - An instruction line is "idx: (opcode) text", disassembled as the
//     kernel does. The registers and stack slots the instruction used
//     ("scratched") are printed after it, once the next instruction is
//     reached, on the same line after a ";" aligned to a column (at
//     least 40, a multiple of 8), or on a line of their own ("idx: ...")
//     when something else was printed in between. Conditional jumps
//     print them at once, for the fall-through side.
//   - When a path ends (exit, or a state already known to be safe), the
//     next path starts with an empty line and "from X to Y:" with the
//     whole state, or "from X to Y: safe" when it is pruned at once.
//   - A state (print_verifier_state) is the registers that hold
//     something (" R0=...") and the stack slots that are not all
//     invalid (" fp-8=..."), with " frameN:" first in a subprogram.
//   - A source line from BTF line info ("; text @ file:line") comes
//     before the first instruction of each new line.
//   - The last line counts what the exploration did.
//
// Where waggle cannot print what the kernel prints, it says something
// of the same shape: a map reference loaded by lddw ("r1 = map[name]")
// where the kernel prints the map's kernel address, and "ptr_" without
// the kernel's BTF type name.

// logState is the kernel-style log being written; nil without a log.
type logState struct {
	w io.Writer
	// line is an instruction line waiting for its state: the kernel
	// may append the state to it.
	line []byte
	// insnLen is the length of the last instruction line, as the
	// kernel counts it for the alignment (with its newline).
	insnLen int
	// regs and stack are the registers and stack slots used since the
	// state was printed last; all marks everything (after a path).
	regs  uint16
	stack uint64
	all   bool
	// from is the instruction the next path was pushed at, when a new
	// path starts (do_print_state).
	from    int
	newPath bool
	// file and lineNo are the source line printed last.
	file   string
	lineNo int
	// frame and depth are the current frame and call depth before the
	// instruction: calls and returns print both frames.
	frame *frame
	depth int
	buf   []byte
	// level1 keeps the log in out until the end, and a path's start in
	// pushed, so that the log of a path that ended can be taken back.
	level1 bool
	out    []byte
	pushed map[*state]int
}

// logStart prints what the kernel prints before exploring: the
// functions, and marks the initial state to be printed.
func (v *verifier) logStart() {
	l := &logState{w: v.log, all: true, from: -1}
	v.lg = l
	if v.opts.LogLevel&3 == 1 {
		l.level1 = true
		l.pushed = make(map[*state]int)
		return
	}
	for i, sp := range v.subprogs {
		l.printf("func#%d @%d\n", i, sp.start)
	}
	v.logLiveRegs()
}

// logPush notes where the log is when a path is saved for later
// (push_stack): at level 1, the log goes back there when it starts.
// A waiting instruction line counts as ended, as in the kernel's log.
func (v *verifier) logPush(s *state) {
	l := v.lg
	if !l.level1 {
		return
	}
	pos := len(l.out)
	if l.line != nil {
		pos += len(l.line) + 1
	}
	l.pushed[s] = pos
}

// logLiveRegs prints the registers live before each instruction, as
// Linux 6.15+ does before exploring ("Live regs before insn:"): a
// backward data-flow analysis within each function, in which a helper
// call reads its arguments and a bpf-to-bpf call r1-r5. The kernel
// prints the number of the loop (strongly connected component) an
// instruction is in before it; waggle leaves that column empty.
func (v *verifier) logLiveRegs() {
	n := len(v.insns)
	use := make([]uint16, n)
	def := make([]uint16, n)
	for pc := range v.insns {
		if !v.mid[pc] {
			use[pc], def[pc] = v.logUseDef(pc)
		}
	}
	live := make([]uint16, n)
	var succ []int
	for changed := true; changed; {
		changed = false
		for pc := n - 1; pc >= 0; pc-- {
			if v.mid[pc] {
				continue
			}
			var out uint16
			succ = v.successors(pc, succ[:0])
			for _, s := range succ {
				if s < 0 || s >= n || v.insns[pc].IsLocalCall() && s != pc+1 {
					continue
				}
				out |= live[s]
			}
			if in := use[pc] | out&^def[pc]; in != live[pc] {
				live[pc] = in
				changed = true
			}
		}
	}
	l := v.lg
	l.printf("Live regs before insn:\n")
	b := l.buf
	for pc := range v.insns {
		if v.mid[pc] {
			continue
		}
		b = fmt.Appendf(b[:0], "    %3d: ", pc)
		for r := range 10 {
			if live[pc]&(1<<r) != 0 {
				b = append(b, byte('0'+r))
			} else {
				b = append(b, '.')
			}
		}
		b = append(b, ' ')
		b = v.appendInsn(b, pc)
		b = append(b, '\n')
		l.write(b)
	}
	l.buf = b
}

// logUseDef is the registers instruction pc reads and writes, for
// logLiveRegs.
func (v *verifier) logUseDef(pc int) (use, def uint16) {
	const callerSaved = 0x3f // r0-r5
	ins := v.insns[pc]
	dst, src := uint16(1)<<(ins.Dst&15), uint16(1)<<(ins.Src&15)
	x := ins.Op.Source() == isa.SourceX
	switch c := ins.Op.Class(); c {
	case isa.ClassALU, isa.ClassALU64:
		op := ins.Op.ALUOp()
		if op != isa.ALUMov {
			use |= dst
		}
		if x && op != isa.ALUEnd && op != isa.ALUNeg {
			use |= src
		}
		def = dst
	case isa.ClassLDX:
		use, def = src, dst
	case isa.ClassST:
		use = dst
	case isa.ClassSTX:
		use = dst | src
		if ins.Op.Mode() == isa.ModeATOMIC {
			switch a := isa.AtomicOp(ins.Imm); {
			case a == isa.AtomicCmpXchg:
				use |= 1
				def = 1
			case a.Fetches():
				def = src
			}
		}
	case isa.ClassLD:
		if ins.IsLoadImm64() {
			def = dst
		} else {
			use = 1 << isa.R6
			if ins.Op.Mode() == isa.ModeIND {
				use |= src
			}
			def = callerSaved
		}
	case isa.ClassJMP, isa.ClassJMP32:
		switch {
		case ins.IsExit():
			use = 1
		case ins.Op == isa.OpCall:
			def = callerSaved
			use = callerSaved &^ 1
			if ins.IsHelperCall() {
				if pr, ok := v.p.Helpers[ins.Imm]; ok {
					use = uint16(1)<<(len(pr.Args)+1) - 2
				}
			}
		case ins.IsMayGoto() || isJA(ins):
		default:
			use = dst
			if x {
				use |= src
			}
		}
	}
	return use, def
}

// write ends a waiting instruction line, then writes b.
func (l *logState) write(b []byte) {
	if l.line != nil {
		l.line = append(l.line, '\n')
		l.emit(l.line)
		l.line = nil
	}
	l.emit(b)
}

func (l *logState) emit(b []byte) {
	if l.level1 {
		l.out = append(l.out, b...)
		return
	}
	l.w.Write(b)
}

// flush writes what a level 1 log kept.
func (l *logState) flush() {
	l.write(nil)
	if l.level1 {
		l.w.Write(l.out)
		l.out = l.out[:0]
	}
}

func (l *logState) printf(format string, args ...any) {
	l.buf = fmt.Appendf(l.buf[:0], format, args...)
	l.write(l.buf)
}

// logSafe is a path pruned at pc: a checkpoint there covers it.
func (v *verifier) logSafe(pc int) {
	l := v.lg
	if l.newPath {
		l.printf("\nfrom %d to %d: safe\n", l.from, pc)
		l.newPath = false
	} else {
		l.printf("%d: safe\n", pc)
	}
	l.all = true
}

// logPathEnd is the end of a path: the next one prints its whole state.
func (v *verifier) logPathEnd() {
	v.lg.all = true
}

// logPop is the start of the path s, pushed at an earlier instruction.
func (v *verifier) logPop(s *state) {
	l := v.lg
	l.newPath = true
	l.from = -1
	if s.path != nil {
		l.from = s.path.insn
	}
	if pos, ok := l.pushed[s]; ok {
		// Level 1: the log goes back to where the path was saved,
		// byte for byte as the kernel's does (which may be in the
		// middle of a line the state was appended to later).
		delete(l.pushed, s)
		l.write(nil)
		l.out = l.out[:min(pos, len(l.out))]
	}
}

// logInsnStart prints, before instruction pc is processed, the state the
// previous one left, the source line and the instruction.
func (v *verifier) logInsnStart(pc int) {
	l := v.lg
	s := v.cur
	f := s.cur()
	if l.newPath && !l.level1 {
		b := fmt.Appendf(l.buf[:0], "\nfrom %d to %d:", l.from, pc)
		b = v.appendState(b, s, f, true)
		l.buf = b
		l.write(b)
	}
	l.newPath = false
	v.logInsnState(pc)
	if pc < len(v.p.Lines) {
		ln := &v.p.Lines[pc]
		if ln.Line != 0 && (ln.Line != l.lineNo || ln.File != l.file) {
			file := ln.File
			if i := strings.LastIndexByte(file, '/'); i >= 0 {
				file = file[i+1:]
			}
			l.printf("; %s @ %s:%d\n", strings.TrimLeft(ln.Text, " \t\n\v\f\r"), file, ln.Line)
			l.file, l.lineNo = ln.File, ln.Line
		}
	}
	l.write(nil)
	line := strconv.AppendInt(make([]byte, 0, 80), int64(pc), 10)
	line = append(line, ": "...)
	line = v.appendInsn(line, pc)
	l.line = line
	l.insnLen = len(line) + 1
	l.frame = f
	l.depth = len(s.frames)
}

// logInsnState prints the registers and stack slots used since the
// state was printed last (print_insn_state).
func (v *verifier) logInsnState(pc int) {
	l := v.lg
	if !l.all && l.regs == 0 && l.stack == 0 {
		return
	}
	s := v.cur
	var b []byte
	if l.line != nil {
		b = l.line
		pad := max(l.insnLen+4, 40)
		pad = (pad+7)/8*8 - l.insnLen - 1
		for range pad {
			b = append(b, ' ')
		}
		b = append(b, ';')
		l.line = nil
	} else {
		b = strconv.AppendInt(l.buf[:0], int64(pc), 10)
		b = append(b, ':')
	}
	b = v.appendState(b, s, s.cur(), l.all)
	l.emit(b)
	if len(b) <= cap(l.buf) || l.buf == nil {
		l.buf = b
	}
	l.all, l.regs, l.stack = false, 0, 0
}

// logInsnEnd notes what instruction pc used, after it was processed
// (err is its result: nil, or errPathDone at the end of a path).
func (v *verifier) logInsnEnd(pc int, before *[isa.MaxRegister + 1]reg, err error) {
	l := v.lg
	ins := v.insns[pc]
	mark := func(r isa.Register) { l.regs |= 1 << r }
	stackAt := func(r isa.Register, size int) {
		p := &before[r]
		if p.typ != ptrStack || !p.v.IsConst() {
			return
		}
		off := int64(p.off) + int64(p.v.Var.Value) + int64(ins.Off)
		if off < 0 && off >= -maxStack {
			l.stack |= 1 << ((-off - 1) / 8)
		}
	}
	switch c := ins.Op.Class(); c {
	case isa.ClassALU, isa.ClassALU64:
		mark(ins.Dst)
		if ins.Op.Source() == isa.SourceX && ins.Op.ALUOp() != isa.ALUEnd && ins.Op.ALUOp() != isa.ALUNeg {
			mark(ins.Src)
		}
	case isa.ClassLDX:
		mark(ins.Dst)
		mark(ins.Src)
		stackAt(ins.Src, ins.Op.Size().Bytes())
	case isa.ClassST, isa.ClassSTX:
		mark(ins.Dst)
		if c == isa.ClassSTX {
			mark(ins.Src)
			if ins.Op.Mode() == isa.ModeATOMIC && isa.AtomicOp(ins.Imm) == isa.AtomicCmpXchg {
				mark(isa.R0)
			}
		}
		stackAt(ins.Dst, ins.Op.Size().Bytes())
	case isa.ClassLD:
		if ins.IsLoadImm64() {
			mark(ins.Dst)
		} else {
			mark(isa.R6)
			mark(isa.R0)
			if ins.Op.Mode() == isa.ModeIND {
				mark(ins.Src)
			}
		}
	case isa.ClassJMP, isa.ClassJMP32:
		switch {
		case ins.Op == isa.OpCall:
			if ins.IsLocalCall() {
				v.logCall()
			}
			l.regs |= 0x3f // r0, and the arguments (clobbered: not printed)
			if ins.IsHelperCall() {
				pr, ok := v.p.Helpers[ins.Imm]
				if ok && pr.Callback != nil {
					// Setting up the callback uses the whole state.
					l.all = true
				}
				for i, at := range pr.Args {
					if at.Base() == helpers.ArgPtrToDynptr {
						// The dynptr the call made or used: Linux
						// prints it after the call.
						stackAt(isa.R1+isa.Register(i), 16)
					}
				}
			}
		case ins.IsExit():
			if len(v.cur.frames) < l.depth && l.frame != nil {
				// prepare_func_exit reads r0 without marking it.
				v.logReturn()
			} else {
				mark(isa.R0)
			}
		case ins.IsMayGoto() || isJA(ins):
		default:
			mark(ins.Dst)
			if ins.Op.Source() == isa.SourceX {
				mark(ins.Src)
			}
			if err == nil {
				// check_cond_jmp_op prints the fall-through side's
				// state at once.
				v.logInsnState(pc)
			}
		}
	}
	if err == errPathDone {
		l.all = true
	}
}

// logCall prints both frames after a bpf-to-bpf call.
func (v *verifier) logCall() {
	l := v.lg
	s := v.cur
	if len(s.frames) < 2 {
		return
	}
	b := append(l.buf[:0], "caller:\n"...)
	b = v.appendState(b, s, s.frames[len(s.frames)-2], true)
	b = append(b, "callee:\n"...)
	b = v.appendState(b, s, s.cur(), true)
	l.buf = b
	l.write(b)
}

// logReturn prints both frames after a return to the caller; the next
// instruction starts a path of its own in the kernel's log.
func (v *verifier) logReturn() {
	l := v.lg
	s := v.cur
	b := append(l.buf[:0], "returning from callee:\n"...)
	b = v.appendState(b, s, l.frame, true)
	b = fmt.Appendf(b, "to caller at %d:\n", s.insn)
	b = v.appendState(b, s, s.cur(), true)
	l.buf = b
	l.write(b)
	l.newPath = true
	l.from = v.insnIdx
}

// logError ends the log of a rejected program as the kernel's ends: the
// message after the instruction that failed, then the counts.
func (v *verifier) logError(err error) {
	var e *Error
	if errors.As(err, &e) {
		v.lg.printf("%s\n", e.Msg)
	}
	v.logSummary()
}

// logSummary is the last line.
func (v *verifier) logSummary() {
	if v.opts.LogLevel&4 != 0 {
		// BPF_LOG_STATS (print_verification_stats).
		v.lg.printf("verification time %d usec\n", time.Since(v.start).Microseconds())
		b := []byte("stack depth ")
		for i, sp := range v.subprogs {
			if i > 0 {
				b = append(b, '+')
			}
			b = strconv.AppendInt(b, int64(sp.stackDepth), 10)
		}
		v.lg.printf("%s\n", b)
	}
	v.lg.printf("processed %d insns (limit %d) max_states_per_insn %d total_states %d peak_states %d mark_read %d\n",
		v.processed, MaxInsns, v.maxStatesPerInsn, v.totalStates, v.peakStates, 0)
	v.lg.flush()
}

// appendState appends frame f of s as print_verifier_state does: all of
// it, or only what was used since the last print; then a newline.
func (v *verifier) appendState(b []byte, s *state, f *frame, all bool) []byte {
	l := v.lg
	frameNo := -1
	for i, g := range s.frames {
		if g == f {
			frameNo = i
		}
	}
	if frameNo < 0 {
		frameNo = len(s.frames) // a returned callee
	}
	if frameNo > 0 {
		b = fmt.Appendf(b, " frame%d:", frameNo)
	}
	for i := range f.regs {
		r := &f.regs[i]
		if r.typ == notInit || !all && l.regs&(1<<i) == 0 {
			continue
		}
		b = append(b, " R"...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, '=')
		rc := *r
		rc.precise = false // see appendSlot
		b = rc.appendFormat(b, v, frameNo)
	}
	for i := range f.stack {
		if !all && (i >= 64 || l.stack&(1<<i) == 0) {
			continue
		}
		b = v.appendSlot(b, &f.stack[i], i, frameNo)
	}
	b = appendRefs(b, s, frameNo, len(s.frames))
	if f.callback {
		if f.async {
			b = append(b, " async_cb"...)
		} else {
			b = append(b, " cb"...)
		}
	}
	return append(b, '\n')
}

func appendRefs(b []byte, s *state, frameNo, frames int) []byte {
	if len(s.refs) == 0 || frameNo != frames-1 {
		return b
	}
	for i, r := range s.refs {
		if i == 0 {
			b = append(b, " refs="...)
		} else {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(r.id), 10)
	}
	return b
}

var slotChars = [...]byte{stackInvalid: '?', stackSpill: 'r', stackMisc: 'm', stackZero: '0', stackDynptr: 'd'}

// appendSlot appends stack slot i, " fp-8=...", unless it is all
// invalid.
func (v *verifier) appendSlot(b []byte, sl *slot, i, frameNo int) []byte {
	valid := false
	for _, k := range sl.kinds {
		if k != stackInvalid {
			valid = true
		}
	}
	if !valid {
		return b
	}
	if sl.kinds[0] == stackDynptr && sl.sp != nil {
		// print_verifier_state: a dynptr once, at its first slot, as
		// fp-16=dynptr_ringbuf(id=1,ref_id=2,dynptr_id=1). Linux 6.18
		// prints dynptr_id=1 for every dynptr (what it prints there is
		// the first-slot flag, as observed), and so does waggle.
		d := sl.sp
		if d.dyn&dynFirst == 0 {
			return b
		}
		b = append(b, " fp"...)
		b = strconv.AppendInt(b, int64(-8*(i+1)), 10)
		b = append(b, "=dynptr_"...)
		b = append(b, dynTypeName(d.dyn)...)
		b = append(b, '(')
		sep := ""
		for _, f := range []struct {
			name string
			v    uint32
		}{{"id=", d.id}, {"ref_id=", d.ref}, {"dynptr_id=", 1}} {
			if f.v != 0 {
				b = append(b, sep...)
				b = append(b, f.name...)
				b = strconv.AppendUint(b, uint64(f.v), 10)
				sep = ","
			}
		}
		return append(b, ')')
	}
	b = append(b, " fp"...)
	b = strconv.AppendInt(b, int64(-8*(i+1)), 10)
	b = append(b, '=')
	n := 8
	if sl.spilled() && sl.sp != nil {
		// Only the bytes above a narrower spill are printed as kinds.
		n = 0
		for n < 8 && sl.kinds[n] != stackSpill {
			n++
		}
	}
	for _, k := range sl.kinds[:n] {
		c := byte('?')
		if int(k) < len(slotChars) {
			c = slotChars[k]
		}
		b = append(b, c)
	}
	if sl.spilled() && sl.sp != nil {
		// Linux 6.18 marks precision in checkpoints, not in the state
		// being explored, which is the one the log prints: its log
		// shows no "P" there, and neither does waggle's.
		r := *sl.sp
		r.precise = false
		b = r.appendFormat(b, v, frameNo)
	}
	return b
}

// format prints the register as the kernel's log does; frameNo is the
// frame whose state it is part of (stack pointers into other frames say
// which).
func (r *reg) format(v *verifier) string {
	return string(r.appendFormat(nil, v, -1))
}

// appendFormat appends the register as print_reg_state does.
func (r *reg) appendFormat(b []byte, v *verifier, frameNo int) []byte {
	if r.typ == notInit {
		return append(b, '?')
	}
	if r.typ == scalarReg {
		if r.precise {
			b = append(b, 'P')
		}
		if r.v.IsConst() {
			return appendSnum(b, int64(r.v.Var.Value))
		}
	}
	b = append(b, r.typeName()...)
	if r.typ == ptrBTFID && v != nil {
		b = append(b, v.btfName(r.mapIdx)...)
	}
	if r.typ == ptrStack {
		if frameNo >= 0 && int(r.frame) != frameNo {
			b = fmt.Appendf(b, "[%d]", r.frame)
		}
		if r.v.IsConst() {
			return appendSnum(b, int64(r.v.Var.Value)+int64(r.off))
		}
	}
	b = append(b, '(')
	sep := false
	item := func(s string) {
		if sep {
			b = append(b, ',')
		}
		b = append(b, s...)
		sep = true
	}
	if r.id != 0 {
		id := "id=" + strconv.FormatUint(uint64(r.id&^addConst), 10)
		if r.id&addConst != 0 && r.typ == scalarReg {
			id += fmt.Sprintf("%+d", r.off)
		}
		item(id)
	}
	if r.ref != 0 {
		item("ref_obj_id=" + strconv.FormatUint(uint64(r.ref), 10))
	}
	switch r.typ {
	case ptrDynptr:
		item("type=" + dynTypeName(r.dyn))
	case constMapPtr, ptrMapValue, ptrMapKey:
		if v != nil && r.mapIdx >= 0 && int(r.mapIdx) < len(v.p.Maps) {
			m := v.p.Maps[r.mapIdx].Spec
			if name := kernelMapName(m.Name); name != "" {
				item("map=" + name)
			}
			item(fmt.Sprintf("ks=%d,vs=%d", m.KeySize, m.ValueSize))
		}
	}
	if r.typ != scalarReg && r.off != 0 {
		item("off=" + string(appendSnum(nil, int64(r.off))))
	}
	switch r.typ {
	case ptrPacket, ptrPacketMeta:
		item("r=" + string(appendUnum(nil, uint64(int64(r.rng)))))
	case ptrMem:
		item("sz=" + string(appendUnum(nil, uint64(r.size))))
	}
	if r.v.IsConst() {
		if r.v.Var.Value != 0 {
			item("imm=" + string(appendSnum(nil, int64(r.v.Var.Value))))
		}
	} else {
		s := r.v.String() // "scalar(ranges,var_off=...)"
		s = strings.TrimSuffix(strings.TrimPrefix(s, "scalar("), ")")
		if s != "" {
			item(s)
		}
	}
	return append(b, ')')
}

// kernelMapName is the name the kernel keeps of a map: at most 15 bytes.
func kernelMapName(name string) string {
	if len(name) > 15 {
		name = name[:15]
	}
	return name
}

func appendSnum(b []byte, x int64) []byte {
	if x >= -32768 && x <= 32767 {
		return strconv.AppendInt(b, x, 10)
	}
	return fmt.Appendf(b, "%#x", uint64(x))
}

func appendUnum(b []byte, x uint64) []byte {
	if x <= 65535 {
		return strconv.AppendUint(b, x, 10)
	}
	return fmt.Appendf(b, "%#x", x)
}

var (
	kALU  = [16]string{"+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>=", "endian"}
	kJmp  = [16]string{"jmp", "==", ">", ">=", "&", "!=", "s>", "s>=", "call", "exit", "<", "<=", "s<", "s<="}
	kSize = [4]string{"u32", "u16", "u8", "u64"}
	kSx   = [4]string{"s32", "s16", "s8", "?"}
	kAtom = [16]string{0: "add", 4: "or", 5: "and", 10: "xor"}
)

// appendInsn appends instruction pc as the kernel's disassembler
// (print_bpf_insn) prints it: "(bf) r1 = r8", "(61) r7 = *(u32 *)(r1 +4)",
// "(2d) if r1 > r7 goto pc+34", "(85) call bpf_map_lookup_elem#1".
func (v *verifier) appendInsn(b []byte, pc int) []byte {
	ins := v.insns[pc]
	b = fmt.Appendf(b, "(%02x) ", uint8(ins.Op))
	c := ins.Op.Class()
	rc := byte('r')
	if c == isa.ClassALU || c == isa.ClassJMP32 {
		rc = 'w'
	}
	size := kSize[(ins.Op.Size()>>3)&3]
	switch c {
	case isa.ClassALU, isa.ClassALU64:
		op := ins.Op.ALUOp()
		name := kALU[op>>4]
		if (op == isa.ALUDiv || op == isa.ALUMod) && ins.Off == 1 {
			name = "s" + name
		}
		switch {
		case op == isa.ALUEnd:
			if c == isa.ClassALU64 {
				return fmt.Appendf(b, "r%d = bswap%d r%d", ins.Dst, ins.Imm, ins.Dst)
			}
			e := "le"
			if ins.Op.Source() == isa.SourceBE {
				e = "be"
			}
			return fmt.Appendf(b, "r%d = %s%d r%d", ins.Dst, e, ins.Imm, ins.Dst)
		case op == isa.ALUNeg:
			return fmt.Appendf(b, "%c%d = -%c%d", rc, ins.Dst, rc, ins.Dst)
		case c == isa.ClassALU64 && op == isa.ALUMov && ins.Op.Source() == isa.SourceX && ins.Off == 1:
			return fmt.Appendf(b, "r%d = addr_space_cast(r%d, %d, %d)", ins.Dst, ins.Src, uint32(ins.Imm)>>16, uint16(ins.Imm))
		case c == isa.ClassALU64 && op == isa.ALUMov && ins.Op.Source() == isa.SourceX && ins.Off == -1:
			return fmt.Appendf(b, "r%d = &(void __percpu *)(r%d)", ins.Dst, ins.Src)
		case ins.Op.Source() == isa.SourceX:
			sx := ""
			if op == isa.ALUMov {
				switch ins.Off {
				case 8:
					sx = "(s8)"
				case 16:
					sx = "(s16)"
				case 32:
					sx = "(s32)"
				}
			}
			return fmt.Appendf(b, "%c%d %s %s%c%d", rc, ins.Dst, name, sx, rc, ins.Src)
		}
		return fmt.Appendf(b, "%c%d %s %d", rc, ins.Dst, name, ins.Imm)
	case isa.ClassSTX:
		if ins.Op.Mode() == isa.ModeMEM {
			return fmt.Appendf(b, "*(%s *)(r%d %+d) = r%d", size, ins.Dst, ins.Off, ins.Src)
		}
		if ins.Op.Mode() != isa.ModeATOMIC {
			return fmt.Appendf(b[:len(b)-6], "BUG_%02x", uint8(ins.Op))
		}
		w := ""
		if ins.Op.Size() == isa.SizeDW {
			w = "64"
		}
		a := isa.AtomicOp(ins.Imm)
		switch {
		case a == isa.AtomicAdd || a == isa.AtomicAnd || a == isa.AtomicOr || a == isa.AtomicXor:
			return fmt.Appendf(b, "lock *(%s *)(r%d %+d) %s r%d", size, ins.Dst, ins.Off, kALU[a>>4], ins.Src)
		case a.Fetches() && kAtom[a.ALU()>>4] != "" && a != isa.AtomicXchg && a != isa.AtomicCmpXchg:
			return fmt.Appendf(b, "r%d = atomic%s_fetch_%s((%s *)(r%d %+d), r%d)", ins.Src, w, kAtom[a.ALU()>>4], size, ins.Dst, ins.Off, ins.Src)
		case a == isa.AtomicCmpXchg:
			return fmt.Appendf(b, "r0 = atomic%s_cmpxchg((%s *)(r%d %+d), r0, r%d)", w, size, ins.Dst, ins.Off, ins.Src)
		case a == isa.AtomicXchg:
			return fmt.Appendf(b, "r%d = atomic%s_xchg((%s *)(r%d %+d), r%d)", ins.Src, w, size, ins.Dst, ins.Off, ins.Src)
		}
		return fmt.Appendf(b[:len(b)-6], "BUG_%02x", uint8(ins.Op))
	case isa.ClassST:
		return fmt.Appendf(b, "*(%s *)(r%d %+d) = %d", size, ins.Dst, ins.Off, ins.Imm)
	case isa.ClassLDX:
		sz := size
		if ins.Op.Mode() == isa.ModeMEMSX {
			sz = kSx[(ins.Op.Size()>>3)&3]
		}
		return fmt.Appendf(b, "r%d = *(%s *)(r%d %+d)", ins.Dst, sz, ins.Src, ins.Off)
	case isa.ClassLD:
		switch ins.Op.Mode() {
		case isa.ModeABS:
			return fmt.Appendf(b, "r0 = *(%s *)skb[%d]", size, ins.Imm)
		case isa.ModeIND:
			return fmt.Appendf(b, "r0 = *(%s *)skb[r%d + %d]", size, ins.Src, ins.Imm)
		}
		var hi int32
		if pc+1 < len(v.insns) {
			hi = v.insns[pc+1].Imm
		}
		switch ins.Src {
		case isa.PseudoMapFD, isa.PseudoMapIdx:
			return fmt.Appendf(b, "r%d = map[%s]", ins.Dst, v.mapName(ins.Imm))
		case isa.PseudoMapValue, isa.PseudoMapIdxValue:
			return fmt.Appendf(b, "r%d = map[%s]+%d", ins.Dst, v.mapName(ins.Imm), uint32(hi))
		}
		return fmt.Appendf(b, "r%d = 0x%x", ins.Dst, uint64(hi)<<32|uint64(uint32(ins.Imm)))
	}
	// Jumps.
	op := ins.Op.JumpOp()
	switch {
	case ins.Op == isa.OpCall && ins.Src == isa.PseudoCall:
		return fmt.Appendf(b, "call pc%+d", ins.Imm)
	case ins.Op == isa.OpCall:
		name := "unknown"
		if ins.Src == 0 {
			if n := helpers.Name(ins.Imm); n != "" {
				name = "bpf_" + n
			}
		} else if ins.Src == isa.PseudoKfuncCall {
			name = "kernel-function"
		}
		return fmt.Appendf(b, "call %s#%d", name, ins.Imm)
	case ins.Op == isa.OpJA:
		return fmt.Appendf(b, "goto pc%+d", ins.Off)
	case ins.Op == isa.OpMayGoto && ins.Src == 0:
		return fmt.Appendf(b, "may_goto pc%+d", ins.Off)
	case ins.Op == isa.OpJA32:
		return fmt.Appendf(b, "gotol pc%+d", ins.Imm)
	case ins.Op == isa.OpExit:
		return append(b, "exit"...)
	case ins.Op.Source() == isa.SourceX:
		return fmt.Appendf(b, "if %c%d %s %c%d goto pc%+d", rc, ins.Dst, kJmp[op>>4], rc, ins.Src, ins.Off)
	}
	return fmt.Appendf(b, "if %c%d %s 0x%x goto pc%+d", rc, ins.Dst, kJmp[op>>4], uint32(ins.Imm), ins.Off)
}

// mapName names map i of the program for the log.
func (v *verifier) mapName(i int32) string {
	if i >= 0 && int(i) < len(v.p.Maps) {
		if n := v.p.Maps[i].Spec.Name; n != "" {
			return kernelMapName(n)
		}
	}
	return "idx:" + strconv.Itoa(int(i))
}

// logf prints a line of the log, when there is one.
func (v *verifier) logf(format string, args ...any) {
	if v.lg != nil {
		v.lg.printf(format, args...)
	}
}
