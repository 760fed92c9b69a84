package maps

import (
	"fmt"
)

// Type is a map type, numbered as Linux numbers them (enum bpf_map_type in
// include/uapi/linux/bpf.h).
type Type uint32

// Map types.
const (
	UnspecifiedMap      Type = 0  // BPF_MAP_TYPE_UNSPEC
	Hash                Type = 1  // BPF_MAP_TYPE_HASH
	Array               Type = 2  // BPF_MAP_TYPE_ARRAY
	ProgArray           Type = 3  // BPF_MAP_TYPE_PROG_ARRAY
	PerfEventArray      Type = 4  // BPF_MAP_TYPE_PERF_EVENT_ARRAY
	PerCPUHash          Type = 5  // BPF_MAP_TYPE_PERCPU_HASH
	PerCPUArray         Type = 6  // BPF_MAP_TYPE_PERCPU_ARRAY
	StackTrace          Type = 7  // BPF_MAP_TYPE_STACK_TRACE
	CgroupArray         Type = 8  // BPF_MAP_TYPE_CGROUP_ARRAY
	LRUHash             Type = 9  // BPF_MAP_TYPE_LRU_HASH
	LRUPerCPUHash       Type = 10 // BPF_MAP_TYPE_LRU_PERCPU_HASH
	LPMTrie             Type = 11 // BPF_MAP_TYPE_LPM_TRIE
	ArrayOfMaps         Type = 12 // BPF_MAP_TYPE_ARRAY_OF_MAPS
	HashOfMaps          Type = 13 // BPF_MAP_TYPE_HASH_OF_MAPS
	DevMap              Type = 14 // BPF_MAP_TYPE_DEVMAP
	SockMap             Type = 15 // BPF_MAP_TYPE_SOCKMAP
	CPUMap              Type = 16 // BPF_MAP_TYPE_CPUMAP
	XSKMap              Type = 17 // BPF_MAP_TYPE_XSKMAP
	SockHash            Type = 18 // BPF_MAP_TYPE_SOCKHASH
	CgroupStorage       Type = 19 // BPF_MAP_TYPE_CGROUP_STORAGE
	ReusePortSockArray  Type = 20 // BPF_MAP_TYPE_REUSEPORT_SOCKARRAY
	PerCPUCgroupStorage Type = 21 // BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE
	Queue               Type = 22 // BPF_MAP_TYPE_QUEUE
	Stack               Type = 23 // BPF_MAP_TYPE_STACK
	SkStorage           Type = 24 // BPF_MAP_TYPE_SK_STORAGE
	DevMapHash          Type = 25 // BPF_MAP_TYPE_DEVMAP_HASH
	StructOps           Type = 26 // BPF_MAP_TYPE_STRUCT_OPS
	RingBuf             Type = 27 // BPF_MAP_TYPE_RINGBUF
	InodeStorage        Type = 28 // BPF_MAP_TYPE_INODE_STORAGE
	TaskStorage         Type = 29 // BPF_MAP_TYPE_TASK_STORAGE
	BloomFilter         Type = 30 // BPF_MAP_TYPE_BLOOM_FILTER
	UserRingBuf         Type = 31 // BPF_MAP_TYPE_USER_RINGBUF
	CgrpStorage         Type = 32 // BPF_MAP_TYPE_CGRP_STORAGE
	Arena               Type = 33 // BPF_MAP_TYPE_ARENA
)

var typeNames = map[Type]string{
	Hash: "hash", Array: "array", ProgArray: "prog_array", PerfEventArray: "perf_event_array",
	PerCPUHash: "percpu_hash", PerCPUArray: "percpu_array", StackTrace: "stack_trace",
	CgroupArray: "cgroup_array", LRUHash: "lru_hash", LRUPerCPUHash: "lru_percpu_hash",
	LPMTrie: "lpm_trie", ArrayOfMaps: "array_of_maps", HashOfMaps: "hash_of_maps",
	DevMap: "devmap", SockMap: "sockmap", CPUMap: "cpumap", XSKMap: "xskmap", SockHash: "sockhash",
	CgroupStorage: "cgroup_storage", ReusePortSockArray: "reuseport_sockarray",
	PerCPUCgroupStorage: "percpu_cgroup_storage", Queue: "queue", Stack: "stack",
	SkStorage: "sk_storage", DevMapHash: "devmap_hash", StructOps: "struct_ops", RingBuf: "ringbuf",
	InodeStorage: "inode_storage", TaskStorage: "task_storage", BloomFilter: "bloom_filter",
	UserRingBuf: "user_ringbuf", CgrpStorage: "cgrp_storage", Arena: "arena",
}

// String returns the name bpftool uses.
func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("Type(%d)", uint32(t))
}

// Map flags (map_flags of BPF_MAP_CREATE).
const (
	FlagNoPrealloc  uint32 = 1 << 0  // BPF_F_NO_PREALLOC
	FlagNoCommonLRU uint32 = 1 << 1  // BPF_F_NO_COMMON_LRU
	FlagNUMANode    uint32 = 1 << 2  // BPF_F_NUMA_NODE
	FlagRdOnly      uint32 = 1 << 3  // BPF_F_RDONLY: read-only from the Go side
	FlagWrOnly      uint32 = 1 << 4  // BPF_F_WRONLY
	FlagZeroSeed    uint32 = 1 << 6  // BPF_F_ZERO_SEED
	FlagRdOnlyProg  uint32 = 1 << 7  // BPF_F_RDONLY_PROG: programs may only read (.rodata)
	FlagWrOnlyProg  uint32 = 1 << 8  // BPF_F_WRONLY_PROG
	FlagMmapable    uint32 = 1 << 10 // BPF_F_MMAPABLE
	FlagPreserve    uint32 = 1 << 11 // BPF_F_PRESERVE_ELEMS (perf event arrays)
	FlagInnerMap    uint32 = 1 << 12 // BPF_F_INNER_MAP
)

// Update flags (the flags argument of bpf_map_update_elem).
const (
	UpdateAny     uint64 = 0 // BPF_ANY: create or replace
	UpdateNoExist uint64 = 1 // BPF_NOEXIST: create only
	UpdateExist   uint64 = 2 // BPF_EXIST: replace only
	UpdateLock    uint64 = 4 // BPF_F_LOCK: take the value's bpf_spin_lock
)

// Spec describes a map to create, as BPF_MAP_CREATE's attributes do.
type Spec struct {
	Name       string
	Type       Type
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	Flags      uint32
	// InnerMap describes the maps a map-in-map holds (ArrayOfMaps,
	// HashOfMaps).
	InnerMap *Spec
	// CPUs is the number of per-CPU slots (worker slots) of per-CPU maps;
	// 0 means runtime.NumCPU(). It plays the part of the kernel's possible
	// CPUs everywhere: the per-CPU value layout, the LRU lists of
	// FlagNoCommonLRU, the CPUs a cpumap may name, the rings of a perf
	// event array reader.
	CPUs int
	// MapExtra is BPF_MAP_CREATE's map_extra: for a BloomFilter, the number
	// of hash functions in its low 4 bits (0 means 5). Other types require 0.
	MapExtra uint64
}

// String describes the map as bpftool map show does.
func (s *Spec) String() string {
	return fmt.Sprintf("%s %q key %dB value %dB max_entries %d flags %#x", s.Type, s.Name, s.KeySize, s.ValueSize, s.MaxEntries, s.Flags)
}
