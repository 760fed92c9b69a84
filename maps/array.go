package maps

// Arrays (BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY), after
// kernel/bpf/arraymap.c. Every index exists from creation, zeroed; values
// sit at stride roundUp8(value_size), and a per-CPU array keeps one block
// of max_entries values per CPU, as the kernel keeps each CPU's copy in
// that CPU's own per-CPU area:
//
//	data ─► ┌─────────────┬─────────────┬─────┬─────────────┐
//	 array  │ value 0     │ value 1     │ ... │ value max-1 │   stride each
//	        └─────────────┴─────────────┴─────┴─────────────┘
//	data ─► ┌───────┬───────┬─────┬───────────┬───────┬───────┬─────┐
//	 percpu │ 0/cpu0│ 1/cpu0│ ... │ max-1/cpu0│ 0/cpu1│ 1/cpu1│ ... │
//	        └───────┴───────┴─────┴───────────┴───────┴───────┴─────┘
//
// so an inlined lookup is data + index*stride (+ cpu*max*stride for
// per-CPU: the header's value stride, hdrValueStride, is a CPU's block).
// Two CPUs that update the same index (a per-rule counter) write
// max_entries*stride bytes apart, in different cache lines unless the
// array is tiny, rather than next to each other in one.

import "github.com/waggle-bpf/waggle/internal/mem"

// populateLimit is the largest array whose storage is backed at creation
// (mem.Populate); larger ones get pages as they are first written, as
// every other map's storage does.
const populateLimit = 64 << 20

type arrayMap struct {
	base
	percpu bool
	stride uint64 // roundUp8(value_size)
	elem   uint64 // bytes per index of one CPU: stride
	cpuOff uint64 // bytes per CPU's block: max*stride (per-CPU arrays)
	max    uint64
}

func newArray(spec Spec) (*arrayMap, error) {
	m := &arrayMap{percpu: spec.Type == PerCPUArray, stride: roundUp8(spec.ValueSize), max: uint64(spec.MaxEntries)}
	m.elem = m.stride
	m.cpuOff = m.max * m.stride
	size := m.cpuOff
	if m.percpu {
		size *= uint64(spec.CPUs)
	}
	if err := m.init(spec, size); err != nil {
		return nil, err
	}
	if size <= populateLimit {
		// Every value is readable from the start, as a kernel array's
		// vmalloc'd memory is: give it real pages now (mem.Populate).
		mem.Populate(m.mapping)
	}
	m.put64(hdrData, m.hdr+headerSize)
	m.put32(hdrElemSize, uint32(m.elem))
	if m.percpu {
		m.put32(hdrValueStride, uint32(m.cpuOff))
	}
	return m, nil
}

// off returns the mapping offset of index i's value (CPU 0's for per-CPU).
func (m *arrayMap) off(i uint64) uint64 { return headerSize + i*m.elem }

// offCPU returns the mapping offset of CPU cpu's copy of index i's value.
func (m *arrayMap) offCPU(i uint64, cpu int) uint64 { return m.off(i) + uint64(cpu)*m.cpuOff }

func (m *arrayMap) index(key []byte) uint64 { return uint64(native.Uint32(key)) }

// Lookup is bpf_map_copy_value for arrays (array_map_lookup_elem,
// bpf_percpu_array_copy).
func (m *arrayMap) Lookup(key, value []byte) error {
	if err := m.check("lookup", key, value, m.goValueSize()); err != nil {
		return err
	}
	if err := m.checkRead("lookup"); err != nil {
		return err
	}
	i := m.index(key)
	if i >= m.max {
		return ENOENT
	}
	o := m.off(i)
	if m.percpu {
		for cpu := range m.spec.CPUs {
			o := m.offCPU(i, cpu)
			copy(value[uint64(cpu)*m.stride:], m.mapping[o:o+m.stride])
		}
		return nil
	}
	copy(value, m.mapping[o:o+uint64(m.spec.ValueSize)])
	return nil
}

