package helpers

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

// Helper ids used by name in waggle (enum bpf_func_id).
const (
	IDMapLookupElem     int32 = 1
	IDMapUpdateElem     int32 = 2
	IDMapDeleteElem     int32 = 3
	IDTracePrintk       int32 = 6
	IDGetPrandomU32     int32 = 7
	IDGetSMPProcessorID int32 = 8
	IDTailCall          int32 = 12
	IDPerfEventOutput   int32 = 25
	IDGetNUMANodeID     int32 = 42
	IDMapPushElem       int32 = 87
	IDMapPopElem        int32 = 88
	IDMapPeekElem       int32 = 89
	IDSpinLock          int32 = 93
	IDSpinUnlock        int32 = 94
	IDStrtol            int32 = 105
	IDStrtoul           int32 = 106
	IDJiffies64         int32 = 118
	IDRingbufOutput     int32 = 130
	IDRingbufReserve    int32 = 131
	IDRingbufSubmit     int32 = 132
	IDRingbufDiscard    int32 = 133
	IDRingbufQuery      int32 = 134
	IDKtimeGetCoarseNs  int32 = 160
	IDForEachMapElem    int32 = 164
	IDSnprintf          int32 = 165
	IDLoop              int32 = 181
	IDStrncmp           int32 = 182
	IDTraceVprintk      int32 = 177
	IDKtimeGetTAINs     int32 = 208
	IDMapLookupPercpu   int32 = 195
)

// ringbufMaps are the map types the ring buffer helpers take.
var ringbufMaps = []maps.Type{maps.RingBuf}

// MaxLoops is BPF_MAX_LOOPS: the most iterations bpf_loop runs.
const MaxLoops = 1 << 23

