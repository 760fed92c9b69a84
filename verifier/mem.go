package verifier

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier/scalar"
)

// maxPacketOff is the largest packet offset bounds checks prove
// (MAX_PACKET_OFF).
const maxPacketOff = 0xffff

// access describes one memory access for checkMem.
type access struct {
	base   isa.Register // the pointer register
	off    int          // the instruction's offset
	size   int
	write  bool
	sx     bool // sign-extending load
	value  *reg // a copy of the stored register (nil for BPF_ST or loads)
	src    *reg // the stored register itself (BPF_STX), for spills to link with
	imm    *int32
	dst    isa.Register // the loaded register (loads)
	atomic bool
}

func (v *verifier) checkLoad(ins isa.Instruction) error {
	if _, err := v.readReg(ins.Src); err != nil {
		return err
	}
	if _, err := v.writeReg(ins.Dst); err != nil {
		return err
	}
	a := access{base: ins.Src, off: int(ins.Off), size: ins.Op.Size().Bytes(), dst: ins.Dst, sx: ins.Op.Mode() == isa.ModeMEMSX}
	out, err := v.checkMem(a)
	if err != nil {
		return err
	}
	*v.reg(ins.Dst) = out
	return nil
}

func (v *verifier) checkStore(ins isa.Instruction) error {
	if _, err := v.readReg(ins.Dst); err != nil {
		return err
	}
	a := access{base: ins.Dst, off: int(ins.Off), size: ins.Op.Size().Bytes(), write: true}
	if ins.Op.Class() == isa.ClassSTX {
		val, err := v.readReg(ins.Src)
		if err != nil {
			return err
		}
		c := *val
		a.value, a.src = &c, val
	} else {
		imm := ins.Imm
		a.imm = &imm
	}
	_, err := v.checkMem(a)
	return err
}

// checkAtomic is check_atomic: a read and a write of the same memory.
func (v *verifier) checkAtomic(ins isa.Instruction) error {
	pc := v.insnIdx
	size := ins.Op.Size().Bytes()
	if size != 4 && size != 8 {
		return v.errorf(pc, "invalid atomic operand size")
	}
	src, err := v.readReg(ins.Src)
	if err != nil {
		return err
	}
	dst, err := v.readReg(ins.Dst)
	if err != nil {
		return err
	}
	op := isa.AtomicOp(ins.Imm)
	if op == isa.AtomicCmpXchg {
		r0, err := v.readReg(isa.R0)
		if err != nil {
			return err
		}
		if v.isPointerLeak(r0) {
			return v.errorf(pc, "R0 leaks addr into mem")
		}
	}
	if v.isPointerLeak(src) {
		return v.errorf(pc, "R%d leaks addr into mem", ins.Src)
	}
	switch dst.typ {
	case ptrCtx, ptrPacket, ptrPacketMeta, ptrFlowKeys, ptrSocket, ptrSockCommon, ptrTCPSock:
		return v.errorf(pc, "BPF_ATOMIC stores into R%d %s is not allowed", ins.Dst, dst.typeName())
	}
	// check_atomic: a fetch writes the old value into src (r0 for
	// cmpxchg), checked as a destination before the memory.
	if op&isa.AtomicFetch != 0 && op != isa.AtomicCmpXchg {
		if _, err := v.writeReg(ins.Src); err != nil {
			return err
		}
	}
	c := *src
	a := access{base: ins.Dst, off: int(ins.Off), size: size, atomic: true}
	out, err := v.checkMem(a)
	if err != nil {
		return err
	}
	a.write, a.value = true, &c
	if _, err := v.checkMem(a); err != nil {
		return err
	}
	switch {
	case op == isa.AtomicCmpXchg:
		*v.reg(isa.R0) = out
	case op&isa.AtomicFetch != 0:
		*v.reg(ins.Src) = out
	}
	return nil
}

