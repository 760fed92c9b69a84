package verifier

import (
	"errors"
	"strings"

	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/verifier/scalar"
)

// errPathDone ends the current path: it reached the program's exit, or a
// checkpoint that covers it.
var errPathDone = errors.New("path done")

func newFrame(callsite, subprog, frameno int) *frame {
	f := &frame{callsite: callsite, subprog: subprog}
	f.regs[isa.R10] = reg{typ: ptrStack, frame: uint8(frameno), v: scalar.Const(0)}
	return f
}

// explore is do_check: it follows one path at a time, depth first, from
// the entry, and keeps the other sides of branches to explore later.
func (v *verifier) explore() error {
	st := &state{frames: []*frame{newFrame(-1, 0, 0)}, branches: 1, last: -1}
	st.frames[0].regs[isa.R1].setPointer(ptrCtx)
	return v.exploreFrom(st)
}

// exploreFrom explores every path from the state st.
func (v *verifier) exploreFrom(st *state) error {
	v.cur = st
	for {
		err := v.step()
		if err == nil {
			continue
		}
		if err != errPathDone {
			return err
		}
		v.finishPath(v.cur)
		v.recycle(v.cur)
		if len(v.pending) == 0 {
			return nil
		}
		v.cur = v.pending[len(v.pending)-1]
		v.pending = v.pending[:len(v.pending)-1]
		if v.lg != nil {
			v.logPop(v.cur)
		}
	}
}

// finishPath counts a path as explored in the checkpoints above it
// (update_branch_counts).
func (v *verifier) finishPath(s *state) {
	for st := s; st != nil; st = st.parent {
		st.branches--
		if st.branches > 0 {
			return
		}
	}
}

// push saves a copy of the current state, to continue at slot target
// later (push_stack).
func (v *verifier) push(s *state, withEntry bool) {
	if withEntry {
		v.record(s, v.entry)
	}
	if s.parent != nil {
		s.parent.branches++
	}
	s.branches = 1
	if v.lg != nil {
		v.logPush(s)
	}
	v.pending = append(v.pending, s)
}

// step processes one instruction of the current path.
func (v *verifier) step() error {
	s := v.cur
	pc := s.insn
	v.insnIdx = pc
	if pc < 0 || pc >= len(v.insns) {
		return v.errorf(pc, "invalid insn idx %d insn_cnt %d", pc, len(v.insns))
	}
	// Like the kernel, count an instruction before pruning: a pruned
	// path's last instruction counts too.
	v.processed++
	if v.processed > v.maxInsns {
		return hinted(v.errorf(pc, "BPF program is too large. Processed %d insn", v.processed),
			"the verifier explores every path, one at a time; split the program with tail calls or bpf_loop, or make branches converge")
	}
	if v.aux[pc].prune {
		pruned, err := v.isStateVisited(pc)
		if err != nil {
			return err
		}
		if pruned {
			if v.lg != nil {
				v.logSafe(pc)
			}
			return errPathDone
		}
	}
	if v.processed&4095 == 0 && v.ctx != nil {
		if err := v.ctx.Err(); err != nil {
			return v.stopped(pc, err)
		}
	}
	v.aux[pc].seen = true
	if s.speculative && v.aux[pc].nospec {
		// A barrier stands before pc: speculation stops there.
		return errPathDone
	}
	ins := v.insns[pc]
	v.entry = histEntry{insn: int32(pc), frame: int8(len(s.frames) - 1), sframe: -1}
	if v.lg != nil {
		v.logInsnStart(pc)
		v.logBefore = s.cur().regs
	}
	var err error
	switch ins.Op.Class() {
	case isa.ClassALU, isa.ClassALU64:
		err = v.checkALU(ins)
		s.insn++
	case isa.ClassLDX:
		err = v.checkLoad(ins)
		s.insn++
	case isa.ClassST, isa.ClassSTX:
		if ins.Op.Mode() == isa.ModeATOMIC {
			err = v.checkAtomic(ins)
		} else {
			err = v.checkStore(ins)
		}
		s.insn++
	case isa.ClassLD:
		if ins.IsLoadImm64() {
			err = v.checkLoadImm64(ins, v.insns[pc+1])
			s.insn += 2
		} else {
			err = v.checkLdAbs(ins)
			s.insn++
		}
	case isa.ClassJMP, isa.ClassJMP32:
		v.jmpsProcessed++
		err = v.checkJump(ins)
	default:
		err = v.errorf(pc, "unknown insn class %d", ins.Op.Class())
	}
	if v.lg != nil && (err == nil || err == errPathDone) {
		v.logInsnEnd(pc, &v.logBefore, err)
	}
	if err == nil {
		v.record(s, v.entry)
	}
	if err != nil && err != errPathDone && s.speculative && recoverableWithNospec(err) {
		// Linux 6.17 on: what only a mispredicted path would do is
		// prevented with a speculation barrier (nospec) before pc, not
		// refused; later speculative paths stop there too. waggle's
		// engines do not speculate, so the barrier has nothing to emit.
		v.aux[pc].nospec = true
		v.aux[pc].aluState, v.aux[pc].aluLimit = 0, 0
		return errPathDone
	}
	return err
}