// Generic returns the helpers every program type may call that need nothing
// of a hook: maps, time, randomness, printing, ring buffers, loops and
// strings. Program-type-specific helpers (packets, tasks) live in package
// progtype.
func Generic() Defs {
	return append(Defs{
		{ID: IDMapLookupElem, Name: "map_lookup_elem", Func: mapLookupElem,
			Proto: Proto{Ret: RetPtrToMapValueOrNull, Args: []ArgType{ArgConstMapPtr, ArgPtrToMapKey}, PktAccess: true}},
		{ID: IDMapUpdateElem, Name: "map_update_elem", Func: mapUpdateElem,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgConstMapPtr, ArgPtrToMapKey, ArgPtrToMapValue, ArgAnything}, PktAccess: true}},
		{ID: IDMapLookupPercpu, Name: "map_lookup_percpu_elem", Func: mapLookupPercpuElem,
			Proto: Proto{Ret: RetPtrToMapValueOrNull, Args: []ArgType{ArgConstMapPtr, ArgPtrToMapKey, ArgAnything}, PktAccess: true}},
		{ID: IDMapDeleteElem, Name: "map_delete_elem", Func: mapDeleteElem,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgConstMapPtr, ArgPtrToMapKey}, PktAccess: true}},
		{ID: IDMapPushElem, Name: "map_push_elem", Func: mapPushElem,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgConstMapPtr, ArgPtrToMapValue, ArgAnything}, PktAccess: true}},
		{ID: IDMapPopElem, Name: "map_pop_elem", Func: mapPopElem,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgConstMapPtr, ArgPtrToMapValue | ArgUninit | ArgWrite}}},
		{ID: IDMapPeekElem, Name: "map_peek_elem", Func: mapPeekElem,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgConstMapPtr, ArgPtrToMapValue | ArgUninit | ArgWrite}}},
		{ID: IDTailCall, Name: "tail_call", Func: tailCall,
			Proto: Proto{Ret: RetVoid, Args: []ArgType{ArgPtrToCtx, ArgConstMapPtr, ArgAnything}, ChangesPktData: true, MapTypes: []maps.Type{maps.ProgArray}}},
		{ID: IDKtimeGetNs, Name: "ktime_get_ns", Func: KtimeGetNs, Proto: Proto{Ret: RetInteger}},
		{ID: IDKtimeGetBootNs, Name: "ktime_get_boot_ns", Func: KtimeGetBootNs, Proto: Proto{Ret: RetInteger}},
		{ID: IDKtimeGetCoarseNs, Name: "ktime_get_coarse_ns", Func: ktimeGetCoarseNs, Proto: Proto{Ret: RetInteger}},
		{ID: IDKtimeGetTAINs, Name: "ktime_get_tai_ns", Func: ktimeGetTAINs, Proto: Proto{Ret: RetInteger}},
		{ID: IDJiffies64, Name: "jiffies64", Func: jiffies64, Proto: Proto{Ret: RetInteger}},
		{ID: IDGetPrandomU32, Name: "get_prandom_u32", Func: getPrandomU32, Proto: Proto{Ret: RetInteger}},
		{ID: IDGetSMPProcessorID, Name: "get_smp_processor_id", Func: getSMPProcessorID, Proto: Proto{Ret: RetInteger, RetBound: RetCPU, Fastcall: true}},
		{ID: IDGetNUMANodeID, Name: "get_numa_node_id", Func: getNUMANodeID, Proto: Proto{Ret: RetInteger}},
		{ID: IDTracePrintk, Name: "trace_printk", Func: tracePrintk,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgPtrToMem | ArgReadOnly, ArgConstSize}, GPLOnly: true}},
		{ID: IDTraceVprintk, Name: "trace_vprintk", Func: traceVprintk,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgPtrToMem | ArgReadOnly, ArgConstSize, ArgPtrToMem | ArgMaybeNull | ArgReadOnly, ArgConstSizeOrZero}, GPLOnly: true}},
		{ID: IDSnprintf, Name: "snprintf", Func: snprintf,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgPtrToMem | ArgMaybeNull, ArgConstSizeOrZero, ArgPtrToConstStr, ArgPtrToMem | ArgMaybeNull | ArgReadOnly, ArgConstSizeOrZero}, GPLOnly: true}},
		{ID: IDPerfEventOutput, Name: "perf_event_output", Func: perfEventOutput,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgPtrToCtx, ArgConstMapPtr, ArgAnything, ArgPtrToMem | ArgReadOnly, ArgConstSizeOrZero}, GPLOnly: true, MapTypes: []maps.Type{maps.PerfEventArray}}},
		{ID: IDRingbufOutput, Name: "ringbuf_output", Func: ringbufOutput,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgConstMapPtr, ArgPtrToMem | ArgReadOnly, ArgConstSizeOrZero, ArgAnything}, MapTypes: ringbufMaps}},
		{ID: IDRingbufReserve, Name: "ringbuf_reserve", Func: ringbufReserve,
			Proto: Proto{Ret: RetPtrToRingbufMemOrNull, RetSizeArg: 1, Args: []ArgType{ArgConstMapPtr, ArgConstAllocSizeOrZero, ArgAnything}, Acquire: true, MapTypes: ringbufMaps}},
		{ID: IDRingbufSubmit, Name: "ringbuf_submit", Func: ringbufSubmit,
			Proto: Proto{Ret: RetVoid, Args: []ArgType{ArgPtrToRingbufMem | ArgRelease, ArgAnything}}},
		{ID: IDRingbufDiscard, Name: "ringbuf_discard", Func: ringbufDiscard,
			Proto: Proto{Ret: RetVoid, Args: []ArgType{ArgPtrToRingbufMem | ArgRelease, ArgAnything}}},
		{ID: IDRingbufQuery, Name: "ringbuf_query", Func: ringbufQuery,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgConstMapPtr, ArgAnything}, MapTypes: ringbufMaps}},
		{ID: IDForEachMapElem, Name: "for_each_map_elem", Func: forEachMapElem,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgConstMapPtr, ArgPtrToFunc, ArgPtrToStackOrNull, ArgAnything},
				Callback: callbackProto(IDForEachMapElem)}},
		{ID: IDLoop, Name: "loop", Func: loop,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgScalar, ArgPtrToFunc, ArgPtrToStackOrNull, ArgAnything},
				Callback: callbackProto(IDLoop)}},
		{ID: IDStrncmp, Name: "strncmp", Func: strncmp,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgPtrToMem | ArgReadOnly, ArgConstSize, ArgPtrToConstStr}}},
		{ID: IDStrtol, Name: "strtol", Func: strtol,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgPtrToMem | ArgReadOnly, ArgConstSize, ArgAnything, ArgPtrToFixedSizeMem | ArgUninit | ArgWrite | ArgAligned}, ArgSize: [5]uint32{3: 8}}},
		{ID: IDStrtoul, Name: "strtoul", Func: strtoul,
			Proto: Proto{Ret: RetInteger, Args: []ArgType{ArgPtrToMem | ArgReadOnly, ArgConstSize, ArgAnything, ArgPtrToFixedSizeMem | ArgUninit | ArgWrite | ArgAligned}, ArgSize: [5]uint32{3: 8}}},
		{ID: IDSpinLock, Name: "spin_lock", Func: spinLock,
			Proto: Proto{Ret: RetVoid, Args: []ArgType{ArgPtrToSpinLock}}},
		{ID: IDSpinUnlock, Name: "spin_unlock", Func: spinUnlock,
			Proto: Proto{Ret: RetVoid, Args: []ArgType{ArgPtrToSpinLock}}},
	}, dynptrDefs()...)
}

