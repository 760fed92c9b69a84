package verifier

import (
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/isa"
)

// Dynptrs (struct bpf_dynptr), after kernel/bpf/verifier.c. A dynptr on
// the stack is 16 bytes, two slots whose bytes are all stackDynptr; each
// slot's sp describes it (a ptrDynptr register: the dynptr's type and
// whether this is the first slot in dyn, its id, and for ring buffer
// dynptrs the reference it holds in ref):
//
//	fp-16 ┌──────────────────────────┐ first slot: dyn = type|dynFirst
//	      │ dddddddd                 │   id, ref
//	fp-8  ├──────────────────────────┤ second slot: dyn = type
//	      │ dddddddd                 │   id, ref
//	fp-0  └──────────────────────────┘
//
// Helpers with an ARG_PTR_TO_DYNPTR|MEM_UNINIT argument create one (any
// dynptr already at those slots is destroyed, unless it holds a
// reference); the others need an initialised one of the type they name.
// Stores over a dynptr's bytes destroy it (refused for a referenced one),
// loads of them and passing them to a helper as memory are refused.
// bpf_dynptr_data's memory carries the dynptr's id (dynID) and reference,
// and dies with it. A ring buffer dynptr's reference must be released by
// bpf_ringbuf_submit_dynptr or bpf_ringbuf_discard_dynptr on every path,
// even when the reservation failed.
//
// A callback of bpf_user_ringbuf_drain gets a CONST_PTR_TO_DYNPTR in r1:
// a ptrDynptr register, which helpers may read through but not change or
// release.
const (
	dynLocal    uint8 = 1    // BPF_DYNPTR_TYPE_LOCAL
	dynRingbuf  uint8 = 2    // BPF_DYNPTR_TYPE_RINGBUF
	dynFirst    uint8 = 0x80 // the dynptr's first slot
	dynTypeMask uint8 = 0x7f

	dynptrSize = 16 // BPF_DYNPTR_SIZE
)

// dynTypeName is dynptr_type_str.
func dynTypeName(t uint8) string {
	switch t & dynTypeMask {
	case dynLocal:
		return "local"
	case dynRingbuf:
		return "ringbuf"
	}
	return "<invalid>"
}

// argDynType is arg_to_dynptr_type: 0 when the argument names no type.
func argDynType(at helpers.ArgType) uint8 {
	switch {
	case at&helpers.ArgDynptrLocal != 0:
		return dynLocal
	case at&helpers.ArgDynptrRingbuf != 0:
		return dynRingbuf
	}
	return 0
}

// dynID is the dynptr id of memory from bpf_dynptr_data (reg.rng).
func dynID(r *reg) uint32 { return uint32(r.rng) }

// dynptrSpi is dynptr_get_spi: the index of the first slot of the dynptr
// r points to. inStack is false when the slots are not all in the stack
// explored so far (the kernel's -ERANGE).
func (v *verifier) dynptrSpi(r *reg) (spi int, inStack bool, err error) {
	if !r.v.IsConst() {
		return 0, false, v.errorf(v.insnIdx, "dynptr has to be at a constant offset")
	}
	off := int64(r.off) + int64(r.v.Var.Value)
	if off%8 != 0 {
		return 0, false, v.errorf(v.insnIdx, "cannot pass in dynptr at an offset=%d", off)
	}
	s := (-off - 1) / 8
	if s+1 < 2 {
		return 0, false, v.errorf(v.insnIdx, "cannot pass in dynptr at an offset=%d", off)
	}
	f := v.cur.frames[r.frame]
	return int(s), s < int64(len(f.stack)), nil
}

// dynptrSlot returns the description of the dynptr at stack slot spi, or
// nil when the slot holds none.
func dynptrSlot(f *frame, spi int) *reg {
	if spi < 0 || spi >= len(f.stack) || f.stack[spi].kinds[0] != stackDynptr {
		return nil
	}
	return f.stack[spi].sp
}

// destroyDynptr is destroy_if_dynptr_stack_slot: a write to slot spi of
// f destroys the dynptr there, and the memory bpf_dynptr_data gave out of
// it; a dynptr holding a reference may not be written over.
func (v *verifier) destroyDynptr(f *frame, spi int) error {
	d := dynptrSlot(f, spi)
	if d == nil {
		return nil
	}
	if d.dyn&dynFirst == 0 {
		spi++
		d = dynptrSlot(f, spi)
		if d == nil {
			panic("BUG: the second slot of a dynptr without its first")
		}
	}
	if d.dyn&dynTypeMask == dynRingbuf {
		return hinted(v.errorf(v.insnIdx, "cannot overwrite referenced dynptr"),
			"submit or discard the ring buffer dynptr (bpf_ringbuf_submit_dynptr/bpf_ringbuf_discard_dynptr) before reusing its stack")
	}
	id := d.id
	f.own()
	f.stack[spi] = slot{}
	f.stack[spi-1] = slot{}
	v.cur.forEachReg(func(o *reg) {
		if o.typ == ptrMem && dynID(o) == id {
			v.invalidate(o)
		}
	})
	return nil
}

// invalidate is mark_reg_invalid: a pointer that is no longer valid.
func (v *verifier) invalidate(o *reg) {
	if v.allowPtrLeaks {
		o.setUnknown()
	} else {
		*o = reg{}
	}
}

