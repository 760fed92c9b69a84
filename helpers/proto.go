package helpers

import (
	"strings"

	"github.com/waggle-bpf/waggle/maps"
)

// ArgType is the kind of one helper argument, as the verifier checks it
// (enum bpf_arg_type in include/linux/bpf.h): a base kind with modifiers
// (enum bpf_type_flag) or-ed in.
type ArgType uint32

// Argument kinds (the bases of enum bpf_arg_type).
const (
	ArgDontCare             ArgType = iota // ARG_DONTCARE: unused
	ArgConstMapPtr                         // ARG_CONST_MAP_PTR: a map handle
	ArgPtrToMapKey                         // ARG_PTR_TO_MAP_KEY: key_size bytes of readable memory
	ArgPtrToMapValue                       // ARG_PTR_TO_MAP_VALUE: value_size bytes of memory
	ArgPtrToMem                            // ARG_PTR_TO_MEM: memory, sized by the next argument or by Proto.ArgSize
	ArgConstSize                           // ARG_CONST_SIZE: size of the previous argument, > 0
	ArgConstSizeOrZero                     // ARG_CONST_SIZE_OR_ZERO
	ArgPtrToCtx                            // ARG_PTR_TO_CTX: the program's context
	ArgAnything                            // ARG_ANYTHING: any initialised value
	ArgPtrToSpinLock                       // ARG_PTR_TO_SPIN_LOCK: the bpf_spin_lock of a map value
	ArgPtrToFunc                           // ARG_PTR_TO_FUNC: a callback (BPF_PSEUDO_FUNC)
	ArgPtrToStack                          // ARG_PTR_TO_STACK: the stack (callback context)
	ArgPtrToConstStr                       // ARG_PTR_TO_CONST_STR: NUL-terminated string in a read-only map
	ArgPtrToRingbufMem                     // ARG_PTR_TO_RINGBUF_MEM: memory from bpf_ringbuf_reserve
	ArgConstAllocSizeOrZero                // ARG_CONST_ALLOC_SIZE_OR_ZERO: size of memory the helper returns
	ArgPtrToBTFID                          // ARG_PTR_TO_BTF_ID: a kernel object (task, socket)
	ArgPtrToTimer                          // ARG_PTR_TO_TIMER: the bpf_timer of a map value
	ArgPtrToDynptr                         // ARG_PTR_TO_DYNPTR
	ArgPtrToBTFIDSockCommon                // ARG_PTR_TO_BTF_ID_SOCK_COMMON: a socket (bpf_sock or kernel sock_common)
	ArgPtrToSockCommon                     // ARG_PTR_TO_SOCK_COMMON: a bpf_sock_common
	ArgPtrToSocket                         // ARG_PTR_TO_SOCKET: a full bpf_sock
	ArgScalar                              // ARG_SCALAR: a scalar
	ArgPtrToPercpuBTFID                    // ARG_PTR_TO_PERCPU_BTF_ID: a per-CPU kernel variable
	ArgPtrToArena                          // ARG_PTR_TO_ARENA
	ArgKptrXchgDest                        // ARG_KPTR_XCHG_DEST: a kptr field of a map value
)

// Argument modifiers (enum bpf_type_flag).
const (
	ArgMaybeNull     ArgType = 1 << (8 + iota) // PTR_MAYBE_NULL: 0 is allowed too
	ArgReadOnly                                // MEM_RDONLY: the helper only reads
	ArgUninit                                  // MEM_UNINIT: memory may be uninitialised; the helper fills it
	ArgRelease                                 // OBJ_RELEASE: the helper releases the reference passed
	ArgFixedSize                               // MEM_FIXED_SIZE: Proto.ArgSize gives the size
	ArgAligned                                 // MEM_ALIGNED: aligned to its size
	ArgWrite                                   // MEM_WRITE: the helper writes the memory
	ArgDynptrLocal                             // DYNPTR_TYPE_LOCAL: a dynptr to local memory
	ArgDynptrRingbuf                           // DYNPTR_TYPE_RINGBUF: a dynptr to a ring buffer record
)