// errno returns -e as a helper's return value.
func errno(e maps.Errno) uint64 { return uint64(-int64(e)) }

// mapOf resolves the map handle a program passed among the maps it
// references (State.Maps); any other handle fails the run.
func mapOf(env Env, handle uint64) (maps.Map, error) {
	return env.State().Maps.Resolve(handle)
}

// elemKey resolves the map handle a program passed and reads the key it
// points to. The key is unread (nil) for maps without elements
// (ent.Elems nil).
func elemKey(env Env, handle, keyAddr uint64) (ent *maps.Entry, key []byte, err error) {
	if ent, err = env.State().Maps.Entry(handle); err != nil {
		return nil, nil, err
	}
	if ent.Elems == nil {
		return ent, nil, nil
	}
	key, err = env.Memory(keyAddr, uint64(ent.KeySize), false)
	return ent, key, err
}

// mapLookupElem is bpf_map_lookup_elem: the address of the value, or 0.
// The run's section holds the map first, so the value stays the one found
// until the run ends (maps.Section).
func mapLookupElem(env Env, a *[5]uint64) (uint64, error) {
	ent, key, err := elemKey(env, a[0], a[1])
	if err != nil || ent.Elems == nil {
		return 0, err // no elements: the verifier refuses lookups in such maps
	}
	st := env.State()
	st.Section.EnterEntry(ent, st.CPU)
	return ent.Elems.LookupElem(st.CPU, key), nil
}

// mapLookupPercpuElem is bpf_map_lookup_percpu_elem: the address of the
// value that CPU a[2] holds for the key in a per-CPU array or hash, or 0
// when the key is absent or the CPU is not one of the map's (nr_cpu_ids in
// Linux). Linux's verifier refuses it on any other map.
func mapLookupPercpuElem(env Env, a *[5]uint64) (uint64, error) {
	ent, key, err := elemKey(env, a[0], a[1])
	if err != nil {
		return 0, err
	}
	e, m := ent.Elems, ent.Map
	switch t := m.Spec().Type; t {
	case maps.PerCPUArray, maps.PerCPUHash, maps.LRUPerCPUHash:
	default:
		return 0, fmt.Errorf("bpf_map_lookup_percpu_elem on map %s, a %s: Linux's verifier allows only per-CPU arrays and hashes", m.Spec().Name, t)
	}
	cpu := uint32(a[2])
	if e == nil || cpu >= uint32(m.Spec().CPUs) {
		return 0, nil
	}
	return e.LookupElem(int(cpu), key), nil
}

// mapUpdateElem is bpf_map_update_elem.
func mapUpdateElem(env Env, a *[5]uint64) (uint64, error) {
	ent, key, err := elemKey(env, a[0], a[1])
	if err != nil {
		return 0, err
	}
	if ent.Elems == nil {
		return errno(maps.EOPNOTSUPP), nil
	}
	value, err := env.Memory(a[2], uint64(ent.ValueSize), false)
	if err != nil {
		return 0, err
	}
	return maps.Return(ent.Elems.UpdateElem(env.State().CPU, key, value, a[3])), nil
}