// dynptrArg is process_dynptr_func (and check_func_arg's release checks
// for dynptrs): argument rn of a helper taking a dynptr.
func (v *verifier) dynptrArg(rn isa.Register, r *reg, at helpers.ArgType, meta *callMeta) error {
	pc := v.insnIdx
	if r.typ == ptrDynptr {
		// __check_ptr_off_reg: only the pointer the callback got.
		switch {
		case r.off < 0:
			return v.errorf(pc, "negative offset dynptr_ptr ptr R%d off=%d disallowed", rn, r.off)
		case r.off != 0:
			return v.errorf(pc, "dereference of modified dynptr_ptr ptr R%d off=%d disallowed", rn, r.off)
		case !r.v.IsConst() || r.v.Var.Value != 0:
			return v.errorf(pc, "variable dynptr_ptr access var_off=%s disallowed", r.v.Var)
		}
	}
	if at&helpers.ArgRelease != 0 {
		if r.typ != ptrStack {
			return v.errorf(pc, "cannot release unowned const bpf_dynptr")
		}
		spi, in, err := v.dynptrSpi(r)
		if err != nil {
			return err
		}
		d := dynptrSlot(v.cur.frames[r.frame], spi)
		if !in || d == nil || d.ref == 0 {
			return v.errorf(pc, "arg %d is an unacquired reference", rn)
		}
		meta.releaseDynptr = rn
	}
	if at&helpers.ArgUninit != 0 {
		if r.typ == ptrDynptr {
			return v.errorf(pc, "Dynptr has to be an uninitialized dynptr")
		}
		spi, _, err := v.dynptrSpi(r)
		if err != nil {
			return err
		}
		f := v.cur.frames[r.frame]
		off := int(r.off) + int(int64(r.v.Var.Value))
		if off < -maxStack {
			return v.errorf(pc, "invalid write to stack R%d off=%d size=8", rn, off)
		}
		v.growStack(f, -off)
		if err := v.destroyDynptr(f, spi); err != nil {
			return err
		}
		if err := v.destroyDynptr(f, spi-1); err != nil {
			return err
		}
		typ := argDynType(at)
		if typ == 0 {
			return v.errorf(pc, "verifier internal error: misconfigured dynptr helper type flags")
		}
		meta.newDynptr = &newDynptr{frame: int(r.frame), spi: spi, typ: typ}
		return nil
	}
	if r.typ == ptrDynptr && at&helpers.ArgReadOnly == 0 {
		return v.errorf(pc, "cannot pass pointer to const bpf_dynptr, the helper mutates it")
	}
	d := r
	if r.typ == ptrStack {
		spi, in, err := v.dynptrSpi(r)
		if err != nil {
			return err
		}
		f := v.cur.frames[r.frame]
		d = dynptrSlot(f, spi)
		if !in || d == nil || d.dyn&dynFirst == 0 || dynptrSlot(f, spi-1) == nil {
			return hinted(v.errorf(pc, "Expected an initialized dynptr as arg #%d", rn-1),
				"initialise the dynptr first (bpf_dynptr_from_mem, bpf_ringbuf_reserve_dynptr) on every path that reaches here")
		}
		v.markReadRange(v.cur, int(r.frame), -8*(spi+1), -8*(spi-1))
	}
	if want := argDynType(at); want != 0 && d.dyn&dynTypeMask != want {
		return v.errorf(pc, "Expected a dynptr of type %s as arg #%d", dynTypeName(want), rn-1)
	}
	if !meta.hasDynptr {
		meta.hasDynptr, meta.dynID, meta.dynRef = true, d.id, d.ref
	}
	return nil
}

// newDynptr is a dynptr a helper call creates once its arguments passed.
type newDynptr struct {
	frame, spi int
	typ        uint8
}

// makeDynptr is mark_stack_slots_dynptr: the helper call at the current
// instruction created the dynptr nd.
func (v *verifier) makeDynptr(nd *newDynptr) {
	f := v.cur.frames[nd.frame]
	f.own()
	id := v.nextID()
	var ref uint32
	if nd.typ == dynRingbuf {
		ref = v.nextID()
		v.cur.refs = append(v.cur.refs, refState{id: ref, insn: v.insnIdx})
	}
	for i, s := range []int{nd.spi, nd.spi - 1} {
		d := reg{typ: ptrDynptr, dyn: nd.typ, id: id, ref: ref}
		if i == 0 {
			d.dyn |= dynFirst
		}
		sl := &f.stack[s]
		*sl = slot{}
		for k := range sl.kinds {
			sl.kinds[k] = stackDynptr
		}
		sl.setSpill(&d)
		if s < 64 {
			f.written |= 1 << uint(s)
			f.spillPrecise &^= 1 << uint(s)
		}
	}
}

// releaseDynptr is unmark_stack_slots_dynptr: the dynptr argument rn is
// released (its reference, the memory bpf_dynptr_data gave out of it and
// every copy of it) or, without a reference, forgotten.
func (v *verifier) releaseDynptr(rn isa.Register) error {
	r := v.reg(rn)
	spi, _, err := v.dynptrSpi(r)
	if err != nil {
		return err
	}
	f := v.cur.frames[r.frame]
	d := dynptrSlot(f, spi)
	if d == nil {
		panic("BUG: released a dynptr that is not there")
	}
	f.own()
	if d.ref == 0 {
		f.stack[spi], f.stack[spi-1] = slot{}, slot{}
		return nil
	}
	ref := d.ref
	if !v.hasRef(v.cur, ref) {
		return v.errorf(v.insnIdx, "release reference id=%d not found", ref)
	}
	v.releaseRef(v.cur, ref)
	for _, fr := range v.cur.frames {
		for i := range fr.stack {
			if d := dynptrSlot(fr, i); d != nil && d.ref == ref {
				fr.own()
				fr.stack[i] = slot{}
			}
		}
	}
	return nil
}

// dynptrCovers is stacksafe for a STACK_DYNPTR slot: same type, same
// slot of it, and the references pair up.
func dynptrCovers(old, cur *reg, m *idMap) bool {
	if cur == nil || old.dyn != cur.dyn {
		return false
	}
	return m.check(old.ref, cur.ref)
}