// checkMem is check_mem_access: it checks one load or store through a
// pointer register and returns what a load gives.
func (v *verifier) checkMem(a access) (reg, error) {
	pc := v.insnIdx
	p := *v.reg(a.base)
	var out reg
	out.setUnknown()
	if p.maybeNull() {
		return out, hinted(v.errorf(pc, "R%d invalid mem access '%s'", a.base, p.typeName()),
			"the pointer may be NULL here: test it first (if (!p) return ...;) and use it only on the non-NULL side")
	}
	off := a.off + int(p.off)
	// One instruction, one kind of pointer where the kind decides how it
	// is rewritten (the context, sockets): check_mem_access's
	// save_aux_ptr_type.
	if aux := &v.aux[pc]; !aux.ptrSeen {
		aux.ptrSeen, aux.ptrType = true, p.typ
	} else if aux.ptrType != p.typ && (rewritten(aux.ptrType) || rewritten(p.typ)) && !(!a.write && memOrBTF(aux.ptrType) && memOrBTF(p.typ)) {
		return out, hinted(v.errorf(pc, "same insn cannot be used with different pointers"),
			"this load or store goes through the context on one path and through another pointer on another: use separate accesses on each path")
	}
	if a.write && a.value != nil && a.value.isPointer() && !v.allowPtrLeaks {
		switch p.typ {
		case ptrMapValue:
			return out, v.errorf(pc, "R%d leaks addr into map", regOf(a))
		case ptrCtx:
			return out, v.errorf(pc, "R%d leaks addr into ctx", regOf(a))
		case ptrPacket, ptrPacketMeta:
			return out, v.errorf(pc, "R%d leaks addr into packet", regOf(a))
		case ptrMem:
			return out, v.errorf(pc, "R%d leaks addr into mem", regOf(a))
		}
	}
	// Stack accesses (and atomics anywhere) must be aligned to their size
	// (check_ptr_alignment): spill tracking depends on it. With
	// BPF_F_STRICT_ALIGNMENT every access must, packet data as if it
	// started 2 bytes into an aligned word (NET_IP_ALIGN).
	if p.typ == ptrStack || a.atomic || v.opts.StrictAlignment {
		pkt := p.typ == ptrPacket || p.typ == ptrPacketMeta
		ipAlign := 0
		if pkt {
			ipAlign = 2
		}
		at := p.v.Var.Add(scalar.TnumConst(uint64(int64(ipAlign + off))))
		if at.Value&uint64(a.size-1) != 0 || at.Mask&uint64(a.size-1) != 0 {
			vo := p.v.Var.String()
			if p.v.Var.IsConst() {
				vo = fmt.Sprint(int64(p.v.Var.Value))
			}
			hint := fmt.Sprintf("an access of %d bytes must be at an offset that is a multiple of %d", a.size, a.size)
			if pkt {
				return out, hinted(v.errorf(pc, "misaligned packet access off %d+%s+%d+%d size %d", ipAlign, vo, p.off, a.off, a.size),
					"%s, counting from 2 bytes before the packet (BPF_F_STRICT_ALIGNMENT)", hint)
			}
			return out, hinted(v.errorf(pc, "misaligned %saccess off %s+%d+%d size %d", alignDesc(p.typ), vo, p.off, a.off, a.size), "%s", hint)
		}
	}
	var err error
	switch p.typ {
	case ptrStack:
		out, err = v.stackAccess(a, &p, off)
	case ptrCtx:
		out, err = v.ctxAccess(a, &p, off)
	case ptrMapValue, ptrMapKey:
		out, err = v.mapAccess(a, &p, off)
	case ptrPacket, ptrPacketMeta:
		err = v.packetAccess(a, &p, off)
		out = v.loaded(a, out)
	case ptrMem:
		if a.write && p.flags&flagRdonly != 0 {
			return out, v.errorf(pc, "R%d cannot write into %s", a.base, p.typeName())
		}
		if p.flags&flagUntrusted != 0 {
			// Read-only memory a kernel object points to: read through
			// probing loads, which cannot fault (any offset).
			return v.loaded(a, out), nil
		}
		err = v.regionAccess(a, &p, off, int64(p.size), "memory", func(o int) string {
			return fmt.Sprintf("invalid access to memory, mem_size=%d off=%d size=%d", p.size, o, a.size)
		})
		out = v.loaded(a, out)
	case ptrFlowKeys:
		if !p.v.IsConst() || off < 0 || off+a.size > flowKeysSize {
			return out, v.errorf(pc, "invalid access to flow keys off=%d size=%d", off, a.size)
		}
		out = v.loaded(a, out)
	case ptrSocket, ptrSockCommon, ptrTCPSock:
		if a.write {
			return out, v.errorf(pc, "cannot write into %s", p.typeName())
		}
		if !p.v.IsConst() || !sockFieldOK(p.typ, off, a.size) {
			return out, v.errorf(pc, "R%d invalid %s access off=%d size=%d", a.base, p.typeName(), off, a.size)
		}
		out = v.loaded(a, out)
	case ptrBTFID:
		out, err = v.btfAccess(a, &p, off)
	case constMapPtr:
		out, err = v.mapPtrAccess(a, &p, off)
	case scalarReg:
		return out, hinted(v.errorf(pc, "R%d invalid mem access 'scalar'", a.base),
			"r%d holds a number, not a pointer: only pointers the verifier tracks (ctx, stack, map values after a NULL check, packet data after a bounds check) can be dereferenced", a.base)
	default:
		return out, v.errorf(pc, "R%d invalid mem access '%s'", a.base, p.typeName())
	}
	if err != nil {
		return out, err
	}
	if a.value != nil && a.write {
		return out, nil
	}
	return out, nil
}

// rewritten reports whether accesses through a pointer type are
// converted at load time, so that one instruction cannot serve two kinds
// (reg_type_mismatch_ok).
func rewritten(t regType) bool {
	switch t {
	case ptrCtx, ptrSocket, ptrSockCommon, ptrTCPSock, ptrBTFID:
		return true
	}
	return false
}

