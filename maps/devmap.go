package maps

import (
	"fmt"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// XDP redirect maps: BPF_MAP_TYPE_DEVMAP and DEVMAP_HASH
// (kernel/bpf/devmap.c), CPUMAP (kernel/bpf/cpumap.c) and XSKMAP
// (net/xdp/xskmap.c). They store what Linux stores, for bpf_redirect_map
// (RedirectTarget):
//
//	devmap, devmap_hash   struct bpf_devmap_val { u32 ifindex; u32 prog id }
//	cpumap                struct bpf_cpumap_val { u32 qsize;   u32 prog id }
//	xskmap                the socket (a 4-byte value)
//
// An array-like map's data is one u64 per key, value word low, program
// word high, 0 when empty; DEVMAP_HASH is a hash table (hash.go) keyed by
// the ifindex slot with the kernel's identity hash, so it iterates in the
// kernel's order.
//
//	data ─► ┌────────────────────┬────────────────────┬─────┐
//	        │ value u32 | prog u32 (slot 0)  │ slot 1 │ ... │
//	        └────────────────────┴────────────────────┴─────┘
//
// What differs from Linux, since there are no devices, sockets or program
// descriptors in user space:
//   - An entry naming a program (the second word > 0) fails with
//     EOPNOTSUPP: waggle would not run the program on redirected packets.
//   - Interface indexes are not checked against the host's devices (Linux
//     answers EINVAL for an unknown ifindex); the hook that carries out the
//     redirect decides what an index means.
//   - An xskmap stores its 4-byte value as an opaque socket identifier for
//     the hook, where Linux requires an AF_XDP socket descriptor.
//   - A cpumap accepts CPUs below Spec.CPUs (worker slots); Linux accepts
//     possible CPUs (ENODEV otherwise).
//
// The slots are in the mapping, where programs read them (read only; a
// write over them can still come from elsewhere). A slot holding what no
// update stores (a program word, a cpumap queue size past the limit or on
// a CPU past Spec.CPUs) is treated as corrupt: Lookup fails with
// ErrCorrupt, and programs and redirects see no entry.
type slotMap struct {
	base
	max uint64
}

func newSlotMap(spec Spec) (*slotMap, error) {
	m := &slotMap{max: uint64(spec.MaxEntries)}
	if err := m.init(spec, m.max*8); err != nil {
		return nil, err
	}
	m.put64(hdrData, m.addr(headerSize))
	m.put32(hdrElemSize, 8)
	return m, nil
}

func (m *slotMap) slotAddr(i uint64) uint64 { return m.hdr + headerSize + i*8 }

func (m *slotMap) load(i uint64) uint64 { return mem.AtomicLoad64(m.slotAddr(i)) }

// entry returns slot i's word, 0 for an empty slot, with ErrCorrupt for a
// word no update stores.
func (m *slotMap) entry(i uint64) (uint64, error) {
	w := m.load(i)
	if w == 0 {
		return 0, nil
	}
	if prog := uint32(w >> 32); prog != 0 {
		return 0, m.corrupt("slot %d holds program %d; waggle stores none", i, prog)
	}
	if m.spec.Type == CPUMap && (uint32(w) > cpumapMaxQsize || i >= uint64(m.spec.CPUs)) {
		return 0, m.corrupt("slot %d holds queue size %d (at most %d, CPUs below %d)", i, uint32(w), cpumapMaxQsize, m.spec.CPUs)
	}
	return w, nil
}

// Lookup copies the stored value (value and program words); xskmaps refuse
// (xsk_map_lookup_elem_sys_only).
func (m *slotMap) Lookup(key, value []byte) error {
	if err := m.check("lookup", key, value, int(m.spec.ValueSize)); err != nil {
		return err
	}
	if err := m.checkRead("lookup"); err != nil {
		return err
	}
	if m.spec.Type == XSKMap {
		return m.errorf(EOPNOTSUPP, "lookup: xskmap entries cannot be read from user space")
	}
	i := uint64(native.Uint32(key))
	if i >= m.max {
		return ENOENT
	}
	w, err := m.entry(i)
	if err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	if w == 0 {
		return ENOENT
	}
	native.PutUint32(value, uint32(w))
	if len(value) == 8 {
		native.PutUint32(value[4:], uint32(w>>32))
	}
	return nil
}

// Update is dev_map_update_elem, cpu_map_update_elem or
// xsk_map_update_elem.
func (m *slotMap) Update(key, value []byte, flags uint64) error {
	if err := m.check("update", key, value, int(m.spec.ValueSize)); err != nil {
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
	i := uint64(native.Uint32(key))
	if i >= m.max {
		return E2BIG
	}
	v := native.Uint32(value)
	var prog int32
	if len(value) == 8 {
		prog = int32(native.Uint32(value[4:]))
	}
	switch m.spec.Type {
	case DevMap:
		if flags == UpdateNoExist {
			return EEXIST
		}
		if v == 0 {
			if prog > 0 {
				return m.errorf(EINVAL, "update: a program without an interface")
			}
			mem.AtomicStore64(m.slotAddr(i), 0)
			return nil
		}
	case CPUMap:
		if flags == UpdateNoExist {
			return EEXIST
		}
		if v > cpumapMaxQsize {
			return m.errorf(EOVERFLOW, "update: queue size %d above %d", v, cpumapMaxQsize)
		}
		if i >= uint64(m.spec.CPUs) {
			return m.errorf(ENODEV, "update: CPU %d: waggle runs %d worker slots", i, m.spec.CPUs)
		}
		if v == 0 {
			mem.AtomicStore64(m.slotAddr(i), 0)
			return nil
		}
	case XSKMap:
		old := m.load(i) != 0
		if old && flags == UpdateNoExist {
			return EEXIST
		}
		if !old && flags == UpdateExist {
			return ENOENT
		}
		if v == 0 {
			return m.errorf(EINVAL, "update: socket 0")
		}
	}
	if prog > 0 {
		return m.errorf(EOPNOTSUPP, "update: %s entries with programs are not supported in user space", m.spec.Type)
	}
	mem.AtomicStore64(m.slotAddr(i), uint64(v))
	return nil
}

// Delete clears a slot; it succeeds on empty slots, and an index past the
// end is EINVAL (dev_map_delete_elem, cpu_map_delete_elem,
// xsk_map_delete_elem).
func (m *slotMap) Delete(key []byte) error {
	if err := m.check("delete", key, nil, 0); err != nil {
		return err
	}
	if err := m.checkWrite("delete"); err != nil {
		return err
	}
	i := uint64(native.Uint32(key))
	if i >= m.max {
		return m.errorf(EINVAL, "delete: key %d past max_entries %d", i, m.max)
	}
	mem.AtomicStore64(m.slotAddr(i), 0)
	return nil
}

// NextKey is the array order of dev_map_get_next_key.
func (m *slotMap) NextKey(key, next []byte) error {
	if err := m.checkNext(key, next); err != nil {
		return err
	}
	return arrayNextKey(key, next, m.max)
}

// LookupAndDelete is ENOTSUPP.
func (m *slotMap) LookupAndDelete(key, value []byte) error {
	return m.unsupported("lookup and delete", ENOTSUPP)
}

// LookupElem returns the address of the stored value, 0 for an empty slot
// (__dev_map_lookup_elem, __cpu_map_lookup_elem, __xsk_map_lookup_elem).
func (m *slotMap) LookupElem(cpu int, key []byte) uint64 {
	if len(key) != 4 || m.closed.Load() {
		return 0
	}
	i := uint64(native.Uint32(key))
	if i >= m.max {
		return 0
	}
	if w, err := m.entry(i); w == 0 || err != nil {
		return 0
	}
	return m.slotAddr(i)
}

// UpdateElem and DeleteElem are refused: programs may only look up and
// redirect through these maps.
func (m *slotMap) UpdateElem(cpu int, key, value []byte, flags uint64) error { return EOPNOTSUPP }

// DeleteElem is refused (see UpdateElem).
func (m *slotMap) DeleteElem(cpu int, key []byte) error { return EOPNOTSUPP }

// RedirectTarget returns the entry at key.
func (m *slotMap) RedirectTarget(key uint64) (Redirect, bool) {
	if key >= m.max || m.closed.Load() {
		return Redirect{}, false
	}
	w, err := m.entry(key)
	if w == 0 || err != nil {
		return Redirect{}, false
	}
	return Redirect{Key: uint32(key), Value: uint32(w), Prog: uint32(w >> 32)}, true
}

// RedirectTargets calls fn for each entry in key order.
func (m *slotMap) RedirectTargets(fn func(Redirect) bool) {
	for i := uint64(0); i < m.max && !m.closed.Load(); i++ {
		if r, ok := m.RedirectTarget(i); ok && !fn(r) {
			return
		}
	}
}

// Regions: programs read the stored values.
func (m *slotMap) Regions() []Region {
	return []Region{{Data: m.mapping[headerSize : headerSize+m.max*8], Stride: 8, Len: uint64(m.spec.ValueSize)}}
}

// Close unmaps the map.
func (m *slotMap) Close() error { return m.free() }

// devHash is BPF_MAP_TYPE_DEVMAP_HASH: a hash table of 8-byte values keyed
// by a u32 whose hash is the key itself (dev_map_index_hash).
type devHash struct{ *hashMap }

func newDevHash(spec Spec) (*devHash, error) {
	h, err := newHash(spec, 8, 0)
	if err != nil {
		return nil, err
	}
	h.identity = true
	return &devHash{h}, nil
}

// Update is __dev_map_hash_update_elem: ifindex 0 is EINVAL, UpdateExist
// on a missing key inserts (Linux does not check it), E2BIG when full.
func (m *devHash) Update(key, value []byte, flags uint64) error {
	if err := m.check("update", key, value, int(m.spec.ValueSize)); err != nil {
		return err
	}
	if err := m.checkWrite("update"); err != nil {
		return err
	}
	if flags&UpdateLock != 0 {
		return m.errorf(EINVAL, "update: BPF_F_LOCK on a map without bpf_spin_lock")
	}
	v := native.Uint32(value)
	if flags > UpdateExist || v == 0 {
		return m.errorf(EINVAL, "update: flags %#x, ifindex %d", flags, v)
	}
	if len(value) == 8 && int32(native.Uint32(value[4:])) > 0 {
		return m.errorf(EOPNOTSUPP, "update: devmap entries with programs are not supported in user space")
	}
	if flags == UpdateExist {
		flags = UpdateAny
	}
	var w [8]byte
	native.PutUint32(w[:], v)
	return m.update(key, w[:], flags, -1)
}

// Lookup copies the stored value.
func (m *devHash) Lookup(key, value []byte) error {
	if err := m.check("lookup", key, value, int(m.spec.ValueSize)); err != nil {
		return err
	}
	if err := m.checkRead("lookup"); err != nil {
		return err
	}
	i, ok, err := m.find(key, m.hashOf(key))
	if err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	if !ok {
		return ENOENT
	}
	w := mem.AtomicLoad64(m.hdr + m.valueOff(i))
	if err := m.checkEntry(i, w); err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	copy(value, m.mapping[m.valueOff(i):])
	return nil
}

// checkEntry checks the value word w of element i: an ifindex and no
// program, as Update stores.
func (m *devHash) checkEntry(i uint32, w uint64) error {
	if uint32(w) == 0 || w>>32 != 0 {
		return m.corrupt("element %d holds ifindex %d and program %d; updates store an ifindex and no program", i, uint32(w), w>>32)
	}
	return nil
}

// UpdateElem and DeleteElem are refused for programs.
func (m *devHash) UpdateElem(cpu int, key, value []byte, flags uint64) error { return EOPNOTSUPP }

// DeleteElem is refused (see UpdateElem).
func (m *devHash) DeleteElem(cpu int, key []byte) error { return EOPNOTSUPP }

// RedirectTarget returns the entry under key.
func (m *devHash) RedirectTarget(key uint64) (Redirect, bool) {
	if key > 0xffffffff || m.closed.Load() {
		return Redirect{}, false
	}
	var k [4]byte
	native.PutUint32(k[:], uint32(key))
	i, ok, err := m.find(k[:], uint32(key))
	if !ok || err != nil {
		return Redirect{}, false
	}
	w := mem.AtomicLoad64(m.hdr + m.valueOff(i))
	if m.checkEntry(i, w) != nil {
		return Redirect{}, false
	}
	return Redirect{Key: uint32(key), Value: uint32(w), Prog: uint32(w >> 32)}, true
}

// RedirectTargets calls fn for each entry in hash order. A walk that
// restarts because keys are deleted under it stops after as many steps as
// the table has elements.
func (m *devHash) RedirectTargets(fn func(Redirect) bool) {
	var k [4]byte
	steps := uint32(0)
	for err := m.NextKey(nil, k[:]); err == nil && steps <= m.total; err = m.NextKey(k[:], k[:]) {
		steps++
		if r, ok := m.RedirectTarget(uint64(native.Uint32(k[:]))); ok && !fn(r) {
			return
		}
	}
}

// LookupAndDelete is ENOTSUPP: only hash maps proper have it.
func (m *devHash) LookupAndDelete(key, value []byte) error {
	return m.unsupported("lookup and delete", ENOTSUPP)
}