// mapDeleteElem is bpf_map_delete_elem.
func mapDeleteElem(env Env, a *[5]uint64) (uint64, error) {
	ent, key, err := elemKey(env, a[0], a[1])
	if err != nil {
		return 0, err
	}
	e := ent.Elems
	if e == nil {
		return errno(maps.EOPNOTSUPP), nil
	}
	return maps.Return(e.DeleteElem(env.State().CPU, key)), nil
}

func values(env Env, handle, addr uint64, write bool) (maps.Values, []byte, error) {
	m, err := mapOf(env, handle)
	if err != nil {
		return nil, nil, err
	}
	v, ok := m.(maps.Values)
	if !ok {
		return nil, nil, nil
	}
	b, err := env.Memory(addr, uint64(m.Spec().ValueSize), write)
	return v, b, err
}

// mapPushElem is bpf_map_push_elem (queue, stack, bloom filter).
func mapPushElem(env Env, a *[5]uint64) (uint64, error) {
	v, b, err := values(env, a[0], a[1], false)
	if err != nil || v == nil {
		return errno(maps.EOPNOTSUPP), err
	}
	return maps.Return(v.PushElem(b, a[2])), nil
}

// mapPopElem is bpf_map_pop_elem.
func mapPopElem(env Env, a *[5]uint64) (uint64, error) {
	v, b, err := values(env, a[0], a[1], true)
	if err != nil || v == nil {
		return errno(maps.EOPNOTSUPP), err
	}
	return maps.Return(v.PopElem(b)), nil
}

// mapPeekElem is bpf_map_peek_elem.
func mapPeekElem(env Env, a *[5]uint64) (uint64, error) {
	v, b, err := values(env, a[0], a[1], true)
	if err != nil || v == nil {
		return errno(maps.EOPNOTSUPP), err
	}
	return maps.Return(v.PeekElem(b)), nil
}

// tailCall is bpf_tail_call: on success it sets State.TailCall and the
// engine continues in that program; on failure (index out of range, empty
// slot, 33 tail calls taken) the program goes on after the call, as in
// Linux (kernel/bpf/core.c, JMP_TAIL_CALL).
func tailCall(env Env, a *[5]uint64) (uint64, error) {
	m, err := mapOf(env, a[1])
	if err != nil {
		return 0, err
	}
	pa, ok := m.(maps.ProgramArray)
	if !ok {
		return 0, fmt.Errorf("bpf_tail_call: map %q is a %s, not a prog_array", m.Spec().Name, m.Spec().Type)
	}
	st := env.State()
	if a[2] > math.MaxUint32 || st.TailCalls >= MaxTailCalls {
		return errno(maps.ENOENT), nil
	}
	prog, ok := pa.Program(uint32(a[2])) // false past max_entries
	if !ok || prog == nil {
		return errno(maps.ENOENT), nil
	}
	st.TailCalls++
	st.TailCall = prog
	return 0, nil
}

func ktimeGetCoarseNs(Env, *[5]uint64) (uint64, error) { return coarseNs(), nil }

// ktimeGetTAINs is bpf_ktime_get_tai_ns: nanoseconds of CLOCK_TAI (the
// realtime clock without leap seconds; outside Linux, the realtime clock).
func ktimeGetTAINs(Env, *[5]uint64) (uint64, error) { return taiNs(), nil }

// hz is the tick rate jiffies64 counts in. The kernel's CONFIG_HZ is not
// visible from user space; Debian's kernels use 250.
const hz = 250

// jiffies64 is bpf_jiffies64: CLOCK_MONOTONIC in ticks of 1/250 s. The
// kernel's jiffies start at a different origin, so only differences compare.
func jiffies64(Env, *[5]uint64) (uint64, error) { return monotonicNs() / (1e9 / hz), nil }