// memOrBTF reports whether loads through t may share an instruction with
// loads through a kernel object pointer: on one path trusted, on another
// not, or memory (save_aux_ptr_type's allow_trust_mismatch).
func memOrBTF(t regType) bool { return t == ptrMem || t == ptrBTFID }

func regOf(a access) isa.Register {
	return a.base
}

// loaded is the register a load of a.size bytes of unknown memory gives.
func (v *verifier) loaded(a access, out reg) reg {
	if a.write {
		return out
	}
	out.setUnknown()
	if a.size < 8 {
		if a.sx {
			out.v = out.v.SignExtend(a.size)
		} else {
			out.v = out.v.Truncate(a.size)
		}
	}
	return out
}

// regionAccess checks an access to size bytes of memory through a pointer
// with a variable offset (check_mem_region_access).
func (v *verifier) regionAccess(a access, p *reg, off int, size int64, what string, detail func(int) string) error {
	pc := v.insnIdx
	smin := p.v.SMin
	if smin < 0 && (smin == -1<<63 || int64(off)+smin != int64(int32(int64(off)+smin)) || smin+int64(off) < 0) {
		return hinted(v.errorf(pc, "R%d min value is negative, either use unsigned index or do a if (index >=0) check.", a.base),
			"the index may be negative: make it unsigned (__u32) or check it: if (i < 0) return ...;")
	}
	lo := smin + int64(off)
	if lo < 0 || lo+int64(a.size) > size {
		e := v.errorf(pc, "%s", detail(int(lo)))
		return hinted(e, "the access at offset %d of %d bytes is outside the %d-byte %s", lo, a.size, size, what)
	}
	if p.v.UMax >= maxVarOff {
		return hinted(v.errorf(pc, "R%d unbounded memory access, make sure to bounds check any such access", a.base),
			"bound the index before use: if (i >= N) return ...; or i &= N-1 for a power of two N")
	}
	hi := int64(p.v.UMax) + int64(off)
	if hi+int64(a.size) > size {
		e := v.errorf(pc, "%s", detail(int(hi)))
		return hinted(e, "R%d max value is outside of the allowed memory range: the index may reach offset %d, and %d bytes there go past the %d-byte %s; check it against the size first", a.base, hi, a.size, size, what)
	}
	return nil
}

// specialFields is the end of check_map_access: no access to size bytes
// at off from the map value p, by an instruction or a helper, may touch a
// field only helpers handle (its struct bpf_spin_lock or struct
// bpf_timer). The access is already known to be inside the value.
func (v *verifier) specialFields(m *Map, p *reg, off, size int) error {
	lo, hi := int64(off)+p.v.SMin, int64(off)+int64(p.v.UMax)+int64(size)
	// Linux checks the fields in the order of their offsets.
	type field struct {
		off, size int
		name      string
	}
	fields := [2]field{{m.SpinLock, 4, "bpf_spin_lock"}, {m.Timer, 16, "bpf_timer"}}
	if m.Timer >= 0 && m.Timer < m.SpinLock {
		fields[0], fields[1] = fields[1], fields[0]
	}
	for _, f := range fields {
		if f.off >= 0 && lo < int64(f.off+f.size) && int64(f.off) < hi {
			return hinted(v.errorf(v.insnIdx, "%s cannot be accessed directly by load/store", f.name),
				"the struct %s at offset %d of the value is for its helpers only: access the other fields", f.name, f.off)
		}
	}
	return nil
}

// mapAccess is check_map_access, and a load from a frozen read-only map.
func (v *verifier) mapAccess(a access, p *reg, off int) (reg, error) {
	pc := v.insnIdx
	var out reg
	out.setUnknown()
	if int(p.mapIdx) >= len(v.p.Maps) {
		return out, v.errorf(pc, "R%d points into map %d, which the program does not have", a.base, p.mapIdx)
	}
	m := &v.p.Maps[p.mapIdx]
	size := int64(m.Spec.ValueSize)
	what := "map value"
	if p.typ == ptrMapKey {
		size, what = int64(m.Spec.KeySize), "map key"
		if a.write {
			return out, v.errorf(pc, "write to change key R%d not allowed", a.base)
		}
	}
	if a.write && m.ReadOnly && p.typ == ptrMapValue {
		return out, v.errorf(pc, "write into map forbidden, value_size=%d off=%d size=%d", size, off, a.size)
	}
	if (!a.write || a.atomic) && m.WriteOnly && p.typ == ptrMapValue {
		return out, v.errorf(pc, "read from map forbidden, value_size=%d off=%d size=%d", size, off, a.size)
	}
	err := v.regionAccess(a, p, off, size, what, func(o int) string {
		if p.typ == ptrMapKey {
			return fmt.Sprintf("invalid access to map key, key_size=%d off=%d size=%d", size, o, a.size)
		}
		return fmt.Sprintf("invalid access to map value, value_size=%d off=%d size=%d", size, o, a.size)
	})
	if err != nil {
		return out, err
	}
	if p.typ == ptrMapValue {
		if err := v.specialFields(m, p, off, a.size); err != nil {
			return out, err
		}
	}
	if a.write {
		return out, nil
	}
	if m.ReadOnly && m.Frozen != nil && p.v.IsConst() && p.typ == ptrMapValue {
		at := off + int(p.v.Var.Value)
		if at >= 0 && at+a.size <= len(m.Frozen) {
			b := m.Frozen[at : at+a.size]
			var x uint64
			switch a.size {
			case 1:
				x = uint64(b[0])
			case 2:
				x = uint64(binary.LittleEndian.Uint16(b))
			case 4:
				x = uint64(binary.LittleEndian.Uint32(b))
			case 8:
				x = binary.LittleEndian.Uint64(b)
			}
			if a.sx && a.size < 8 {
				sh := 64 - 8*uint(a.size)
				x = uint64(int64(x<<sh) >> sh)
			}
			out.setConst(x)
			return out, nil
		}
	}
	return v.loaded(a, out), nil
}

