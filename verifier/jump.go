package verifier

import (
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/verifier/scalar"
)

// checkJump handles the jump class: ja, calls, exit, may_goto and the
// conditional jumps.
func (v *verifier) checkJump(ins isa.Instruction) error {
	pc := v.insnIdx
	s := v.cur
	switch {
	case ins.Op == isa.OpCall:
		switch {
		case ins.IsLocalCall():
			return v.checkLocalCall(ins)
		case ins.IsHelperCall():
			return v.checkHelperCall(ins)
		default:
			return v.errorf(pc, "calls of kernel functions (kfuncs) are not supported")
		}
	case ins.IsExit():
		return v.checkExit()
	case ins.IsMayGoto():
		t, _ := ins.JumpTarget(pc)
		body := v.clone(s)
		body.insn = pc + 1
		body.mayGotoDepth++
		body.path = &step{prev: s.path, insn: pc, taken: false}
		if prev := v.prevEntry(s, pc); prev != nil {
			widen(prev, body)
		}
		v.push(body, true)
		s.insn = t
		s.path = &step{prev: s.path, insn: pc, taken: true}
		return nil
	case isJA(ins):
		t, _ := ins.JumpTarget(pc)
		s.insn = t
		return nil
	}
	return v.checkCondJump(ins)
}

// checkCondJump is check_cond_jmp_op.
func (v *verifier) checkCondJump(ins isa.Instruction) error {
	pc := v.insnIdx
	s := v.cur
	op := ins.Op.JumpOp()
	wide := ins.Op.Class() == isa.ClassJMP
	target, _ := ins.JumpTarget(pc)
	dst, err := v.readReg(ins.Dst)
	if err != nil {
		return err
	}
	var src reg
	x := ins.Op.Source() == isa.SourceX
	if x {
		sr, err := v.readReg(ins.Src)
		if err != nil {
			return err
		}
		src = *sr
	} else if wide {
		src.setConst(uint64(int64(ins.Imm)))
	} else {
		src.setConst(uint64(uint32(ins.Imm)))
	}
	outcome := v.branchTaken(dst, &src, op, wide)
	if outcome == scalar.Maybe && !v.allowPtrLeaks {
		if x && src.isPointer() && !(dst.isPkt() || dst.typ == ptrPacketEnd) {
			return v.errorf(pc, "R%d pointer comparison prohibited", ins.Src)
		}
		if dst.isPointer() && !dst.maybeNull() && !(dst.isPkt() || dst.typ == ptrPacketEnd) {
			return v.errorf(pc, "R%d pointer comparison prohibited", ins.Dst)
		}
	}
	if outcome != scalar.Maybe && dst.typ == scalarReg && src.typ == scalarReg {
		// The decision depends on the values: they must be precise.
		v.markPrecise(s, ins.Dst)
		if x {
			v.markPrecise(s, ins.Src)
		}
	}
	if outcome == scalar.Maybe {
		// Both sides follow: the registers linked to the operands.
		switch {
		case x && dst.typ == scalarReg && src.typ == scalarReg:
			v.linkJump(s, src.id, dst.id)
		case x && src.typ == scalarReg:
			v.linkJump(s, src.id)
		case dst.typ == scalarReg:
			v.linkJump(s, dst.id)
		}
	}
	switch outcome {
	case scalar.Always:
		v.speculate(s, ins, pc+1)
		s.insn = target
		return nil
	case scalar.Never:
		v.speculate(s, ins, target)
		s.insn = pc + 1
		return nil
	}
	taken := v.clone(s)
	taken.insn = target
	taken.path = &step{prev: s.path, insn: pc, taken: true}
	s.insn = pc + 1
	s.path = &step{prev: s.path, insn: pc, taken: false}
	okTaken := v.refine(taken, ins, true)
	okFall := v.refine(s, ins, false)
	if okTaken {
		v.push(taken, true)
	}
	if !okFall {
		// This side cannot happen: continue with the other.
		return errPathDone
	}
	return nil
}

// speculate explores, for an unprivileged program, the side of a decided
// jump that cannot be taken, as a CPU may still run it speculatively
// (sanitize_speculative_path, Spectre v1): the registers compared are
// unknown there, and what the path does must be safe too.
func (v *verifier) speculate(s *state, ins isa.Instruction, next int) {
	if !v.opts.Unprivileged {
		return
	}
	spec := v.clone(s)
	spec.insn = next
	spec.speculative = true
	spec.path = &step{prev: s.path, insn: v.insnIdx, taken: next != v.insnIdx+1}
	f := spec.cur()
	f.regs[ins.Dst].setUnknown()
	if ins.Op.Source() == isa.SourceX {
		f.regs[ins.Src].setUnknown()
	}
	v.push(spec, true)
}

