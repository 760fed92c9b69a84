package maps

// Map is a map in user space. Every implementation is safe for concurrent
// use by any number of programs and Go callers at once, except that Close
// must not race with other calls (as closing a file descriptor while
// another thread uses it is a bug in Linux programs too).
//
// Keys and values are byte slices of exactly Spec().KeySize and ValueSize
// bytes (wrong sizes fail with EINVAL). On the Go side a per-CPU map's value
// holds every CPU's copy, each padded to a multiple of 8 bytes, as the bpf
// syscall lays them out: len = roundUp8(ValueSize) * CPUs. Keyless maps
// (queue, stack, bloom filter, ring buffer) take a nil or empty key.
//
// The Go side behaves as the bpf syscall does (kernel/bpf/syscall.c:
// map_lookup_elem, map_update_elem, map_delete_elem, map_get_next_key,
// map_lookup_and_delete_elem), which for some types differs from what a
// program sees through the helpers: a Go-side Lookup of an LRU map does not
// refresh the element; a Go-side Update of a queue pushes.
//
// Values are read and written in place: a Go-side Lookup concurrent with a
// program writing the same value may see a torn value, as user space reading
// a map concurrently with a BPF program does in Linux. Hash map updates
// install a new element and then unlink the old one (kernel/bpf/hashtab.c
// htab_map_update_elem), so a lookup sees either the old value or the new
// one whole.
type Map interface {
	// Spec returns the map's description, with what creation adjusted
	// (CPUs resolved; max_entries rounded for FlagNoCommonLRU as Linux
	// rounds it).
	Spec() Spec

	// Lookup copies the value for key into value. ErrKeyNotExist if absent.
	Lookup(key, value []byte) error
	// Update sets the value for key with UpdateAny, UpdateNoExist or
	// UpdateExist. UpdateLock fails with EINVAL: waggle maps carry no BTF,
	// so no value has a bpf_spin_lock (Linux's answer for such maps).
	Update(key, value []byte, flags uint64) error
	// Delete removes key. ErrKeyNotExist if absent; EINVAL for arrays.
	Delete(key []byte) error
	// NextKey writes the key after key into next; with key nil, the first
	// key. ErrKeyNotExist after the last. Like the kernel, a key that is
	// not present restarts from the first key.
	NextKey(key, next []byte) error
	// LookupAndDelete copies the value for key into value and removes it
	// (BPF_MAP_LOOKUP_AND_DELETE_ELEM): hash maps of every kind, and a pop
	// for queues and stacks. ENOTSUPP for other types, as in Linux.
	LookupAndDelete(key, value []byte) error

	// Handle is the address programs hold for this map: what a lddw with a
	// map reference loads, and what map helpers receive in r1. It points to
	// off-heap memory that stays valid until Close (see the header layout
	// in header.go).
	Handle() uint64
	// Regions lists the memory a program may reach through pointers this
	// map hands out (values, ring buffer data), for the checked engines.
	Regions() []Region
	// MemoryUsage is the number of bytes of memory the map reserved, the
	// analogue of the kernel's map_mem_usage (bpftool's "memlock"). Pages
	// are committed as they are first touched, so the resident size of a
	// sparse map is lower.
	MemoryUsage() uint64

	// Close releases the map's memory. Using it afterwards fails with
	// EBADF; pointers programs obtained from it become invalid, so no
	// program may run against it any more. A map that becomes unreachable
	// without Close is released by a cleanup (runtime.AddCleanup) as a
	// backstop; keep maps reachable (a Set does) while programs hold
	// their handles.
	Close() error
}

// Region is memory a program may access through a map.
//
// When Stride is zero the whole of Data is program memory. Otherwise Data
// is an array of Stride-byte slots and only the Len bytes at Offset within
// each slot are program memory (the value of a hash element, between its
// links and key); an engine may check at that finer grain or at Data's.
type Region struct {
	Data     []byte
	Writable bool

	Stride, Offset, Len uint64
}

// Elems is the program side of maps whose values programs look up and
// update in place: arrays, hashes (plain, per-CPU, LRU), LPM tries,
// map-in-maps, devmaps, cpumaps and xskmaps. cpu is the worker slot the
// program runs on (bpf_get_smp_processor_id); non-per-CPU maps ignore it,
// and per-CPU maps return 0 or EINVAL for a cpu outside [0, CPUs).
//
// Keys and values are the program's memory; the map copies what it keeps.
// Maps created with FlagRdOnlyProg refuse program-side updates and deletes
// with EPERM (the verifier refuses such programs in Linux; an unverified
// program must not get to write .rodata either).
type Elems interface {
	// LookupElem returns the address of the value for key, 0 if absent
	// (bpf_map_lookup_elem). For a map-in-map it returns the inner map's
	// Handle. A program-side lookup of an LRU map marks the element used.
	LookupElem(cpu int, key []byte) uint64
	// UpdateElem is bpf_map_update_elem. A per-CPU map updates only cpu's
	// copy (a new element gets zeroes in every other CPU's copy).
	UpdateElem(cpu int, key, value []byte, flags uint64) error
	// DeleteElem is bpf_map_delete_elem.
	DeleteElem(cpu int, key []byte) error
}

// Values is the program side of maps without keys: queue, stack and
// bloom filter (bpf_map_push_elem, bpf_map_pop_elem, bpf_map_peek_elem).
// For a bloom filter, Push adds a value and Peek tests membership
// (ENOENT when certainly absent); Pop is EOPNOTSUPP.
type Values interface {
	// PushElem is bpf_map_push_elem: UpdateAny, or UpdateExist to make
	// room in a full queue or stack by dropping the oldest element.
	PushElem(value []byte, flags uint64) error
	// PopElem is bpf_map_pop_elem: ENOENT (and a zeroed value) when empty.
	PopElem(value []byte) error
	// PeekElem is bpf_map_peek_elem.
	PeekElem(value []byte) error
}
