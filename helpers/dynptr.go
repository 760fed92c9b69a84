package helpers

import (
	"encoding/binary"
	"fmt"

	"github.com/waggle-bpf/waggle/maps"
)

// Dynptr helpers (kernel/bpf/helpers.c, kernel/bpf/ringbuf.c). A dynptr
// is 16 bytes of the program's memory, laid out as Linux's struct
// bpf_dynptr_kern:
//
//	 0          8                          12        16
//	┌──────────┬──────────────────────────┬─────────┐
//	│ data u64 │ size u32                 │ off u32 │
//	└──────────┴──────────────────────────┴─────────┘
//	size: bits 0-23 the size, 28-30 the type (1 local, 2 ringbuf),
//	      31 read-only.
//
// data 0 is a NULL dynptr (a failed initialisation, a released one). The
// verifier keeps programs from writing a dynptr's bytes, but an unverified
// program may forge one: the helpers trust nothing they read from it.
// The memory it describes is reached through Env.Memory like any pointer
// a program passes, a ring buffer dynptr is submitted only if its data
// is a record the run reserved, and a type other than local or ringbuf
// gives -EFAULT (Linux's WARN for an unknown type).
const (
	// DynptrSize is sizeof(struct bpf_dynptr).
	DynptrSize = 16

	dynptrSizeMask  = 1<<24 - 1 // DYNPTR_SIZE_MASK
	dynptrTypeShift = 28        // DYNPTR_TYPE_SHIFT
	dynptrRdonlyBit = 1 << 31   // DYNPTR_RDONLY_BIT

	// DynptrLocal and DynptrRingbuf are enum bpf_dynptr_type's
	// BPF_DYNPTR_TYPE_LOCAL and BPF_DYNPTR_TYPE_RINGBUF.
	DynptrLocal   = 1
	DynptrRingbuf = 2
)

// Helper ids of the dynptr helpers and bpf_user_ringbuf_drain.
const (
	IDDynptrFromMem        int32 = 197
	IDRingbufReserveDynptr int32 = 198
	IDRingbufSubmitDynptr  int32 = 199
	IDRingbufDiscardDynptr int32 = 200
	IDDynptrRead           int32 = 201
	IDDynptrWrite          int32 = 202
	IDDynptrData           int32 = 203
)

// dynptrDefs are the dynptr helpers, with Linux's prototypes.
func dynptrDefs() Defs {
	return Defs{
		{ID: IDDynptrFromMem, Name: "dynptr_from_mem", Func: dynptrFromMem,
			Proto: Proto{Args: []ArgType{ArgPtrToUninitMem, ArgConstSizeOrZero, ArgAnything, ArgPtrToDynptr | ArgDynptrLocal | ArgUninit | ArgWrite}}},
		{ID: IDRingbufReserveDynptr, Name: "ringbuf_reserve_dynptr", Func: ringbufReserveDynptr,
			Proto: Proto{Args: []ArgType{ArgConstMapPtr, ArgAnything, ArgAnything, ArgPtrToDynptr | ArgDynptrRingbuf | ArgUninit | ArgWrite}}},
		{ID: IDRingbufSubmitDynptr, Name: "ringbuf_submit_dynptr", Func: ringbufSubmitDynptr,
			Proto: Proto{Ret: RetVoid, Args: []ArgType{ArgPtrToDynptr | ArgDynptrRingbuf | ArgRelease, ArgAnything}}},
		{ID: IDRingbufDiscardDynptr, Name: "ringbuf_discard_dynptr", Func: ringbufDiscardDynptr,
			Proto: Proto{Ret: RetVoid, Args: []ArgType{ArgPtrToDynptr | ArgDynptrRingbuf | ArgRelease, ArgAnything}}},
		{ID: IDDynptrRead, Name: "dynptr_read", Func: dynptrRead,
			Proto: Proto{Args: []ArgType{ArgPtrToUninitMem, ArgConstSizeOrZero, ArgPtrToDynptr | ArgReadOnly, ArgAnything, ArgAnything}}},
		{ID: IDDynptrWrite, Name: "dynptr_write", Func: dynptrWrite,
			Proto: Proto{Args: []ArgType{ArgPtrToDynptr | ArgReadOnly, ArgAnything, ArgPtrToMem | ArgReadOnly, ArgConstSizeOrZero, ArgAnything}}},
		{ID: IDDynptrData, Name: "dynptr_data", Func: dynptrData,
			Proto: Proto{Ret: RetPtrToMem | RetMaybeNull, Args: []ArgType{ArgPtrToDynptr | ArgReadOnly, ArgAnything, ArgConstAllocSizeOrZero}, RetSizeArg: 2}},
		{ID: IDUserRingbufDrain, Name: "user_ringbuf_drain", Func: userRingbufDrain,
			Proto: Proto{Args: []ArgType{ArgConstMapPtr, ArgPtrToFunc, ArgPtrToStackOrNull, ArgAnything}, Callback: callbackProto(IDUserRingbufDrain)}},
	}
}