// branchTaken is is_branch_taken: whether the jump is decided.
func (v *verifier) branchTaken(dst, src *reg, op isa.JumpOp, wide bool) scalar.Outcome {
	if dst.typ == scalarReg && src.typ == scalarReg {
		return scalar.BranchTaken(op, dst.v, src.v, wide)
	}
	// A pointer that cannot be NULL against 0.
	var ptr *reg
	switch {
	case dst.isPointer() && src.isNull():
		ptr = dst
	case src.isPointer() && dst.isNull():
		ptr = src
	}
	if ptr != nil && wide && notNull(ptr) {
		switch op {
		case isa.JumpEq:
			return scalar.Never
		case isa.JumpNE:
			return scalar.Always
		}
	}
	return scalar.Maybe
}

// notNull reports whether a pointer is known not to be NULL, for the
// types the kernel knows that of (reg_not_null): not the context, the
// stack or the packet, whose comparisons with 0 stay undecided.
func notNull(r *reg) bool {
	if r.maybeNull() {
		return false
	}
	switch r.typ {
	case ptrSocket, ptrTCPSock, ptrMapValue, ptrMapKey, ptrSockCommon:
		return true
	case ptrMem:
		// Untrusted memory a kernel object pointed to may be NULL.
		return r.flags&flagUntrusted == 0
	case ptrBTFID:
		// A trusted kernel object (is_trusted_reg): referenced, or
		// trusted with no other modifier.
		return r.ref != 0 || r.flags == flagTrusted
	}
	return false
}

// refine narrows the state s of one side of a conditional jump; it
// reports false when that side is impossible.
func (v *verifier) refine(s *state, ins isa.Instruction, taken bool) bool {
	op := ins.Op.JumpOp()
	wide := ins.Op.Class() == isa.ClassJMP
	f := s.cur()
	dst := &f.regs[ins.Dst]
	x := ins.Op.Source() == isa.SourceX
	var src *reg
	var k reg
	if x {
		src = &f.regs[ins.Src]
	} else {
		if wide {
			k.setConst(uint64(int64(ins.Imm)))
		} else {
			k.setConst(uint64(uint32(ins.Imm)))
		}
		src = &k
	}
	switch {
	case dst.typ == scalarReg && src.typ == scalarReg:
		if x && ins.Dst == ins.Src {
			dst.v = scalar.RefineSelf(op, dst.v, wide, taken)
			if !dst.v.Consistent() {
				return false
			}
			v.syncLinked(s, dst)
			return true
		}
		a, b := scalar.Refine(op, dst.v, src.v, wide, taken)
		if !a.Consistent() || !b.Consistent() {
			return false
		}
		dst.v, src.v = a, b
		v.syncLinked(s, dst)
		if x {
			v.syncLinked(s, src)
		}
		return true
	case wide && !x && ins.Imm == 0 && (op == isa.JumpEq || op == isa.JumpNE) && dst.maybeNull():
		// Only a comparison with the immediate 0 is a NULL check: one
		// with a register that holds 0 leaves the pointer unchecked.
		isNull := op == isa.JumpEq == taken
		v.markNull(s, dst.id, dst.ref, isNull)
		return true
	case wide && dst.typ != scalarReg && src.typ != scalarReg:
		if x && (op == isa.JumpEq) == taken && (op == isa.JumpEq || op == isa.JumpNE) && dst.typ != ptrBTFID && src.typ != ptrBTFID {
			// Equal to a pointer that is not NULL: not NULL either
			// (this register only, as the kernel).
			if notNull(dst) && src.maybeNull() {
				src.flags &^= flagMaybeNull
			}
			if notNull(src) && dst.maybeNull() {
				dst.flags &^= flagMaybeNull
			}
		}
		v.pktCompare(s, ins, dst, src, op, taken)
		return true
	}
	return true
}