// recoverableWithNospec is error_recoverable_with_nospec: the refusals
// (EPERM, EACCES, EINVAL) a speculation barrier can stand in for, not the
// budget, the verifier's own faults or a stopped context.
func recoverableWithNospec(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return !strings.HasPrefix(e.Msg, "BPF program is too large") && !strings.HasPrefix(e.Msg, "internal error")
}

// isStateVisited looks for a checkpoint at pc that covers the current
// state; if none does, it may store the current state as a new one
// (is_state_visited).
func (v *verifier) isStateVisited(pc int) (bool, error) {
	cur := v.cur
	force := v.aux[pc].loopHead
	add := force || v.jmpsProcessed-v.prevJmps >= 2 && v.processed-v.prevInsnsAtJump >= 8
	list := v.explored[pc]
	kept := list[:0]
	pruned := false
	for _, cp := range list {
		if pruned {
			kept = append(kept, cp)
			continue
		}
		old := cp.st
		if old.branches > 0 {
			// Still being explored: an ancestor of this path (a loop) or
			// a sibling waiting. A may_goto loop converges when the
			// same state comes back with another depth.
			if v.aux[pc].loopHead && (old.mayGotoDepth != cur.mayGotoDepth || old.callbackDepth != cur.callbackDepth) && v.coversIgnoringDepth(old, cur) {
				if v.loopEntries == nil {
					v.loopEntries = map[*state]bool{}
				}
				v.loopEntries[old] = true
				cp.hit++
				pruned = true
				kept = append(kept, cp)
				v.propagatePrecision(old, cur)
				v.propagateLiveness(old, cur)
				continue
			}
			// Another entry into an async callback (a timer arming
			// its callback again) is no loop: the same state may come
			// back while the old one is not done (it does not prune
			// either).
			if old.asyncEntry == cur.asyncEntry && v.loopsForever(old, cur) {
				return false, hinted(v.errorf(pc, "infinite loop detected at insn %d", pc),
					"the loop comes back to insn %d with nothing changed: some value must change and be tested on each round", pc)
			}
			if !force && v.jmpsProcessed-v.prevJmps < 20 && v.processed-v.prevInsnsAtJump < 100 {
				add = false
			}
		} else if v.covers(old, cur, v.exploreALULimits || v.inLoop(old)) {
			cp.hit++
			pruned = true
			kept = append(kept, cp)
			v.propagatePrecision(old, cur)
			v.propagateLiveness(old, cur)
			continue
		}
		if add {
			cp.miss++
		}
		n := 3
		if force && old.branches > 0 {
			n = 64
		}
		if cp.miss > cp.hit*n+n {
			v.curStates--
			continue // not useful: forget it
		}
		kept = append(kept, cp)
	}
	v.explored[pc] = kept
	if pruned {
		return true, nil
	}
	v.maxStatesPerInsn = max(v.maxStatesPerInsn, len(list))
	if !add {
		return false, nil
	}
	v.totalStates++
	v.curStates++
	v.peakStates = max(v.peakStates, v.curStates)
	v.prevJmps = v.jmpsProcessed
	v.prevInsnsAtJump = v.processed
	clearPrecision(cur)
	cp := v.clone(cur)
	for _, f := range cp.frames {
		f.read = 0
	}
	for _, f := range cur.frames {
		f.written = 0
	}
	cp.branches = 1
	cp.insn = pc
	cur.parent = cp
	cur.hist, cur.nexec, cur.last = nil, 0, -1
	if v.aux[pc].loopHead {
		cur.loopHead = cp
	}
	v.explored[pc] = append(v.explored[pc], &checkpoint{st: cp})
	return false, nil
}

