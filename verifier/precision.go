package verifier

import (
	"github.com/waggle-bpf/waggle/isa"
)

// Precision tracking. A checkpoint covers a later state only where it
// matters: a scalar whose exact value no safety decision depended on
// (an imprecise scalar) matches any scalar. When a decision depends on a
// scalar (a branch decided by its value, an offset added to a pointer, a
// helper's size argument, a return value range), the verifier walks the
// path back to where the scalar's value came from and marks every
// register and stack slot it flowed through as precise in the
// checkpoints on the way (mark_chain_precision, backtrack_insn). A
// checkpoint is used for pruning only once every path below it is
// explored, so its marks are final by then.

// histEntry is an instruction a state executed since its checkpoint
// that the walk back cannot infer (struct bpf_insn_hist_entry): the
// first of the segment, one reached other than from the instruction
// before it in the same frame (a jump, a call, a return), and one with
// facts to keep (a stack slot, linked registers, a callback's entry).
// The others are implied: the instruction before, in the same frame.
type histEntry struct {
	insn  int32
	frame int8 // the frame that executed it
	// sframe and spi name the stack slot a fixed-offset stack access
	// touched (sframe -1 for none).
	sframe int8
	spi    int16
	// jumped says the instruction executed before it was prev, in
	// frame prevFrame, not the one before it in the same frame.
	jumped    bool
	prevFrame int8
	prev      int32
	// nlinked registers and slots, from verifier.links[linked], are
	// what a conditional jump refined with its operands (linked
	// scalars). Entries hold no pointers: histories are copied often.
	nlinked uint16
	linked  int32
	// cbEnter marks the helper call that entered a callback, at the
	// start of the callback's frame.
	cbEnter bool
}

type linkRef struct {
	frame int8
	reg   int8 // -1 for a stack slot
	spi   int16
}

// backtrack is the set of registers and stack slots whose values are
// wanted precise, per frame (struct backtrack_state).
type backtrack struct {
	frame int
	regs  [maxFrames]uint16
	slots [maxFrames]uint64
}

func (b *backtrack) empty() bool {
	for i := range b.regs {
		if b.regs[i] != 0 || b.slots[i] != 0 {
			return false
		}
	}
	return true
}

func (b *backtrack) isReg(r isa.Register) bool { return b.regs[b.frame]&(1<<r) != 0 }
func (b *backtrack) setReg(r isa.Register)     { b.regs[b.frame] |= 1 << r }
func (b *backtrack) clearReg(r isa.Register)   { b.regs[b.frame] &^= 1 << r }

// clearPrecision makes every scalar of s imprecise, as a new checkpoint
// starts (mark_all_scalars_imprecise).
func clearPrecision(s *state) {
	for _, f := range s.frames {
		for i := range f.regs {
			f.regs[i].precise = false
		}
		f.spillPrecise = 0
	}
}

// markPrecise marks register r of the current frame of s precise, and
// everything its value came from (mark_chain_precision).
func (v *verifier) markPrecise(s *state, r isa.Register) {
	if r >= isa.R10 {
		return
	}
	f := len(s.frames) - 1
	rr := &s.frames[f].regs[r]
	if rr.typ != scalarReg {
		return
	}
	var b backtrack
	b.frame = f
	b.regs[f] = 1 << r
	v.backtrackFrom(s, &b)
}

// markPreciseSlot marks a spilled scalar of frame f precise.
func (v *verifier) markPreciseSlot(s *state, f, spi int) {
	var b backtrack
	b.frame = len(s.frames) - 1
	b.slots[f] = 1 << uint(spi)
	v.backtrackFrom(s, &b)
}