// packetAccess is check_packet_access.
func (v *verifier) packetAccess(a access, p *reg, off int) error {
	pc := v.insnIdx
	if a.write && !v.canWritePacket() {
		return v.errorf(pc, "cannot write into packet")
	}
	if p.v.SMin < 0 {
		return v.errorf(pc, "R%d min value is negative, either use unsigned index or do a if (index >=0) check.", a.base)
	}
	if off < 0 || off+a.size > int(p.rng) {
		name := "packet"
		if p.typ == ptrPacketMeta {
			name = "packet metadata"
		}
		e := v.errorf(pc, "invalid access to packet, off=%d size=%d, R%d(id=%d,off=%d,r=%d)", off, a.size, a.base, p.id, p.off, p.rng)
		need := off + a.size
		if p.typ == ptrPacketMeta {
			return hinted(e, "R%d offset is outside of the %s: check the metadata's end first, e.g. if (meta + %d > data) return ...;", a.base, name, need)
		}
		return hinted(e, "R%d offset is outside of the packet: add a bounds check such as `if (data + %d > data_end) return XDP_DROP;` (or TC_ACT_SHOT) before this access", a.base, need)
	}
	return nil
}

// alignDesc names a pointer type in check_ptr_alignment's messages.
func alignDesc(t regType) string {
	switch t {
	case ptrStack:
		return "stack "
	case ptrFlowKeys:
		return "flow keys "
	case ptrMapKey:
		return "key "
	case ptrMapValue:
		return "value "
	case ptrCtx:
		return "context "
	case ptrSocket:
		return "sock "
	case ptrSockCommon:
		return "sock_common "
	case ptrTCPSock:
		return "tcp_sock "
	}
	return ""
}

// canWritePacket is may_access_direct_pkt_data for writes.
func (v *verifier) canWritePacket() bool {
	switch v.p.Kind.Type() {
	case progtype.XDP, progtype.SchedCLS, progtype.SchedACT, progtype.LWTXmit, progtype.LWTSeg6Local:
		return true
	}
	return false
}

const flowKeysSize = 56 // sizeof(struct bpf_flow_keys)

// sockFieldOK is bpf_sock_is_valid_access, bpf_sock_common_is_valid_access
// and bpf_tcp_sock_is_valid_access (net/core/filter.c): which loads of
// size bytes at off the socket structures allow. bpf_sock's fields are 4
// bytes; some of them (and the addresses) may be read in narrower
// powers of two at their start, dst_port in 2 or 1; a sock_common has
// no type, protocol, mark or priority. bpf_tcp_sock's are 4 bytes
// except the 8 of bytes_received and bytes_acked.
func sockFieldOK(t regType, off, size int) bool {
	if off < 0 || off >= sockSize(t) || size <= 0 || off%size != 0 {
		return false
	}
	if t == ptrTCPSock {
		if off == 80 || off == 88 { // bytes_received, bytes_acked
			return size == 8
		}
		return size == 4
	}
	if t == ptrSockCommon && off >= 8 && off < 24 { // type ... priority
		return false
	}
	narrow := size <= 4 && size&(size-1) == 0
	switch {
	case off == 4 || off == 8 || off == 12 || off == 44 || off == 72 || off == 76:
		// family, type, protocol, src_port, state, rx_queue_mapping
		return narrow
	case off >= 24 && off < 44 || off >= 52 && off < 72: // src_ip4, src_ip6, dst_ip4, dst_ip6
		return narrow
	case off >= 48 && off < 50: // dst_port (__be16), or the word it starts
		return size == 4 || narrow && size <= 2
	case off >= 50 && off < 52:
		return false
	}
	return size == 4
}

func sockSize(t regType) int {
	switch t {
	case ptrTCPSock:
		return 112 // sizeof(struct bpf_tcp_sock)
	default:
		return 80 // sizeof(struct bpf_sock)
	}
}

