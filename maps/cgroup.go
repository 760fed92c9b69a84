package maps

import "sync"

// The cgroup maps: BPF_MAP_TYPE_CGROUP_ARRAY, whose slots hold cgroups that
// programs test membership against, and BPF_MAP_TYPE_CGROUP_STORAGE and
// PERCPU_CGROUP_STORAGE (kernel/bpf/local_storage.c), whose values are the
// storage of a program attached to a cgroup.
//
// In Linux a storage comes into being when a program that uses the map is
// attached to a cgroup (bpf_cgroup_storages_alloc), keyed by the cgroup's
// id and, for 16-byte keys, the attach type; bpf_get_local_storage returns
// the storage of the attachment that runs the program. In user space
// attaching is Bind: the runtime binds a storage for every program that
// uses the map when it loads the program, and the program's runs use it.
// The Go side sees the storages as the bpf syscall shows them: Lookup and
// Update of an existing key, NextKey in the order Linux lists them (the
// latest bound first), Delete EINVAL.

// LocalStorage is the program and runtime side of a cgroup storage map
// (CgroupStorage, PerCPUCgroupStorage): the storages
// bpf_get_local_storage returns.
type LocalStorage interface {
	// Bind creates the storage of an attachment to the cgroup with id
	// cgroupID with attachType (zero-filled), or keeps the one that
	// exists: programs attached with the same key share it, as in Linux.
	// A map holds at most MaxCgroupStorages storages (ENOSPC beyond).
	Bind(cgroupID uint64, attachType uint32) error
	// Storage returns the address of cpu's copy of the storage bound for
	// the key (the whole value for the shared type), 0 if none is bound:
	// what bpf_get_local_storage returns.
	Storage(cpu int, cgroupID uint64, attachType uint32) uint64
}

// MaxCgroupStorages bounds the storages of one cgroup storage map: the
// distinct (cgroup, attach type) attachments of the programs using it.
const MaxCgroupStorages = 64

// cgroupStorageKeySize is sizeof(struct bpf_cgroup_storage_key): a u64
// cgroup id, a u32 attach type and 4 bytes of padding.
const cgroupStorageKeySize = 16

// localStorageMaxValue is BPF_LOCAL_STORAGE_MAX_VALUE_SIZE on x86-64:
// U16_MAX minus sizeof(struct bpf_local_storage_elem) (128 bytes).
const localStorageMaxValue = 65535 - 128

type cgroupStorage struct {
	base
	percpu bool
	stride uint64 // roundUp8(value_size)
	elem   uint64 // bytes per storage: stride, or stride*cpus
	mu     sync.Mutex
	keys   []cgroupStorageKey // slot i's key, in bind order
}

type cgroupStorageKey struct {
	id     uint64
	attach uint32
}

// checkCgroupStorage is cgroup_storage_map_alloc's checks.
func checkCgroupStorage(s *Spec) error {
	max := uint32(localStorageMaxValue)
	if s.Type == PerCPUCgroupStorage {
		max = min(max, pcpuMinUnitSize)
	}
	switch {
	case s.KeySize != cgroupStorageKeySize && s.KeySize != 8:
		return specError(s, EINVAL, "key size %d: want 8 (the cgroup id) or 16 (struct bpf_cgroup_storage_key)", s.KeySize)
	case s.ValueSize == 0:
		return specError(s, EINVAL, "value size is 0")
	case s.ValueSize > max:
		return specError(s, E2BIG, "value size %d above %d", s.ValueSize, max)
	}
	if err := checkFlags(s, FlagNUMANode|flagAccessMask); err != nil {
		return err
	}
	if s.MaxEntries != 0 {
		return specError(s, EINVAL, "max_entries %d: cgroup storage maps take 0 (a storage per attachment)", s.MaxEntries)
	}
	return nil
}