// getPrandomU32 is bpf_get_prandom_u32: a per-run splitmix64 stream,
// seeded from the clock when State.Rand is zero. Not for cryptography, as
// in the kernel.
func getPrandomU32(env Env, _ *[5]uint64) (uint64, error) {
	st := env.State()
	if st.Rand == 0 {
		st.Rand = uint64(time.Now().UnixNano()) | 1
	}
	st.Rand += 0x9e3779b97f4a7c15
	z := st.Rand
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return uint64(uint32(z ^ (z >> 31))), nil
}

func getSMPProcessorID(env Env, _ *[5]uint64) (uint64, error) {
	return uint64(env.State().CPU), nil
}

// getNUMANodeID is bpf_get_numa_node_id: user space runs as one node.
func getNUMANodeID(Env, *[5]uint64) (uint64, error) { return 0, nil }

// tracePrintk is bpf_trace_printk: formats as the kernel does and writes the
// text to State.Trace (the kernel writes it to the trace pipe), truncated to
// MaxPrintfBuf-1 bytes; it returns the length of the whole text.
func tracePrintk(env Env, a *[5]uint64) (uint64, error) {
	format, err := env.Memory(a[0], a[1], false)
	if err != nil {
		return 0, err
	}
	return trace(env, "bpf_trace_printk", format, a[2:5])
}

// traceVprintk is bpf_trace_vprintk(fmt, fmt_size, data, data_len): the
// trace_printk whose arguments are an array of u64 (at most 12), which
// libbpf's bpf_printk calls for more than three arguments.
func traceVprintk(env Env, a *[5]uint64) (uint64, error) {
	args, ok, err := argArray(env, a[2], a[3])
	if err != nil || !ok {
		return errno(maps.EINVAL), err
	}
	format, err := env.Memory(a[0], a[1], false)
	if err != nil {
		return 0, err
	}
	return trace(env, "bpf_trace_vprintk", format, args)
}

// trace formats format with args into the trace pipe (State.Trace) and
// returns the length of the text, or the error as an errno.
func trace(env Env, helper string, format []byte, args []uint64) (uint64, error) {
	text, err := bprintf(env, format, args)
	if err != nil {
		return maps.Return(err), nil
	}
	if w := env.State().Trace; w != nil {
		out := text
		if len(out) > MaxPrintfBuf-1 {
			out = out[:MaxPrintfBuf-1]
		}
		if _, err := w.Write([]byte(out)); err != nil {
			return 0, fmt.Errorf("%s: %w", helper, err)
		}
	}
	return uint64(len(text)), nil
}

// argArray reads the u64 arguments of bpf_snprintf and bpf_trace_vprintk
// from data_len bytes at addr; ok is false when Linux answers EINVAL (a
// length that is not a multiple of 8 or more than 12 arguments, or a
// length with no array).
func argArray(env Env, addr, size uint64) (args []uint64, ok bool, err error) {
	if size%8 != 0 || size > MaxPrintfArgs*8 || (size != 0 && addr == 0) {
		return nil, false, nil
	}
	if size == 0 {
		return nil, true, nil
	}
	data, err := env.Memory(addr, size, false)
	if err != nil {
		return nil, false, err
	}
	for i := 0; i+8 <= len(data); i += 8 {
		args = append(args, mem.Load64(mem.Addr(data[i:])))
	}
	return args, true, nil
}

// snprintf is bpf_snprintf(str, str_size, fmt, data, data_len): it writes
// at most str_size bytes including the NUL, and returns the length of the
// whole text plus one.
func snprintf(env Env, a *[5]uint64) (uint64, error) {
	args, ok, err := argArray(env, a[3], a[4])
	if err != nil || !ok {
		return errno(maps.EINVAL), err
	}
	format, err := cString(env, a[2])
	if err != nil {
		return 0, err
	}
	text, err := bprintf(env, format, args)
	if err != nil {
		return maps.Return(err), nil
	}
	if a[1] > 0 {
		out, err := env.Memory(a[0], a[1], true)
		if err != nil {
			return 0, err
		}
		n := copy(out[:len(out)-1], text)
		out[n] = 0
	}
	return uint64(len(text) + 1), nil
}

// cString reads a NUL-terminated string including its NUL (a constant
// string argument).
func cString(env Env, addr uint64) ([]byte, error) {
	var b []byte
	for n := uint64(0); ; n++ {
		c, err := env.Memory(addr+n, 1, false)
		if err != nil {
			return nil, err
		}
		b = append(b, c[0])
		if c[0] == 0 {
			return b, nil
		}
	}
}

