package verifier

import (
	"math/bits"

	"github.com/waggle-bpf/waggle/isa"
)

// What one byte of a stack slot holds (enum bpf_stack_slot_type).
const (
	stackInvalid uint8 = iota // never written
	stackSpill                // part of a spilled register
	stackMisc                 // some data
	stackZero                 // a zero byte
	stackDynptr               // part of a dynptr (dynptr.go)
)

// maxStack is the size of one frame's stack (MAX_BPF_STACK).
const maxStack = 512

// maxFrames is how deep bpf-to-bpf calls may nest (MAX_CALL_FRAMES).
const maxFrames = 8

// slot is 8 bytes of stack (struct bpf_stack_state). kinds[7] is the byte
// at the slot's lowest address, kinds[0] its highest, as in the kernel.
//
// sp is the spilled register when the slot holds one (kinds[7] is
// stackSpill), else nil. Spilled registers are shared between the
// stacks of states and never changed in place: a change stores a new
// one (setSpill), so that copying a stack copies 16 bytes per slot and
// comparing two stacks can skip the slots that share their spill.
type slot struct {
	kinds [8]uint8
	sp    *reg
}

func (s *slot) spilled() bool { return s.kinds[7] == stackSpill }

// dropSpill forgets the register spilled in the slot: its bytes become
// data.
func (s *slot) dropSpill() {
	for i := range s.kinds {
		if s.kinds[i] == stackSpill {
			s.kinds[i] = stackMisc
		}
	}
	s.sp = nil
}

// setSpill stores a copy of r as the slot's spilled register.
func (s *slot) setSpill(r *reg) {
	c := new(reg)
	*c = *r
	s.sp = c
}

// frame is one call frame (struct bpf_func_state).
type frame struct {
	regs [isa.MaxRegister + 1]reg
	// stack holds slot i for bytes fp-8*(i+1) .. fp-8*i-1; it grows as the
	// program writes deeper.
	stack []slot
	// callsite is the slot of the call that made this frame, -1 for the
	// program's entry.
	callsite int
	// subprog is the frame's function (index in verifier.subprogs).
	subprog int
	// callback frames: the callback's allowed r0 range at exit, and
	// whether it runs later (async: timers). An async callback's frame
	// is the first of a state of its own (it has no caller: the helper
	// that set it up returned long before it runs), with no args.
	callback     bool
	async        bool
	retMin       int32
	retMax       int32
	callbackCall int // helper call slot that called the callback
	// args are the caller's r1-r5 at that call, for the call to run
	// again when the callback returns. They never change after the
	// callback's entry, so clones share them.
	args *[5]reg
	// read marks, in a checkpoint, the stack slots some path from it read
	// before writing them (REG_LIVE_READ); written marks the slots the
	// state overwrote whole since its checkpoint (REG_LIVE_WRITTEN).
	read, written uint64
	// shared marks a stack that another frame may refer to too.
	shared bool
	// spillPrecise marks the spilled scalars that are precise; it is kept
	// apart from the slots so that marking a checkpoint's spills does not
	// copy a stack it shares.
	spillPrecise uint64
	// loops counts may_goto iterations left in this frame (unused by the
	// analysis beyond the state: may_goto is explored both ways).
}

// own gives the frame a stack of its own before it is changed.
func (f *frame) own() {
	if f.shared {
		f.stack = append(make([]slot, 0, len(f.stack)+2), f.stack...)
		f.shared = false
	}
}

// refState is one acquired reference (struct bpf_reference_state).
type refState struct {
	id   uint32
	insn int // the slot that acquired it
}

