package maps

import (
	"crypto/rand"
	"encoding/binary"
)

// New creates a map after validating spec as BPF_MAP_CREATE does
// (kernel/bpf/syscall.c map_create and the type's map_alloc_check and
// map_alloc): a spec Linux would refuse fails with the errno Linux gives
// (EINVAL, E2BIG, ENOTSUPP, ...) and a message saying what is wrong. Map
// types waggle cannot honour in user space fail with EOPNOTSUPP.
//
// Storage is allocated off the Go heap and preallocated as the kernel
// preallocates: every array index exists, a hash map reserves max_entries
// elements up front (pages are committed as they are first used). The map
// must be closed to release it.
func New(spec Spec) (Map, error) {
	if spec.InnerMap != nil {
		in := *spec.InnerMap
		spec.InnerMap = &in
	}
	if err := validate(&spec); err != nil {
		return nil, err
	}
	if spec.InnerMap != nil && spec.InnerMap.CPUs == 0 {
		spec.InnerMap.CPUs = spec.CPUs
	}
	switch spec.Type {
	case Array, PerCPUArray:
		return newArray(spec)
	case Hash, PerCPUHash, LRUHash, LRUPerCPUHash:
		return newHash(spec, uint64(spec.ValueSize), seed())
	case HashOfMaps:
		m, err := newHash(spec, 8, seed())
		if err != nil {
			return nil, err
		}
		m.inner = &innerRefs{}
		return m, nil
	case ProgArray, ArrayOfMaps, CgroupArray:
		return newFdArray(spec)
	case CgroupStorage, PerCPUCgroupStorage:
		return newCgroupStorage(spec)
	case PerfEventArray:
		return newPerfArray(spec)
	case LPMTrie:
		return newLPM(spec)
	case Queue, Stack:
		return newQueue(spec)
	case BloomFilter:
		return newBloom(spec, seed())
	case RingBuf:
		return newRingBuf(spec)
	case UserRingBuf:
		return newUserRingBuf(spec)
	case DevMap, CPUMap, XSKMap:
		return newSlotMap(spec)
	case DevMapHash:
		return newDevHash(spec)
	case StackTrace:
		return newStackTrace(spec)
	}
	return nil, specError(&spec, EINVAL, "unknown map type %d", uint32(spec.Type))
}

// seed is a random hash seed (the kernel's get_random_u32 for hashrnd),
// unless BPF_F_ZERO_SEED asks for 0.
func seed() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:])
}
