package progtype

import (
	"fmt"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

// The perf counter helpers of tracing programs (kernel/trace/bpf_trace.c)
// and bpf_probe_write_user.

// PerfEventValue is struct bpf_perf_event_value: a perf event's count and
// the times it was enabled and running, in nanoseconds.
type PerfEventValue struct {
	Counter, Enabled, Running uint64
}

// perfEventValueSize is sizeof(struct bpf_perf_event_value).
const perfEventValueSize = 24

func (v PerfEventValue) put(b []byte) {
	le.PutUint64(b[0:], v.Counter)
	le.PutUint64(b[8:], v.Enabled)
	le.PutUint64(b[16:], v.Running)
}

// perfCountersOf returns the perf event array a helper got.
func perfCountersOf(env helpers.Env, handle uint64) (maps.PerfCounters, error) {
	st := env.State()
	var m maps.Map
	ok := false
	if st.Maps != nil {
		m, ok = st.Maps.Lookup(handle)
	}
	if !ok {
		return nil, fmt.Errorf("%#x is not a map", handle)
	}
	pc, ok := m.(maps.PerfCounters)
	if !ok {
		return nil, fmt.Errorf("map %s is a %s, not a perf event array", m.Spec().Name, m.Spec().Type)
	}
	return pc, nil
}

// PerfEventRead is bpf_perf_event_read: the count of the perf event at
// flags' index of the array (maps.PerfCounters.SetCounter installs one),
// or a negative errno, which the API cannot tell from a count.
func PerfEventRead(env helpers.Env, args *[5]uint64) (uint64, error) {
	pc, err := perfCountersOf(env, args[0])
	if err != nil {
		return 0, fmt.Errorf("perf_event_read: %w", err)
	}
	v, _, _, e := pc.ReadCounter(env.State().CPU, args[1])
	if e != 0 {
		return errno(e), nil
	}
	return v, nil
}

// PerfEventReadValue is bpf_perf_event_read_value: the count, enabled and
// running times into a struct bpf_perf_event_value; -EINVAL for another
// size, and on any error a zeroed buffer.
func PerfEventReadValue(env helpers.Env, args *[5]uint64) (uint64, error) {
	buf, err := env.Memory(args[2], uint64(uint32(args[3])), true)
	if err != nil {
		return 0, err
	}
	pc, err := perfCountersOf(env, args[0])
	if err != nil {
		return 0, fmt.Errorf("perf_event_read_value: %w", err)
	}
	clear(buf)
	if len(buf) != perfEventValueSize {
		return errno(maps.EINVAL), nil
	}
	c, en, ru, e := pc.ReadCounter(env.State().CPU, args[1])
	if e != 0 {
		return errno(e), nil
	}
	PerfEventValue{c, en, ru}.put(buf)
	return 0, nil
}

// PerfProgReadValue is bpf_perf_prog_read_value: the values of the perf
// event that ran the perf_event program (Input.PerfValue); -EINVAL with a
// zeroed buffer for another size or when the run has none.
func PerfProgReadValue(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	buf, err := env.Memory(args[1], uint64(uint32(args[2])), true)
	if err != nil {
		return 0, err
	}
	clear(buf)
	if len(buf) != perfEventValueSize || r.in.PerfValue == nil {
		return errno(maps.EINVAL), nil
	}
	r.in.PerfValue.put(buf)
	return 0, nil
}

// ProbeWriteUser is bpf_probe_write_user: copies into user memory, which in
// user space is the writable regions of Input.Memory; any other address
// gives -EFAULT (copy_to_user_nofault), and a run without a task -EPERM,
// as for a kernel thread.
func ProbeWriteUser(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	n := uint64(uint32(args[2]))
	src, err := env.Memory(args[1], n, false)
	if err != nil {
		return 0, err
	}
	if r.in.Task == nil {
		return errno(maps.EPERM), nil
	}
	dst, ok := r.userMemory(args[0], n)
	if !ok {
		return errno(maps.EFAULT), nil
	}
	copy(dst, src)
	return 0, nil
}

// userMemory returns the n bytes at addr if they lie in a writable region
// of Input.Memory.
func (r *Run) userMemory(addr, n uint64) ([]byte, bool) {
	for _, reg := range r.in.Memory {
		if !reg.Writable || len(reg.Data) == 0 {
			continue
		}
		lo := mem.Addr(reg.Data)
		if addr >= lo && addr-lo <= uint64(len(reg.Data)) && uint64(len(reg.Data))-(addr-lo) >= n {
			off := addr - lo
			return reg.Data[off : off+n], true
		}
	}
	return nil, false
}

// tracingDefs are the perf counter and user-memory helpers.
var tracingDefs = helpers.Defs{
	{ID: idPerfEventRead, Name: "perf_event_read", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgConstMapPtr, helpers.ArgAnything}, GPLOnly: true}, Func: PerfEventRead},
	{ID: idPerfEventReadValue, Name: "perf_event_read_value", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgConstMapPtr, helpers.ArgAnything, helpers.ArgPtrToUninitMem, helpers.ArgConstSize}, GPLOnly: true}, Func: PerfEventReadValue},
	{ID: idPerfProgReadValue, Name: "perf_prog_read_value", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgPtrToUninitMem, helpers.ArgConstSize}, GPLOnly: true}, Func: PerfProgReadValue},
	{ID: idProbeWriteUser, Name: "probe_write_user", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgAnything, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSize}, GPLOnly: true}, Func: ProbeWriteUser},
}