// loopsForever reports whether the current state is an in-progress
// ancestor's state again, unchanged: a loop that cannot end
// (states_maybe_looping with an exact comparison).
func (v *verifier) loopsForever(old, cur *state) bool {
	if len(old.frames) != len(cur.frames) || old.mayGotoDepth != cur.mayGotoDepth || old.callbackDepth != cur.callbackDepth {
		return false
	}
	of, cf := old.cur(), cur.cur()
	for i := range of.regs {
		a, b := of.regs[i], cf.regs[i]
		a.precise, b.precise = false, false
		if a != b {
			return false
		}
	}
	for i := range old.frames {
		a, b := old.frames[i].stack, cur.frames[i].stack
		if len(a) != len(b) {
			return false
		}
		for j := range a {
			x, y := a[j], b[j]
			if x.kinds != y.kinds || (x.sp == nil) != (y.sp == nil) {
				return false
			}
			if x.sp != nil && x.sp != y.sp {
				xr, yr := *x.sp, *y.sp
				xr.precise, yr.precise = false, false
				if xr != yr {
					return false
				}
			}
		}
	}
	return v.covers(old, cur, true)
}

// inLoop reports whether a checkpoint lies in a loop still being
// explored that paths were pruned against while in progress (a may_goto
// or callback loop converging): its precision marks may not be final, so
// it is compared exactly (the kernel's force_exact for a loop entry in
// progress). A plain bounded loop is never pruned against while in
// progress, so every finished checkpoint in it has final marks and is
// compared as any other, as in Linux: comparing exactly there made
// diamonds of 0/1 flags inside a loop double the paths at each one
// (Cilium's builtin_memcmp test).
func (v *verifier) inLoop(old *state) bool {
	if len(v.loopEntries) == 0 {
		return false // no loop converged yet: no walk up the chain
	}
	for h := old.loopHead; h != nil; h = h.loopHead {
		if h.branches > 0 && v.loopEntries[h] {
			return true
		}
	}
	return false
}

func (v *verifier) coversIgnoringDepth(old, cur *state) bool {
	d, c := cur.mayGotoDepth, cur.callbackDepth
	cur.mayGotoDepth, cur.callbackDepth = old.mayGotoDepth, old.callbackDepth
	ok := v.covers(old, cur, true)
	cur.mayGotoDepth, cur.callbackDepth = d, c
	return ok
}

// reg returns register r of the current frame.
func (v *verifier) reg(r isa.Register) *reg { return &v.cur.cur().regs[r] }

// readReg checks that register r may be read (check_reg_arg SRC_OP).
func (v *verifier) readReg(r isa.Register) (*reg, error) {
	rr := v.reg(r)
	if rr.typ == notInit {
		e := v.errorf(v.insnIdx, "R%d !read_ok", r)
		if r == isa.R0 {
			return nil, hinted(e, "r0 is read before anything was written to it: set the return value (r0 = ...) before exit, or call the helper whose result this is")
		}
		if r >= isa.R1 && r <= isa.R5 {
			return nil, hinted(e, "r%d was not set, or a call before this instruction clobbered it (calls clobber r1-r5): set it again after the call, or keep the value in r6-r9", r)
		}
		return nil, hinted(e, "r%d is read before anything was written to it", r)
	}
	return rr, nil
}

// writeReg checks that register r may be written (check_reg_arg DST_OP).
func (v *verifier) writeReg(r isa.Register) (*reg, error) {
	if r == isa.R10 {
		return nil, v.errorf(v.insnIdx, "frame pointer is read only")
	}
	return v.reg(r), nil
}

// isPointerLeak reports whether using r as a number leaks an address,
// which unprivileged programs may not (is_pointer_value).
func (v *verifier) isPointerLeak(r *reg) bool {
	return !v.allowPtrLeaks && r.isPointer()
}