// Update is array_map_update_elem and bpf_percpu_array_update: every index
// exists, so UpdateNoExist fails with EEXIST and an index past the end
// with E2BIG. A per-CPU update copies each CPU's whole padded slot, as the
// kernel copies round_up(value_size, 8) bytes per CPU.
func (m *arrayMap) Update(key, value []byte, flags uint64) error {
	if err := m.check("update", key, value, m.goValueSize()); err != nil {
		return err
	}
	if err := m.checkWrite("update"); err != nil {
		return err
	}
	if flags&UpdateLock != 0 {
		return m.errorf(EINVAL, "update: BPF_F_LOCK on a map without bpf_spin_lock")
	}
	if flags > UpdateExist {
		return m.errorf(EINVAL, "update: unknown flags %#x", flags)
	}
	i := m.index(key)
	if i >= m.max {
		return E2BIG
	}
	if flags == UpdateNoExist {
		return EEXIST
	}
	o := m.off(i)
	if m.percpu {
		for cpu := range m.spec.CPUs {
			o := m.offCPU(i, cpu)
			copy(m.mapping[o:o+m.stride], value[uint64(cpu)*m.stride:])
		}
		return nil
	}
	copy(m.mapping[o:], value)
	return nil
}

// Delete fails with EINVAL: array elements cannot be deleted.
func (m *arrayMap) Delete(key []byte) error {
	if err := m.check("delete", key, nil, 0); err != nil {
		return err
	}
	if err := m.checkWrite("delete"); err != nil {
		return err
	}
	return m.errorf(EINVAL, "delete: array elements cannot be deleted")
}

// NextKey is array_map_get_next_key: the index after key; an index out of
// range (or nil) gives 0.
func (m *arrayMap) NextKey(key, next []byte) error {
	if err := m.checkNext(key, next); err != nil {
		return err
	}
	if err := m.checkRead("next key"); err != nil {
		return err
	}
	return arrayNextKey(key, next, m.max)
}

// arrayNextKey is the get_next_key of every array-like map.
func arrayNextKey(key, next []byte, max uint64) error {
	i := uint64(1<<32 - 1)
	if key != nil {
		i = uint64(native.Uint32(key))
	}
	if i >= max {
		native.PutUint32(next, 0)
		return nil
	}
	if i == max-1 {
		return ENOENT
	}
	native.PutUint32(next, uint32(i+1))
	return nil
}

// LookupAndDelete is not supported for arrays (ENOTSUPP, as
// map_lookup_and_delete_elem answers).
func (m *arrayMap) LookupAndDelete(key, value []byte) error {
	return m.unsupported("lookup and delete", ENOTSUPP)
}

// LookupElem returns the address of index key's value (cpu's copy for a
// per-CPU array), 0 past the end.
func (m *arrayMap) LookupElem(cpu int, key []byte) uint64 {
	if len(key) != 4 || m.closed.Load() {
		return 0
	}
	i := m.index(key)
	if i >= m.max {
		return 0
	}
	if m.percpu {
		if uint(cpu) >= uint(m.spec.CPUs) {
			return 0
		}
		return m.hdr + m.offCPU(i, cpu)
	}
	return m.hdr + m.off(i)
}

// UpdateElem is array_map_update_elem from a program: a per-CPU array
// updates cpu's copy only.
func (m *arrayMap) UpdateElem(cpu int, key, value []byte, flags uint64) error {
	if m.spec.Flags&FlagRdOnlyProg != 0 {
		return EPERM
	}
	if len(key) != 4 || len(value) != int(m.spec.ValueSize) {
		return EINVAL
	}
	if m.closed.Load() {
		return EBADF
	}
	if flags&^UpdateLock > UpdateExist {
		return EINVAL
	}
	i := m.index(key)
	if i >= m.max {
		return E2BIG
	}
	if flags&UpdateNoExist != 0 {
		return EEXIST
	}
	if flags&UpdateLock != 0 {
		return EINVAL
	}
	o := m.off(i)
	if m.percpu {
		if uint(cpu) >= uint(m.spec.CPUs) {
			return EINVAL
		}
		o = m.offCPU(i, cpu)
	}
	copy(m.mapping[o:], value)
	return nil
}

// DeleteElem fails with EINVAL, as array_map_delete_elem does.
func (m *arrayMap) DeleteElem(cpu int, key []byte) error { return EINVAL }

// Regions is the value array: program memory is each value's first
// value_size bytes.
func (m *arrayMap) Regions() []Region {
	return []Region{{
		Data:     m.mapping[headerSize : m.off(0)+m.size()],
		Writable: m.spec.Flags&FlagRdOnlyProg == 0,
		Stride:   m.stride, Len: uint64(m.spec.ValueSize),
	}}
}

// size returns the bytes of the values: one block, or one per CPU.
func (m *arrayMap) size() uint64 {
	if m.percpu {
		return m.cpuOff * uint64(m.spec.CPUs)
	}
	return m.cpuOff
}

// Close unmaps the array.
func (m *arrayMap) Close() error { return m.free() }