// Argument kinds the kernel names as a base with modifiers.
const (
	ArgPtrToStackOrNull    = ArgPtrToStack | ArgMaybeNull       // ARG_PTR_TO_STACK_OR_NULL
	ArgPtrToUninitMem      = ArgPtrToMem | ArgUninit | ArgWrite // ARG_PTR_TO_UNINIT_MEM
	ArgPtrToFixedSizeMem   = ArgPtrToMem | ArgFixedSize         // ARG_PTR_TO_FIXED_SIZE_MEM
	ArgPtrToMapValueOrNull = ArgPtrToMapValue | ArgMaybeNull    // ARG_PTR_TO_MAP_VALUE_OR_NULL
	ArgPtrToBTFIDOrNull    = ArgPtrToBTFID | ArgMaybeNull       // ARG_PTR_TO_BTF_ID_OR_NULL
	ArgPtrToSocketOrNull   = ArgPtrToSocket | ArgMaybeNull      // ARG_PTR_TO_SOCKET_OR_NULL
	argModifiers           = ArgMaybeNull | ArgReadOnly | ArgUninit | ArgRelease | ArgFixedSize | ArgAligned | ArgWrite | ArgDynptrLocal | ArgDynptrRingbuf
)

// Base returns the kind without modifiers.
func (a ArgType) Base() ArgType { return a & 0xff }

var argNames = [...]string{
	ArgDontCare: "ARG_DONTCARE", ArgConstMapPtr: "ARG_CONST_MAP_PTR",
	ArgPtrToMapKey: "ARG_PTR_TO_MAP_KEY", ArgPtrToMapValue: "ARG_PTR_TO_MAP_VALUE",
	ArgPtrToMem: "ARG_PTR_TO_MEM", ArgConstSize: "ARG_CONST_SIZE",
	ArgConstSizeOrZero: "ARG_CONST_SIZE_OR_ZERO", ArgPtrToCtx: "ARG_PTR_TO_CTX",
	ArgAnything: "ARG_ANYTHING", ArgPtrToSpinLock: "ARG_PTR_TO_SPIN_LOCK",
	ArgPtrToFunc: "ARG_PTR_TO_FUNC", ArgPtrToStack: "ARG_PTR_TO_STACK",
	ArgPtrToConstStr: "ARG_PTR_TO_CONST_STR", ArgPtrToRingbufMem: "ARG_PTR_TO_RINGBUF_MEM",
	ArgConstAllocSizeOrZero: "ARG_CONST_ALLOC_SIZE_OR_ZERO", ArgPtrToBTFID: "ARG_PTR_TO_BTF_ID",
	ArgPtrToTimer: "ARG_PTR_TO_TIMER", ArgPtrToDynptr: "ARG_PTR_TO_DYNPTR",
	ArgPtrToBTFIDSockCommon: "ARG_PTR_TO_BTF_ID_SOCK_COMMON", ArgPtrToSockCommon: "ARG_PTR_TO_SOCK_COMMON",
	ArgPtrToSocket: "ARG_PTR_TO_SOCKET", ArgScalar: "ARG_SCALAR",
	ArgPtrToPercpuBTFID: "ARG_PTR_TO_PERCPU_BTF_ID", ArgPtrToArena: "ARG_PTR_TO_ARENA",
	ArgKptrXchgDest: "ARG_KPTR_XCHG_DEST",
}

var flagNames = []string{"PTR_MAYBE_NULL", "MEM_RDONLY", "MEM_UNINIT", "OBJ_RELEASE", "MEM_FIXED_SIZE", "MEM_ALIGNED", "MEM_WRITE", "DYNPTR_TYPE_LOCAL", "DYNPTR_TYPE_RINGBUF"}

// String returns the kernel's names of the kind and its modifiers, e.g.
// "ARG_PTR_TO_MEM|MEM_RDONLY".
func (a ArgType) String() string {
	var s string
	if b := int(a.Base()); b < len(argNames) {
		s = argNames[b]
	} else {
		s = "ARG_?"
	}
	return s + flagString(uint32(a))
}

func flagString(f uint32) string {
	var b strings.Builder
	for i, n := range flagNames {
		if f&(1<<(8+i)) != 0 {
			b.WriteString("|" + n)
		}
	}
	return b.String()
}

// RetType is what a helper returns (enum bpf_return_type): a base kind
// with modifiers or-ed in.
type RetType uint32