// perfEventOutput is bpf_perf_event_output(ctx, map, flags, data, size).
func perfEventOutput(env Env, a *[5]uint64) (uint64, error) {
	m, err := mapOf(env, a[1])
	if err != nil {
		return 0, err
	}
	p, ok := m.(maps.PerfEvents)
	if !ok {
		return errno(maps.EINVAL), nil
	}
	data, err := env.Memory(a[3], a[4], false)
	if err != nil {
		return 0, err
	}
	return maps.Return(p.Output(env.State().CPU, a[2], data)), nil
}

func ringbufOf(env Env, handle uint64) (maps.RingBuffer, error) {
	m, err := mapOf(env, handle)
	if err != nil {
		return nil, err
	}
	rb, ok := m.(maps.RingBuffer)
	if !ok {
		return nil, fmt.Errorf("map %q is a %s, not a ringbuf", m.Spec().Name, m.Spec().Type)
	}
	return rb, nil
}

func ringbufOutput(env Env, a *[5]uint64) (uint64, error) {
	rb, err := ringbufOf(env, a[0])
	if err != nil {
		return 0, err
	}
	data, err := env.Memory(a[1], a[2], false)
	if err != nil {
		return 0, err
	}
	return maps.Return(rb.Output(data, a[3])), nil
}

func ringbufReserve(env Env, a *[5]uint64) (uint64, error) {
	rb, err := ringbufOf(env, a[0])
	if err != nil {
		return 0, err
	}
	if a[2] != 0 {
		return 0, nil // flags must be 0 (kernel/bpf/ringbuf.c)
	}
	addr := rb.Reserve(a[1])
	if addr != 0 {
		st := env.State()
		st.Records = append(st.Records, Record{Ring: rb, Addr: addr, Size: a[1]})
	}
	return addr, nil
}

// ringbufRecord takes the record at addr out of the run's reserved
// records: the submit and discard helpers get only the record's address,
// and Linux's verifier lets them release only a record the program
// reserved and has not released.
func ringbufRecord(env Env, addr uint64) (maps.RingBuffer, error) {
	st := env.State()
	for i, r := range st.Records {
		if r.Addr == addr {
			last := len(st.Records) - 1
			st.Records[i] = st.Records[last]
			st.Records[last] = Record{}
			st.Records = st.Records[:last]
			return r.Ring, nil
		}
	}
	return nil, fmt.Errorf("%#x is not a ring buffer record this run reserved and has not submitted or discarded", addr)
}

func ringbufSubmit(env Env, a *[5]uint64) (uint64, error) {
	rb, err := ringbufRecord(env, a[0])
	if err != nil {
		return 0, err
	}
	return 0, rb.Submit(a[0], a[1])
}

func ringbufDiscard(env Env, a *[5]uint64) (uint64, error) {
	rb, err := ringbufRecord(env, a[0])
	if err != nil {
		return 0, err
	}
	return 0, rb.Discard(a[0], a[1])
}

func ringbufQuery(env Env, a *[5]uint64) (uint64, error) {
	rb, err := ringbufOf(env, a[0])
	if err != nil {
		return 0, err
	}
	return rb.Query(a[1]), nil
}

// loop is bpf_loop(nr_loops, callback, ctx, flags) (kernel/bpf/bpf_iter.c):
// it calls callback(i, ctx) for i from 0 until nr_loops or until the
// callback returns nonzero, and returns the number of calls made.
func loop(env Env, a *[5]uint64) (uint64, error) {
	n, fn, ctx, flags := uint32(a[0]), a[1], a[2], a[3]
	if flags != 0 {
		return errno(maps.EINVAL), nil
	}
	if n > MaxLoops {
		return errno(maps.E2BIG), nil
	}
	for i := uint32(0); i < n; i++ {
		ret, err := env.Call(fn, [5]uint64{uint64(i), ctx})
		if err != nil {
			return 0, err
		}
		if ret != 0 {
			return uint64(i + 1), nil
		}
	}
	return uint64(n), nil
}

