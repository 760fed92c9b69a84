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
	// Program.Maps; for ptrFunc, the subprogram's first slot.
	mapIdx int32
	// rng is, for packet pointers, how many bytes from the packet pointer
	// with off 0 (of the same id) a bounds check proved readable. For
	// ptrMem from bpf_dynptr_data it is the id of the dynptr the memory
	// belongs to (dynptr_id; dynID), which destroying the dynptr
	// invalidates: one field for both keeps reg small.
	rng int32
	// size is, for ptrMem, the memory's size in bytes.
	size uint32
	// precise marks a scalar whose exact value a decision depended on.
	precise bool
}

func (r *reg) isPointer() bool { return r.typ != notInit && r.typ != scalarReg }

func (r *reg) isPkt() bool { return r.typ == ptrPacket || r.typ == ptrPacketMeta }

func (r *reg) isNull() bool { return r.typ == scalarReg && r.v.IsConst() && r.v.Var.Value == 0 }

func (r *reg) isConst() bool { return r.typ == scalarReg && r.v.IsConst() }

func (r *reg) maybeNull() bool { return r.flags&flagMaybeNull != 0 }

// setUnknown makes r an unknown scalar (__mark_reg_unknown).
func (r *reg) setUnknown() { *r = reg{typ: scalarReg, v: scalar.Unknown()} }

// setConst makes r the scalar c (__mark_reg_known).
func (r *reg) setConst(c uint64) { *r = reg{typ: scalarReg, v: scalar.Const(c)} }

// setScalar makes r the scalar v.
func (r *reg) setScalar(v scalar.Value) { *r = reg{typ: scalarReg, v: v} }

// setPointer makes r a pointer of type t at offset 0.
func (r *reg) setPointer(t regType) { *r = reg{typ: t, v: scalar.Const(0)} }

// typeName is the type as the kernel's messages name it (reg_type_str):
// "map_value_or_null", "pkt", "scalar".
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
	if r.flags&flagRdonly != 0 {
		s = "rdonly_" + s
	}
	if r.flags&flagMaybeNull != 0 {
		s += "_or_null"
	}
	return s
}