func newCgroupStorage(spec Spec) (*cgroupStorage, error) {
	m := &cgroupStorage{percpu: spec.Type == PerCPUCgroupStorage, stride: roundUp8(spec.ValueSize)}
	m.elem = m.stride
	if m.percpu {
		m.elem *= uint64(spec.CPUs)
	}
	if err := m.init(spec, MaxCgroupStorages*m.elem); err != nil {
		return nil, err
	}
	m.put64(hdrData, m.hdr+headerSize)
	m.put32(hdrElemSize, uint32(m.elem))
	return m, nil
}

// isolated reports whether keys carry the attach type (16-byte keys):
// attach_type_isolated.
func (m *cgroupStorage) isolated() bool { return m.spec.KeySize == cgroupStorageKeySize }

func (m *cgroupStorage) keyOf(id uint64, attach uint32) cgroupStorageKey {
	if !m.isolated() {
		attach = 0
	}
	return cgroupStorageKey{id, attach}
}

func (m *cgroupStorage) decode(key []byte) cgroupStorageKey {
	k := cgroupStorageKey{id: native.Uint64(key)}
	if m.isolated() {
		k.attach = native.Uint32(key[8:])
	}
	return k
}

func (m *cgroupStorage) encode(k cgroupStorageKey, out []byte) {
	native.PutUint64(out, k.id)
	if m.isolated() {
		native.PutUint32(out[8:], k.attach)
		clear(out[12:16])
	}
}

// find returns the slot of k, -1 if none. The caller holds mu.
func (m *cgroupStorage) find(k cgroupStorageKey) int {
	for i, have := range m.keys {
		if have == k {
			return i
		}
	}
	return -1
}

func (m *cgroupStorage) off(slot int) uint64 { return headerSize + uint64(slot)*m.elem }

// Bind creates or keeps the storage for the key.
func (m *cgroupStorage) Bind(cgroupID uint64, attachType uint32) error {
	if m.closed.Load() {
		return m.errorf(EBADF, "bind: map is closed")
	}
	k := m.keyOf(cgroupID, attachType)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.find(k) >= 0 {
		return nil
	}
	if len(m.keys) == MaxCgroupStorages {
		return m.errorf(ENOSPC, "bind: the map already holds %d storages", MaxCgroupStorages)
	}
	m.keys = append(m.keys, k)
	return nil
}

// Storage returns the address of cpu's copy of the key's storage.
func (m *cgroupStorage) Storage(cpu int, cgroupID uint64, attachType uint32) uint64 {
	if m.closed.Load() || cpu < 0 || cpu >= m.spec.CPUs {
		return 0
	}
	m.mu.Lock()
	slot := m.find(m.keyOf(cgroupID, attachType))
	m.mu.Unlock()
	if slot < 0 {
		return 0
	}
	addr := m.addr(m.off(slot))
	if m.percpu {
		addr += uint64(cpu) * m.stride
	}
	return addr
}

// Lookup is cgroup_storage_lookup_elem (and bpf_percpu_cgroup_storage_copy):
// ENOENT for a key no attachment has.
func (m *cgroupStorage) Lookup(key, value []byte) error {
	if err := m.check("lookup", key, value, m.goValueSize()); err != nil {
		return err
	}
	if err := m.checkRead("lookup"); err != nil {
		return err
	}
	m.mu.Lock()
	slot := m.find(m.decode(key))
	m.mu.Unlock()
	if slot < 0 {
		return ENOENT
	}
	o := m.off(slot)
	if m.percpu {
		copy(value, m.mapping[o:o+m.elem])
	} else {
		copy(value, m.mapping[o:o+uint64(m.spec.ValueSize)])
	}
	return nil
}

