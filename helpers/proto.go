package helpers

// ArgType is the kind of one helper argument, as the verifier checks it
// (enum bpf_arg_type in include/linux/bpf.h). Modifiers are or-ed in.
type ArgType uint32

// Argument kinds.
const (
	ArgDontCare             ArgType = iota // ARG_DONTCARE: unused
	ArgConstMapPtr                         // ARG_CONST_MAP_PTR: a map handle
	ArgPtrToMapKey                         // ARG_PTR_TO_MAP_KEY: key_size bytes of readable memory
	ArgPtrToMapValue                       // ARG_PTR_TO_MAP_VALUE: value_size bytes of readable memory
	ArgPtrToMem                            // ARG_PTR_TO_MEM: memory, sized by the next argument
	ArgConstSize                           // ARG_CONST_SIZE: size of the previous argument, > 0
	ArgConstSizeOrZero                     // ARG_CONST_SIZE_OR_ZERO
	ArgPtrToCtx                            // ARG_PTR_TO_CTX: the program's context
	ArgAnything                            // ARG_ANYTHING: any scalar
	ArgPtrToSpinLock                       // ARG_PTR_TO_SPIN_LOCK
	ArgPtrToFunc                           // ARG_PTR_TO_FUNC: a callback (BPF_PSEUDO_FUNC)
	ArgPtrToStackOrNull                    // ARG_PTR_TO_STACK_OR_NULL: callback context
	ArgPtrToConstStr                       // ARG_PTR_TO_CONST_STR: NUL-terminated read-only string
	ArgPtrToRingbufMem                     // ARG_PTR_TO_RINGBUF_MEM: memory from bpf_ringbuf_reserve
	ArgConstAllocSizeOrZero                // ARG_CONST_ALLOC_SIZE_OR_ZERO
	ArgPtrToLong                           // ARG_PTR_TO_FIXED_SIZE_MEM of 8 bytes (strtol results)
	ArgPtrToBTFID                          // ARG_PTR_TO_BTF_ID: a kernel object (task, socket)
	ArgPtrToTimer                          // ARG_PTR_TO_TIMER
	ArgPtrToDynptr                         // ARG_PTR_TO_DYNPTR
	ArgPtrToInt                            // ARG_PTR_TO_INT: 4 bytes of readable and writable memory
	ArgPtrToSockCommon                     // ARG_PTR_TO_BTF_ID_SOCK_COMMON: a socket a lookup returned
)

// Argument modifiers.
const (
	ArgMaybeNull ArgType = 1 << 8  // PTR_MAYBE_NULL
	ArgReadOnly  ArgType = 1 << 9  // MEM_RDONLY: the helper only reads
	ArgUninit    ArgType = 1 << 10 // MEM_UNINIT: the helper only writes, memory may be uninitialised
)

// Base returns the kind without modifiers.
func (a ArgType) Base() ArgType { return a & 0xff }

// RetType is what a helper returns (enum bpf_return_type).
type RetType uint32

// Return kinds.
const (
	RetInteger               RetType = iota // RET_INTEGER
	RetVoid                                 // RET_VOID
	RetPtrToMapValueOrNull                  // RET_PTR_TO_MAP_VALUE_OR_NULL
	RetPtrToMemOrNull                       // RET_PTR_TO_MEM_OR_NULL (ringbuf reserve, size from an argument)
	RetPtrToBTFIDOrNull                     // RET_PTR_TO_BTF_ID_OR_NULL
	RetPtrToBTFID                           // RET_PTR_TO_BTF_ID (bpf_get_current_task_btf)
	RetPtrToSocketOrNull                    // RET_PTR_TO_SOCKET_OR_NULL
	RetPtrToSockCommonOrNull                // RET_PTR_TO_SOCK_COMMON_OR_NULL (bpf_skc_lookup_tcp)
)

// Proto is a helper's prototype: what the verifier checks at a call.
type Proto struct {
	Ret  RetType
	Args []ArgType // at most 5
	// RetSizeArg is, for RetPtrToMemOrNull, the argument (0-based) that
	// gives the size of the returned memory.
	RetSizeArg int
	// GPLOnly helpers need a GPL-compatible license.
	GPLOnly bool
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