// Return kinds (the bases of enum bpf_return_type).
const (
	RetInteger         RetType = iota // RET_INTEGER: a scalar
	RetVoid                           // RET_VOID: nothing (r0 is unreadable)
	RetPtrToMapValue                  // RET_PTR_TO_MAP_VALUE: value_size bytes of a map value
	RetPtrToSocket                    // RET_PTR_TO_SOCKET: a bpf_sock
	RetPtrToTCPSock                   // RET_PTR_TO_TCP_SOCK: a bpf_tcp_sock
	RetPtrToSockCommon                // RET_PTR_TO_SOCK_COMMON: a bpf_sock_common
	RetPtrToMem                       // RET_PTR_TO_MEM: memory of Proto.RetSizeArg's size
	RetPtrToMemOrBTFID                // RET_PTR_TO_MEM_OR_BTF_ID: a kernel variable
	RetPtrToBTFID                     // RET_PTR_TO_BTF_ID: a kernel object (task)
)

// Return modifiers (enum bpf_type_flag).
const (
	RetMaybeNull RetType = 1 << 8  // PTR_MAYBE_NULL: 0 on failure; the program must test it
	RetReadOnly  RetType = 1 << 9  // MEM_RDONLY
	RetRingbuf   RetType = 1 << 10 // MEM_RINGBUF: a ring buffer record
	RetTrusted   RetType = 1 << 11 // PTR_TRUSTED
)

// Return kinds the kernel names as a base with modifiers.
const (
	RetPtrToMapValueOrNull   = RetPtrToMapValue | RetMaybeNull         // RET_PTR_TO_MAP_VALUE_OR_NULL
	RetPtrToSocketOrNull     = RetPtrToSocket | RetMaybeNull           // RET_PTR_TO_SOCKET_OR_NULL
	RetPtrToTCPSockOrNull    = RetPtrToTCPSock | RetMaybeNull          // RET_PTR_TO_TCP_SOCK_OR_NULL
	RetPtrToSockCommonOrNull = RetPtrToSockCommon | RetMaybeNull       // RET_PTR_TO_SOCK_COMMON_OR_NULL
	RetPtrToRingbufMemOrNull = RetPtrToMem | RetRingbuf | RetMaybeNull // RET_PTR_TO_RINGBUF_MEM_OR_NULL
	RetPtrToBTFIDOrNull      = RetPtrToBTFID | RetMaybeNull            // RET_PTR_TO_BTF_ID_OR_NULL
	RetPtrToBTFIDTrusted     = RetPtrToBTFID | RetTrusted              // RET_PTR_TO_BTF_ID_TRUSTED
	retModifiers             = RetMaybeNull | RetReadOnly | RetRingbuf | RetTrusted
)

// Base returns the kind without modifiers.
func (r RetType) Base() RetType { return r & 0xff }

var retNames = [...]string{
	RetInteger: "RET_INTEGER", RetVoid: "RET_VOID", RetPtrToMapValue: "RET_PTR_TO_MAP_VALUE",
	RetPtrToSocket: "RET_PTR_TO_SOCKET", RetPtrToTCPSock: "RET_PTR_TO_TCP_SOCK",
	RetPtrToSockCommon: "RET_PTR_TO_SOCK_COMMON", RetPtrToMem: "RET_PTR_TO_MEM",
	RetPtrToMemOrBTFID: "RET_PTR_TO_MEM_OR_BTF_ID", RetPtrToBTFID: "RET_PTR_TO_BTF_ID",
}

// String returns the kernel's names of the kind and its modifiers, e.g.
// "RET_PTR_TO_MAP_VALUE|PTR_MAYBE_NULL".
func (r RetType) String() string {
	s := "RET_?"
	if b := int(r.Base()); b < len(retNames) {
		s = retNames[b]
	}
	for i, n := range []string{"PTR_MAYBE_NULL", "MEM_RDONLY", "MEM_RINGBUF", "PTR_TRUSTED"} {
		if r&(1<<(8+i)) != 0 {
			s += "|" + n
		}
	}
	return s
}

// RetBound is what the verifier knows of a RetInteger result beyond "a
// scalar" (do_refine_retval_range in kernel/bpf/verifier.c).
type RetBound uint8