// forEachMapElem is bpf_for_each_map_elem(map, callback, ctx, flags)
// (kernel/bpf/hashtab.c, arraymap.c): it calls callback(map, &key, &value,
// ctx) for each element, in the map's order, until the callback returns
// nonzero, and returns the number of elements visited. Values are the
// running CPU's for per-CPU maps. The key lives in scratch memory the
// callback may read, as in the kernel where it may not write it. The walk
// is maps.WalkElems: it ends whatever the callback does to the map and
// whatever was written over the map's internals, and a walk that cannot
// (a corrupt chain, a callback adding elements ahead of it without end)
// ends the run with the map's error.
func forEachMapElem(env Env, a *[5]uint64) (uint64, error) {
	handle, fn, ctx, flags := a[0], a[1], a[2], a[3]
	if flags != 0 {
		return errno(maps.EINVAL), nil
	}
	m, err := mapOf(env, handle)
	if err != nil {
		return 0, err
	}
	if _, ok := m.(maps.Elems); !ok {
		return errno(maps.EOPNOTSUPP), nil
	}
	keyAddr, key, err := env.Scratch(uint64(m.Spec().KeySize))
	if err != nil {
		return 0, err
	}
	st := env.State()
	st.Section.Enter(m, st.CPU)
	var callErr error
	n, err := maps.WalkElems(m, st.CPU, func(k []byte, value uint64) (bool, error) {
		copy(key, k)
		ret, err := env.Call(fn, [5]uint64{handle, keyAddr, value, ctx})
		callErr = err
		return ret != 0, err
	})
	if callErr != nil {
		return 0, callErr
	}
	if err != nil {
		return 0, fmt.Errorf("for_each_map_elem: %w", err)
	}
	return n, nil
}

// strncmp is bpf_strncmp(s1, s1_sz, s2): Linux's strncmp (lib/string.c),
// which returns -1, 0 or 1.
func strncmp(env Env, a *[5]uint64) (uint64, error) {
	s1, err := env.Memory(a[0], a[1], false)
	if err != nil {
		return 0, err
	}
	for i := range s1 {
		c2b, err := env.Memory(a[2]+uint64(i), 1, false)
		if err != nil {
			return 0, err
		}
		c1, c2 := s1[i], c2b[0]
		if c1 != c2 {
			if c1 < c2 {
				return uint64(1<<64 - 1), nil
			}
			return 1, nil
		}
		if c1 == 0 {
			break
		}
	}
	return 0, nil
}

// strtox is the kernel's __bpf_strtoull (kernel/bpf/helpers.c): skip
// spaces, an optional '-', then an integer in base 8, 10, 16 or (0) the
// base its prefix gives; returns the bytes consumed.
func strtox(buf []byte, flags uint64) (v uint64, neg bool, consumed int, e maps.Errno) {
	base := flags & 0x1f // BPF_STRTOX_BASE_MASK
	if len(buf) == 0 || (base != 0 && base != 8 && base != 10 && base != 16) || flags&^0x1f != 0 {
		return 0, false, 0, maps.EINVAL
	}
	i := 0
	for i < len(buf) && isSpace(buf[i]) {
		i++
	}
	if i < len(buf) && buf[i] == '-' {
		neg = true
		i++
	}
	if i == len(buf) {
		return 0, false, 0, maps.EINVAL
	}
	s := buf[i:min(len(buf), i+63)]
	if j := strings.IndexByte(string(s), 0); j >= 0 {
		s = s[:j]
	}
	// _parse_integer_fixup_radix
	p := 0
	if base == 0 {
		switch {
		case len(s) > 1 && s[0] == '0' && (s[1]|0x20) == 'x' && len(s) > 2 && isHex(s[2]):
			base, p = 16, 2
		case len(s) > 0 && s[0] == '0':
			base = 8
		default:
			base = 10
		}
	} else if base == 16 && len(s) > 2 && s[0] == '0' && (s[1]|0x20) == 'x' {
		p = 2
	}
	start := p
	for ; p < len(s); p++ {
		d, ok := digit(s[p])
		if !ok || d >= base {
			break
		}
		hi, lo := mulAdd(v, base, d)
		if hi {
			return 0, false, 0, maps.ERANGE
		}
		v = lo
	}
	if p == start {
		return 0, false, 0, maps.EINVAL
	}
	return v, neg, i + p, 0
}

