package maps

// Map is a map in user space. Every implementation is safe for concurrent
// use by any number of programs and Go callers at once.
//
// Keys and values are byte slices of exactly Spec().KeySize and ValueSize
// bytes (wrong sizes fail with EINVAL). On the Go side a per-CPU map's value
// holds every CPU's copy, each padded to a multiple of 8 bytes, as the bpf
// syscall lays them out: len = roundUp8(ValueSize) * CPUs.
type Map interface {
	// Spec returns the map's description.
	Spec() Spec

	// Lookup copies the value for key into value. ErrKeyNotExist if absent.
	Lookup(key, value []byte) error
	// Update sets the value for key with UpdateAny, UpdateNoExist or
	// UpdateExist (or-ed with UpdateLock where the value has a spin lock).
	Update(key, value []byte, flags uint64) error
	// Delete removes key. ErrKeyNotExist if absent; EINVAL for arrays.
	Delete(key []byte) error
	// NextKey writes the key after key into next; with key nil, the first
	// key. ErrKeyNotExist after the last. Like the kernel, a key that is
	// not present restarts from the first key.
	NextKey(key, next []byte) error

	// Handle is the address programs hold for this map: what a lddw with a
	// map reference loads, and what map helpers receive in r1. It points to
	// off-heap memory that stays valid until Close.
	Handle() uint64
	// Regions lists the memory a program may reach through pointers this
	// map hands out (values, ring buffer data), for the checked engines.
	Regions() []Region

	// Close releases the map's memory. Using it afterwards fails with
	// EBADF; pointers programs obtained from it become invalid.
	Close() error
}

// Region is memory a program may access through a map.
type Region struct {
	Data     []byte
	Writable bool
}

// Elems is the program side of maps whose values programs look up and
// update in place: arrays, hashes (plain, per-CPU, LRU), LPM tries,
// map-in-maps. cpu is the worker slot the program runs on (bpf_get_smp_
// processor_id); non-per-CPU maps ignore it.
type Elems interface {
	// LookupElem returns the address of the value for key, 0 if absent
	// (bpf_map_lookup_elem). For a map-in-map it returns the inner map's
	// Handle.
	LookupElem(cpu int, key []byte) uint64
	// UpdateElem is bpf_map_update_elem.
	UpdateElem(cpu int, key, value []byte, flags uint64) error
	// DeleteElem is bpf_map_delete_elem.
	DeleteElem(cpu int, key []byte) error
}

// Values is the program side of maps without keys: queue, stack and
// bloom filter (bpf_map_push_elem, bpf_map_pop_elem, bpf_map_peek_elem).
// For a bloom filter, Push adds a value and Peek tests membership
// (ENOENT when certainly absent).
type Values interface {
	PushElem(value []byte, flags uint64) error
	PopElem(value []byte) error
	PeekElem(value []byte) error
}