// dynptr is a decoded struct bpf_dynptr_kern.
type dynptr struct {
	data   uint64
	size   uint32
	off    uint32
	typ    uint8
	rdonly bool
}

// loadDynptr reads the dynptr at addr.
func loadDynptr(env Env, addr uint64) (dynptr, error) {
	b, err := env.Memory(addr, DynptrSize, false)
	if err != nil {
		return dynptr{}, err
	}
	sz := binary.NativeEndian.Uint32(b[8:])
	return dynptr{
		data:   binary.NativeEndian.Uint64(b),
		size:   sz & dynptrSizeMask,
		off:    binary.NativeEndian.Uint32(b[12:]),
		typ:    uint8(sz>>dynptrTypeShift) & 7,
		rdonly: sz&dynptrRdonlyBit != 0,
	}, nil
}

// initDynptr is bpf_dynptr_init: a read-write dynptr of typ over size
// bytes at data, into b.
func initDynptr(b []byte, data uint64, typ uint8, size uint32) {
	binary.NativeEndian.PutUint64(b, data)
	binary.NativeEndian.PutUint32(b[8:], size|uint32(typ)<<dynptrTypeShift)
	binary.NativeEndian.PutUint32(b[12:], 0)
}

// setNull is bpf_dynptr_set_null.
func setNull(b []byte) { clear(b[:DynptrSize]) }

// checkOffLen is bpf_dynptr_check_off_len: -E2BIG unless [off, off+n) is
// inside the dynptr.
func (d dynptr) checkOffLen(off, n uint64) uint64 {
	if off > uint64(d.size) || n > uint64(d.size)-off {
		return errno(maps.E2BIG)
	}
	return 0
}

// known reports whether the dynptr's type is one waggle has: local or
// ring buffer.
func (d dynptr) known() bool { return d.typ == DynptrLocal || d.typ == DynptrRingbuf }

// dynptrArgs checks the size and flags a dynptr constructor is given: no
// flags (-EINVAL), at most DYNPTR_MAX_SIZE (-E2BIG). On either it makes
// the dynptr at b NULL and returns the errno for r0, else 0.
func dynptrArgs(b []byte, size uint32, flags uint64) uint64 {
	switch {
	case flags != 0:
		setNull(b)
		return errno(maps.EINVAL)
	case size > dynptrSizeMask:
		setNull(b)
		return errno(maps.E2BIG)
	}
	return 0
}

// dynptrFromMem is bpf_dynptr_from_mem(data, size, flags, ptr).
func dynptrFromMem(env Env, a *[5]uint64) (uint64, error) {
	b, err := env.Memory(a[3], DynptrSize, true)
	if err != nil {
		return 0, err
	}
	size := uint32(a[1])
	if e := dynptrArgs(b, size, a[2]); e != 0 {
		return e, nil
	}
	initDynptr(b, a[0], DynptrLocal, size)
	return 0, nil
}

// ringbufReserveDynptr is bpf_ringbuf_reserve_dynptr(ringbuf, size,
// flags, ptr): -EINVAL for flags and when the record does not fit,
// -E2BIG past DYNPTR_MAX_SIZE, a NULL dynptr then. The record joins the run's reserved records (State.Records)
// whatever dynptr later names it.
func ringbufReserveDynptr(env Env, a *[5]uint64) (uint64, error) {
	rb, err := ringbufOf(env, a[0])
	if err != nil {
		return 0, err
	}
	b, err := env.Memory(a[3], DynptrSize, true)
	if err != nil {
		return 0, err
	}
	size := uint32(a[1])
	if e := dynptrArgs(b, size, a[2]); e != 0 {
		return e, nil
	}
	addr := rb.Reserve(uint64(size))
	if addr == 0 {
		setNull(b)
		return errno(maps.EINVAL), nil // not EAGAIN, unlike bpf_ringbuf_output
	}
	st := env.State()
	st.Records = append(st.Records, Record{Ring: rb, Addr: addr, Size: uint64(size)})
	initDynptr(b, addr, DynptrRingbuf, size)
	return 0, nil
}