// Return bounds.
const (
	// RetUnbounded: any 64-bit value.
	RetUnbounded RetBound = iota
	// RetErrnoOrSize: a negative errno (at least -MAX_ERRNO, -4095) or at
	// most the largest value the size argument Proto.RetSizeArg may have
	// (bpf_get_stack, bpf_probe_read_*_str: bytes copied).
	RetErrnoOrSize
	// RetCPU: 0 to the number of possible CPUs less one
	// (bpf_get_smp_processor_id).
	RetCPU
)

// MaxErrno is the kernel's MAX_ERRNO: an errno-or-size result is at least
// -MaxErrno.
const MaxErrno = 4095

// Proto is a helper's prototype: what the verifier checks at a call and
// knows of the result (the kernel's struct bpf_func_proto, with what
// verifier.c and filter.c know of a helper id besides).
type Proto struct {
	Ret  RetType
	Args []ArgType // at most 5
	// ArgSize is, for an argument with ArgFixedSize, the size of the
	// memory it points to (arg1_size ... arg5_size), by argument (0-based).
	ArgSize [5]uint32
	// ArgBTF is, for an ArgPtrToBTFID argument, the kernel struct it must
	// point to (arg1_btf_id ... arg5_btf_id: "task_struct"), by argument
	// (0-based). ArgPtrToBTFIDSockCommon arguments take a sock_common
	// whatever it says.
	ArgBTF [5]string
	// RetBTF is, for a RetPtrToBTFID result, the kernel struct it points
	// to (ret_btf_id: "tcp_sock").
	RetBTF string
	// RetSizeArg is the argument (0-based) whose value bounds the result:
	// the size of the memory a RetPtrToMem points to, the largest result
	// of RetErrnoOrSize.
	RetSizeArg int
	// RetBound narrows a RetInteger result.
	RetBound RetBound
	// GPLOnly helpers need a GPL-compatible license.
	GPLOnly bool
	// ChangesPktData helpers may move or resize the packet
	// (bpf_helper_changes_pkt_data in net/core/filter.c): the verifier
	// forgets every packet pointer after the call. bpf_tail_call is one,
	// since the program it continues with may be.
	ChangesPktData bool
	// PktAccess helpers take packet pointers as memory arguments
	// (bpf_func_proto's pkt_access): in the program types with direct
	// packet access, the verifier refuses a packet pointer given to any
	// other helper.
	PktAccess bool
	// Acquire helpers return a reference the program must release on
	// every path, with the helper whose argument has ArgRelease
	// (is_acquire_function in verifier.c): bpf_ringbuf_reserve, the socket
	// lookups. bpf_map_lookup_elem acquires only for sockmap and sockhash,
	// which depends on the map; Acquire is false for it.
	Acquire bool
	// MapTypes, when not empty, are the map types the ArgConstMapPtr
	// argument may be (the helper's side of check_map_func_compatibility
	// in verifier.c: bpf_tail_call takes prog arrays only).
	MapTypes []maps.Type
	// Cast helpers return their socket argument seen as another type
	// (is_ptr_cast_function in verifier.c: bpf_sk_fullsock, bpf_tcp_sock,
	// the bpf_skc_to_* casts; not bpf_get_listener_sock): the result holds the
	// argument's reference, and releasing either releases both.
	Cast bool
	// Fastcall is allow_fastcall: the kernel inlines the helper keeping
	// r1-r5 (bpf_get_smp_processor_id on x86-64), so the spills and fills
	// clang's bpf_fastcall puts around a call of it may be dropped, and
	// their stack with them (see the verifier's fastcall.go).
	Fastcall bool
	// Callback is set for helpers that call back into the program: which
	// argument is the callback and what it receives and returns.
	Callback *Callback
}

// Released returns the argument (0-based) the helper releases the
// reference of (OBJ_RELEASE), if any.
func (p Proto) Released() (int, bool) {
	for i, a := range p.Args {
		if a&ArgRelease != 0 {
			return i, true
		}
	}
	return 0, false
}

// Callback is how a helper calls back into the program: which argument is
// the callback, what its registers hold when it starts and what it may
// return (set_*_callback_state in kernel/bpf/verifier.c).
type Callback struct {
	// Arg is the ArgPtrToFunc argument (0-based).
	Arg int
	// Regs is what the callback's r1-r5 hold.
	Regs [5]CallbackReg
	// RetMin and RetMax bound the callback's r0 at its exit.
	RetMin, RetMax int32
	// Async callbacks run later, outside the helper's call (bpf_timer):
	// they may not reach the caller's stack.
	Async bool
}