// backtrackFrom walks back from the current state s through its history
// and its checkpoints.
func (v *verifier) backtrackFrom(s *state, b *backtrack) {
	// The current state itself.
	v.markIn(s, b, false)
	for st := s; st != nil; st = st.parent {
		if !v.backtrackSegment(st, b) {
			v.markAllPrecise(s)
			return
		}
		if b.empty() {
			return
		}
		p := st.parent
		if p == nil {
			return
		}
		if len(p.frames)-1 != b.frame {
			// The checkpoint is in another frame than where the walk
			// ended: the history does not line up.
			v.markAllPrecise(s)
			return
		}
		v.markIn(p, b, true)
		if b.empty() {
			return
		}
	}
}

// backtrackSegment walks back through the instructions st executed since
// its checkpoint, the last first (get_prev_insn_idx). It reports false
// when the history does not add up or an instruction cannot be walked.
func (v *verifier) backtrackSegment(st *state, b *backtrack) bool {
	h := len(st.hist)
	if h == 0 {
		return st.nexec == 0
	}
	i, f := st.last, st.lastFrame
	for n := 0; n < st.nexec; n++ {
		if i < 0 || i >= len(v.insns) {
			return false
		}
		e := histEntry{insn: int32(i), frame: f, sframe: -1}
		implied := true
		if top := &st.hist[h-1]; int(top.insn) == i && top.frame == f {
			e, implied = *top, false
			h--
		}
		if !v.backtrackInsn(&e, b) {
			return false
		}
		if b.empty() {
			return true
		}
		if !implied && h == 0 {
			return true // the segment's first instruction
		}
		if e.jumped {
			i, f = int(e.prev), e.prevFrame
		} else {
			i--
			if i > 0 && v.mid[i] {
				i-- // the first half of an lddw
			}
		}
	}
	return false
}

// record notes in the history of s that it executed the instruction of
// e (push_insn_history, for the entries the walk back cannot infer).
func (v *verifier) record(s *state, e histEntry) {
	first := s.nexec == 0
	if !first {
		next := s.last + 1
		if v.insns[s.last].IsLoadImm64() {
			next++
		}
		if int(e.insn) != next || e.frame != s.lastFrame {
			e.jumped, e.prev, e.prevFrame = true, int32(s.last), s.lastFrame
		}
	}
	if first || e.jumped || e.sframe >= 0 || e.nlinked > 0 || e.cbEnter {
		s.hist = append(s.hist, e)
	}
	s.last, s.lastFrame = int(e.insn), e.frame
	s.nexec++
}

// markIn marks the wanted scalars of b precise in checkpoint p; those
// already precise (their origin already marked) and those that are no
// scalar leave the set when prune is set.
func (v *verifier) markIn(p *state, b *backtrack, prune bool) {
	for f := 0; f < len(p.frames) && f < maxFrames; f++ {
		fr := p.frames[f]
		for r := 0; r < int(isa.R10); r++ {
			if b.regs[f]&(1<<r) == 0 {
				continue
			}
			reg := &fr.regs[r]
			if reg.typ != scalarReg {
				b.regs[f] &^= 1 << r
				continue
			}
			if reg.precise && prune {
				b.regs[f] &^= 1 << r
				continue
			}
			reg.precise = true
		}
		for spi := 0; spi < 64; spi++ {
			if b.slots[f]&(1<<uint(spi)) == 0 {
				continue
			}
			if spi >= len(fr.stack) || !fr.stack[spi].spilled() || fr.stack[spi].sp.typ != scalarReg {
				b.slots[f] &^= 1 << uint(spi)
				continue
			}
			if fr.spillPrecise&(1<<uint(spi)) != 0 && prune {
				b.slots[f] &^= 1 << uint(spi)
				continue
			}
			fr.spillPrecise |= 1 << uint(spi)
		}
	}
}

// markAllPrecise is the fallback when the history cannot be followed:
// every scalar of s and of its checkpoints becomes precise.
func (v *verifier) markAllPrecise(s *state) {
	for st := s; st != nil; st = st.parent {
		for _, f := range st.frames {
			for i := range f.regs {
				if f.regs[i].typ == scalarReg {
					f.regs[i].precise = true
				}
			}
			f.spillPrecise = ^uint64(0)
		}
	}
}