// Update is cgroup_storage_update_elem and bpf_percpu_cgroup_storage_update:
// only an existing storage can be written (ENOENT), with BPF_ANY or
// BPF_EXIST (EINVAL otherwise).
func (m *cgroupStorage) Update(key, value []byte, flags uint64) error {
	if err := m.check("update", key, value, m.goValueSize()); err != nil {
		return err
	}
	if err := m.checkWrite("update"); err != nil {
		return err
	}
	if flags&UpdateLock != 0 {
		return m.errorf(EINVAL, "update: BPF_F_LOCK on a map without bpf_spin_lock")
	}
	if flags != UpdateAny && flags != UpdateExist {
		return m.errorf(EINVAL, "update: flags %#x: cgroup storage takes BPF_ANY or BPF_EXIST", flags)
	}
	m.mu.Lock()
	slot := m.find(m.decode(key))
	m.mu.Unlock()
	if slot < 0 {
		return ENOENT
	}
	o := m.off(slot)
	copy(m.mapping[o:o+uint64(len(value))], value)
	return nil
}

// Delete is cgroup_storage_delete_elem: storages go away with their
// attachment, never on request.
func (m *cgroupStorage) Delete(key []byte) error {
	if err := m.check("delete", key, nil, 0); err != nil {
		return err
	}
	return m.errorf(EINVAL, "delete: a cgroup storage lives as long as its attachment")
}

// NextKey is cgroup_storage_get_next_key: the storages in the order of the
// map's list, where each new attachment goes first; a key that is not
// present ends the walk (ENOENT), unlike other maps.
func (m *cgroupStorage) NextKey(key, next []byte) error {
	if err := m.checkNext(key, next); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.keys)
	if n == 0 {
		return ENOENT
	}
	at := n - 1 // the list's first entry: the latest bound
	if key != nil {
		i := m.find(m.decode(key))
		if i <= 0 {
			return ENOENT
		}
		at = i - 1
	}
	m.encode(m.keys[at], next)
	return nil
}

// LookupAndDelete is not supported by cgroup storage.
func (m *cgroupStorage) LookupAndDelete(key, value []byte) error {
	return m.unsupported("lookup and delete", ENOTSUPP)
}

// Regions lists the storages' values (every slot, bound or not: slots are
// bound once and never freed).
func (m *cgroupStorage) Regions() []Region {
	return []Region{{
		Data:     m.mapping[headerSize : headerSize+MaxCgroupStorages*m.elem],
		Writable: m.spec.Flags&FlagRdOnlyProg == 0,
		Stride:   m.stride, Len: uint64(m.spec.ValueSize),
	}}
}

// Close unmaps the map.
func (m *cgroupStorage) Close() error { return m.free() }

// CgroupSlots is the program and runtime side of a BPF_MAP_TYPE_CGROUP_ARRAY.
// In Linux its slots hold cgroups opened by file descriptor; in user space
// they hold whatever value the caller uses for a cgroup (package progtype's
// *Cgroup for its helpers). Go-side Update with a descriptor fails with
// EOPNOTSUPP and Lookup with ENOTSUPP, as in Linux, where cgroup arrays have
// no lookup; Delete and NextKey work as in Linux.
type CgroupSlots interface {
	// SetCgroup stores cg at index (E2BIG past max_entries); nil clears.
	SetCgroup(index uint32, cg any) error
	// Cgroup returns the cgroup at index, for bpf_skb_under_cgroup and
	// bpf_current_task_under_cgroup.
	Cgroup(index uint32) (any, bool)
}

// SetCgroup stores cg at index (cgroup arrays).
func (m *fdArray) SetCgroup(index uint32, cg any) error {
	if m.spec.Type != CgroupArray {
		return m.unsupported("set cgroup", EINVAL)
	}
	if m.closed.Load() {
		return m.errorf(EBADF, "set cgroup: map is closed")
	}
	if uint64(index) >= m.max {
		return m.errorf(E2BIG, "set cgroup: index %d past max_entries %d", index, m.max)
	}
	word := uint64(0)
	if cg != nil {
		word = 1
	}
	m.set(uint64(index), cg, word)
	return nil
}

// Cgroup returns the cgroup at index.
func (m *fdArray) Cgroup(index uint32) (any, bool) {
	if m.spec.Type != CgroupArray {
		return nil, false
	}
	return m.get(uint64(index))
}
