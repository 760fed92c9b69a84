package verifier

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier/scalar"
)

// callMeta is what the arguments of one helper call told (struct
// bpf_call_arg_meta).
type callMeta struct {
	mapIdx    int32 // the ArgConstMapPtr map, -1 for none
	memSize   uint64
	sizeMax   uint64 // the largest value of the size argument
	release   uint32 // the reference an argument releases
	funcStart int    // the ArgPtrToFunc callback's first slot, -1 for none
	uninit    []uninitMem
	// write says the memory argument being checked is written by the
	// helper.
	write bool
	// argRef is the reference the first referenced argument holds.
	argRef uint32
	// constKey is the map key when it is a known constant on the stack,
	// -1 otherwise (get_constant_map_key).
	constKey int64
	// mapUID is the map_uid of the map argument (reg.mapUID); timer says
	// the map came from an ARG_PTR_TO_TIMER argument, whose map a later
	// ARG_CONST_MAP_PTR must be.
	mapUID uint32
	timer  bool
	// Dynptr arguments (dynptr.go): the one the call releases, the one
	// it creates, and the id and reference of the first initialised one
	// (for bpf_dynptr_data's memory).
	releaseDynptr isa.Register
	newDynptr     *newDynptr
	hasDynptr     bool
	dynID, dynRef uint32
}

// uninitMem is stack memory a helper fills.
type uninitMem struct {
	r    reg
	size int
}