// backtrackInsn moves the wanted set from after instruction e to before
// it (backtrack_insn). It reports false when it cannot tell.
func (v *verifier) backtrackInsn(e *histEntry, b *backtrack) bool {
	ins := v.insns[e.insn]
	fr := int(e.frame)
	if fr >= maxFrames {
		return false
	}
	// Linked registers refined together at a jump are wanted together.
	if e.nlinked == linksLost {
		return false
	}
	if e.nlinked > 0 {
		linked := v.links[e.linked : e.linked+int32(e.nlinked)]
		any := false
		for _, l := range linked {
			if l.reg >= 0 && b.regs[l.frame]&(1<<l.reg) != 0 || l.reg < 0 && b.slots[l.frame]&(1<<uint(l.spi)) != 0 {
				any = true
			}
		}
		if any {
			for _, l := range linked {
				if l.reg >= 0 {
					b.regs[l.frame] |= 1 << l.reg
				} else {
					b.slots[l.frame] |= 1 << uint(l.spi)
				}
			}
		}
	}
	if fr != b.frame {
		switch {
		case fr == b.frame+1 && ins.IsExit():
			// Walking back into a callee from its return: the caller's
			// r0 was the callee's.
			if b.regs[b.frame]&(1<<0) != 0 {
				b.regs[b.frame] &^= 1
				b.regs[fr] |= 1
			}
			if b.regs[b.frame]&0x3e != 0 {
				return false // r1-r5 are clobbered by the return
			}
			b.frame = fr
			return true
		case fr == b.frame-1 && e.cbEnter:
			// Out of a callback through the helper call that entered
			// it: its registers came from the helper.
			if b.regs[b.frame] != 0 || b.slots[b.frame] != 0 {
				return false
			}
			b.frame = fr
			return true
		case fr == b.frame-1 && ins.IsLocalCall():
			// Walking back out of a callee through its call: its r1-r5
			// were the caller's.
			callee := b.frame
			if b.regs[callee]&^0x3e != 0 || b.slots[callee] != 0 {
				return false
			}
			b.regs[fr] |= b.regs[callee] & 0x3e
			b.regs[callee] = 0
			b.frame = fr
			return true
		default:
			return false
		}
	}
	dst, src := ins.Dst, ins.Src
	switch ins.Op.Class() {
	case isa.ClassALU, isa.ClassALU64:
		if !b.isReg(dst) {
			return true
		}
		op := ins.Op.ALUOp()
		x := ins.Op.Source() == isa.SourceX && op != isa.ALUNeg && op != isa.ALUEnd
		if op == isa.ALUMov {
			b.clearReg(dst)
			if x {
				b.setReg(src)
			}
			return true
		}
		if x {
			b.setReg(src)
		}
	case isa.ClassLDX:
		if !b.isReg(dst) {
			return true
		}
		b.clearReg(dst)
		if e.sframe >= 0 {
			// A fill: the value came from the slot.
			b.slots[e.sframe] |= 1 << uint(e.spi)
		}
	case isa.ClassST, isa.ClassSTX:
		if ins.Op.Mode() == isa.ModeATOMIC {
			if e.sframe >= 0 && b.slots[e.sframe]&(1<<uint(e.spi)) != 0 {
				return false
			}
			if isa.AtomicOp(ins.Imm) == isa.AtomicCmpXchg && b.isReg(isa.R0) || isa.AtomicOp(ins.Imm)&isa.AtomicFetch != 0 && b.isReg(src) {
				return false
			}
			return true
		}
		if e.sframe < 0 || b.slots[e.sframe]&(1<<uint(e.spi)) == 0 {
			return true
		}
		b.slots[e.sframe] &^= 1 << uint(e.spi)
		if ins.Op.Class() == isa.ClassSTX {
			b.setReg(src)
		}
	case isa.ClassLD:
		if ins.IsLoadImm64() {
			b.clearReg(dst)
			return true
		}
		// LD_ABS/IND: r0 is loaded, r1-r5 clobbered.
		if b.regs[b.frame]&0x3e != 0 {
			return false
		}
		b.clearReg(isa.R0)
	case isa.ClassJMP, isa.ClassJMP32:
		switch {
		case ins.Op == isa.OpCall:
			if ins.IsLocalCall() && !v.isGlobalCall(int(e.insn)) {
				// Callees are walked through at their frame changes.
				return false
			}
			if b.regs[b.frame]&0x3e != 0 {
				return false
			}
			b.clearReg(isa.R0)
		case ins.IsExit(), ins.IsMayGoto(), isJA(ins):
		default:
			if ins.Op.Source() == isa.SourceX && (b.isReg(dst) || b.isReg(src)) {
				b.setReg(dst)
				b.setReg(src)
			}
		}
	}
	return true
}