// state is the abstract machine state at one point of one path (struct
// bpf_verifier_state).
type state struct {
	frames []*frame
	refs   []refState
	// lock is the id of a held bpf_spin_lock, 0 for none.
	lock uint32
	// insn is the slot the state is at.
	insn int
	// parent is the checkpoint this path passed last; branches counts the
	// paths still being explored below a checkpoint.
	parent   *state
	branches int
	// path is the branch decisions from the entry to here.
	path *step
	// loopInsn/loopDepth: may_goto depth (the kernel's may_goto_depth).
	mayGotoDepth int
	// callbackDepth counts callback iterations (callback_unroll_depth).
	callbackDepth int
	// asyncEntry counts the async callbacks (timers) the path is nested
	// in: 0 for the program's own paths (async_entry_cnt).
	asyncEntry int
	// hist is what the state executed since its checkpoint (parent), for
	// precision tracking, as far as it cannot be inferred (histEntry); a
	// checkpoint keeps the history that led to it. nexec counts the
	// instructions executed since the checkpoint, last is the latest of
	// them (-1 for none) and lastFrame the frame that executed it.
	hist      []histEntry
	nexec     int
	last      int
	lastFrame int8
	// loopHead is the nearest checkpoint at a loop head on the path.
	loopHead *state
	// speculative marks a path a CPU may only run speculatively: the
	// side of a decided jump, explored for unprivileged programs.
	speculative bool
}

// step is one branch decision on the path to a state, shared between
// the states that took it.
type step struct {
	prev  *step
	insn  int
	taken bool
	depth int
}

func (s *state) cur() *frame { return s.frames[len(s.frames)-1] }

// clone copies s for another path or a checkpoint. The frames are copies;
// their stacks are shared until written (frame.own).
func (v *verifier) clone(s *state) *state {
	t := &state{
		frames:        make([]*frame, len(s.frames)),
		refs:          append([]refState(nil), s.refs...),
		lock:          s.lock,
		insn:          s.insn,
		parent:        s.parent,
		path:          s.path,
		mayGotoDepth:  s.mayGotoDepth,
		callbackDepth: s.callbackDepth,
		asyncEntry:    s.asyncEntry,
		hist:          s.hist[:len(s.hist):len(s.hist)],
		nexec:         s.nexec,
		last:          s.last,
		lastFrame:     s.lastFrame,
		loopHead:      s.loopHead,
		speculative:   s.speculative,
	}
	for i, f := range s.frames {
		f.shared = true
		var g *frame
		if n := len(v.freeFrames); n > 0 {
			g = v.freeFrames[n-1]
			v.freeFrames = v.freeFrames[:n-1]
		} else {
			g = new(frame)
		}
		*g = *f
		t.frames[i] = g
	}
	return t
}

// recycle takes back the frames of a state whose path ended: nothing
// refers to them any more (checkpoints and pending paths hold copies),
// and clone reuses them instead of allocating.
func (v *verifier) recycle(s *state) {
	v.freeFrames = append(v.freeFrames, s.frames...)
	s.frames = nil
}

// forEachReg calls fn for every register and spilled register of every
// frame (bpf_for_each_reg_in_vstate).
func (s *state) forEachReg(fn func(r *reg)) {
	var tmp *reg // fn gets spilled registers through a copy
	for _, f := range s.frames {
		for i := range f.regs {
			fn(&f.regs[i])
		}
		for i := range f.stack {
			if f.stack[i].spilled() {
				if tmp == nil {
					tmp = new(reg)
				}
				*tmp = *f.stack[i].sp
				fn(tmp)
				if *tmp != *f.stack[i].sp {
					f.own()
					f.stack[i].setSpill(tmp)
				}
			}
		}
	}
}

// idMap pairs ids of an old state with ids of the current one while
// comparing them (check_ids): the pairing must be one to one.
type idMap struct {
	old, cur []uint32
	// exact compares imprecise scalars too (RANGE_WITHIN): for states
	// of a loop still being explored, whose precision marks are not
	// final.
	exact bool
}

func (m *idMap) check(old, cur uint32) bool {
	if old == 0 && cur == 0 {
		return true
	}
	if old == 0 || cur == 0 {
		return false
	}
	for i := range m.old {
		if m.old[i] == old {
			return m.cur[i] == cur
		}
		if m.cur[i] == cur {
			return false
		}
	}
	m.old = append(m.old, old)
	m.cur = append(m.cur, cur)
	return true
}

