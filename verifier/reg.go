package verifier

import "github.com/waggle-bpf/waggle/verifier/scalar"

// regType is what a register holds, in the kernel's model (enum
// bpf_reg_type, without the modifiers: those are flags).
type regType uint8

const (
	notInit       regType = iota // NOT_INIT: never written, or clobbered by a call
	scalarReg                    // SCALAR_VALUE: a number
	ptrCtx                       // PTR_TO_CTX: the program's context
	ptrStack                     // PTR_TO_STACK: a frame's stack (reg.frame)
	constMapPtr                  // CONST_PTR_TO_MAP: a map handle (reg.mapIdx)
	ptrMapValue                  // PTR_TO_MAP_VALUE: a value of map reg.mapIdx
	ptrMapKey                    // PTR_TO_MAP_KEY: a key of map reg.mapIdx (callbacks)
	ptrPacket                    // PTR_TO_PACKET: packet data
	ptrPacketMeta                // PTR_TO_PACKET_META: XDP/TC metadata
	ptrPacketEnd                 // PTR_TO_PACKET_END: one past the packet
	ptrMem                       // PTR_TO_MEM: reg.size bytes a helper returned
	ptrSocket                    // PTR_TO_SOCKET: a bpf_sock
	ptrSockCommon                // PTR_TO_SOCK_COMMON: a bpf_sock_common
	ptrTCPSock                   // PTR_TO_TCP_SOCK: a bpf_tcp_sock
	ptrFlowKeys                  // PTR_TO_FLOW_KEYS: a flow dissector's bpf_flow_keys
	ptrFunc                      // PTR_TO_FUNC: a subprogram (reg.mapIdx holds its first slot)
	ptrBTFID                     // PTR_TO_BTF_ID: a kernel object
	ptrDynptr                    // CONST_PTR_TO_DYNPTR: a dynptr a helper passes a callback (reg.dyn)
)

// Register flags (enum bpf_type_flag, as far as waggle tracks them).
const (
	flagMaybeNull uint8 = 1 << iota // PTR_MAYBE_NULL: may be 0 until tested
	flagRdonly                      // MEM_RDONLY: reads only
	flagRingbuf                     // MEM_RINGBUF: a ring buffer record
	flagAlloc                       // MEM_ALLOC (unused yet)
	flagTrusted                     // PTR_TRUSTED: a kernel object valid for the whole program (ptrBTFID)
	flagUntrusted                   // PTR_UNTRUSTED: read only through probing loads, never passed on
	flagRCU                         // MEM_RCU: valid inside the RCU read section the program runs in
)

var regTypeNames = [...]string{
	notInit: "?", scalarReg: "scalar", ptrCtx: "ctx", ptrStack: "fp",
	constMapPtr: "map_ptr", ptrMapValue: "map_value", ptrMapKey: "map_key",
	ptrPacket: "pkt", ptrPacketMeta: "pkt_meta", ptrPacketEnd: "pkt_end",
	ptrMem: "mem", ptrSocket: "sock", ptrSockCommon: "sock_common",
	ptrTCPSock: "tcp_sock", ptrFlowKeys: "flow_keys", ptrFunc: "func",
	ptrBTFID: "ptr_", ptrDynptr: "dynptr_ptr",
}

// reg is one register's abstract value (struct bpf_reg_state).
type reg struct {
	typ   regType
	flags uint8
	// frame is, for ptrStack, the call frame whose stack it points into.
	frame uint8
	// dyn is, for ptrDynptr and the registers that describe a dynptr's
	// stack slots, the dynptr's type (dynLocal, dynRingbuf) and, in
	// dynFirst, whether the slot is the dynptr's first (dynptr.go).
	dyn uint8
	// off is a pointer's fixed offset; the variable part is v.
	off int32
	// v is a scalar's value, or a pointer's variable offset.
	v scalar.Value
	// id ties registers together: copies of one unknown scalar (linked
	// registers), copies of one maybe-null pointer (a null check decides
	// all), packet pointers with one variable offset (a bounds check
	// proves a range for all).
	id uint32
	// ref is the reference a pointer holds (acquired by a helper), or 0.
	ref uint32
	// mapIdx is, for map pointers, values and keys, the map's index in
	// Program.Maps; for ptrFunc, the subprogram's first slot; for
	// ptrBTFID, the kernel BTF id of the struct it points to (btfptr.go).
	mapIdx int32
	// rng is, for packet pointers, how many bytes from the packet pointer
	// with off 0 (of the same id) a bounds check proved readable. For map
	// pointers, keys and values it holds the map's uid instead (mapUID:
	// the kernel keeps range and map_uid in one union too). For ptrMem
	// from bpf_dynptr_data it is the id of the dynptr the memory belongs
	// to (dynptr_id; dynID), which destroying the dynptr invalidates.
	rng int32
	// size is, for ptrMem, the memory's size in bytes.
	size uint32
	// precise marks a scalar whose exact value a decision depended on.
	precise bool
}

