package maps

// Program-side and Go-side interfaces of the map types with more than
// Elems and Values: find them with a type assertion on the Map New
// returns, e.g. m.(maps.RingBuffer).

// RingBuffer is the program side of a BPF_MAP_TYPE_RINGBUF map
// (kernel/bpf/ringbuf.c). Records are a 8-byte header and the sample,
// rounded up to 8 bytes; the Go side reads them with a RingBufReader.
type RingBuffer interface {
	// Reserve is bpf_ringbuf_reserve with flags 0: the address of size
	// bytes of sample to fill, or 0 if the record does not fit (a drop,
	// counted) or is larger than the ring.
	Reserve(size uint64) uint64
	// Submit is bpf_ringbuf_submit: the sample at addr, from Reserve,
	// becomes visible to the reader. flags may hold RingBufNoWakeup or
	// RingBufForceWakeup. The error is for engines (addr is not a
	// reserved sample of this ring); the helper itself returns nothing.
	Submit(addr, flags uint64) error
	// Discard is bpf_ringbuf_discard: the reader skips the sample.
	Discard(addr, flags uint64) error
	// Output is bpf_ringbuf_output: reserve, copy data and submit. EAGAIN
	// when it does not fit (counted as a drop), EINVAL for unknown flags.
	Output(data []byte, flags uint64) error
	// Query is bpf_ringbuf_query: RingBufAvailData, RingBufRingSize,
	// RingBufConsPos or RingBufProdPos; 0 for other flags.
	Query(flags uint64) uint64
	// Dropped counts the records that did not fit.
	Dropped() uint64
	// Contains reports whether addr lies in the ring's data, so helpers
	// can find the ring of a sample (bpf_ringbuf_submit has no map
	// argument).
	Contains(addr uint64) bool
}

// UserRingBuffer is the program side of a BPF_MAP_TYPE_USER_RINGBUF map
// (kernel/bpf/ringbuf.c): Go produces with a UserRingBufWriter, programs
// consume with bpf_user_ringbuf_drain.
type UserRingBuffer interface {
	// Drain is bpf_user_ringbuf_drain: fn gets each submitted sample's
	// address and size in order and returns the callback's result (0
	// goes on, else stop). The number of samples fn got, or a negative
	// errno (userringbuf.go).
	Drain(flags uint64, fn func(addr uint64, size uint32) uint64) int64
}

// Ring buffer flags (include/uapi/linux/bpf.h).
const (
	RingBufNoWakeup    uint64 = 1 << 0 // BPF_RB_NO_WAKEUP
	RingBufForceWakeup uint64 = 1 << 1 // BPF_RB_FORCE_WAKEUP

	RingBufAvailData uint64 = 0 // BPF_RB_AVAIL_DATA
	RingBufRingSize  uint64 = 1 // BPF_RB_RING_SIZE
	RingBufConsPos   uint64 = 2 // BPF_RB_CONS_POS
	RingBufProdPos   uint64 = 3 // BPF_RB_PROD_POS
)

// PerfEvents is the program side of a BPF_MAP_TYPE_PERF_EVENT_ARRAY
// (bpf_perf_event_output, kernel/trace/bpf_trace.c). Its slots hold
// per-CPU rings that a PerfReader installs.
type PerfEvents interface {
	// Output writes data as one sample to the ring selected by flags: the
	// index flags&PerfIndexMask, or the ring of cpu for PerfCurrentCPU.
	// E2BIG for an index past max_entries, ENOENT for an empty slot,
	// EOPNOTSUPP for another CPU's ring (the kernel's event->oncpu check),
	// EINVAL for flags outside PerfIndexMask, ENOSPC when the ring is
	// full (the loss is counted and reported to the reader).
	Output(cpu int, flags uint64, data []byte) error
	// OutputFrags is Output of the concatenation of frags: what
	// bpf_skb_event_output and bpf_xdp_event_output emit (the data, then
	// packet bytes), without copying them together first.
	OutputFrags(cpu int, flags uint64, frags ...[]byte) error
}

// Perf event output flags (include/uapi/linux/bpf.h).
const (
	PerfIndexMask  uint64 = 0xffffffff // BPF_F_INDEX_MASK
	PerfCurrentCPU uint64 = 0xffffffff // BPF_F_CURRENT_CPU
)

// ProgramArray is a BPF_MAP_TYPE_PROG_ARRAY: the targets of bpf_tail_call.
// Programs are Go values of the caller's choosing (the runtime's program
// type); the map holds them, it does not run them. A Go-side Update with a
// 4-byte file descriptor, as with the bpf syscall, fails with EOPNOTSUPP:
// waggle programs have no descriptors. Lookup returns the program's id when
// the program has an ID() uint32 method, as Linux returns the prog id;
// Delete and NextKey work as in Linux.
type ProgramArray interface {
	// SetProgram stores prog at index (E2BIG past max_entries). A nil prog
	// clears the slot. If prog has a Handle() uint64 method (a native
	// descriptor for the JIT), the off-heap slot holds that, else 1.
	SetProgram(index uint32, prog any) error
	// Program returns the program at index, for bpf_tail_call.
	Program(index uint32) (any, bool)
}

// MapOfMaps is a BPF_MAP_TYPE_ARRAY_OF_MAPS or HASH_OF_MAPS: values are
// maps matching the Spec's InnerMap (type, key and value size, flags, and
// max_entries for arrays unless BPF_F_INNER_MAP, as bpf_map_meta_equal and
// array_map_meta_equal require). Programs' lookups return the inner map's
// Handle; for programs to pass that handle to helpers, the inner map must be
// in the Set their helpers resolve handles with.
// Go-side Update with a descriptor fails with EOPNOTSUPP; Lookup returns an
// id only for inner maps with an ID() uint32 method.
type MapOfMaps interface {
	// SetInner stores m under key (BPF_ANY). The caller keeps ownership:
	// m must stay open while it is stored.
	SetInner(key []byte, m Map) error
	// Inner returns the map stored under key.
	Inner(key []byte) (Map, bool)
}

// Redirect is the target bpf_redirect_map finds in a devmap, cpumap or
// xskmap: the value Linux stores.
type Redirect struct {
	Key uint32 // the map key: device slot, CPU, or queue index
	// Value is the ifindex (devmap, devmap_hash), the queue size (cpumap)
	// or the socket (xskmap).
	Value uint32
	// Prog is the program of a devmap or cpumap entry (always 0: waggle
	// refuses entries with programs).
	Prog uint32
}

// Redirector is the program side of XDP redirect maps (DevMap, DevMapHash,
// CPUMap, XSKMap) for bpf_redirect_map.
type Redirector interface {
	// RedirectTarget returns the entry under key, false if there is none
	// (the helper then returns the action in the low bits of its flags).
	RedirectTarget(key uint64) (Redirect, bool)
	// RedirectTargets calls fn for every entry in key order (hash order
	// for DevMapHash) until it returns false, for BPF_F_BROADCAST.
	RedirectTargets(fn func(Redirect) bool)
}