// maxLinked is how many registers and slots one conditional jump keeps
// linked (LINKED_REGS_MAX).
const maxLinked = 6

// linkJump records in the history entry of the conditional jump being
// processed the registers and spilled slots of s linked to the scalars
// with the given ids, when there are at least two (collect_linked_regs,
// in its order: the innermost frame first, registers before slots, each
// id in turn). Past maxLinked, the others lose their link.
func (v *verifier) linkJump(s *state, ids ...uint32) {
	start := len(v.links)
	out := v.links
	for _, id := range ids {
		id &^= addConst
		if id == 0 {
			continue
		}
		for f := len(s.frames) - 1; f >= 0; f-- {
			fr := s.frames[f]
			for r := 0; r < int(isa.R10); r++ {
				o := &fr.regs[r]
				if o.typ != scalarReg || o.id&^addConst != id {
					continue
				}
				if len(out)-start == maxLinked {
					o.id, o.off = 0, 0
					continue
				}
				out = append(out, linkRef{frame: int8(f), reg: int8(r)})
			}
			for spi := range fr.stack {
				sl := &fr.stack[spi]
				if !sl.spilled() || sl.sp.typ != scalarReg || sl.sp.id&^addConst != id {
					continue
				}
				if len(out)-start == maxLinked || spi >= 64 {
					fr.own()
					sl = &fr.stack[spi]
					c := *sl.sp
					c.id, c.off = 0, 0
					sl.setSpill(&c)
					continue
				}
				out = append(out, linkRef{frame: int8(f), reg: -1, spi: int16(spi)})
			}
		}
	}
	switch n := len(out) - start; {
	case n < 2:
		v.links = out[:start]
	case len(out) > maxLinks:
		// A program that links that many scalars that often gets
		// precision the conservative way, not unbounded memory.
		v.links = out[:start]
		v.entry.nlinked = linksLost
	default:
		v.links = out
		v.entry.linked, v.entry.nlinked = int32(start), uint16(n)
	}
}

// maxLinks bounds verifier.links; linksLost marks a history entry whose
// linked registers were not kept: backtracking through it gives up and
// marks everything precise.
const (
	maxLinks  = 1 << 22
	linksLost = 0xffff
)

// propagatePrecision carries the precise scalars of a checkpoint that
// covered the current state to the current state's history: the paths
// from the checkpoint depended on them (propagate_precision).
func (v *verifier) propagatePrecision(old, cur *state) {
	for f := 0; f < len(old.frames) && f < maxFrames; f++ {
		of := old.frames[f]
		var b backtrack
		b.frame = len(cur.frames) - 1
		for r := 0; r < int(isa.R10); r++ {
			if of.regs[r].typ == scalarReg && of.regs[r].precise {
				b.regs[f] |= 1 << r
			}
		}
		for spi := range of.stack {
			if spi < 64 && of.stack[spi].spilled() && of.stack[spi].sp.typ == scalarReg && of.spillPrecise&(1<<uint(spi)) != 0 {
				b.slots[f] |= 1 << uint(spi)
			}
		}
		if !b.empty() {
			v.backtrackFrom(cur, &b)
		}
	}
}