// ctxAccess is check_ctx_access: a fixed offset into the context, as the
// program type's rules allow.
func (v *verifier) ctxAccess(a access, p *reg, off int) (reg, error) {
	pc := v.insnIdx
	var out reg
	out.setUnknown()
	if p.off != 0 {
		return out, hinted(v.errorf(pc, "dereference of modified ctx ptr R%d off=%d disallowed", a.base, p.off),
			"access context fields through the context pointer itself (ctx->field), not through ctx plus an offset")
	}
	if !p.v.IsConst() || p.v.Var.Value != 0 {
		return out, v.errorf(pc, "variable ctx access var_off=%s disallowed", p.v.Var)
	}
	if a.atomic {
		return out, v.errorf(pc, "BPF_ATOMIC stores into R%d ctx is not allowed", a.base)
	}
	kind := v.p.Kind
	if _, err := kind.CheckAccess(off, a.size, a.write, a.sx); err != nil {
		e := v.errorf(pc, "invalid bpf_context access off=%d size=%d", off, a.size)
		return out, hinted(e, "%v", err)
	}
	if v.opts.Unprivileged && kind.Type() == progtype.CgroupSKB {
		// cg_skb_is_valid_access: the packet and a written tstamp need
		// CAP_BPF.
		if f := kind.Context().Field(off); f != nil && (f.Name == "data" || f.Name == "data_end" || a.write && f.Name == "tstamp") {
			return out, hinted(v.errorf(pc, "invalid bpf_context access off=%d size=%d", off, a.size),
				"cgroup_skb programs need CAP_BPF to read the packet (data, data_end) or to write tstamp")
		}
	}
	aux := &v.aux[pc]
	aux.ctxAccess = true
	if a.write {
		return out, nil
	}
	l := kind.Context()
	if f := l.Field(off); f != nil && (f.Kind == progtype.Pointer || f.Name == "sk" && a.size == 8) && off == f.Off {
		if kind.Type() == progtype.UserHook {
			// A user hook's []byte member is a pointer pair, NAME and
			// NAME_end, checked as a packet and its end are.
			if base := l.FieldByName(strings.TrimSuffix(f.Name, "_end")); strings.HasSuffix(f.Name, "_end") && base != nil && base.Kind == progtype.Pointer {
				out.setPointer(ptrPacketEnd)
				out.mapIdx = int32(base.Off)
				return out, nil
			}
			if end := l.FieldByName(f.Name + "_end"); end != nil && end.Kind == progtype.Pointer {
				out.setPointer(ptrPacket)
				out.mapIdx = int32(f.Off)
				return out, nil
			}
		}
		t, flags := ctxPointer(l.Name, f.Name)
		if t != notInit {
			out.setPointer(t)
			out.flags = flags
			if flags&flagMaybeNull != 0 {
				out.id = v.nextID()
			}
			return out, nil
		}
	}
	return v.loaded(a, out), nil
}

// ctxPointer is the type of a context field that holds a pointer.
func ctxPointer(ctx, field string) (regType, uint8) {
	switch field {
	case "data", "skb_data":
		return ptrPacket, 0
	case "data_end", "skb_data_end":
		return ptrPacketEnd, 0
	case "data_meta":
		return ptrPacketMeta, 0
	case "flow_keys":
		return ptrFlowKeys, 0
	case "sk":
		switch ctx {
		case "bpf_sock_addr":
			return ptrSocket, 0
		case "__sk_buff":
			return ptrSockCommon, flagMaybeNull
		default:
			return ptrSocket, flagMaybeNull
		}
	}
	return notInit, 0
}

// checkLoadImm64 is check_ld_imm: constants, map references, function
// pointers.
func (v *verifier) checkLoadImm64(lo, hi isa.Instruction) error {
	pc := v.insnIdx
	dst, err := v.writeReg(lo.Dst)
	if err != nil {
		return err
	}
	switch lo.Src {
	case 0:
		dst.setConst(isa.Imm64(lo, hi))
	case isa.PseudoMapIdx, isa.PseudoMapIdxValue:
		idx := int(lo.Imm)
		if idx < 0 || idx >= len(v.p.Maps) {
			return v.errorf(pc, "map index %d out of range (%d maps)", idx, len(v.p.Maps))
		}
		if lo.Src == isa.PseudoMapIdx {
			dst.setPointer(constMapPtr)
			dst.mapIdx = int32(idx)
			return nil
		}
		m := v.p.Maps[idx].Spec
		off := uint32(hi.Imm)
		if m.Type != maps.Array {
			return v.errorf(pc, "map %s (%s) does not support direct value access", m.Name, m.Type)
		}
		if off >= m.ValueSize {
			return v.errorf(pc, "invalid access to map value pointer, value_size=%d off=%d", m.ValueSize, off)
		}
		dst.setPointer(ptrMapValue)
		dst.mapIdx = int32(idx)
		dst.off = int32(off)
	case isa.PseudoFunc:
		// A callback is a static function of a program with BTF func
		// info (check_ld_imm).
		t := pc + 1 + int(lo.Imm)
		hasInfo, static := false, false
		for _, f := range v.p.Funcs {
			if f.BTF != nil {
				hasInfo = true
				if f.Start == t {
					static = f.BTF.Linkage == btf.StaticFunc
				}
			}
		}
		if !hasInfo {
			return hinted(v.errorf(pc, "missing btf func_info"), "build with -g: Linux takes callbacks only from programs with BTF")
		}
		if !static {
			return hinted(v.errorf(pc, "callback function not static"), "make the callback a static function")
		}
		dst.setPointer(ptrFunc)
		dst.mapIdx = int32(t)
	default:
		return v.errorf(pc, "lddw with src %d (kernel symbols, map file descriptors) is not supported", lo.Src)
	}
	return nil
}

