package maps

import (
	"sync"
	"sync/atomic"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// Arrays whose values are objects rather than bytes: BPF_MAP_TYPE_PROG_ARRAY
// and BPF_MAP_TYPE_ARRAY_OF_MAPS (kernel/bpf/arraymap.c, fd_array_map_*).
// The off-heap data is one u64 per index, for native code: a program's
// descriptor (or 1) for prog arrays, the inner map's Handle for arrays of
// maps, 0 when empty. The Go objects sit beside it in Go memory.
//
//	data ─► ┌──────────┬──────────┬─────┬──────────────┐
//	        │ slot 0   │ slot 1   │ ... │ slot max-1   │   u64 each (atomic)
//	        └──────────┴──────────┴─────┴──────────────┘

type fdArray struct {
	base
	max   uint64
	objs  []atomic.Pointer[fdObj]
	setMu sync.Mutex // orders Go-side stores of a slot with its off-heap twin
}

type fdObj struct{ v any }

func newFdArray(spec Spec) (*fdArray, error) {
	m := &fdArray{max: uint64(spec.MaxEntries)}
	if err := m.init(spec, m.max*8); err != nil {
		return nil, err
	}
	m.objs = make([]atomic.Pointer[fdObj], m.max)
	m.put64(hdrData, m.addr(headerSize))
	m.put32(hdrElemSize, 8)
	return m, nil
}

func (m *fdArray) slotAddr(i uint64) uint64 { return m.hdr + headerSize + i*8 }

// set stores obj (nil clears) with its native word and reports whether the
// slot held something.
func (m *fdArray) set(i uint64, obj any, word uint64) bool {
	m.setMu.Lock()
	defer m.setMu.Unlock()
	var o *fdObj
	if obj != nil {
		o = &fdObj{obj}
	}
	mem.AtomicStore64(m.slotAddr(i), word)
	return m.objs[i].Swap(o) != nil
}

func (m *fdArray) get(i uint64) (any, bool) {
	if i >= m.max || m.closed.Load() {
		return nil, false
	}
	o := m.objs[i].Load()
	if o == nil {
		return nil, false
	}
	return o.v, true
}

// Lookup is bpf_fd_array_map_lookup_elem: Linux returns the id of the
// program or map; waggle does for objects with an ID() uint32 method and
// fails with EOPNOTSUPP otherwise.
func (m *fdArray) Lookup(key, value []byte) error {
	if err := m.check("lookup", key, value, 4); err != nil {
		return err
	}
	if err := m.checkRead("lookup"); err != nil {
		return err
	}
	if m.spec.Type == CgroupArray {
		return m.errorf(ENOTSUPP, "lookup: cgroup arrays have no lookup")
	}
	obj, ok := m.get(uint64(native.Uint32(key)))
	if !ok {
		return ENOENT
	}
	if ider, ok := obj.(interface{ ID() uint32 }); ok {
		native.PutUint32(value, ider.ID())
		return nil
	}
	return m.errorf(EOPNOTSUPP, "lookup: no id in user space: use %s", m.getter())
}

func (m *fdArray) getter() string {
	switch m.spec.Type {
	case ProgArray:
		return "Program"
	case CgroupArray:
		return "Cgroup"
	}
	return "Inner"
}

func (m *fdArray) setter() string {
	switch m.spec.Type {
	case ProgArray:
		return "SetProgram"
	case CgroupArray:
		return "SetCgroup"
	}
	return "SetInner"
}

// Update is bpf_fd_array_map_update_elem's checks; the value, a file
// descriptor, has no meaning in user space: EOPNOTSUPP.
func (m *fdArray) Update(key, value []byte, flags uint64) error {
	if err := m.check("update", key, value, 4); err != nil {
		return err
	}
	if err := m.checkWrite("update"); err != nil {
		return err
	}
	if flags&UpdateLock != 0 {
		return m.errorf(EINVAL, "update: BPF_F_LOCK on a map without bpf_spin_lock")
	}
	if flags != UpdateAny {
		return m.errorf(EINVAL, "update: %s takes only BPF_ANY", m.spec.Type)
	}
	if uint64(native.Uint32(key)) >= m.max {
		return E2BIG
	}
	return m.errorf(EOPNOTSUPP, "update: values are objects, not file descriptors: use %s", m.setter())
}

// Delete is fd_array_map_delete_elem: E2BIG past the end, ENOENT if empty.
func (m *fdArray) Delete(key []byte) error {
	if err := m.check("delete", key, nil, 0); err != nil {
		return err
	}
	if err := m.checkWrite("delete"); err != nil {
		return err
	}
	i := uint64(native.Uint32(key))
	if i >= m.max {
		return E2BIG
	}
	if !m.set(i, nil, 0) {
		return ENOENT
	}
	return nil
}

// NextKey is array_map_get_next_key.
func (m *fdArray) NextKey(key, next []byte) error {
	if err := m.checkNext(key, next); err != nil {
		return err
	}
	return arrayNextKey(key, next, m.max)
}

// LookupAndDelete is ENOTSUPP for arrays.
func (m *fdArray) LookupAndDelete(key, value []byte) error {
	return m.unsupported("lookup and delete", ENOTSUPP)
}

// LookupElem returns an array of maps' inner handle at key, 0 if empty; 0
// for prog arrays, whose lookups the verifier refuses. The handle comes
// from the map stored, not from the off-heap slot (which is for native
// code, and which a stray write could have changed).
func (m *fdArray) LookupElem(cpu int, key []byte) uint64 {
	if m.spec.Type != ArrayOfMaps || len(key) != 4 {
		return 0
	}
	obj, _ := m.get(uint64(native.Uint32(key)))
	if in, ok := obj.(Map); ok {
		return in.Handle()
	}
	return 0
}

// UpdateElem is refused: programs cannot update fd arrays.
func (m *fdArray) UpdateElem(cpu int, key, value []byte, flags uint64) error { return EOPNOTSUPP }

// DeleteElem deletes an array of maps' slot; prog arrays refuse.
func (m *fdArray) DeleteElem(cpu int, key []byte) error {
	if m.spec.Type != ArrayOfMaps {
		return EOPNOTSUPP
	}
	if len(key) != 4 {
		return EINVAL
	}
	i := uint64(native.Uint32(key))
	if i >= m.max {
		return E2BIG
	}
	if !m.set(i, nil, 0) {
		return ENOENT
	}
	return nil
}

// SetProgram stores prog at index (prog arrays).
func (m *fdArray) SetProgram(index uint32, prog any) error {
	if m.spec.Type != ProgArray {
		return m.unsupported("set program", EINVAL)
	}
	if m.closed.Load() {
		return m.errorf(EBADF, "set program: map is closed")
	}
	if uint64(index) >= m.max {
		return m.errorf(E2BIG, "set program: index %d past max_entries %d", index, m.max)
	}
	word := uint64(0)
	if prog != nil {
		word = 1
		if h, ok := prog.(interface{ Handle() uint64 }); ok {
			word = h.Handle()
		}
	}
	m.set(uint64(index), prog, word)
	return nil
}

// Program returns the program at index.
func (m *fdArray) Program(index uint32) (any, bool) {
	if m.spec.Type != ProgArray {
		return nil, false
	}
	return m.get(uint64(index))
}

// SetInner stores inner at key (arrays of maps).
func (m *fdArray) SetInner(key []byte, inner Map) error {
	if m.spec.Type != ArrayOfMaps {
		return m.unsupported("set inner", EINVAL)
	}
	if err := m.check("set inner", key, nil, 0); err != nil {
		return err
	}
	if err := m.checkWrite("set inner"); err != nil {
		return err
	}
	i := uint64(native.Uint32(key))
	if i >= m.max {
		return E2BIG
	}
	if err := checkInnerMatch(&m.base, inner); err != nil {
		return err
	}
	m.set(i, inner, inner.Handle())
	return nil
}

// Inner returns the map at key.
func (m *fdArray) Inner(key []byte) (Map, bool) {
	if m.spec.Type != ArrayOfMaps || len(key) != 4 {
		return nil, false
	}
	obj, ok := m.get(uint64(native.Uint32(key)))
	if !ok {
		return nil, false
	}
	in, ok := obj.(Map)
	return in, ok
}

// Regions: programs get no pointers into fd arrays.
func (m *fdArray) Regions() []Region { return nil }

// Close drops the stored objects and unmaps the array.
func (m *fdArray) Close() error {
	if err := m.free(); err != nil {
		return err
	}
	for i := range m.objs {
		m.objs[i].Store(nil)
	}
	return nil
}

// checkInnerMatch is bpf_map_meta_equal (kernel/bpf/map_in_map.c) with
// array_map_meta_equal's and xsk_map_meta_equal's max_entries rule: the map
// to store must look like the outer map's InnerMap spec.
func checkInnerMatch(outer *base, inner Map) error {
	if inner == nil {
		return outer.errorf(EBADF, "set inner: nil map")
	}
	if ib, ok := inner.(interface{ isClosed() bool }); ok && ib.isClosed() {
		return outer.errorf(EBADF, "set inner: inner map is closed")
	}
	want, got := outer.spec.InnerMap, inner.Spec()
	if want == nil {
		return outer.errorf(EINVAL, "set inner: map has no inner map spec")
	}
	if got.Type == ArrayOfMaps || got.Type == HashOfMaps {
		return outer.errorf(EINVAL, "set inner: %s cannot be an inner map", got.Type)
	}
	mismatch := got.Type != want.Type || got.KeySize != want.KeySize ||
		got.ValueSize != want.ValueSize || got.Flags != want.Flags
	if (want.Type == Array && want.Flags&FlagInnerMap == 0) || want.Type == XSKMap {
		mismatch = mismatch || got.MaxEntries != want.MaxEntries
	}
	switch want.Type {
	case PerCPUArray, PerCPUHash, LRUPerCPUHash:
		mismatch = mismatch || got.CPUs != outer.spec.CPUs
	}
	if mismatch {
		return outer.errorf(EINVAL, "set inner: %s does not match the inner map spec %s", got.String(), want.String())
	}
	return nil
}

func (b *base) isClosed() bool { return b.closed.Load() }