// checkHelperCall is check_helper_call.
func (v *verifier) checkHelperCall(ins isa.Instruction) error {
	pc := v.insnIdx
	id := ins.Imm
	name := helpers.Name(id)
	proto, ok := v.p.Helpers[id]
	if !ok {
		return v.unavailableHelper(pc, id)
	}
	if proto.GPLOnly && !v.p.GPL {
		return hinted(v.errorf(pc, "cannot call GPL-restricted function from non-GPL compatible program (bpf_%s is GPL-only)", name),
			"license the object \"GPL\" or \"Dual BSD/GPL\"")
	}
	if v.cur.lock != 0 && id != helpers.IDSpinUnlock {
		return v.errorf(pc, "function calls are not allowed while holding a lock")
	}
	meta := callMeta{mapIdx: -1, funcStart: -1, constKey: -1}
	for i, at := range proto.Args {
		if at == helpers.ArgDontCare {
			break
		}
		if err := v.checkArg(id, name, proto, i, at, &meta); err != nil {
			return err
		}
	}
	if id == helpers.IDTailCall && len(v.cur.refs) > 0 {
		return v.errorf(pc, "tail_call would lead to reference leak")
	}
	if id == helpers.IDTailCall && v.opts.Unprivileged && meta.mapIdx >= 0 {
		// record_func_map and do_misc_fixups: an unprivileged tail call
		// bounds its index against one prog array, so every path must
		// bring the same one.
		a := &v.aux[pc]
		if a.tailMap != 0 && a.tailMap != meta.mapIdx+1 {
			return hinted(v.errorf(pc, "tail_call abusing map_ptr"),
				"unprivileged programs must tail-call through one prog array per call site: make a call per array")
		}
		a.tailMap = meta.mapIdx + 1
	}
	if id == idDynptrFromMem {
		if r1 := v.reg(isa.R1); r1.typ != ptrMapValue {
			return hinted(v.errorf(pc, "Unsupported reg type %s for bpf_dynptr_from_mem data", r1.typeName()),
				"bpf_dynptr_from_mem takes a map value (a global variable, or a value looked up in a map)")
		}
	}
	if meta.release != 0 {
		if !v.hasRef(v.cur, meta.release) {
			return v.errorf(pc, "release reference id=%d not found", meta.release)
		}
		v.releaseRef(v.cur, meta.release)
	}
	if meta.releaseDynptr != 0 {
		if err := v.releaseDynptr(meta.releaseDynptr); err != nil {
			return err
		}
	}
	f := v.cur.cur()
	// The helper fills memory it was given to fill.
	for _, u := range meta.uninit {
		if u.r.typ == ptrStack {
			fr := v.cur.frames[u.r.frame]
			fr.own()
			base := int(u.r.off) + int(int64(u.r.v.SMin))
			hi := int(u.r.off) + int(u.r.v.SMax) + u.size
			for off := base; off < hi && off < 0; off++ {
				if off < -maxStack {
					continue
				}
				v.growStack(fr, -off)
				s, k := byteAt(fr, off)
				if s.spilled() {
					s.dropSpill()
				}
				s.kinds[k] = stackMisc
			}
		}
	}
	if meta.newDynptr != nil {
		v.makeDynptr(meta.newDynptr)
	}
	// A callback: explore it as a call from here.
	if cb := proto.Callback; cb != nil && meta.funcStart >= 0 {
		if err := v.enterCallback(ins, proto, &meta); err != nil {
			return err
		}
	}
	for r := isa.R1; r <= isa.R5; r++ {
		f.regs[r] = reg{}
	}
	r0 := &f.regs[isa.R0]
	if err := v.setReturn(r0, id, proto, &meta); err != nil {
		return err
	}
	if proto.ChangesPktData {
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
	v.cur.insn = pc + 1
	return nil
}

// setReturn sets r0 after a helper call from its return type.
func (v *verifier) setReturn(r0 *reg, id int32, proto helpers.Proto, meta *callMeta) error {
	pc := v.insnIdx
	ret := proto.Ret
	null := ret&helpers.RetMaybeNull != 0
	switch ret.Base() {
	case helpers.RetInteger:
		r0.setUnknown()
		switch proto.RetBound {
		case helpers.RetCPU:
			r0.setScalar(scalar.Range(0, uint64(runtime.NumCPU()-1)))
		case helpers.RetErrnoOrSize:
			val := scalar.Unknown()
			val.SMin, val.SMax = -helpers.MaxErrno, int64(meta.sizeMax)
			val.Sync()
			r0.setScalar(val)
		}
		return nil
	case helpers.RetVoid:
		*r0 = reg{}
		return nil
	case helpers.RetPtrToMapValue:
		if meta.mapIdx < 0 {
			return v.errorf(pc, "kernel subsystem misconfigured verifier")
		}
		m := v.p.Maps[meta.mapIdx].Spec
		if m.Type == maps.ArrayOfMaps || m.Type == maps.HashOfMaps {
			if m.InnerMap == nil {
				return v.errorf(pc, "map %s holds maps of unknown shape", m.Name)
			}
			r0.setPointer(constMapPtr)
			r0.mapIdx = v.innerMap(meta.mapIdx, *m.InnerMap)
		} else {
			r0.setPointer(ptrMapValue)
			r0.mapIdx = meta.mapIdx
			r0.setMapUID(meta.mapUID)
			// A lookup in an array with a constant key in range cannot
			// fail (Linux 6.14 on).
			if id == helpers.IDMapLookupElem && (m.Type == maps.Array || m.Type == maps.PerCPUArray) &&
				meta.constKey >= 0 && meta.constKey < int64(m.MaxEntries) {
				null = false
			}
		}
	case helpers.RetPtrToSocket:
		r0.setPointer(ptrSocket)
	case helpers.RetPtrToTCPSock:
		r0.setPointer(ptrTCPSock)
	case helpers.RetPtrToSockCommon:
		r0.setPointer(ptrSockCommon)
	case helpers.RetPtrToMem:
		r0.setPointer(ptrMem)
		r0.size = uint32(meta.memSize)
		if ret&helpers.RetRingbuf != 0 {
			r0.flags |= flagRingbuf
		}
		if ret&helpers.RetReadOnly != 0 {
			r0.flags |= flagRdonly
		}
	case helpers.RetPtrToBTFID:
		kt := v.kernelTypes()
		if _, err := kt.Spec(); err != nil {
			return v.noBTF(pc, fmt.Sprintf("the result of bpf_%s#%d (a kernel object)", helpers.Name(id), id), err)
		}
		bid, err := kt.structID(proto.RetBTF)
		if proto.RetBTF == "" || err != nil {
			return v.errorf(pc, "invalid return type %d of func bpf_%s#%d", uint32(ret.Base()), helpers.Name(id), id)
		}
		r0.setPointer(ptrBTFID)
		r0.mapIdx = int32(bid)
		if ret&helpers.RetTrusted != 0 {
			r0.flags |= flagTrusted
		}
	default:
		return v.errorf(pc, "unknown return type %s of func bpf_%s#%d", ret, helpers.Name(id), id)
	}
	if null {
		r0.flags |= flagMaybeNull
		r0.id = v.nextID()
	} else if r0.typ == ptrMapValue && v.p.Maps[r0.mapIdx].SpinLock >= 0 {
		r0.id = v.nextID() // tells its bpf_spin_lock apart from other values'
	}
	if proto.Cast {
		r0.ref = meta.argRef
	}
	if id == idDynptrData {
		if !meta.hasDynptr {
			return v.errorf(pc, "verifier internal error: no dynptr arg found")
		}
		r0.rng = int32(meta.dynID)
		r0.ref = meta.dynRef
	}
	if proto.Acquire {
		ref := v.nextID()
		v.cur.refs = append(v.cur.refs, refState{id: ref, insn: pc})
		r0.ref = ref
		r0.id = ref // a NULL check of it settles the reference too
	}
	return nil
}

// constKey returns the value of a map key of size bytes on the stack when
// it is a known constant (zero bytes, or a spilled constant of the key's
// size), marking it precise; -1 otherwise (get_constant_map_key).
func (v *verifier) constKey(r *reg, size int) int64 {
	if !v.allowPtrLeaks || r.typ != ptrStack || !r.v.IsConst() {
		return -1
	}
	off := int(r.off) + int(int64(r.v.Var.Value))
	if off >= 0 || off < -maxStack {
		return -1
	}
	f := v.cur.frames[r.frame]
	slot := -off - 1
	spi, k := slot/8, slot%8
	if spi >= len(f.stack) {
		return -1
	}
	s := &f.stack[spi]
	zeros := 0
	for i := k; i >= 0 && s.kinds[i] == stackZero; i-- {
		zeros++
	}
	if zeros >= size {
		return 0
	}
	if !s.spilled() || s.sp.typ != scalarReg {
		return -1
	}
	spill := 0
	for i := k; i >= 0 && s.kinds[i] == stackSpill; i-- {
		spill++
	}
	if spill != size || !s.sp.v.IsConst() {
		return -1
	}
	v.markPreciseSlot(v.cur, int(r.frame), spi)
	return int64(s.sp.v.Var.Value & (1<<(8*uint(size)) - 1))
}

// innerMap adds the inner map of the map-in-map outer to the program's
// maps, with the special fields the outer map's Map.Inner knows of.
func (v *verifier) innerMap(outer int32, spec maps.Spec) int32 {
	for i := range v.p.Maps {
		if v.p.Maps[i].Spec.Name == spec.Name && v.p.Maps[i].Spec.Type == spec.Type && v.p.Maps[i].Spec.ValueSize == spec.ValueSize && v.p.Maps[i].Spec.KeySize == spec.KeySize {
			return int32(i)
		}
	}
	in := Map{Spec: spec, SpinLock: -1, Timer: -1}
	if o := v.p.Maps[outer].Inner; o != nil {
		in.SpinLock, in.Timer, in.NoBTF = o.SpinLock, o.Timer, o.NoBTF
	}
	// Copy-on-write: the caller's slice is not changed.
	v.p = &Program{Name: v.p.Name, Insns: v.p.Insns, Kind: v.p.Kind, Maps: append(append([]Map(nil), v.p.Maps...), in),
		Helpers: v.p.Helpers, GPL: v.p.GPL, Lines: v.p.Lines, Funcs: v.p.Funcs, Sleepable: v.p.Sleepable}
	return int32(len(v.p.Maps) - 1)
}

func (v *verifier) hasRef(s *state, id uint32) bool {
	for _, r := range s.refs {
		if r.id == id {
			return true
		}
	}
	return false
}

// releaseRef drops a reference and every register that holds it
// (release_reference).
func (v *verifier) releaseRef(s *state, id uint32) {
	for i, r := range s.refs {
		if r.id == id {
			s.refs = append(s.refs[:i:i], s.refs[i+1:]...)
			break
		}
	}
	s.forEachReg(func(o *reg) {
		if o.ref == id {
			if v.allowPtrLeaks {
				o.setUnknown()
			} else {
				*o = reg{}
			}
		}
	})
}

// typeMismatch is the kernel's "R1 type=scalar expected=map_ptr".
func (v *verifier) typeMismatch(r isa.Register, got *reg, expected ...string) error {
	e := v.errorf(v.insnIdx, "R%d type=%s expected=%s", r, got.typeName(), strings.Join(expected, ", "))
	if got.maybeNull() {
		return hinted(e, "r%d may be NULL: test it first (if (!p) return ...;)", r)
	}
	return e
}

// btfSockCommonTypes are the types an ARG_PTR_TO_BTF_ID_SOCK_COMMON
// argument takes (btf_id_sock_common_types), as Linux lists them.
var btfSockCommonTypes = []string{"sock_common", "sock", "tcp_sock", "xdp_sock", "ptr_", "trusted_ptr_"}

var memTypes = []string{"fp", "pkt", "pkt_meta", "map_key", "map_value", "mem", "ringbuf_mem", "buf", "trusted_ptr_"}

// checkArg is check_func_arg for argument i (register r1+i).
func (v *verifier) checkArg(id int32, name string, proto helpers.Proto, i int, at helpers.ArgType, meta *callMeta) error {
	pc := v.insnIdx
	rn := isa.Register(i + 1)
	r, err := v.readReg(rn)
	if err != nil {
		return err
	}
	meta.write = false
	if r.ref != 0 && meta.argRef == 0 {
		meta.argRef = r.ref
	}
	base := at.Base()
	if base == helpers.ArgPtrToDynptr {
		if r.typ != ptrStack && r.typ != ptrDynptr {
			return v.typeMismatch(rn, r, "fp", "dynptr_ptr")
		}
		return v.dynptrArg(rn, r, at, meta)
	}
	mayNull := at&helpers.ArgMaybeNull != 0
	if at&helpers.ArgRelease != 0 && !(mayNull && r.isNull()) {
		// The type is checked first (check_reg_type): a socket
		// released twice is a number by the second release.
		if r.typ == scalarReg {
			switch base {
			case helpers.ArgPtrToBTFIDSockCommon:
				return v.typeMismatch(rn, r, btfSockCommonTypes...)
			case helpers.ArgPtrToRingbufMem:
				return v.typeMismatch(rn, r, "ringbuf_mem")
			}
		}
		if r.ref == 0 {
			return v.errorf(pc, "R%d must be referenced when passed to release function", rn)
		}
		if meta.release != 0 {
			return v.errorf(pc, "more than one arg with ref_obj_id R%d %d %d", rn, r.ref, meta.release)
		}
		meta.release = r.ref
	}
	switch base {
	case helpers.ArgAnything:
		if v.isPointerLeak(r) {
			return v.errorf(pc, "R%d leaks addr into helper function", rn)
		}
	case helpers.ArgScalar:
		if r.typ != scalarReg {
			return v.typeMismatch(rn, r, "scalar")
		}
	case helpers.ArgConstMapPtr:
		if r.typ != constMapPtr || r.maybeNull() {
			return v.typeMismatch(rn, r, "map_ptr")
		}
		if meta.timer && (meta.mapIdx != r.mapIdx || meta.mapUID != r.mapUID()) {
			// bpf_timer_init: the timer's own map, and for an inner
			// map the one its lookup found (map_uid).
			return hinted(v.errorf(pc, "timer pointer in R1 map_uid=%d doesn't match map pointer in R2 map_uid=%d", meta.mapUID, r.mapUID()),
				"pass bpf_timer_init the map the timer's value was looked up in")
		}
		meta.mapIdx = r.mapIdx
		meta.mapUID = r.mapUID()
		return v.checkMapFunc(id, name, proto, r.mapIdx)
	case helpers.ArgPtrToMapKey, helpers.ArgPtrToMapValue:
		if meta.mapIdx < 0 {
			return v.errorf(pc, "invalid map_ptr to access map->key")
		}
		if mayNull && r.isNull() {
			return nil
		}
		if r.typ == ptrBTFID && r.flags == flagTrusted {
			// A trusted kernel object passes the type check (mem_types),
			// then the arguments without MEM_RDONLY refuse it.
			return v.errorf(pc, "bpf_%s() may write into memory pointed by R%d type=%s", name, rn, r.typeName())
		}
		if !isMemType(r) {
			return v.typeMismatch(rn, r, "fp", "pkt", "pkt_meta", "map_key", "map_value")
		}
		if err := v.helperPktAccess(r, proto); err != nil {
			return err
		}
		m := v.p.Maps[meta.mapIdx].Spec
		size := m.KeySize
		if base == helpers.ArgPtrToMapValue {
			size = m.ValueSize
		} else {
			meta.constKey = v.constKey(r, int(size))
		}
		return v.helperMem(rn, r, int(size), false, meta)
	case helpers.ArgPtrToMem:
		if mayNull && r.isNull() {
			return nil
		}
		switch {
		case isMemType(r):
		case r.typ == ptrBTFID && r.flags == flagTrusted:
			// A trusted kernel object is memory the helper may read
			// (mem_types has PTR_TO_BTF_ID | PTR_TRUSTED), the bytes
			// checked as a load of them (check_helper_mem_access).
			if at&helpers.ArgReadOnly == 0 {
				return v.errorf(pc, "bpf_%s() may write into memory pointed by R%d type=%s", name, rn, r.typeName())
			}
		default:
			return v.typeMismatch(rn, r, memTypes...)
		}
		if err := v.helperPktAccess(r, proto); err != nil {
			return err
		}
		if at&helpers.ArgFixedSize != 0 {
			meta.write = at&(helpers.ArgUninit|helpers.ArgWrite) != 0
			return v.helperMem(rn, r, int(proto.ArgSize[i]), at&helpers.ArgUninit != 0, meta)
		}
		// Sized by the next argument: checked there.
	case helpers.ArgConstSize, helpers.ArgConstSizeOrZero:
		if r.typ != scalarReg {
			return v.typeMismatch(rn, r, "scalar")
		}
		if i == 0 {
			return v.errorf(pc, "ARG_CONST_SIZE cannot be first argument")
		}
		if r.v.SMin < 0 {
			return hinted(v.errorf(pc, "R%d min value is negative, either use unsigned or 'var &= const'", rn),
				"the size may be negative: make it unsigned or bound it")
		}
		if r.v.UMin == 0 && base == helpers.ArgConstSize {
			return hinted(v.errorf(pc, "R%d invalid zero-sized read: u64=[%d,%d]", rn, r.v.UMin, r.v.UMax),
				"the size may be 0 here, which this helper does not take: check it first (if (len == 0) return ...;)")
		}
		if r.v.UMax >= maxVarOff {
			return hinted(v.errorf(pc, "R%d unbounded memory access, use 'var &= const' or 'if (var < const)'", rn),
				"bound the size before the call: if (len > sizeof(buf)) return ...;")
		}
		meta.sizeMax = r.v.UMax
		v.markPrecise(v.cur, rn)
		prev := v.reg(rn - 1)
		pat := proto.Args[i-1]
		if pat.Base() != helpers.ArgPtrToMem {
			return nil
		}
		if r.v.UMax == 0 || pat&helpers.ArgMaybeNull != 0 && prev.isNull() {
			if prev.isNull() && r.v.UMax != 0 {
				return v.errorf(pc, "R%d type=scalar expected=%s", rn-1, strings.Join(memTypes, ", "))
			}
			if prev.typ == ptrStack {
				// Zero bytes of the stack: the offsets must still be
				// inside it (check_stack_access_within_bounds).
				return v.helperMem(rn-1, prev, 0, pat&helpers.ArgUninit != 0, meta)
			}
			return nil
		}
		meta.write = pat&(helpers.ArgUninit|helpers.ArgWrite) != 0
		return v.helperMem(rn-1, prev, int(r.v.UMax), pat&helpers.ArgUninit != 0, meta)
	case helpers.ArgConstAllocSizeOrZero:
		if r.typ != scalarReg || !r.v.IsConst() {
			return v.errorf(pc, "R%d is not a known constant'", rn)
		}
		meta.memSize = r.v.Var.Value
		v.markPrecise(v.cur, rn)
	case helpers.ArgPtrToCtx:
		if mayNull && r.isNull() {
			return nil
		}
		if r.typ != ptrCtx {
			return v.typeMismatch(rn, r, "ctx")
		}
		if r.off != 0 || !r.v.IsConst() || r.v.Var.Value != 0 {
			return v.errorf(pc, "dereference of modified ctx ptr R%d off=%d disallowed", rn, r.off)
		}
	case helpers.ArgPtrToStack:
		if mayNull && r.isNull() {
			return nil
		}
		if r.typ != ptrStack {
			return v.typeMismatch(rn, r, "fp")
		}
	case helpers.ArgPtrToFunc:
		if r.typ != ptrFunc {
			return v.typeMismatch(rn, r, "func")
		}
		meta.funcStart = int(r.mapIdx)
	case helpers.ArgPtrToRingbufMem:
		if r.typ != ptrMem || r.flags&flagRingbuf == 0 {
			return v.typeMismatch(rn, r, "ringbuf_mem")
		}
		if r.off != 0 || !r.v.IsConst() || r.v.Var.Value != 0 {
			return v.errorf(pc, "R%d must have zero offset when passed to release func", rn)
		}
	case helpers.ArgPtrToSockCommon:
		if mayNull && r.isNull() {
			return nil
		}
		switch r.typ {
		case ptrSocket, ptrSockCommon, ptrTCPSock:
		default:
			return v.typeMismatch(rn, r, "sock_common", "sock", "tcp_sock")
		}
		if r.maybeNull() {
			return v.typeMismatch(rn, r, "sock_common", "sock", "tcp_sock")
		}
	case helpers.ArgPtrToBTFIDSockCommon:
		// A bpf_sock of any kind, or a kernel socket (BTF) that starts
		// with a struct sock_common.
		expected := btfSockCommonTypes
		if mayNull && r.isNull() {
			return nil
		}
		switch {
		case r.maybeNull():
			return v.typeMismatch(rn, r, expected...)
		case r.typ == ptrSocket, r.typ == ptrSockCommon, r.typ == ptrTCPSock:
		case r.typ == ptrBTFID && r.flags&(flagUntrusted|flagRCU) == 0:
			return v.btfArg(rn, r, "sock_common", at&helpers.ArgRelease != 0, false)
		default:
			return v.typeMismatch(rn, r, expected...)
		}
	case helpers.ArgPtrToBTFID:
		// ARG_PTR_TO_BTF_ID: a kernel object of the helper's type
		// (arg_btf_id), or one that starts with it; untrusted pointers
		// may not be passed on.
		if mayNull && r.isNull() {
			return nil
		}
		if r.typ != ptrBTFID || r.flags&flagUntrusted != 0 || r.maybeNull() && !mayNull || r.flags&flagTrusted != 0 && r.flags&flagRCU != 0 {
			return v.typeMismatch(rn, r, "ptr_", "trusted_ptr_", "rcu_ptr_")
		}
		want := proto.ArgBTF[i]
		if want == "" {
			return v.errorf(pc, "verifier internal error: missing arg compatible BTF ID (argument %d of bpf_%s#%d)", i+1, name, id)
		}
		return v.btfArg(rn, r, want, at&helpers.ArgRelease != 0, at&helpers.ArgRelease != 0) // strict for releases (bpf_sk_release takes ARG_PTR_TO_BTF_ID_SOCK_COMMON)
	case helpers.ArgPtrToSocket:
		if mayNull && r.isNull() {
			return nil
		}
		if r.typ != ptrSocket || r.maybeNull() {
			return v.typeMismatch(rn, r, "sock")
		}
	case helpers.ArgPtrToSpinLock:
		return v.spinLock(rn, r, id == helpers.IDSpinLock)
	case helpers.ArgPtrToTimer:
		if r.typ != ptrMapValue || r.maybeNull() {
			return v.typeMismatch(rn, r, "map_value")
		}
		return v.timerArg(rn, r, meta)
	case helpers.ArgPtrToConstStr:
		if r.typ != ptrMapValue {
			return v.typeMismatch(rn, r, "map_value")
		}
		m := v.p.Maps[r.mapIdx]
		if !m.ReadOnly || m.Frozen == nil {
			return v.errorf(pc, "R%d does not point to a readonly map'", rn)
		}
		if !r.v.IsConst() {
			return v.errorf(pc, "R%d is not a constant address'", rn)
		}
		off := int(r.off) + int(r.v.Var.Value)
		if off < 0 || off >= len(m.Frozen) || !strings.Contains(string(m.Frozen[off:]), "\x00") {
			return v.errorf(pc, "string is not zero-terminated")
		}
	default:
		return v.errorf(pc, "argument %d of bpf_%s#%d has type %s, which waggle's verifier does not support yet", i+1, name, id, at)
	}
	return nil
}

func isMemType(r *reg) bool {
	if r.maybeNull() || r.flags&flagUntrusted != 0 {
		return false
	}
	switch r.typ {
	case ptrStack, ptrPacket, ptrPacketMeta, ptrMapKey, ptrMapValue, ptrMem:
		return true
	}
	return false
}

// helperPktAccess is may_access_direct_pkt_data for a helper's memory
// argument: only helpers whose prototype says PktAccess take packet
// pointers (cgroup sockopt programs' buffers aside).
func (v *verifier) helperPktAccess(r *reg, proto helpers.Proto) error {
	if (r.typ == ptrPacket || r.typ == ptrPacketMeta) && !proto.PktAccess && v.p.Kind.Type() != progtype.CgroupSockopt {
		return hinted(v.errorf(v.insnIdx, "helper access to the packet is not allowed"),
			"this helper does not take packet pointers: copy the bytes to the stack first")
	}
	return nil
}

// helperMem is check_helper_mem_access: size bytes at r must be
// accessible (and initialised, unless the helper fills them).
func (v *verifier) helperMem(rn isa.Register, r *reg, size int, uninit bool, meta *callMeta) error {
	pc := v.insnIdx
	a := access{base: rn, off: 0, size: size, write: uninit}
	off := int(r.off)
	switch r.typ {
	case ptrPacket, ptrPacketMeta:
		if off < 0 || off+size > int(r.rng) || r.v.SMin < 0 {
			e := v.errorf(pc, "invalid access to packet, off=%d size=%d, R%d(id=%d,off=%d,r=%d)", off, size, rn, r.id, r.off, r.rng)
			return hinted(e, "check the packet's length before passing it to the helper: if (data + %d > data_end) return ...;", off+size)
		}
		return nil
	case ptrMapValue, ptrMapKey:
		p := *r
		if r.typ == ptrMapValue {
			mm := v.p.Maps[r.mapIdx]
			if (uninit || meta.write) && mm.ReadOnly {
				return v.errorf(pc, "write into map forbidden, value_size=%d off=%d size=%d", mm.Spec.ValueSize, off, size)
			}
			if !uninit && mm.WriteOnly {
				return v.errorf(pc, "read from map forbidden, value_size=%d off=%d size=%d", mm.Spec.ValueSize, off, size)
			}
		}
		m := v.p.Maps[r.mapIdx].Spec
		lim := int64(m.ValueSize)
		if r.typ == ptrMapKey {
			lim = int64(m.KeySize)
		}
		err := v.regionAccess(a, &p, off, lim, "map value", func(o int) string {
			return fmt.Sprintf("invalid access to map value, value_size=%d off=%d size=%d", lim, o, size)
		})
		if err == nil && r.typ == ptrMapValue {
			err = v.specialFields(&v.p.Maps[r.mapIdx], r, off, size)
		}
		return err
	case ptrMem:
		p := *r
		return v.regionAccess(a, &p, off, int64(r.size), "memory", func(o int) string {
			return fmt.Sprintf("invalid access to memory, mem_size=%d off=%d size=%d", r.size, o, size)
		})
	case ptrBTFID:
		p := *r
		_, err := v.btfAccess(access{base: rn, size: size}, &p, off)
		return err
	case ptrStack:
		fr := v.cur.frames[r.frame]
		lo, hi := int64(off)+r.v.SMin, int64(off)+r.v.SMax+int64(size)
		if !r.v.IsConst() && !v.allowPtrLeaks {
			return v.errorf(pc, "R%d variable offset stack access prohibited for !root", rn)
		}
		if r.v.SMin == -1<<63 || lo < -maxStack || hi > 0 || size == 0 && lo >= 0 {
			if r.v.IsConst() {
				return v.errorf(pc, "invalid indirect access to stack R%d off=%d size=%d", rn, lo, size)
			}
			return v.errorf(pc, "invalid variable-offset indirect access to stack R%d var_off=%s size=%d", rn, r.v.Var, size)
		}
		v.growStack(fr, int(-lo))
		v.fastcallContract(int(r.frame), int(lo))
		v.markReadRange(v.cur, int(r.frame), int(lo), int(hi))
		if uninit {
			// check_stack_range_initialized's raw mode: the helper
			// writes there, and must not write over a dynptr.
			for o := int(lo); o < int(hi); o++ {
				if o >= -8*len(fr.stack) {
					if s, k := byteAt(fr, o); s.kinds[k] == stackDynptr {
						return v.errorf(pc, "potential write to dynptr at off=%d disallowed", o)
					}
				}
			}
			meta.uninit = append(meta.uninit, uninitMem{r: *r, size: size})
			return nil
		}
		for o := int(lo); o < int(hi); o++ {
			s, k := byteAt(fr, o)
			switch s.kinds[k] {
			case stackMisc, stackZero:
				continue
			case stackSpill:
				if s.sp == nil || s.sp.typ == scalarReg || v.allowPtrLeaks {
					continue
				}
			case stackInvalid:
				if v.allowUninit {
					continue
				}
			}
			if r.v.IsConst() {
				return hinted(v.errorf(pc, "invalid read from stack R%d off %d+%d size %d", rn, lo, o-int(lo), size),
					"the helper reads %d bytes there, and some were never written: initialise the whole buffer (e.g. struct key k = {}; or __builtin_memset) before the call", size)
			}
			return v.errorf(pc, "invalid read from stack R%d var_off %s+%d size %d", rn, r.v.Var, o-int(lo), size)
		}
		return nil
	}
	return v.typeMismatch(rn, r, memTypes...)
}

// spinLock is process_spin_lock: the lock of a map value, taken or
// released.
func (v *verifier) spinLock(rn isa.Register, r *reg, lock bool) error {
	pc := v.insnIdx
	if r.typ != ptrMapValue || r.maybeNull() {
		return v.typeMismatch(rn, r, "map_value")
	}
	if !r.v.IsConst() {
		return v.errorf(pc, "R%d doesn't have constant offset. bpf_spin_lock has to be at the constant offset", rn)
	}
	m := v.p.Maps[r.mapIdx]
	if m.SpinLock < 0 {
		return v.errorf(pc, "map '%s' has no valid bpf_spin_lock", m.Spec.Name)
	}
	off := int(r.off) + int(r.v.Var.Value)
	if off != m.SpinLock {
		return v.errorf(pc, "off %d doesn't point to 'struct bpf_spin_lock' that is at %d", off, m.SpinLock)
	}
	id := uint32(r.mapIdx)<<16 | r.id&0xffff | 1<<31
	s := v.cur
	if lock {
		if s.lock != 0 {
			return v.errorf(pc, "Locked two spin locks are not allowed")
		}
		s.lock = id
		return nil
	}
	if s.lock == 0 {
		return v.errorf(pc, "bpf_spin_unlock without taking a lock")
	}
	if s.lock != id {
		return v.errorf(pc, "bpf_spin_unlock of different lock")
	}
	s.lock = 0
	return nil
}

// timerArg is process_timer_func: r must point at the struct bpf_timer
// of a map value, at a constant offset; the map is the helper's map from
// then on (bpf_timer_init's map argument, bpf_timer_set_callback's
// callback's map).
func (v *verifier) timerArg(rn isa.Register, r *reg, meta *callMeta) error {
	pc := v.insnIdx
	if !r.v.IsConst() {
		return hinted(v.errorf(pc, "R%d doesn't have constant offset. bpf_timer has to be at the constant offset", rn),
			"pass &value->timer, not a pointer moved by a variable")
	}
	m := v.p.Maps[r.mapIdx]
	name := kernelMapName(m.Spec.Name)
	if m.NoBTF {
		return hinted(v.errorf(pc, "map '%s' has to have BTF in order to use bpf_timer", name),
			"declare the map with BTF (struct { __uint(type, ...); __type(value, struct elem); } m SEC(\".maps\");)")
	}
	if m.Timer < 0 {
		return hinted(v.errorf(pc, "map '%s' has no valid bpf_timer", name),
			"the map's value type needs a struct bpf_timer field")
	}
	off := int64(r.off) + int64(r.v.Var.Value)
	if off != int64(m.Timer) {
		return v.errorf(pc, "off %d doesn't point to 'struct bpf_timer' that is at %d", off, m.Timer)
	}
	meta.mapIdx = r.mapIdx
	meta.mapUID = r.mapUID()
	meta.timer = true
	return nil
}

// Ids of helpers the verifier treats specially.
const (
	idGetLocalStorage      = 81  // bpf_get_local_storage
	idDynptrFromMem        = 197 // bpf_dynptr_from_mem: data must be a map value
	idRingbufReserveDynptr = 198
	idRingbufSubmitDynptr  = 199
	idRingbufDiscardDynptr = 200
	idDynptrData           = 203 // bpf_dynptr_data: memory of the dynptr
)

// checkMapFunc is check_map_func_compatibility, for the maps and helpers
// whose pairing the kernel restricts: the helper's side from its
// prototype (Proto.MapTypes), the map's side here.
func (v *verifier) checkMapFunc(id int32, name string, proto helpers.Proto, idx int32) error {
	m := v.p.Maps[idx].Spec
	bad := func() error {
		return v.errorf(v.insnIdx, "cannot pass map_type %d into func bpf_%s#%d", uint32(m.Type), name, id)
	}
	if len(proto.MapTypes) > 0 && !slices.Contains(proto.MapTypes, m.Type) {
		return bad()
	}
	if id == idGetLocalStorage {
		if f := v.reg(isa.R2); f.typ != scalarReg || !f.v.IsConst() || f.v.Var.Value != 0 {
			return v.errorf(v.insnIdx, "get_local_storage() doesn't support non-zero flags")
		}
	}
	switch m.Type {
	case maps.StackTrace:
		if id != 27 { // bpf_get_stackid
			return bad()
		}
	case maps.CgroupStorage, maps.PerCPUCgroupStorage:
		if id != idGetLocalStorage {
			return bad()
		}
	case maps.ProgArray:
		if id != helpers.IDTailCall {
			return bad()
		}
	case maps.RingBuf:
		switch id {
		case helpers.IDRingbufOutput, helpers.IDRingbufReserve, helpers.IDRingbufQuery,
			idRingbufReserveDynptr, idRingbufSubmitDynptr, idRingbufDiscardDynptr:
		default:
			return bad()
		}
	case maps.UserRingBuf:
		if id != helpers.IDUserRingbufDrain {
			return bad()
		}
	}
	switch id {
	case helpers.IDRingbufOutput, helpers.IDRingbufReserve, helpers.IDRingbufQuery, idRingbufReserveDynptr:
		if m.Type != maps.RingBuf {
			return bad()
		}
	case helpers.IDUserRingbufDrain:
		if m.Type != maps.UserRingBuf {
			return bad()
		}
	}
	if v.p.Maps[idx].ReadOnly {
		switch id {
		case helpers.IDMapUpdateElem, helpers.IDMapDeleteElem:
			return v.errorf(v.insnIdx, "write into map forbidden")
		}
	}
	return nil
}

// enterCallback starts exploring a callback a helper calls: a new frame
// with the registers the helper passes. The state that continues after
// the callback returns goes back to the call, as the helper may call the
// callback again.
func (v *verifier) enterCallback(ins isa.Instruction, proto helpers.Proto, meta *callMeta) error {
	pc := v.insnIdx
	cb := proto.Callback
	if cb.Async {
		return v.enterAsyncCallback(ins, cb, meta)
	}
	if len(v.cur.frames) >= maxFrames {
		return v.errorf(pc, "the call stack of %d frames is too deep !", len(v.cur.frames)+1)
	}
	sub := v.subprogAt(meta.funcStart)
	if sub < 0 {
		return v.errorf(pc, "callback at insn %d is not a function", meta.funcStart)
	}
	st := v.clone(v.cur)
	caller := st.cur()
	nf := newFrame(pc, sub, len(st.frames))
	nf.callback = true
	nf.async = cb.Async
	nf.retMin, nf.retMax = cb.RetMin, cb.RetMax
	nf.callbackCall = pc
	nf.args = new([5]reg)
	copy(nf.args[:], caller.regs[1:6])
	for k, cr := range cb.Regs {
		r := &nf.regs[k+1]
		switch cr.Kind {
		case helpers.CallbackNotInit:
		case helpers.CallbackScalar:
			r.setUnknown()
		case helpers.CallbackCallerArg:
			*r = caller.regs[cr.Arg+1]
		case helpers.CallbackMapPtr:
			r.setPointer(constMapPtr)
			r.mapIdx = meta.mapIdx
		case helpers.CallbackMapKey:
			r.setPointer(ptrMapKey)
			r.mapIdx = meta.mapIdx
		case helpers.CallbackMapValue:
			r.setPointer(ptrMapValue)
			r.mapIdx = meta.mapIdx
		case helpers.CallbackBTFID:
			// A kernel object (bpf_find_vma's vm_area_struct): a plain
			// PTR_TO_BTF_ID, as Linux 6.18 gives it.
			id, err := v.kernelTypes().structID(cr.BTF)
			if err != nil {
				return v.noBTF(pc, fmt.Sprintf("the callback of bpf_%s", helpers.Name(ins.Imm)), err)
			}
			r.setPointer(ptrBTFID)
			r.mapIdx = int32(id)
		case helpers.CallbackDynptr:
			// mark_dynptr_cb_reg: a local dynptr the callback may read
			// and write through, not change.
			r.setPointer(ptrDynptr)
			r.dyn = dynLocal | dynFirst
			r.id = v.nextID()
		default:
			return v.errorf(pc, "callbacks of bpf_%s are not supported yet", helpers.Name(ins.Imm))
		}
	}
	st.frames = append(st.frames, nf)
	st.insn = meta.funcStart
	st.callbackDepth++
	st.path = &step{prev: v.cur.path, insn: pc, taken: true}
	e := v.entry
	e.cbEnter = true
	v.record(st, e)
	v.push(st, false)
	return nil
}

// enterAsyncCallback queues a callback that runs later, on its own
// (bpf_timer_set_callback's: push_async_cb, set_timer_callback_state).
// It is not a call from here: the helper returns at once, and the
// callback runs when the timer fires, with a state of its own, one frame
// and an empty stack that cannot reach the caller's, no references and
// no lock, and r1-r3 the timer's map, a key and the value holding the
// timer. Its path has no checkpoint above it, so precision backtracking
// stops at its first instruction.
func (v *verifier) enterAsyncCallback(ins isa.Instruction, cb *helpers.Callback, meta *callMeta) error {
	pc := v.insnIdx
	sub := v.subprogAt(meta.funcStart)
	if sub < 0 {
		return v.errorf(pc, "callback at insn %d is not a function", meta.funcStart)
	}
	if meta.mapIdx < 0 {
		return v.errorf(pc, "callback of bpf_%s without the timer's map", helpers.Name(ins.Imm))
	}
	v.subprogs[sub].async = true
	nf := newFrame(-1, sub, 0)
	nf.callback = true
	nf.async = true
	nf.callbackCall = pc
	for k, cr := range cb.Regs {
		r := &nf.regs[k+1]
		switch cr.Kind {
		case helpers.CallbackNotInit:
		case helpers.CallbackMapPtr:
			r.setPointer(constMapPtr)
		case helpers.CallbackMapKey:
			r.setPointer(ptrMapKey)
		case helpers.CallbackMapValue:
			r.setPointer(ptrMapValue)
			// Linux 6.18 gives the value an id of its own (its log
			// prints R3=map_value(id=N,...)); it tells the value's
			// bpf_spin_lock apart.
			r.id = v.nextID()
		default:
			return v.errorf(pc, "async callbacks of bpf_%s are not supported yet", helpers.Name(ins.Imm))
		}
		if r.typ != notInit {
			r.mapIdx = meta.mapIdx
			r.setMapUID(meta.mapUID)
		}
	}
	st := &state{
		frames:     []*frame{nf},
		insn:       meta.funcStart,
		last:       -1,
		asyncEntry: v.cur.asyncEntry + 1,
		path:       &step{prev: v.cur.path, insn: pc, taken: true},
	}
	v.push(st, false)
	return nil
}

func (v *verifier) subprogAt(start int) int {
	for i, sp := range v.subprogs {
		if sp.start == start {
			return i
		}
	}
	return -1
}

// checkLocalCall is check_func_call for a bpf-to-bpf call.
func (v *verifier) checkLocalCall(ins isa.Instruction) error {
	pc := v.insnIdx
	s := v.cur
	if si := v.subprogAt(pc + 1 + int(ins.Imm)); si > 0 && v.subprogs[si].global {
		return v.callGlobal(si)
	}
	if len(s.frames) >= maxFrames {
		return hinted(v.errorf(pc, "the call stack of %d frames is too deep !", len(s.frames)+1),
			"calls may nest at most 8 deep: inline some functions (static __always_inline)")
	}
	if s.lock != 0 {
		return v.errorf(pc, "function calls are not allowed while holding a lock")
	}
	t := pc + 1 + int(ins.Imm)
	sub := v.subprogAt(t)
	if sub < 0 {
		return v.errorf(pc, "call to insn %d, which starts no function", t)
	}
	caller := s.cur()
	nf := newFrame(pc, sub, len(s.frames))
	for r := isa.R1; r <= isa.R5; r++ {
		nf.regs[r] = caller.regs[r]
	}
	s.frames = append(s.frames, nf)
	s.insn = t
	return nil
}

// checkExit is the exit instruction: the return from a function, a
// callback or the program (prepare_func_exit, check_return_code,
// check_reference_leak).
func (v *verifier) checkExit() error {
	pc := v.insnIdx
	s := v.cur
	f := s.cur()
	if len(s.frames) > 1 && !f.callback {
		// prepare_func_exit: a static function's r0 goes back to the
		// caller as it is, set or not; the caller is refused if it reads
		// an r0 that was never set (verifier/calls.c, "stack depth check
		// using three frames").
		r0 := v.reg(isa.R0)
		if r0.typ == ptrStack && int(r0.frame) == len(s.frames)-1 {
			return v.errorf(pc, "cannot return stack pointer to the caller")
		}
		ret := *r0
		s.frames = s.frames[:len(s.frames)-1]
		caller := s.cur()
		for r := isa.R1; r <= isa.R5; r++ {
			caller.regs[r] = reg{}
		}
		caller.regs[isa.R0] = ret
		s.insn = f.callsite + 1
		return nil
	}
	r0, err := v.readReg(isa.R0)
	if err != nil {
		return err
	}
	if len(s.frames) > 1 {
		// A callback's r0 is checked against its range.
		if r0.typ == scalarReg {
			v.markPrecise(s, isa.R0)
		}
		if r0.typ != scalarReg {
			return v.errorf(pc, "At callback return the register R0 is not a known value (%s)", r0.typeName())
		}
		if r0.v.SMin < int64(f.retMin) || r0.v.SMax > int64(f.retMax) {
			return hinted(v.errorf(pc, "At callback return the register R0 has %s should have been in [%d, %d]", scalarRange(r0), f.retMin, f.retMax),
				"return %d to %d from the callback", f.retMin, f.retMax)
		}
		s.frames = s.frames[:len(s.frames)-1]
		caller := s.cur()
		for r := isa.R1; r <= isa.R5; r++ {
			caller.regs[r] = reg{}
		}
		// Back to the helper call: it may call the callback again, or
		// return.
		s.insn = f.callbackCall
		caller.regs[isa.R0] = reg{}
		// Restore the arguments so the call can be checked again.
		return v.reenterCallback(s, f)
	}
	if len(s.refs) > 0 {
		return hinted(v.errorf(pc, "Unreleased reference id=%d alloc_insn=%d", s.refs[0].id, s.refs[0].insn),
			"every path must release what insn %d acquired (bpf_sk_release, bpf_ringbuf_submit or bpf_ringbuf_discard) before exit", s.refs[0].insn)
	}
	if s.lock != 0 {
		return v.errorf(pc, "bpf_spin_unlock is missing")
	}
	if v.isPointerLeak(r0) {
		return v.errorf(pc, "R0 leaks addr as return value")
	}
	if f.async {
		// A timer's callback returns 0 (check_return_code's async
		// case); nothing reads it but the kernel's timer code.
		if r0.typ == scalarReg {
			v.markPrecise(s, isa.R0)
		}
		if r0.typ != scalarReg {
			return v.errorf(pc, "At async callback return the register R0 is not a known value (%s)", r0.typeName())
		}
		if r0.v.SMin < 0 || r0.v.SMax > 0 {
			return hinted(v.errorf(pc, "At async callback return the register R0 has %s should have been in [0, 0]", scalarRange(r0)),
				"a timer callback returns 0")
		}
		return errPathDone
	}
	if f.subprog != 0 {
		// A global function verified on its own returns a scalar.
		if r0.typ != scalarReg {
			return v.errorf(pc, "At subprogram exit the register R0 is not a scalar value (%s)", r0.typeName())
		}
		return errPathDone
	}
	lo, hi, ok := v.retRange()
	if ok {
		if r0.typ == scalarReg {
			v.markPrecise(s, isa.R0)
		}
		if r0.typ != scalarReg {
			return v.errorf(pc, "At program exit the register R0 is not a known value (%s)", r0.typeName())
		}
		if r0.v.SMin < lo || r0.v.SMax > hi {
			return hinted(v.errorf(pc, "At program exit the register R0 has %s should have been in [%d, %d]", scalarRange(r0), lo, hi),
				"%s programs return %d to %d", v.p.Kind, lo, hi)
		}
	}
	return errPathDone
}

// reenterCallback continues after a callback returned: the helper call
// runs again with the arguments it had (the callback may be called once
// more); the caller's argument registers are restored from the callback
// frame's copy.
func (v *verifier) reenterCallback(s *state, f *frame) error {
	// The registers r1-r5 of the call were clobbered for the callee's
	// return; the call needs them again. They are kept in the frame that
	// made the call: restore from the checkpointed copy of the callback
	// entry, which is the frame's own argument registers at entry.
	caller := s.cur()
	copy(caller.regs[1:6], f.args[:])
	if prev := v.prevEntry(s, s.insn); prev != nil {
		widen(prev, s)
	}
	return nil
}

func scalarRange(r *reg) string {
	var b strings.Builder
	known := false
	if r.v.SMin > -1<<63 {
		fmt.Fprintf(&b, "smin=%d", r.v.SMin)
		known = true
	}
	if r.v.SMax < 1<<63-1 {
		if known {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "smax=%d", r.v.SMax)
		known = true
	}
	if !known {
		return "unknown scalar value"
	}
	return b.String()
}

// retRange is the range a program type's r0 must be in at exit.
func (v *verifier) retRange() (lo, hi int64, ok bool) {
	k := v.p.Kind
	switch k.Type() {
	case progtype.CgroupSKB:
		if k.AttachType() == progtype.AttachCgroupInetEgress {
			return 0, 3, true
		}
		return 0, 1, true
	case progtype.CgroupSock, progtype.SockOps:
		return 0, 1, true
	case progtype.CgroupSockAddr:
		switch k.AttachType() {
		case progtype.AttachCgroupInet4Bind, progtype.AttachCgroupInet6Bind:
			return 0, 3, true
		case progtype.AttachCgroupUDP4Recvmsg, progtype.AttachCgroupUDP6Recvmsg,
			progtype.AttachCgroupInet4Getpeer, progtype.AttachCgroupInet6Getpeer,
			progtype.AttachCgroupInet4Getsock, progtype.AttachCgroupInet6Getsock:
			return 1, 1, true
		}
		return 0, 1, true
	case progtype.SkLookup:
		return 0, 1, true
	}
	return 0, 0, false
}