// CallbackReg is what one register holds when a callback starts.
type CallbackReg struct {
	Kind CallbackRegKind
	// Arg is, for CallbackCallerArg, the helper's argument (0-based) whose
	// value the register gets.
	Arg int
	// BTF is, for CallbackBTFID, the kernel struct the register points to.
	BTF string
}

// CallbackRegKind is the kind of value in one callback register.
type CallbackRegKind uint8

// Callback register kinds.
const (
	CallbackNotInit   CallbackRegKind = iota // unreadable
	CallbackScalar                           // a scalar (bpf_loop's index)
	CallbackCallerArg                        // the helper's argument Arg, as the caller passed it
	CallbackMapPtr                           // the map the helper works on
	CallbackMapKey                           // a key of that map (read-only, key_size bytes)
	CallbackMapValue                         // a value of that map (value_size bytes)
	CallbackBTFID                            // a kernel object of type BTF
	CallbackDynptr                           // a local dynptr (bpf_user_ringbuf_drain's sample)
)

// Helper ids that call back.
const (
	IDTimerSetCallback int32 = 170
	IDFindVMA          int32 = 180
	IDUserRingbufDrain int32 = 209
)

// callbacks are the callback signatures by helper id, for every helper
// that calls back, implemented in waggle or not.
var callbacks = map[int32]Callback{
	// set_loop_callback_state: callback(index, ctx)
	IDLoop: {Arg: 1, RetMax: 1, Regs: [5]CallbackReg{
		{Kind: CallbackScalar}, {Kind: CallbackCallerArg, Arg: 2}}},
	// set_map_elem_callback_state, map_set_for_each_callback_args:
	// callback(map, key, value, ctx)
	IDForEachMapElem: {Arg: 1, RetMax: 1, Regs: [5]CallbackReg{
		{Kind: CallbackCallerArg, Arg: 0}, {Kind: CallbackMapKey}, {Kind: CallbackMapValue}, {Kind: CallbackCallerArg, Arg: 2}}},
	// set_find_vma_callback_state: callback(task, vma, ctx)
	IDFindVMA: {Arg: 2, RetMax: 1, Regs: [5]CallbackReg{
		{Kind: CallbackCallerArg, Arg: 0}, {Kind: CallbackBTFID, BTF: "vm_area_struct"}, {Kind: CallbackCallerArg, Arg: 3}}},
	// set_user_ringbuf_callback_state: callback(dynptr, ctx)
	IDUserRingbufDrain: {Arg: 1, RetMax: 1, Regs: [5]CallbackReg{
		{Kind: CallbackDynptr}, {Kind: CallbackCallerArg, Arg: 2}}},
	// set_timer_callback_state: callback(map, key, value); an async
	// callback must return 0 (check_return_code).
	IDTimerSetCallback: {Arg: 1, Async: true, Regs: [5]CallbackReg{
		{Kind: CallbackMapPtr}, {Kind: CallbackMapKey}, {Kind: CallbackMapValue}}},
}

// CallbackOf returns the callback signature of a helper that calls back
// into the program, whether waggle implements the helper or not.
func CallbackOf(id int32) (Callback, bool) {
	c, ok := callbacks[id]
	return c, ok
}

// callbackProto returns the callback signature of id for a Proto.
func callbackProto(id int32) *Callback {
	c := callbacks[id]
	return &c
}

// Def defines one helper: its Linux id and name, its prototype and its Go
// implementation.
type Def struct {
	ID    int32
	Name  string // the kernel's name without "bpf_", e.g. "map_lookup_elem"
	Proto Proto
	Func  Func
}

// Defs is a set of helper definitions.
type Defs []Def

// Table returns the implementations of the set by id.
func (d Defs) Table() Table {
	t := make(Table, len(d))
	for _, def := range d {
		t[def.ID] = def.Func
	}
	return t
}

// ByID returns the definition with the given id.
func (d Defs) ByID(id int32) (Def, bool) {
	for _, def := range d {
		if def.ID == id {
			return def, true
		}
	}
	return Def{}, false
}