// checkLdAbs is check_ld_abs: legacy packet loads of socket filters and
// tc programs.
func (v *verifier) checkLdAbs(ins isa.Instruction) error {
	pc := v.insnIdx
	switch v.p.Kind.Type() {
	case progtype.SocketFilter, progtype.SchedCLS, progtype.SchedACT:
	default:
		return v.errorf(pc, "BPF_LD_[ABS|IND] instructions not allowed for this program type")
	}
	for _, f := range v.cur.frames {
		// An async callback's own frame is its state's first, which
		// Linux does not look at (it has no skb in r6 anyway).
		if f.callback && !f.async {
			return v.errorf(pc, "cannot use BPF_LD_[ABS|IND] within callback")
		}
	}
	if v.cur.lock != 0 {
		return v.errorf(pc, "BPF_LD_[ABS|IND] cannot be used inside bpf_spin_lock-ed region")
	}
	r6, err := v.readReg(isa.R6)
	if err != nil {
		return err
	}
	if ins.Op.Mode() == isa.ModeIND {
		if _, err := v.readReg(ins.Src); err != nil {
			return err
		}
	}
	if r6.typ != ptrCtx {
		return v.errorf(pc, "at the time of BPF_LD_ABS|IND R6 != pointer to skb")
	}
	if len(v.cur.refs) > 0 {
		return v.errorf(pc, "BPF_LD_[ABS|IND] cannot be mixed with socket references")
	}
	f := v.cur.cur()
	for r := isa.R1; r <= isa.R5; r++ {
		f.regs[r] = reg{}
	}
	// Linux knows nothing of the result, not even its size
	// (check_ld_abs marks r0 unknown), so neither does waggle.
	f.regs[isa.R0].setUnknown()
	if len(v.cur.frames) > 1 {
		// A load that fails returns 0 from the function (the exit
		// bpf_gen_ld_abs emits): in a subprogram the caller sees that
		// return too. The path splits: the load succeeded (explored
		// later), or the function returned 0.
		s := v.cur
		ok := v.clone(s)
		ok.insn = pc + 1
		ok.path = &step{prev: s.path, insn: pc, taken: false}
		v.push(ok, true)
		s.path = &step{prev: s.path, insn: pc, taken: true}
		s.cur().regs[isa.R0].setConst(0)
		if err := v.checkExit(); err != nil {
			return err
		}
		s.insn-- // step moves past the load
	}
	return nil
}

// stackAccess checks an access to a frame's stack.
func (v *verifier) stackAccess(a access, p *reg, off int) (reg, error) {
	pc := v.insnIdx
	var out reg
	out.setUnknown()
	fr := v.cur.frames[p.frame]
	if !p.v.IsConst() {
		if !v.allowPtrLeaks {
			return out, v.errorf(pc, "R%d variable stack access prohibited for !root, var_off=%s off=%d", a.base, p.v.Var, off)
		}
		lo := int64(off) + p.v.SMin
		hi := int64(off) + p.v.SMax
		if p.v.SMin == -1<<63 || p.v.SMax == 1<<63-1 || lo < -maxStack || hi+int64(a.size) > 0 {
			return out, v.errorf(pc, "invalid variable-offset%s stack R%d var_off=%s off=%d size=%d", rw(a), a.base, p.v.Var, off, a.size)
		}
		v.growStack(fr, int(-lo))
		v.fastcallContract(int(p.frame), int(lo))
		if a.write {
			v.markReadRange(v.cur, int(p.frame), int(lo), int(hi)+a.size)
			return out, v.stackWriteVar(fr, int(lo), int(hi)+a.size, a)
		}
		v.markReadRange(v.cur, int(p.frame), int(lo), int(hi)+a.size)
		return v.stackReadVar(fr, int(lo), int(hi)+a.size, a)
	}
	off += int(p.v.Var.Value)
	if off < -maxStack || off+a.size > 0 || off >= 0 {
		e := v.errorf(pc, "invalid%s stack R%d off=%d size=%d", rw(a), a.base, off, a.size)
		return out, hinted(e, "the stack is 512 bytes below r10: offsets -512 to -1")
	}
	v.growStack(fr, -off)
	v.fastcallContract(int(p.frame), off)
	v.entry.sframe, v.entry.spi = int8(p.frame), int16((-off-1)/8)
	if a.write {
		if a.size == 8 && off%8 == 0 {
			fr.written |= 1 << uint((-off-1)/8)
		}
		if a.atomic {
			v.markReadRange(v.cur, int(p.frame), off, off+a.size)
		}
		return out, v.stackWrite(fr, off, a)
	}
	v.markReadRange(v.cur, int(p.frame), off, off+a.size)
	return v.stackRead(fr, off, a)
}