// scalarID checks a scalar's link id: an old scalar with no id covers any;
// an old linked scalar covers only a current one linked the same way
// (check_scalar_ids).
func (m *idMap) scalarID(old, cur uint32) bool {
	if old == 0 {
		return true
	}
	if cur == 0 {
		// A fresh, unique id stands for "linked to nothing".
		cur = ^uint32(0) - uint32(len(m.cur))
	}
	if !m.check(old, cur) {
		return false
	}
	// A linked register plus a constant is linked to the others of its
	// base id: the bases must pair too.
	return old&addConst == 0 || m.check(old&^addConst, cur&^addConst)
}

// covers reports whether every concrete state cur stands for is one that
// old stands for, so that exploring cur cannot find anything exploring
// old did not (states_equal with RANGE_WITHIN). live gives, per frame from
// the innermost out, the registers that may be read before being written.
func (v *verifier) covers(old, cur *state, exact bool) bool {
	if len(old.frames) != len(cur.frames) || old.lock != cur.lock || len(old.refs) != len(cur.refs) {
		return false
	}
	if old.mayGotoDepth != cur.mayGotoDepth || old.callbackDepth != cur.callbackDepth {
		return false
	}
	if old.speculative && !cur.speculative {
		// What a speculative path proved does not hold for a real one.
		return false
	}
	m := &idMap{exact: exact}
	for i := range old.refs {
		if !m.check(old.refs[i].id, cur.refs[i].id) {
			return false
		}
	}
	for i := range old.frames {
		of, cf := old.frames[i], cur.frames[i]
		if of.callsite != cf.callsite || of.subprog != cf.subprog || of.callback != cf.callback || of.async != cf.async {
			return false
		}
		// Registers: in the innermost frame, only those live at the
		// instruction; in callers, r6-r9 (r0-r5 are clobbered by the
		// return, r10 is fixed).
		var live uint16
		if i == len(old.frames)-1 {
			live = v.liveIn(cur.insn)
		} else {
			live = v.liveIn(cur.frames[i+1].callsite+1) & (1<<6 | 1<<7 | 1<<8 | 1<<9)
		}
		for r := 0; r < int(isa.MaxRegister); r++ {
			if live&(1<<r) == 0 {
				continue
			}
			if !v.regCovers(&of.regs[r], &cf.regs[r], m) {
				return false
			}
		}
		if !v.stackCovers(of, cf, m) {
			return false
		}
		if of.callback && !of.async {
			// The arguments the helper call runs with again.
			for r := range of.args {
				if !v.regCovers(&of.args[r], &cf.args[r], m) {
					return false
				}
			}
		}
	}
	return true
}

