package maps

// Stack trace maps (BPF_MAP_TYPE_STACK_TRACE, kernel/bpf/stackmap.c) hold
// the stacks bpf_get_stackid collects. A user-space program has no kernel
// or user stack to walk, so the helper fails (as the kernel's does when it
// cannot unwind) and the map stays empty; it exists so that programs using
// it load and run. The mapping holds only the header.
type stackTraceMap struct {
	base
	nb uint64 // roundup_pow_of_two(max_entries): the stack ids
}

func newStackTrace(spec Spec) (*stackTraceMap, error) {
	m := &stackTraceMap{nb: roundUpPow2(uint64(spec.MaxEntries))}
	if err := m.init(spec, 0); err != nil {
		return nil, err
	}
	return m, nil
}

// Lookup is ENOENT: no stack was ever recorded (bpf_stackmap_copy).
func (m *stackTraceMap) Lookup(key, value []byte) error {
	if err := m.check("lookup", key, value, int(m.spec.ValueSize)); err != nil {
		return err
	}
	return ENOENT
}

// Update is EINVAL (stack_map_update_elem).
func (m *stackTraceMap) Update(key, value []byte, flags uint64) error {
	if err := m.check("update", key, value, int(m.spec.ValueSize)); err != nil {
		return err
	}
	if flags&UpdateLock != 0 {
		return m.errorf(EINVAL, "update: BPF_F_LOCK on a map without bpf_spin_lock")
	}
	return m.errorf(EINVAL, "update: stack traces are only recorded by bpf_get_stackid")
}

// Delete is E2BIG past the stack ids, ENOENT otherwise (stack_map_delete_elem).
func (m *stackTraceMap) Delete(key []byte) error {
	if err := m.check("delete", key, nil, 0); err != nil {
		return err
	}
	if uint64(native.Uint32(key)) >= m.nb {
		return E2BIG
	}
	return ENOENT
}

// NextKey is ENOENT: the map is empty.
func (m *stackTraceMap) NextKey(key, next []byte) error {
	if err := m.checkNext(key, next); err != nil {
		return err
	}
	return ENOENT
}

// LookupAndDelete is ENOTSUPP.
func (m *stackTraceMap) LookupAndDelete(key, value []byte) error {
	return m.unsupported("lookup and delete", ENOTSUPP)
}

// LookupElem is 0: programs cannot look stacks up (stack_map_lookup_elem).
func (m *stackTraceMap) LookupElem(cpu int, key []byte) uint64 { return 0 }

// UpdateElem is EINVAL.
func (m *stackTraceMap) UpdateElem(cpu int, key, value []byte, flags uint64) error { return EINVAL }

// DeleteElem is as Delete.
func (m *stackTraceMap) DeleteElem(cpu int, key []byte) error {
	if len(key) != 4 {
		return EINVAL
	}
	if uint64(native.Uint32(key)) >= m.nb {
		return E2BIG
	}
	return ENOENT
}

// Regions: none.
func (m *stackTraceMap) Regions() []Region { return nil }

// Close unmaps the header.
func (m *stackTraceMap) Close() error { return m.free() }