// widen forgets the values of imprecise scalars that changed since the
// previous visit of a loop (widen_imprecise_scalars), so that a loop
// whose counters no check depends on converges.
func widen(prev, cur *state) {
	for f := 0; f < len(prev.frames) && f < len(cur.frames); f++ {
		pf, cf := prev.frames[f], cur.frames[f]
		for r := range cf.regs {
			widenReg(&pf.regs[r], &cf.regs[r])
		}
		for spi := 0; spi < len(pf.stack) && spi < len(cf.stack); spi++ {
			if pf.stack[spi].spilled() && cf.stack[spi].spilled() {
				r := *cf.stack[spi].sp
				o := *pf.stack[spi].sp
				if spi < 64 {
					o.precise = pf.spillPrecise&(1<<uint(spi)) != 0
					r.precise = cf.spillPrecise&(1<<uint(spi)) != 0
				}
				widenReg(&o, &r)
				r.precise = false
				if r != *cf.stack[spi].sp {
					cf.own()
					cf.stack[spi].setSpill(&r)
				}
			}
		}
	}
}

func widenReg(old, cur *reg) {
	if old.typ != scalarReg || cur.typ != scalarReg || old.precise || cur.precise {
		return
	}
	if old.v == cur.v && old.id == cur.id && old.off == cur.off {
		return
	}
	cur.setUnknown()
}

// prevEntry finds the checkpoint at slot pc on the current path, the
// previous visit of a loop (find_prev_entry).
func (v *verifier) prevEntry(s *state, pc int) *state {
	list := v.explored[pc]
	for i := len(list) - 1; i >= 0; i-- {
		st := list[i].st
		if st == s.parent {
			continue // the checkpoint of this very visit
		}
		if st.branches > 0 && len(st.frames) == len(s.frames) && sameCallsites(st, s) {
			return st
		}
	}
	return nil
}

func sameCallsites(a, b *state) bool {
	for i := range a.frames {
		if a.frames[i].callsite != b.frames[i].callsite {
			return false
		}
	}
	return true
}

// markRead records that the current state read stack slot spi of frame f:
// every checkpoint above it up to the one whose segment overwrote the slot
// depends on the slot's contents (mark_reg_read).
func (v *verifier) markRead(s *state, f, spi int) {
	if spi < 0 || spi >= 64 {
		return
	}
	bit := uint64(1) << uint(spi)
	for st := s; st != nil; {
		if f >= len(st.frames) || st.frames[f].written&bit != 0 {
			return
		}
		p := st.parent
		if p == nil || f >= len(p.frames) || p.frames[f].read&bit != 0 {
			return
		}
		p.frames[f].read |= bit
		st = p
	}
}

// markReadRange marks the slots of bytes [lo, hi) of frame f read.
func (v *verifier) markReadRange(s *state, f, lo, hi int) {
	for off := lo; off < hi; off++ {
		if off >= 0 || off < -maxStack {
			continue
		}
		spi := (-off - 1) / 8
		v.markRead(s, f, spi)
		// skip to the next slot
		next := -8 * (spi + 1)
		if next > off {
			off = next
		}
	}
}

// propagateLiveness carries the reads of the paths from a checkpoint
// that covered the current state to the current state's checkpoints
// (propagate_liveness).
func (v *verifier) propagateLiveness(old, cur *state) {
	for f := 0; f < len(old.frames) && f < len(cur.frames); f++ {
		r := old.frames[f].read
		for spi := 0; r != 0 && spi < 64; spi++ {
			if r&(1<<uint(spi)) != 0 {
				v.markRead(cur, f, spi)
				r &^= 1 << uint(spi)
			}
		}
	}
}