// commitDynptr is bpf_ringbuf_submit_dynptr and discard_dynptr: a NULL
// dynptr is left alone; otherwise its data must be a record the run
// reserved, which is committed, and the dynptr becomes NULL.
func commitDynptr(env Env, a *[5]uint64, discard bool) (uint64, error) {
	d, err := loadDynptr(env, a[0])
	if err != nil {
		return 0, err
	}
	if d.data == 0 {
		return 0, nil
	}
	b, err := env.Memory(a[0], DynptrSize, true)
	if err != nil {
		return 0, err
	}
	rb, err := ringbufRecord(env, d.data)
	if err != nil {
		return 0, fmt.Errorf("ringbuf dynptr: %w", err)
	}
	if discard {
		err = rb.Discard(d.data, a[1])
	} else {
		err = rb.Submit(d.data, a[1])
	}
	setNull(b)
	return 0, err
}

func ringbufSubmitDynptr(env Env, a *[5]uint64) (uint64, error) {
	return commitDynptr(env, a, false)
}

func ringbufDiscardDynptr(env Env, a *[5]uint64) (uint64, error) {
	return commitDynptr(env, a, true)
}

// dynptrRead is bpf_dynptr_read(dst, len, src, offset, flags).
func dynptrRead(env Env, a *[5]uint64) (uint64, error) {
	n, off, flags := uint64(uint32(a[1])), uint64(uint32(a[3])), a[4]
	d, err := loadDynptr(env, a[2])
	if err != nil {
		return 0, err
	}
	if d.data == 0 || flags != 0 {
		return errno(maps.EINVAL), nil
	}
	if e := d.checkOffLen(off, n); e != 0 {
		return e, nil
	}
	if !d.known() {
		return errno(maps.EFAULT), nil
	}
	src, err := env.Memory(d.data+uint64(d.off)+off, n, false)
	if err != nil {
		return 0, err
	}
	dst, err := env.Memory(a[0], n, true)
	if err != nil {
		return 0, err
	}
	copy(dst, src)
	return 0, nil
}

// dynptrWrite is bpf_dynptr_write(dst, offset, src, len, flags).
func dynptrWrite(env Env, a *[5]uint64) (uint64, error) {
	off, n, flags := uint64(uint32(a[1])), uint64(uint32(a[3])), a[4]
	d, err := loadDynptr(env, a[0])
	if err != nil {
		return 0, err
	}
	if d.data == 0 || d.rdonly {
		return errno(maps.EINVAL), nil
	}
	if e := d.checkOffLen(off, n); e != 0 {
		return e, nil
	}
	if !d.known() {
		return errno(maps.EFAULT), nil
	}
	if flags != 0 {
		return errno(maps.EINVAL), nil
	}
	src, err := env.Memory(a[2], n, false)
	if err != nil {
		return 0, err
	}
	dst, err := env.Memory(d.data+uint64(d.off)+off, n, true)
	if err != nil {
		return 0, err
	}
	copy(dst, src)
	return 0, nil
}

// dynptrData is bpf_dynptr_data(ptr, offset, len): the address of len
// bytes at offset, or 0 (NULL, out of bounds, read-only).
func dynptrData(env Env, a *[5]uint64) (uint64, error) {
	off, n := uint64(uint32(a[1])), uint64(uint32(a[2]))
	d, err := loadDynptr(env, a[0])
	if err != nil {
		return 0, err
	}
	if d.data == 0 || d.checkOffLen(off, n) != 0 || d.rdonly || !d.known() {
		return 0, nil
	}
	return d.data + uint64(d.off) + off, nil
}

// userRingbufDrain is bpf_user_ringbuf_drain(map, callback, ctx, flags)
// (kernel/bpf/ringbuf.c): callback(dynptr, ctx) for each sample, the
// dynptr a local one over the sample in scratch memory the callback may
// read. It returns the number of samples drained or a negative errno
// (maps.UserRingBuffer.Drain).
func userRingbufDrain(env Env, a *[5]uint64) (uint64, error) {
	m, err := mapOf(env, a[0])
	if err != nil {
		return 0, err
	}
	u, ok := m.(maps.UserRingBuffer)
	if !ok {
		return 0, fmt.Errorf("user_ringbuf_drain: map %q is a %s, not a user ring buffer", m.Spec().Name, m.Spec().Type)
	}
	fn, ctx, flags := a[1], a[2], a[3]
	dynAddr, dyn, err := env.Scratch(DynptrSize)
	if err != nil {
		return 0, err
	}
	var callErr error
	n := u.Drain(flags, func(addr uint64, size uint32) uint64 {
		initDynptr(dyn, addr, DynptrLocal, size)
		ret, err := env.Call(fn, [5]uint64{dynAddr, ctx})
		if err != nil {
			callErr = err
			return 1
		}
		return ret
	})
	if callErr != nil {
		return 0, callErr
	}
	return uint64(n), nil
}