// regCovers is regsafe: whether rold stands for every value rcur does.
func (v *verifier) regCovers(rold, rcur *reg, m *idMap) bool {
	if rold.typ == notInit {
		// Nothing was read from it on any path from here.
		return true
	}
	if rcur.typ == notInit {
		return false
	}
	if rold.typ == scalarReg {
		if rcur.typ != scalarReg {
			// A pointer where a number was: privileged programs may
			// treat pointers as numbers, but the checkpoint's exploration
			// did not see one, so it does not cover it.
			return false
		}
		if !rold.precise && !m.exact {
			return true
		}
		// Linked plus a constant and plainly linked are different links;
		// plus a constant, the constants must agree.
		if rold.id&addConst != 0 && (rcur.id&addConst != rold.id&addConst || rold.off != rcur.off) ||
			rold.id != 0 && rold.id&addConst == 0 && rcur.id&addConst != 0 {
			return false
		}
		return rcur.v.Within(rold.v) && m.scalarID(rold.id, rcur.id)
	}
	if rold.typ != rcur.typ || rold.flags != rcur.flags {
		return false
	}
	switch rold.typ {
	case ptrPacket, ptrPacketMeta:
		if rold.rng > rcur.rng || rold.off != rcur.off || rold.mapIdx != rcur.mapIdx {
			return false
		}
		return rcur.v.Within(rold.v) && m.check(rold.id, rcur.id)
	case ptrStack:
		return rold.frame == rcur.frame && rold.off == rcur.off && rcur.v.Within(rold.v)
	case ptrMapValue, ptrMapKey, constMapPtr:
		if rold.mapIdx != rcur.mapIdx || rold.off != rcur.off || !rcur.v.Within(rold.v) {
			return false
		}
		if (rold.mapUID() != 0 || rcur.mapUID() != 0) && !m.check(rold.mapUID(), rcur.mapUID()) {
			return false // another inner map of the same map-in-map
		}
		if rold.maybeNull() || rold.typ == constMapPtr {
			if !m.check(rold.id, rcur.id) && rold.maybeNull() {
				return false
			}
		}
		return m.check(rold.ref, rcur.ref) || rold.ref == 0 && rcur.ref == 0
	case ptrMem:
		if rold.size != rcur.size || rold.off != rcur.off || !rcur.v.Within(rold.v) {
			return false
		}
		if rold.maybeNull() && !m.check(rold.id, rcur.id) {
			return false
		}
		return rold.ref == 0 && rcur.ref == 0 || m.check(rold.ref, rcur.ref)
	case ptrFunc:
		return rold.mapIdx == rcur.mapIdx
	case ptrBTFID:
		// The same kernel struct at the same offset (regs_exact).
		if rold.mapIdx != rcur.mapIdx || rold.off != rcur.off || rold.v != rcur.v {
			return false
		}
		if (rold.maybeNull() || rold.id != 0 || rcur.id != 0) && !m.check(rold.id, rcur.id) {
			return false
		}
		return rold.ref == 0 && rcur.ref == 0 || m.check(rold.ref, rcur.ref)
	case ptrDynptr:
		return rold.dyn == rcur.dyn && rold.off == rcur.off && rcur.v.Within(rold.v) && m.check(rold.ref, rcur.ref)
	default:
		if rold.off != rcur.off || !rcur.v.Within(rold.v) {
			return false
		}
		if rold.maybeNull() && !m.check(rold.id, rcur.id) {
			return false
		}
		return rold.ref == 0 && rcur.ref == 0 || m.check(rold.ref, rcur.ref)
	}
}

// stackCovers is stacksafe: slot by slot, byte by byte.
func (v *verifier) stackCovers(of, cf *frame, m *idMap) bool {
	// Only the slots some path from the checkpoint read matter.
	for r := of.read; r != 0; r &= r - 1 {
		i := bits.TrailingZeros64(r)
		if i >= len(of.stack) {
			break
		}
		os := &of.stack[i]
		var cs *slot
		if i < len(cf.stack) {
			cs = &cf.stack[i]
		}
		if os.kinds[0] == stackDynptr {
			if cs == nil || !dynptrCovers(dynptrSlot(of, i), dynptrSlot(cf, i), m) {
				return false
			}
			continue
		}
		if cs != nil {
			if cs.kinds == os.kinds && (!os.spilled() || os.sp == cs.sp && os.sp.id == 0 && os.sp.ref == 0) {
				continue // the same bytes, or the same register spilled
			}
		}
		for b := 0; b < 8; b++ {
			ok := os.kinds[b]
			if ok == stackInvalid {
				continue
			}
			ck := stackInvalid
			if cs != nil {
				ck = cs.kinds[b]
			}
			if ok == stackMisc && (ck == stackZero || ck == stackMisc || v.allowUninit) {
				continue
			}
			if ok == stackMisc && ck == stackSpill && cs.sp.typ == scalarReg {
				continue
			}
			if ok != ck {
				return false
			}
		}
		if os.spilled() {
			if cs == nil || !cs.spilled() {
				return false
			}
			if of.spillPrecise&(1<<uint(i)) == 0 && !m.exact && os.sp.typ == scalarReg {
				if cs.sp.typ != scalarReg {
					return false
				}
				continue // an imprecise spilled scalar covers any scalar
			}
			o := *os.sp
			o.precise = of.spillPrecise&(1<<uint(i)) != 0
			if !v.regCovers(&o, cs.sp, m) {
				return false
			}
		}
	}
	return true
}