// syncLinked copies the new value of r to every register linked to it
// (sync_linked_regs).
func (v *verifier) syncLinked(s *state, r *reg) {
	if r.id == 0 || r.typ != scalarReg {
		return
	}
	known := *r
	base := known.id &^ addConst
	s.forEachReg(func(o *reg) {
		if o == r || o.typ != scalarReg || o.id&^addConst != base {
			return
		}
		if o.id&addConst == 0 && known.id&addConst == 0 || o.id&addConst == known.id&addConst && o.off == known.off {
			o.v = known.v
			return
		}
		if o.id&addConst|known.id&addConst == addConst {
			// One added in 32 bits, the other in 64: the difference of
			// their constants does not relate them.
			return
		}
		// The same number plus another constant, in 32 bits where
		// either added in 32 bits (their base is below 2^32).
		delta := int64(o.off) - int64(known.off)
		nv := scalar.ALU(isa.ALUAdd, true, 0, 0, false, known.v, scalar.Const(uint64(delta)))
		if (o.id|known.id)&addConst32 != 0 {
			nv = scalar.ALU(isa.ALUMov, false, 0, 0, false, scalar.Unknown(), nv)
		}
		o.v = nv
	})
}

// markNull settles a maybe-NULL pointer on one side of its NULL check
// (mark_ptr_or_null_regs): NULL makes every copy the number 0 and releases
// its reference; non-NULL makes every copy a plain pointer.
func (v *verifier) markNull(s *state, id, ref uint32, isNull bool) {
	if id == 0 {
		return
	}
	s.forEachReg(func(o *reg) {
		if o.id != id || !o.maybeNull() {
			return
		}
		if isNull {
			o.setConst(0)
			return
		}
		o.flags &^= flagMaybeNull
		if o.typ == constMapPtr && int(o.mapIdx) < len(v.p.Maps) && v.p.Maps[o.mapIdx].Timer >= 0 {
			// An inner map holding timers: the lookup's id tells it
			// apart from the other inner maps (mark_ptr_not_null_reg).
			o.setMapUID(o.id)
		}
		if o.typ == ptrMapValue && int(o.mapIdx) < len(v.p.Maps) && v.p.Maps[o.mapIdx].SpinLock >= 0 {
			return // the id tells its lock apart
		}
		if o.typ != constMapPtr && o.typ != ptrSocket && o.typ != ptrSockCommon && o.typ != ptrTCPSock && o.typ != ptrMem {
			// Map values keep no id once known (they need none).
			o.id = 0
		}
	})
	if isNull && ref != 0 && ref == id {
		// The acquired object itself was NULL: nothing to release. (A
		// cast of a referenced pointer, whose id is its own, keeps the
		// reference of what it was cast from.)
		v.releaseRef(s, ref)
	}
}

// pktCompare is try_match_pkt_pointers: a comparison of a packet pointer
// with the packet's end proves a readable range on one side.
func (v *verifier) pktCompare(s *state, ins isa.Instruction, dst, src *reg, op isa.JumpOp, taken bool) {
	// good reports whether a pointer a compared with b is the packet
	// pointer and b its end (pkt vs pkt_end, or pkt_meta vs pkt). The
	// metadata ends where the packet starts: only the packet pointer
	// itself, without any offset, bounds it (reg_is_init_pkt_pointer).
	good := func(a, b *reg) bool {
		return a.mapIdx == b.mapIdx && (a.typ == ptrPacket && b.typ == ptrPacketEnd ||
			a.typ == ptrPacketMeta && b.typ == ptrPacket && b.off == 0 && b.v.IsConst() && b.v.Var.Value == 0)
	}
	switch op {
	case isa.JumpGT:
		if good(dst, src) && !taken {
			v.goodPkt(s, dst, false)
		} else if good(src, dst) && taken {
			v.goodPkt(s, src, true)
		}
	case isa.JumpLT:
		if good(dst, src) && taken {
			v.goodPkt(s, dst, true)
		} else if good(src, dst) && !taken {
			v.goodPkt(s, src, false)
		}
	case isa.JumpGE:
		if good(dst, src) && !taken {
			v.goodPkt(s, dst, true)
		} else if good(src, dst) && taken {
			v.goodPkt(s, src, false)
		}
	case isa.JumpLE:
		if good(dst, src) && taken {
			v.goodPkt(s, dst, false)
		} else if good(src, dst) && !taken {
			v.goodPkt(s, src, true)
		}
	}
}

// goodPkt is find_good_pkt_pointers: every packet pointer of p's id may
// read up to p's offset (plus one if the compare was strict the other
// way).
func (v *verifier) goodPkt(s *state, p *reg, open bool) {
	if p.off < 0 || p.off == 0 && open {
		return
	}
	if p.v.UMax > maxPacketOff || p.v.UMax+uint64(p.off) > maxPacketOff {
		return
	}
	rng := p.off
	if open {
		rng++
	}
	typ, id, region := p.typ, p.id, p.mapIdx
	s.forEachReg(func(o *reg) {
		if o.typ == typ && o.id == id && o.mapIdx == region && o.rng < rng {
			o.rng = rng
		}
	})
}
