// Package maps owns eBPF maps in user space: every map type waggle runs,
// with Linux's semantics (update flags, errno results, max_entries,
// preallocation, value alignment), storage off the Go heap so native code
// can hold pointers into it, and safety for programs on many goroutines at
// once alongside Go-side access.
//
// A Map has two faces. The Go side (Lookup, Update, Delete, NextKey,
// LookupAndDelete, and the batch operations and iterators of batch.go)
// copies keys and values in and out, as the bpf syscall does. The program
// side (Elems, Values and the interfaces of kinds.go, which helpers call)
// works on raw key bytes and hands out the addresses of values in place,
// as the kernel's helpers do, for the CPU (worker slot) the program runs
// on.
//
// # Types
//
// New creates, with the semantics of the kernel file named:
//
//	Array, PerCPUArray                 kernel/bpf/arraymap.c
//	Hash, PerCPUHash, HashOfMaps       kernel/bpf/hashtab.c
//	LRUHash, LRUPerCPUHash             kernel/bpf/hashtab.c, exact LRU (lru.go)
//	LPMTrie                            kernel/bpf/lpm_trie.c
//	ProgArray, ArrayOfMaps             kernel/bpf/arraymap.c (fd arrays)
//	CgroupArray (CgroupSlots)          kernel/bpf/arraymap.c (fd arrays of cgroups)
//	CgroupStorage, PerCPUCgroupStorage kernel/bpf/local_storage.c (LocalStorage:
//	                                   a storage per Bind, as per attachment)
//	PerfEventArray + PerfReader        kernel/trace/bpf_trace.c, kernel/events/ring_buffer.c
//	RingBuf + RingBufReader            kernel/bpf/ringbuf.c
//	UserRingBuf + UserRingBufWriter    kernel/bpf/ringbuf.c, libbpf's user_ring_buffer
//	Queue, Stack                       kernel/bpf/queue_stack_maps.c
//	BloomFilter                        kernel/bpf/bloom_filter.c
//	DevMap, DevMapHash                 kernel/bpf/devmap.c
//	CPUMap                             kernel/bpf/cpumap.c
//	XSKMap                             net/xdp/xskmap.c
//	StackTrace                         kernel/bpf/stackmap.c (always empty)
//
// and refuses with EOPNOTSUPP the types that need kernel objects a process
// does not have: sockmap, sockhash, reuseport arrays, socket, inode, task
// and cgroup-local (BPF_MAP_TYPE_CGRP_STORAGE) storage, struct_ops and
// arenas.
//
// # Memory
//
// Each map is one off-heap mapping (internal/mem.Alloc) headed by the
// 256-byte header Handle points to (header.go draws it). Storage is
// reserved at creation as the kernel preallocates it (max_entries hash
// elements, every array index) and committed by the OS as it is first
// touched. Values are 8-byte aligned; per-CPU values sit at stride
// roundUp8(ValueSize). A 1,000,000-entry hash map of 8-byte keys and
// values maps 35 MiB (BenchmarkMemory). What only updates touch (locks,
// counts, free lists, LRU lists, positions) is kept in Go memory instead
// (see "Corrupted maps"); MemoryUsage counts both.
//
// # Concurrency
//
// Lookups take no lock: hash chains are the kernel's hlist_nulls lists,
// walked with atomic loads; tries are read under a sequence counter.
// Updates take locks in Go memory (per bucket, in up to 1024 stripes, for
// hashes; per list for LRU maps; per map for tries, queues and ring
// buffers). Values are written in place, so a
// reader concurrent with a writer may see a torn value, as in Linux; hash
// updates swap in a new element, so hash lookups see whole values.
//
// What a value pointer shows after a concurrent delete is what it shows in
// Linux, where a program's run is an RCU read-side section (grace.go has
// the details). Hash and LRU hash elements are reused right away, as the
// kernel's are (preallocated or BPF_F_NO_PREALLOC alike): the pointer may
// come to show another key's value. LPM trie nodes wait out a grace
// period, as the kernel's do: a pointer looked up inside a Section (each
// run has one) shows its prefix's value until the section ends. Close must
// not race with other calls, and no program may run against a closed map.
//
// # Where waggle differs from Linux
//
//   - LRU eviction is exact (lru.go lists the observable differences).
//   - LPM tries reserve 2·max_entries+1 nodes of address space up front,
//     and max(max_entries, 64) more for freed nodes waiting out their grace
//     period (max_entries above 715,827,881 fail with ENOMEM); Linux
//     allocates nodes on demand. A section that lasts while updates free
//     more nodes than that sees the oldest reused early (Go-side updates
//     first wait up to a second for it to end); Linux would allocate more.
//   - devmap slots are rewritten in place and devmap hash elements reused
//     right away; Linux frees entries after a grace period (call_rcu), so
//     a program reading a devmap value it looked up may see a concurrent
//     update here.
//   - Values have no BTF, so no bpf_spin_lock: BPF_F_LOCK is EINVAL.
//   - Programs, maps, perf events, sockets and devices are Go values or
//     plain numbers, not file descriptors: Go-side updates of fd-holding
//     maps with descriptors fail with EOPNOTSUPP (use SetProgram, SetInner,
//     NewPerfReader); devmap and cpumap entries with programs are refused;
//     ifindexes are not checked against host devices.
//   - Spec.CPUs plays the part of the possible CPUs everywhere.
//   - Map names may be longer than 15 characters (loaders truncate for the
//     kernel); their characters are checked as the kernel checks them.
//
// # Corrupted maps
//
// Programs get pointers into a map's mapping, and a program (or native
// code) that writes past a value reaches the map's internals: links,
// record headers, slots, the header. Checked engines refuse such writes;
// the maps do not rely on it. Whatever bytes the mapping holds, every
// operation returns, with no panic, no hang, no access outside the mapping
// and no lock left held:
//
//   - What only updates touch is not in the mapping but in Go memory:
//     locks, element counts, free lists, LRU lists and touched stacks, a
//     trie's entry count and free queue, queue and stack indices. A write
//     over the mapping cannot stall a lock, make a map lose capacity
//     through a count, or hand out one element for two keys through a
//     free list. The exceptions, header words because native code uses
//     them, are checked where they are read: a trie's root (a link) and
//     sequence counter (odd sends lookups to the lock); a ring buffer's
//     positions (the producer at most the ring ahead of the others) and
//     producers' lock (a word that holds one value while held: another
//     is reset at once, a held one after a second).
//   - What lookups read from the mapping is checked before use. Hash chain
//     links: an index below the elements, an element hashed into the
//     bucket, a chain no longer than the table that ends in its own
//     bucket's terminator, and (to delete or replace) an element that holds
//     a key. Trie nodes: an index below the node slots, a prefix length
//     within the key's bits and longer than the parent's, under the lock a
//     node in use. Ring buffer and perf records: a header whose record ends
//     before the producer position. Redirect map slots: what an update
//     stores. Map-in-map values: a map stored.
//   - Every walk is bounded by the map's size. A lock-free lookup that
//     keeps meeting a chain or trie it cannot finish walks it again under
//     the lock, which settles whether it is corrupt. NextKey checks the
//     chain or path it reads whole, and that the key it returns leads back
//     to its element, so that a loop over NextKey ends; Iterate, the batch
//     operations and WalkElems (bpf_for_each_map_elem) end.
//
// What a corrupted map answers: an operation that meets corruption on its
// path fails with ErrCorrupt (EUCLEAN; -117 to programs), wrapped with the
// map and what was wrong, and leaves what it found as it was; a program's
// lookup gets NULL, a redirect finds no entry. Corruption off the path is
// not noticed: other buckets and prefixes go on working. A hash map or
// trie answers "full" (E2BIG, ENOSPC) only after checking that every
// counted element is reachable (on the first such answer, then once every
// max_entries), so elements cut off a chain show as ErrCorrupt, not as
// lost capacity. A ring buffer or perf ring with a record header written
// over gives up the records from there to the producer, with ErrCorrupt
// once, and works on. Bytes no structure depends on are what they were
// written to: a key written over is another key (NextKey reports it), a
// value is that value, an LRU tick misorders eviction, bloom filter bits
// answer wrongly.
//
// # Verification
//
// The kernel differential tests (kernel_linux_test.go, root only) create
// every comparable type both here and in Linux through cilium/ebpf and run
// the same random operations against both, requiring the same results and
// errnos step by step and the same contents at the end; thousands of random
// specs must get the kernel's errno from New. The FuzzCorrupt fuzzers
// (corrupt_test.go) write over every type's whole mapping between
// operations from Go and from programs.
package maps