func (r *reg) isPointer() bool { return r.typ != notInit && r.typ != scalarReg }

// The flags of the id of a scalar that is a linked register plus a
// constant: after "r1 = r2; r1 += 4", r1 has r2's id with addConst64 and
// off 4, so that a bounds check on r2 bounds r1 too, 4 higher (and the
// other way); "w1 += 4" on a copy of a 32-bit r2 gives addConst32, and r1
// is r2 + 4 zero-extended from 32 bits. Compilers emit the pattern for
// loop counters and lengths. Linux 6.18 (BPF_ADD_CONST64/32, with the
// 2026 stable fixes) takes constants from -2^31 to 2^31-1, added or
// subtracted.
const (
	addConst64 uint32 = 1 << 31
	addConst32 uint32 = 1 << 30
	addConst          = addConst64 | addConst32
)

// idBeforeMov is assign_scalar_id_before_mov: a scalar about to be copied
// (a register move, a spill) gets an id, so that the copy is linked to it;
// a register that is a linked one plus a constant loses that link first,
// as an offset of an offset cannot be kept.
func (v *verifier) idBeforeMov(r *reg) {
	if r.typ != scalarReg {
		return
	}
	if r.id&addConst != 0 {
		r.id, r.off = 0, 0
	}
	if r.id == 0 && !r.v.IsConst() {
		r.id = v.nextID()
	}
}

func (r *reg) isPkt() bool { return r.typ == ptrPacket || r.typ == ptrPacketMeta }

func (r *reg) isNull() bool { return r.typ == scalarReg && r.v.IsConst() && r.v.Var.Value == 0 }

func (r *reg) isConst() bool { return r.typ == scalarReg && r.v.IsConst() }

func (r *reg) maybeNull() bool { return r.flags&flagMaybeNull != 0 }

// mapUID is a map pointer's, key's or value's map_uid: 0, except for an
// inner map holding a bpf_timer, where it is the id of the lookup that
// found the inner map, so that bpf_timer_init can tell two inner maps of
// one map-in-map apart.
func (r *reg) mapUID() uint32 { return uint32(r.rng) }

// setMapUID sets mapUID.
func (r *reg) setMapUID(uid uint32) { r.rng = int32(uid) }

// setUnknown makes r an unknown scalar (__mark_reg_unknown).
func (r *reg) setUnknown() { *r = reg{typ: scalarReg, v: scalar.Unknown()} }

// setConst makes r the scalar c (__mark_reg_known).
func (r *reg) setConst(c uint64) { *r = reg{typ: scalarReg, v: scalar.Const(c)} }

// setScalar makes r the scalar v.
func (r *reg) setScalar(v scalar.Value) { *r = reg{typ: scalarReg, v: v} }

// setPointer makes r a pointer of type t at offset 0.
func (r *reg) setPointer(t regType) { *r = reg{typ: t, v: scalar.Const(0)} }

// typeName is the type as the kernel's messages name it (reg_type_str):
// "map_value_or_null", "pkt", "scalar", "trusted_ptr_", "ptr_or_null_".
// The modifiers come first in the kernel's order (rdonly_, ringbuf_,
// rcu_, untrusted_, trusted_); a BTF pointer's "or_null_" comes after
// "ptr_", where its struct's name follows in the log.
func (r *reg) typeName() string {
	s := "?"
	if int(r.typ) < len(regTypeNames) {
		s = regTypeNames[r.typ]
	}
	switch {
	case r.typ == ptrStack:
		s = "fp"
	case r.typ == ptrMem && r.flags&flagRingbuf != 0:
		s = "ringbuf_mem"
	}
	if r.flags&flagMaybeNull != 0 {
		if r.typ == ptrBTFID {
			s += "or_null_"
		} else {
			s += "_or_null"
		}
	}
	if r.flags&(flagRdonly|flagRCU|flagUntrusted|flagTrusted) == 0 {
		return s
	}
	var pre string
	if r.flags&flagRdonly != 0 {
		pre += "rdonly_"
	}
	if r.flags&flagRCU != 0 {
		pre += "rcu_"
	}
	if r.flags&flagUntrusted != 0 {
		pre += "untrusted_"
	}
	if r.flags&flagTrusted != 0 {
		pre += "trusted_"
	}
	return pre + s
}