func rw(a access) string {
	if a.write {
		return " write to"
	}
	return " read from"
}

func (v *verifier) growStack(f *frame, depth int) {
	if len(f.stack)*8 < depth {
		f.own()
	}
	for len(f.stack)*8 < depth {
		f.stack = append(f.stack, slot{})
	}
	sp := &v.subprogs[f.subprog]
	if depth > sp.stackDepth {
		sp.stackDepth = depth
	}
}

// byteAt returns the slot and the kinds index of the stack byte at off.
func byteAt(f *frame, off int) (*slot, int) {
	b := -off - 1
	return &f.stack[b/8], b % 8
}

// stackWrite is check_stack_write_fixed_off.
func (v *verifier) stackWrite(f *frame, off int, a access) error {
	pc := v.insnIdx
	f.own()
	spi := (-off - 1) / 8
	s := &f.stack[spi]
	if !v.allowPtrLeaks && s.spilled() && s.sp.typ != scalarReg && a.size != 8 {
		return hinted(v.errorf(pc, "attempt to corrupt spilled pointer on stack"),
			"unprivileged programs may overwrite a saved pointer only whole (8 bytes)")
	}
	if err := v.destroyDynptr(f, spi); err != nil {
		return err
	}
	aligned := off%8 == 0
	val := a.value
	if a.atomic {
		// check_atomic writes with no value register: what the slot holds
		// afterwards is the operation's result, unknown data, never the
		// operand.
		val = nil
	}
	if val != nil && val.typ == scalarReg && aligned && v.allowPtrLeaks {
		r := *val
		if fits := a.size == 8 || r.v.UMax <= 1<<(uint(a.size)*8)-1; !fits {
			// A narrowing spill breaks the link.
			r.id, r.off = 0, 0
		} else if a.src != nil {
			// The register and its spilled copy are linked, so that a
			// bounds check on a fill of the slot bounds the register too
			// (and the other way).
			v.idBeforeMov(a.src)
			r.id, r.off = a.src.id, a.src.off
		}
		v.spill(f, spi, &r, a.size)
		return nil
	}
	if val == nil && a.imm != nil && aligned && v.allowPtrLeaks {
		var r reg
		r.setConst(uint64(int64(*a.imm)))
		v.spill(f, spi, &r, a.size)
		return nil
	}
	if val != nil && val.isPointer() {
		if a.size != 8 {
			return v.errorf(pc, "invalid size of register spill")
		}
		if !aligned {
			return v.errorf(pc, "misaligned stack access off %d size %d", off, a.size)
		}
		if val.typ == ptrStack && int(val.frame) < len(v.cur.frames)-1 && f != v.cur.cur() {
			return v.errorf(pc, "cannot spill pointers to stack into stack frame of the caller")
		}
		v.spill(f, spi, val, 8)
		return nil
	}
	// Data: the bytes become misc (or zero), and a spilled register
	// there is gone.
	kind := stackMisc
	if val != nil && val.isNull() || val == nil && a.imm != nil && *a.imm == 0 {
		kind = stackZero
	}
	if s.spilled() {
		s.dropSpill()
	}
	for i := 0; i < a.size; i++ {
		ss, k := byteAt(f, off+i)
		if ss.spilled() && ss != s {
			ss.dropSpill()
		}
		ss.kinds[k] = kind
	}
	return nil
}

// spill saves a register of size bytes into an aligned slot
// (save_register_state).
func (v *verifier) spill(f *frame, spi int, r *reg, size int) {
	s := &f.stack[spi]
	c := *r
	c.precise = false
	s.setSpill(&c)
	if spi < 64 {
		if r.precise {
			f.spillPrecise |= 1 << uint(spi)
		} else {
			f.spillPrecise &^= 1 << uint(spi)
		}
	}
	for i := 7; i >= 0; i-- {
		if i >= 8-size {
			s.kinds[i] = stackSpill
		} else if s.kinds[i] != stackInvalid && s.kinds[i] != stackZero {
			// mark_stack_slot_misc: the bytes above a narrower spill
			// keep being zero or never written.
			s.kinds[i] = stackMisc
		}
	}
}