func isHex(c byte) bool {
	_, ok := digit(c)
	return ok
}

func digit(c byte) (uint64, bool) {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0'), true
	case c|0x20 >= 'a' && c|0x20 <= 'f':
		return uint64(c|0x20-'a') + 10, true
	}
	return 0, false
}

// mulAdd returns v*base+d and whether it overflowed 64 bits.
func mulAdd(v, base, d uint64) (bool, uint64) {
	if v > (1<<64-1-d)/base {
		return true, 0
	}
	return false, v*base + d
}

func strtoCommon(env Env, a *[5]uint64, signed bool) (uint64, error) {
	res, err := env.Memory(a[3], 8, true)
	if err != nil {
		return 0, err
	}
	mem.Store64(mem.Addr(res), 0)
	buf, err := env.Memory(a[0], a[1], false)
	if err != nil {
		return 0, err
	}
	v, neg, n, e := strtox(buf, a[2])
	if e != 0 {
		return errno(e), nil
	}
	if signed {
		switch {
		case neg && int64(-v) > 0:
			return errno(maps.ERANGE), nil
		case neg:
			v = -v
		case int64(v) < 0:
			return errno(maps.ERANGE), nil
		}
	} else if neg {
		return errno(maps.EINVAL), nil
	}
	mem.Store64(mem.Addr(res), v)
	return uint64(n), nil
}

// strtol is bpf_strtol(buf, buf_len, flags, res).
func strtol(env Env, a *[5]uint64) (uint64, error) { return strtoCommon(env, a, true) }

// strtoul is bpf_strtoul(buf, buf_len, flags, res).
func strtoul(env Env, a *[5]uint64) (uint64, error) { return strtoCommon(env, a, false) }

// spinLock is bpf_spin_lock. Linux's verifier allows it only on the
// bpf_spin_lock field of a map value (State.CheckLock), with one lock held
// at a time and none at exit; waggle checks the same at run time and fails
// the run instead of spinning or faulting. The lock itself lives in
// State.Locks, keyed by the address (see maps.SpinLocks).
func spinLock(env Env, a *[5]uint64) (uint64, error) {
	st := env.State()
	addr := a[0]
	if st.Held != 0 {
		return 0, fmt.Errorf("bpf_spin_lock at %#x while the run holds the lock at %#x: Linux allows one lock at a time", addr, st.Held)
	}
	if _, err := env.Memory(addr, 4, true); err != nil {
		return 0, fmt.Errorf("bpf_spin_lock: %w", err)
	}
	if addr%4 != 0 {
		return 0, fmt.Errorf("bpf_spin_lock at %#x: the lock is not 4-byte aligned", addr)
	}
	if st.CheckLock != nil {
		if err := st.CheckLock(addr); err != nil {
			return 0, fmt.Errorf("bpf_spin_lock at %#x: %w", addr, err)
		}
	}
	if st.Locks == nil {
		return 0, fmt.Errorf("bpf_spin_lock at %#x: the run has no lock table (helpers.State.Locks)", addr)
	}
	if !st.Locks.Lock(addr, st.Stop) {
		return 0, fmt.Errorf("bpf_spin_lock at %#x: the run was stopped while waiting for the lock", addr)
	}
	st.Held = addr
	return 0, nil
}

// spinUnlock is bpf_spin_unlock: only of the lock the run holds.
func spinUnlock(env Env, a *[5]uint64) (uint64, error) {
	st := env.State()
	switch addr := a[0]; {
	case st.Held == 0:
		return 0, fmt.Errorf("bpf_spin_unlock at %#x without a bpf_spin_lock held", addr)
	case st.Held != addr:
		return 0, fmt.Errorf("bpf_spin_unlock at %#x while the run holds the lock at %#x", addr, st.Held)
	}
	st.Locks.Unlock(st.Held)
	st.Held = 0
	return 0, nil
}
