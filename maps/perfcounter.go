package maps

// Perf counters in perf event arrays: in Linux a slot of a perf event
// array holds a perf event, either a PERF_COUNT_SW_BPF_OUTPUT event that
// bpf_perf_event_output writes samples to (a PerfReader's ring here) or a
// counting event (cycles, instructions, a software counter) whose count
// bpf_perf_event_read and bpf_perf_event_read_value return. User space has
// no perf events to count with; SetCounter installs a PerfCounter that
// stands for one, whose values the caller supplies.

// PerfCounter is a counting perf event in a perf event array slot.
type PerfCounter interface {
	// ReadCounter returns the count and the times the event was enabled
	// and running (struct bpf_perf_event_value), read on cpu;
	// perf_event_read_local's errno when it cannot be read there (EINVAL
	// for an event bound to another CPU).
	ReadCounter(cpu int) (counter, enabled, running uint64, errno Errno)
}

// PerfCounters is the counter side of a perf event array.
type PerfCounters interface {
	// SetCounter installs c at index (E2BIG past the end); nil removes
	// it. A slot holds a counter or a reader's ring: output to a slot
	// with a counter fails with EINVAL, as for a counting event in Linux.
	SetCounter(index uint32, c PerfCounter) error
	// ReadCounter is get_map_perf_counter (kernel/trace/bpf_trace.c): the
	// counter at flags' index (BPF_F_CURRENT_CPU: cpu's), EINVAL for
	// flags outside the index mask, E2BIG past the end, ENOENT for an
	// empty slot; a slot with an output ring reads 0 on its CPU.
	ReadCounter(cpu int, flags uint64) (counter, enabled, running uint64, errno Errno)
}

type perfCounterSlot struct{ c PerfCounter }

// SetCounter installs a counter.
func (m *perfArray) SetCounter(index uint32, c PerfCounter) error {
	if m.closed.Load() {
		return m.errorf(EBADF, "set counter: map is closed")
	}
	if uint64(index) >= m.max {
		return m.errorf(E2BIG, "set counter: index %d past max_entries %d", index, m.max)
	}
	var s *perfCounterSlot
	if c != nil {
		s = &perfCounterSlot{c}
	}
	m.counters[index].Store(s)
	return nil
}

// ReadCounter reads the counter at flags' index.
func (m *perfArray) ReadCounter(cpu int, flags uint64) (counter, enabled, running uint64, errno Errno) {
	if m.closed.Load() {
		return 0, 0, 0, EBADF
	}
	if flags&^PerfIndexMask != 0 {
		return 0, 0, 0, EINVAL
	}
	index := flags & PerfIndexMask
	if index == PerfCurrentCPU {
		index = uint64(cpu)
	}
	if index >= m.max {
		return 0, 0, 0, E2BIG
	}
	if s := m.counters[index].Load(); s != nil {
		return s.c.ReadCounter(cpu)
	}
	if r := m.rings[index].Load(); r != nil {
		// perf_event_read_local of a bpf-output event: it counts
		// nothing, and reads only on its CPU.
		if r.cpu != cpu {
			return 0, 0, 0, EINVAL
		}
		return 0, 0, 0, 0
	}
	return 0, 0, 0, ENOENT
}