// stackRead is check_stack_read_fixed_off.
func (v *verifier) stackRead(f *frame, off int, a access) (reg, error) {
	pc := v.insnIdx
	var out reg
	spi := (-off - 1) / 8
	s := &f.stack[spi]
	if s.spilled() {
		spillSize := 1
		for i := 7; i > 0 && s.kinds[i-1] == stackSpill; i-- {
			spillSize++
		}
		if a.size != 8 || spillSize != 8 {
			if s.sp.typ != scalarReg {
				return out, v.errorf(pc, "invalid size of register fill")
			}
			if a.size <= spillSize && off%8 == 0 {
				out = *s.sp
				out.precise = spi < 64 && f.spillPrecise&(1<<uint(spi)) != 0
				if a.size < 8 && out.v.UMax > 1<<(uint(a.size)*8)-1 {
					out.id, out.off = 0, 0
				}
			} else {
				spills, zeros := 0, 0
				for i := 0; i < a.size; i++ {
					ss, k := byteAt(f, off+i)
					switch ss.kinds[k] {
					case stackSpill:
						spills++
					case stackMisc:
					case stackZero:
						zeros++
					default:
						if !v.allowUninit || ss.kinds[k] != stackInvalid {
							return out, v.uninit(off, i, a.size)
						}
					}
				}
				switch {
				case spills == a.size && s.sp.isNull(), zeros == a.size:
					out.setConst(0)
				default:
					out.setUnknown()
				}
			}
			if out.typ == scalarReg && a.size < 8 {
				if a.sx {
					out.v = out.v.SignExtend(a.size)
				} else {
					out.v = out.v.Truncate(a.size)
				}
			}
			return out, nil
		}
		for i := 0; i < 8; i++ {
			if s.kinds[i] != stackSpill {
				return out, v.errorf(pc, "corrupted spill memory")
			}
		}
		if a.atomic && !v.allowPtrLeaks && s.sp.typ != scalarReg {
			// An atomic operation takes the slot as a number
			// (check_stack_read_fixed_off with dst_regno -1).
			return out, v.errorf(pc, "leaking pointer from stack off %d", off)
		}
		out = *s.sp
		out.precise = spi < 64 && f.spillPrecise&(1<<uint(spi)) != 0
		return out, nil
	}
	zeros := 0
	for i := 0; i < a.size; i++ {
		ss, k := byteAt(f, off+i)
		switch ss.kinds[k] {
		case stackMisc:
		case stackZero:
			zeros++
		case stackSpill:
			// part of a spill in another slot: data
		default:
			if !v.allowUninit || ss.kinds[k] != stackInvalid {
				return out, v.uninit(off, i, a.size)
			}
		}
	}
	if zeros == a.size {
		out.setConst(0)
		return out, nil
	}
	out.setUnknown()
	return v.loaded(a, out), nil
}

func (v *verifier) uninit(off, i, size int) error {
	return hinted(v.errorf(v.insnIdx, "invalid read from stack off %d+%d size %d", off, i, size),
		"the stack there was never written on this path: initialise the variable (or memset the buffer) before reading it")
}

// stackWriteVar is check_stack_write_var_off: every byte the access may
// touch becomes data.
func (v *verifier) stackWriteVar(f *frame, lo, hi int, a access) error {
	f.own()
	for off := lo; off < hi; off++ {
		if err := v.destroyDynptr(f, (-off-1)/8); err != nil {
			return err
		}
	}
	zero := a.value != nil && a.value.isNull() || a.imm != nil && *a.imm == 0
	for off := lo; off < hi; off++ {
		s, k := byteAt(f, off)
		if s.spilled() {
			// Zero over a spilled zero keeps it (check_stack_write_var_off).
			if zero && s.kinds[k] == stackSpill && s.sp.typ == scalarReg && s.sp.v.IsConst() && s.sp.v.Var.Value == 0 {
				continue
			}
			s.dropSpill()
		}
		if zero && s.kinds[k] == stackZero {
			continue
		}
		if s.kinds[k] != stackInvalid || v.allowUninit || true {
			s.kinds[k] = stackMisc
		}
	}
	return nil
}

// stackReadVar is check_stack_read_var_off.
func (v *verifier) stackReadVar(f *frame, lo, hi int, a access) (reg, error) {
	var out reg
	zeros := 0
	for off := lo; off < hi; off++ {
		s, k := byteAt(f, off)
		switch s.kinds[k] {
		case stackZero:
			zeros++
		case stackMisc, stackSpill:
		default:
			if !v.allowUninit || s.kinds[k] != stackInvalid {
				return out, v.errorf(v.insnIdx, "invalid read from stack R%d var_off=%s+%d size %d", a.base, v.reg(a.base).v.Var, off, a.size)
			}
		}
	}
	if zeros == hi-lo {
		out.setConst(0)
		return out, nil
	}
	out.setUnknown()
	return v.loaded(a, out), nil
}

var _ = scalar.Unknown
