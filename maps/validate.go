package maps

import (
	"fmt"
	"math"
	"math/bits"
	"runtime"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// Limits BPF_MAP_CREATE applies, as Linux defines them on x86-64 with 4 KiB
// pages.
const (
	kmallocMaxSize   = 4 << 20  // KMALLOC_MAX_SIZE: 1 << (PAGE_SHIFT + MAX_PAGE_ORDER)
	htabElemOverhead = 48       // sizeof(struct htab_elem) (kernel/bpf/hashtab.c)
	pcpuMinUnitSize  = 32 << 10 // PCPU_MIN_UNIT_SIZE: bound of a per-CPU value
	lpmDataSizeMin   = 1        // LPM_DATA_SIZE_MIN (kernel/bpf/lpm_trie.c)
	lpmDataSizeMax   = 256      // LPM_DATA_SIZE_MAX
	lpmNodeOverhead  = 40       // sizeof(struct lpm_trie_node)
	cpumapMaxQsize   = 16384    // cpu_map_update_elem's sanity limit on qsize
	ringbufMaxRecord = math.MaxUint32 / 4

	// MaxCPUs bounds Spec.CPUs. It stands for the kernel's NR_CPUS, which
	// also bounds a cpumap's max_entries (Debian builds Linux with 8192).
	MaxCPUs = 8192
)

// Flag groups of kernel/bpf/*.c's *_CREATE_FLAG_MASK definitions.
const (
	flagAccessMask = FlagRdOnly | FlagWrOnly | FlagRdOnlyProg | FlagWrOnlyProg // BPF_F_ACCESS_MASK
	htabFlagMask   = FlagNoPrealloc | FlagNoCommonLRU | FlagNUMANode | flagAccessMask | FlagZeroSeed
	arrayFlagMask  = FlagNUMANode | FlagMmapable | flagAccessMask | FlagPreserve | FlagInnerMap
	lpmFlagMask    = FlagNoPrealloc | FlagNUMANode | flagAccessMask
	queueFlagMask  = FlagNUMANode | flagAccessMask
	bloomFlagMask  = FlagNUMANode | FlagZeroSeed | flagAccessMask
	devFlagMask    = FlagNUMANode | FlagRdOnly | FlagWrOnly
	xskFlagMask    = FlagNUMANode | FlagRdOnly | FlagWrOnly
	stackFlagMask  = FlagNUMANode | FlagRdOnly | FlagWrOnly | flagStackBuildID
	ringFlagMask   = FlagNUMANode

	flagStackBuildID = 1 << 5 // BPF_F_STACK_BUILD_ID
)

// refused lists the map types Linux has and waggle cannot honour in user
// space: they need sockets, cgroups, inodes, tasks, kernel structs or
// arena page tables that a user-space process does not have. New fails for
// them with EOPNOTSUPP, never with a stand-in that would behave differently.
var refused = map[Type]string{
	SockMap:            "it holds sockets and redirects between them in the kernel",
	SockHash:           "it holds sockets and redirects between them in the kernel",
	ReusePortSockArray: "it holds SO_REUSEPORT sockets",
	SkStorage:          "its storage lives in sockets",
	StructOps:          "it implements kernel structs",
	InodeStorage:       "its storage lives in inodes",
	TaskStorage:        "its storage lives in tasks",
	CgrpStorage:        "its storage lives in cgroups",
	Arena:              "it maps pages shared with the kernel's arena allocator",
}

func pageSize() int { return mem.PageSize() }

func roundUp8(n uint32) uint64 { return (uint64(n) + 7) &^ 7 }

func isPow2(n uint64) bool { return n != 0 && n&(n-1) == 0 }

// roundUpPow2 rounds n (≥ 1) up to a power of two.
func roundUpPow2(n uint64) uint64 {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len64(n-1)
}

// specError formats a creation error the way every New error reads:
// the map, what is wrong, the errno.
func specError(s *Spec, errno Errno, format string, args ...any) error {
	return fmt.Errorf("create %s %q: %s: %w", s.Type, s.Name, fmt.Sprintf(format, args...), errno)
}

// validName reports whether name uses only the characters bpf_obj_name_cpy
// (kernel/bpf/syscall.c) accepts. Length is not limited: the 16-byte
// field is an ABI detail, loaders truncate names before the syscall.
func validName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// validate checks s as BPF_MAP_CREATE does (kernel/bpf/syscall.c map_create,
// then the type's map_alloc_check and map_alloc), in the kernel's order so
// the errno is the kernel's when several things are wrong. It resolves
// s.CPUs and applies the adjustments the kernel makes (max_entries rounding
// for FlagNoCommonLRU).
func validate(s *Spec) error {
	if s.CPUs == 0 {
		s.CPUs = runtime.NumCPU()
	}
	if s.CPUs < 0 || s.CPUs > MaxCPUs {
		return specError(s, EINVAL, "CPUs %d out of range [1, %d]", s.CPUs, MaxCPUs)
	}
	if s.Type != BloomFilter && s.Type != Arena && s.MapExtra != 0 {
		return specError(s, EINVAL, "map_extra %#x is only for bloom filters", s.MapExtra)
	}
	if s.Flags&FlagRdOnly != 0 && s.Flags&FlagWrOnly != 0 {
		return specError(s, EINVAL, "flags BPF_F_RDONLY and BPF_F_WRONLY together")
	}
	if why, ok := refused[s.Type]; ok {
		return specError(s, EOPNOTSUPP, "map type %s is not supported in user space: %s", s.Type, why)
	}
	check := checkFor(s.Type)
	if check == nil {
		return specError(s, EINVAL, "unknown map type %d", uint32(s.Type))
	}
	if err := check(s); err != nil {
		return err
	}
	if s.InnerMap != nil && s.Type != ArrayOfMaps && s.Type != HashOfMaps {
		return specError(s, EINVAL, "only map-in-maps have an inner map")
	}
	if !validName(s.Name) {
		return specError(s, EINVAL, "name %q: only letters, digits, '_' and '.' are allowed", s.Name)
	}
	return nil
}

func accessOK(flags uint32) bool {
	return flags&(FlagRdOnlyProg|FlagWrOnlyProg) != FlagRdOnlyProg|FlagWrOnlyProg
}

func checkFlags(s *Spec, mask uint32) error {
	if s.Flags&^mask != 0 {
		return specError(s, EINVAL, "flags %#x not allowed (allowed: %#x)", s.Flags&^mask, mask)
	}
	if !accessOK(s.Flags) {
		return specError(s, EINVAL, "flags BPF_F_RDONLY_PROG and BPF_F_WRONLY_PROG together")
	}
	return nil
}

// checkFor returns the creation checks of a type waggle implements, nil
// for types it does not know.
func checkFor(t Type) func(*Spec) error {
	switch t {
	case Array, PerCPUArray:
		return checkArray
	case ProgArray, PerfEventArray, CgroupArray:
		return checkFdArray
	case CgroupStorage, PerCPUCgroupStorage:
		return checkCgroupStorage
	case ArrayOfMaps:
		return checkArrayOfMaps
	case Hash, PerCPUHash, LRUHash, LRUPerCPUHash:
		return checkHash
	case HashOfMaps:
		return checkHashOfMaps
	case LPMTrie:
		return checkLPM
	case Queue, Stack:
		return checkQueue
	case BloomFilter:
		return checkBloom
	case RingBuf, UserRingBuf:
		return checkRingBuf
	case DevMap, DevMapHash:
		return checkDevMap
	case CPUMap:
		return checkCPUMap
	case XSKMap:
		return checkXSKMap
	case StackTrace:
		return checkStackTrace
	}
	return nil
}

// checkArray is array_map_alloc_check (kernel/bpf/arraymap.c).
func checkArray(s *Spec) error {
	percpu := s.Type == PerCPUArray
	switch {
	case s.MaxEntries == 0:
		return specError(s, EINVAL, "max_entries is 0")
	case s.KeySize != 4:
		return specError(s, EINVAL, "key size %d, arrays take 4-byte keys", s.KeySize)
	case s.ValueSize == 0:
		return specError(s, EINVAL, "value size is 0")
	}
	if err := checkFlags(s, arrayFlagMask); err != nil {
		return err
	}
	if percpu && s.Flags&FlagNUMANode != 0 {
		return specError(s, EINVAL, "per-CPU maps cannot be bound to a NUMA node")
	}
	if s.Type != Array && s.Flags&(FlagMmapable|FlagInnerMap) != 0 {
		return specError(s, EINVAL, "BPF_F_MMAPABLE and BPF_F_INNER_MAP are for plain arrays")
	}
	if s.Type != PerfEventArray && s.Flags&FlagPreserve != 0 {
		return specError(s, EINVAL, "BPF_F_PRESERVE_ELEMS is for perf event arrays")
	}
	if s.ValueSize > math.MaxInt32 {
		return specError(s, E2BIG, "value size %d above INT_MAX", s.ValueSize)
	}
	if percpu && roundUp8(s.ValueSize) > pcpuMinUnitSize {
		return specError(s, E2BIG, "per-CPU value size %d above %d", s.ValueSize, pcpuMinUnitSize)
	}
	// array_map_alloc rounds max_entries up to a power of two for the
	// Spectre index mask and fails if that overflows.
	if s.MaxEntries > 1<<31 {
		return specError(s, E2BIG, "max_entries %d: index mask overflows", s.MaxEntries)
	}
	return nil
}

// checkFdArray is fd_array_map_alloc_check: arrays of file descriptors
// (programs, perf events, maps) have 4-byte values.
func checkFdArray(s *Spec) error {
	if s.ValueSize != 4 {
		return specError(s, EINVAL, "value size %d, %s values are 4-byte descriptors", s.ValueSize, s.Type)
	}
	if s.Flags&(FlagRdOnlyProg|FlagWrOnlyProg) != 0 {
		return specError(s, EINVAL, "BPF_F_RDONLY_PROG and BPF_F_WRONLY_PROG are not for %s", s.Type)
	}
	return checkArray(s)
}

func checkArrayOfMaps(s *Spec) error {
	if err := checkFdArray(s); err != nil {
		return err
	}
	return checkInner(s)
}

// checkInner is bpf_map_meta_alloc (kernel/bpf/map_in_map.c): the inner
// map must be a valid map of a type that may be inner, and not itself a
// map-in-map.
func checkInner(s *Spec) error {
	if s.InnerMap == nil {
		return specError(s, EBADF, "a map-in-map needs an inner map spec")
	}
	in := *s.InnerMap
	if in.Type == ArrayOfMaps || in.Type == HashOfMaps {
		return specError(s, EINVAL, "inner map is a %s: only one level of map-in-map", in.Type)
	}
	if in.Type == ProgArray {
		return specError(s, ENOTSUPP, "a prog_array cannot be an inner map")
	}
	if in.CPUs == 0 {
		in.CPUs = s.CPUs
	}
	if err := validate(&in); err != nil {
		return fmt.Errorf("create %s %q: inner map: %w", s.Type, s.Name, err)
	}
	return nil
}

// checkHash is htab_map_alloc_check and htab_map_alloc's checks
// (kernel/bpf/hashtab.c).
func checkHash(s *Spec) error {
	percpu := s.Type == PerCPUHash || s.Type == LRUPerCPUHash
	lru := s.Type == LRUHash || s.Type == LRUPerCPUHash
	percpuLRU := s.Flags&FlagNoCommonLRU != 0
	prealloc := s.Flags&FlagNoPrealloc == 0
	if err := checkFlags(s, htabFlagMask); err != nil {
		return err
	}
	switch {
	case !lru && percpuLRU:
		return specError(s, EINVAL, "BPF_F_NO_COMMON_LRU is for LRU maps")
	case lru && !prealloc:
		return specError(s, ENOTSUPP, "LRU maps are always preallocated: BPF_F_NO_PREALLOC not supported")
	case s.Flags&FlagNUMANode != 0 && (percpu || percpuLRU):
		return specError(s, EINVAL, "per-CPU maps cannot be bound to a NUMA node")
	case s.MaxEntries == 0:
		return specError(s, EINVAL, "max_entries is 0")
	case s.KeySize == 0:
		return specError(s, EINVAL, "key size is 0")
	case s.ValueSize == 0:
		return specError(s, EINVAL, "value size is 0")
	case uint64(s.KeySize)+uint64(s.ValueSize) >= kmallocMaxSize-htabElemOverhead:
		return specError(s, E2BIG, "key and value of %d bytes above the kernel's element limit", uint64(s.KeySize)+uint64(s.ValueSize))
	case percpu && roundUp8(s.ValueSize) > pcpuMinUnitSize:
		return specError(s, E2BIG, "per-CPU value size %d above %d", s.ValueSize, pcpuMinUnitSize)
	}
	if percpuLRU {
		// htab_map_alloc: each CPU's LRU list gets the same number of
		// elements, at least one.
		n := uint64(s.CPUs)
		m := (uint64(s.MaxEntries) + n - 1) / n * n
		if m > math.MaxUint32 {
			m = uint64(s.MaxEntries) / n * n
		}
		s.MaxEntries = uint32(m)
	}
	if s.MaxEntries > 1<<31 {
		return specError(s, E2BIG, "max_entries %d above 2^31", s.MaxEntries)
	}
	return nil
}

func checkHashOfMaps(s *Spec) error {
	if s.ValueSize != 4 {
		return specError(s, EINVAL, "value size %d, map-in-map values are 4-byte descriptors", s.ValueSize)
	}
	if err := checkHash(s); err != nil {
		return err
	}
	return checkInner(s)
}

// checkLPM is trie_alloc (kernel/bpf/lpm_trie.c).
func checkLPM(s *Spec) error {
	switch {
	case s.MaxEntries == 0:
		return specError(s, EINVAL, "max_entries is 0")
	case s.Flags&FlagNoPrealloc == 0:
		return specError(s, EINVAL, "LPM tries require BPF_F_NO_PREALLOC")
	}
	if err := checkFlags(s, lpmFlagMask); err != nil {
		return err
	}
	switch {
	case s.KeySize < 4+lpmDataSizeMin || s.KeySize > 4+lpmDataSizeMax:
		return specError(s, EINVAL, "key size %d: want 4 bytes of prefix length and %d to %d bytes of data", s.KeySize, lpmDataSizeMin, lpmDataSizeMax)
	case s.ValueSize < 1 || s.ValueSize > kmallocMaxSize-lpmDataSizeMax-lpmNodeOverhead:
		return specError(s, EINVAL, "value size %d out of range", s.ValueSize)
	}
	return nil
}

// checkQueue is queue_stack_map_alloc_check (kernel/bpf/queue_stack_maps.c).
func checkQueue(s *Spec) error {
	switch {
	case s.MaxEntries == 0:
		return specError(s, EINVAL, "max_entries is 0")
	case s.KeySize != 0:
		return specError(s, EINVAL, "key size %d, %s maps have no key", s.KeySize, s.Type)
	case s.ValueSize == 0:
		return specError(s, EINVAL, "value size is 0")
	}
	if err := checkFlags(s, queueFlagMask); err != nil {
		return err
	}
	if s.ValueSize > kmallocMaxSize {
		return specError(s, E2BIG, "value size %d above %d", s.ValueSize, kmallocMaxSize)
	}
	if s.MaxEntries >= math.MaxUint32/s.ValueSize {
		return specError(s, E2BIG, "max_entries %d of %d-byte values overflows", s.MaxEntries, s.ValueSize)
	}
	return nil
}

// checkBloom is bloom_map_alloc_check and bloom_map_alloc
// (kernel/bpf/bloom_filter.c).
func checkBloom(s *Spec) error {
	if s.ValueSize > kmallocMaxSize {
		return specError(s, E2BIG, "value size %d above %d", s.ValueSize, kmallocMaxSize)
	}
	switch {
	case s.KeySize != 0:
		return specError(s, EINVAL, "key size %d, bloom filters have no key", s.KeySize)
	case s.ValueSize == 0:
		return specError(s, EINVAL, "value size is 0")
	case s.MaxEntries == 0:
		return specError(s, EINVAL, "max_entries is 0")
	case s.MapExtra&^0xf != 0:
		return specError(s, EINVAL, "map_extra %#x: only the low 4 bits (number of hash functions) are defined", s.MapExtra)
	}
	return checkFlags(s, bloomFlagMask)
}

// checkRingBuf is ringbuf_map_alloc (kernel/bpf/ringbuf.c), for both
// kinds of ring.
func checkRingBuf(s *Spec) error {
	if s.Flags&^ringFlagMask != 0 {
		return specError(s, EINVAL, "flags %#x not allowed", s.Flags&^ringFlagMask)
	}
	if s.KeySize != 0 || s.ValueSize != 0 {
		return specError(s, EINVAL, "key size %d and value size %d, ring buffers have neither", s.KeySize, s.ValueSize)
	}
	if !isPow2(uint64(s.MaxEntries)) || uint64(s.MaxEntries)%uint64(pageSize()) != 0 {
		return specError(s, EINVAL, "max_entries %d must be a power of two and a multiple of the page size %d", s.MaxEntries, pageSize())
	}
	return nil
}

// checkDevMap is dev_map_alloc_check (kernel/bpf/devmap.c).
func checkDevMap(s *Spec) error {
	if s.MaxEntries == 0 || s.KeySize != 4 || (s.ValueSize != 4 && s.ValueSize != 8) {
		return specError(s, EINVAL, "want max_entries > 0, a 4-byte key and a 4- or 8-byte value (ifindex, program)")
	}
	if s.Flags&^devFlagMask != 0 {
		return specError(s, EINVAL, "flags %#x not allowed", s.Flags&^devFlagMask)
	}
	if s.Type == DevMapHash && s.MaxEntries > 1<<31 {
		return specError(s, EINVAL, "max_entries %d above 2^31", s.MaxEntries)
	}
	return nil
}

// checkCPUMap is cpu_map_alloc (kernel/bpf/cpumap.c).
func checkCPUMap(s *Spec) error {
	if s.MaxEntries == 0 || s.KeySize != 4 || (s.ValueSize != 4 && s.ValueSize != 8) || s.Flags&^FlagNUMANode != 0 {
		return specError(s, EINVAL, "want max_entries > 0, a 4-byte key, a 4- or 8-byte value (qsize, program) and no flags but BPF_F_NUMA_NODE")
	}
	if s.MaxEntries > MaxCPUs {
		return specError(s, E2BIG, "max_entries %d above NR_CPUS (%d)", s.MaxEntries, MaxCPUs)
	}
	return nil
}

// checkXSKMap is xsk_map_alloc (net/xdp/xskmap.c).
func checkXSKMap(s *Spec) error {
	if s.MaxEntries == 0 || s.KeySize != 4 || s.ValueSize != 4 || s.Flags&^xskFlagMask != 0 {
		return specError(s, EINVAL, "want max_entries > 0, a 4-byte key, a 4-byte value (socket) and flags within %#x", xskFlagMask)
	}
	return nil
}

// checkStackTrace is stack_map_alloc (kernel/bpf/stackmap.c), with the
// default kernel.perf_event_max_stack of 127 frames.
func checkStackTrace(s *Spec) error {
	const maxStack = 127
	if s.Flags&^stackFlagMask != 0 {
		return specError(s, EINVAL, "flags %#x not allowed", s.Flags&^stackFlagMask)
	}
	if s.MaxEntries == 0 || s.KeySize != 4 || s.ValueSize < 8 || s.ValueSize%8 != 0 {
		return specError(s, EINVAL, "want max_entries > 0, a 4-byte key and a value of whole 8-byte frames")
	}
	frame := uint32(8)
	if s.Flags&flagStackBuildID != 0 {
		frame = 32 // sizeof(struct bpf_stack_build_id)
	}
	if s.ValueSize%frame != 0 || s.ValueSize/frame > maxStack {
		return specError(s, EINVAL, "value size %d: want whole %d-byte frames, at most %d", s.ValueSize, frame, maxStack)
	}
	if s.MaxEntries > 1<<31 {
		return specError(s, E2BIG, "max_entries %d above 2^31", s.MaxEntries)
	}
	return nil
}
