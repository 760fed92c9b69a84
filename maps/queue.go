package maps

import "sync"

// Queues and stacks (BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK), after
// kernel/bpf/queue_stack_maps.c: a ring of max_entries+1 slots under the
// map's lock. Push with UpdateExist on a full map overwrites the oldest
// element, for stacks too (the kernel advances the tail either way).
//
//	data ─► max_entries+1 slots of value_stride bytes
//
// The lock and the head and tail indices are Go memory (header.go says
// why): the mapping holds only values, so nothing written into it can
// point a push or pop outside the ring.
//
// Type-specific header words: +80 size u32 = max_entries + 1.
const hdrQSize = hdrTypeState + 8

type queueMap struct {
	base
	stack  bool
	size   uint32
	stride uint64
	vsize  uint64

	mu         sync.Mutex
	head, tail uint32 // next slot to write, oldest element (under mu)
}

func newQueue(spec Spec) (*queueMap, error) {
	m := &queueMap{stack: spec.Type == Stack, size: spec.MaxEntries + 1, stride: roundUp8(spec.ValueSize), vsize: uint64(spec.ValueSize)}
	if err := m.init(spec, uint64(m.size)*m.stride); err != nil {
		return nil, err
	}
	m.put64(hdrData, m.addr(headerSize))
	m.put32(hdrQSize, m.size)
	return m, nil
}

func (m *queueMap) slot(i uint32) []byte {
	o := headerSize + uint64(i)*m.stride
	return m.mapping[o : o+m.vsize]
}

// PushElem is queue_stack_map_push_elem: E2BIG when full, unless flags is
// UpdateExist, which drops the oldest element to make room.
func (m *queueMap) PushElem(value []byte, flags uint64) error {
	if uint64(len(value)) != m.vsize {
		return EINVAL
	}
	if m.closed.Load() {
		return EBADF
	}
	if flags&UpdateNoExist != 0 || flags > UpdateExist {
		return EINVAL
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h, t := m.head, m.tail
	if next := (h + 1) % m.size; next == t {
		if flags&UpdateExist == 0 {
			return E2BIG
		}
		m.tail = (t + 1) % m.size
	}
	copy(m.slot(h), value)
	m.head = (h + 1) % m.size
	return nil
}

// get is __queue_map_get and __stack_map_get: the oldest (queue) or newest
// (stack) element, removed with del. Empty: ENOENT and a zeroed value.
func (m *queueMap) get(value []byte, del bool) error {
	if uint64(len(value)) != m.vsize {
		return EINVAL
	}
	if m.closed.Load() {
		return EBADF
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h, t := m.head, m.tail
	if h == t {
		clear(value)
		return ENOENT
	}
	if !m.stack {
		copy(value, m.slot(t))
		if del {
			m.tail = (t + 1) % m.size
		}
		return nil
	}
	i := h - 1
	if h == 0 {
		i = m.size - 1
	}
	copy(value, m.slot(i))
	if del {
		m.head = i
	}
	return nil
}

// PopElem is bpf_map_pop_elem.
func (m *queueMap) PopElem(value []byte) error { return m.get(value, true) }

// PeekElem is bpf_map_peek_elem.
func (m *queueMap) PeekElem(value []byte) error { return m.get(value, false) }

// Lookup with no key peeks, as BPF_MAP_LOOKUP_ELEM does for queues and
// stacks.
func (m *queueMap) Lookup(key, value []byte) error {
	if err := m.check("lookup", key, value, int(m.vsize)); err != nil {
		return err
	}
	if err := m.checkRead("lookup"); err != nil {
		return err
	}
	return m.get(value, false)
}

// Update with no key pushes, as BPF_MAP_UPDATE_ELEM does.
func (m *queueMap) Update(key, value []byte, flags uint64) error {
	if err := m.check("update", key, value, int(m.vsize)); err != nil {
		return err
	}
	if err := m.checkWrite("update"); err != nil {
		return err
	}
	if flags&UpdateLock != 0 {
		return m.errorf(EINVAL, "update: BPF_F_LOCK on a map without bpf_spin_lock")
	}
	if err := m.PushElem(value, flags); err == EINVAL {
		return m.errorf(EINVAL, "push: flags %#x: only BPF_ANY and BPF_EXIST", flags)
	} else {
		return err
	}
}

// Delete is EINVAL (queue_stack_map_delete_elem).
func (m *queueMap) Delete(key []byte) error {
	if err := m.check("delete", key, nil, 0); err != nil {
		return err
	}
	if err := m.checkWrite("delete"); err != nil {
		return err
	}
	return m.errorf(EINVAL, "delete: %s maps have no keys: use LookupAndDelete to pop", m.spec.Type)
}

// NextKey is EINVAL (queue_stack_map_get_next_key).
func (m *queueMap) NextKey(key, next []byte) error {
	if m.closed.Load() {
		return m.errorf(EBADF, "next key: map is closed")
	}
	return m.errorf(EINVAL, "next key: %s maps have no keys", m.spec.Type)
}

// LookupAndDelete with no key pops.
func (m *queueMap) LookupAndDelete(key, value []byte) error {
	if err := m.check("lookup and delete", key, value, int(m.vsize)); err != nil {
		return err
	}
	if err := m.checkRead("lookup and delete"); err != nil {
		return err
	}
	if err := m.checkWrite("lookup and delete"); err != nil {
		return err
	}
	return m.get(value, true)
}

// Regions: programs get no pointers into queues.
func (m *queueMap) Regions() []Region { return nil }

// Close unmaps the queue.
func (m *queueMap) Close() error { return m.free() }
