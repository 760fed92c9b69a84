package maps

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// Perf event arrays (BPF_MAP_TYPE_PERF_EVENT_ARRAY): an array of per-CPU
// perf rings that bpf_perf_event_output writes samples to
// (kernel/trace/bpf_trace.c, kernel/events/ring_buffer.c). In Linux user
// space opens a perf event per CPU and stores its descriptor at that CPU's
// index; in waggle a PerfReader creates one ring per CPU (worker slot) and
// installs it at that index. A ring is a power-of-two number of pages
// (off-heap) holding records laid out as the kernel lays them out, so a
// ring fills up after as many samples as the kernel's would:
//
//	PERF_RECORD_SAMPLE  ┌──────────┬──────────┬──────────┬──────────┬──────────────┐
//	                    │ type u32 │ misc u16 │ size u16 │ size u32 │ raw, pad to 8 │
//	                    └──────────┴──────────┴──────────┴──────────┴──────────────┘
//	PERF_RECORD_LOST    header (8) │ id u64 │ lost u64
//
// A sample that does not fit is lost: the ring counts it, Output returns
// ENOSPC, and the next sample that fits is preceded by a PERF_RECORD_LOST
// carrying the count (perf_output_begin), which the reader reports as a
// record with LostSamples set.
//
// The array's mapping holds only the header; the rings are separate
// mappings owned by the reader.
const (
	perfRecordLost   = 2 // PERF_RECORD_LOST
	perfRecordSample = 9 // PERF_RECORD_SAMPLE
	perfLostSize     = 24
)

type perfArray struct {
	base
	max      uint64
	rings    []atomic.Pointer[perfRing]
	counters []atomic.Pointer[perfCounterSlot] // perfcounter.go
}

func newPerfArray(spec Spec) (*perfArray, error) {
	m := &perfArray{max: uint64(spec.MaxEntries)}
	if err := m.init(spec, 0); err != nil {
		return nil, err
	}
	m.rings = make([]atomic.Pointer[perfRing], m.max)
	m.counters = make([]atomic.Pointer[perfCounterSlot], m.max)
	return m, nil
}

// perfRing is one CPU's ring. Producers and the reader take mu; the ring
// memory is freed only under mu, with dead set.
type perfRing struct {
	cpu        int
	mu         sync.Mutex
	data       []byte
	mask       uint64
	head, tail uint64 // write and read positions
	lost       uint64
	dead       bool
	reader     *PerfReader
}

// write is perf_output_begin plus the sample: a lost record first if
// samples were lost, both or neither.
func (r *perfRing) write(frags [][]byte) error {
	n := 0
	for _, f := range frags {
		n += len(f)
	}
	size := 8 + ((uint64(n) + 4 + 7) &^ 7) // header, u32 size, raw padded to 8
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead {
		return ENOENT
	}
	if size > 0xffff {
		return E2BIG // the record's u16 size cannot say it
	}
	need := size
	if r.lost > 0 {
		need += perfLostSize
	}
	if r.head-r.tail+need > uint64(len(r.data))-1 {
		r.lost++
		return ENOSPC
	}
	if r.lost > 0 {
		var rec [perfLostSize]byte
		native.PutUint32(rec[0:], perfRecordLost)
		native.PutUint16(rec[6:], perfLostSize)
		native.PutUint64(rec[16:], r.lost)
		r.put(rec[:])
		r.lost = 0
	}
	var h [12]byte
	native.PutUint32(h[0:], perfRecordSample)
	native.PutUint16(h[6:], uint16(size))
	native.PutUint32(h[8:], uint32(size-12))
	r.put(h[:])
	for _, f := range frags {
		r.put(f)
	}
	var pad [8]byte
	r.put(pad[:size-12-uint64(n)])
	return nil
}

// put copies b at the head, wrapping.
func (r *perfRing) put(b []byte) {
	for len(b) > 0 {
		o := r.head & r.mask
		c := copy(r.data[o:], b)
		b = b[c:]
		r.head += uint64(c)
	}
}

// get copies n bytes from the tail, wrapping, into dst.
func (r *perfRing) get(dst []byte) {
	for len(dst) > 0 {
		o := r.tail & r.mask
		c := copy(dst, r.data[o:])
		dst = dst[c:]
		r.tail += uint64(c)
	}
}

// next reads one record into rec; false if the ring is empty. The ring's
// memory is written only here, but a record that cannot be (an unknown
// type, a size past what was written) drops what the ring holds, with
// ErrCorrupt, rather than read past it.
func (r *perfRing) next(rec *PerfRecord) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead || r.head == r.tail {
		return false, nil
	}
	avail := r.head - r.tail
	var h [8]byte
	if avail < uint64(len(h)) {
		return false, r.corrupt(avail, "%d bytes, less than a record header", avail)
	}
	r.get(h[:])
	typ, size := native.Uint32(h[:]), uint64(native.Uint16(h[6:]))
	rec.CPU = r.cpu
	rec.LostSamples = 0
	switch {
	case typ == perfRecordLost && size == perfLostSize && size <= avail:
		var b [16]byte
		r.get(b[:])
		rec.LostSamples = native.Uint64(b[8:])
		rec.RawSample = rec.RawSample[:0]
	case typ == perfRecordSample && size >= 12 && size <= avail:
		var s [4]byte
		r.get(s[:])
		raw := uint64(native.Uint32(s[:]))
		if raw > size-12 {
			return false, r.corrupt(avail, "a sample of %d bytes in a record of %d", raw, size)
		}
		if cap(rec.RawSample) < int(raw) {
			rec.RawSample = make([]byte, raw)
		}
		rec.RawSample = rec.RawSample[:raw]
		r.get(rec.RawSample)
		r.tail += size - 12 - raw // nothing to skip: raw includes the padding
	default:
		return false, r.corrupt(avail, "a record of type %d and %d bytes", typ, size)
	}
	rec.Remaining = int(r.head - r.tail)
	return true, nil
}

// corrupt drops the rest of the ring (mu held) and says why.
func (r *perfRing) corrupt(avail uint64, format string, args ...any) error {
	r.tail = r.head
	return fmt.Errorf("perf ring of CPU %d: %s with %d bytes written: %d bytes dropped: %w", r.cpu, fmt.Sprintf(format, args...), avail, avail, ErrCorrupt)
}

func (m *perfArray) ring(index uint64) *perfRing {
	if index >= m.max {
		return nil
	}
	return m.rings[index].Load()
}

// Output is bpf_perf_event_output of data.
func (m *perfArray) Output(cpu int, flags uint64, data []byte) error {
	return m.OutputFrags(cpu, flags, data)
}

// OutputFrags is bpf_perf_event_output of the concatenated frags.
func (m *perfArray) OutputFrags(cpu int, flags uint64, frags ...[]byte) error {
	if m.closed.Load() {
		return EBADF
	}
	if flags&^PerfIndexMask != 0 {
		return EINVAL
	}
	index := flags & PerfIndexMask
	if index == PerfCurrentCPU {
		index = uint64(cpu)
	}
	if index >= m.max {
		return E2BIG
	}
	r := m.rings[index].Load()
	if r == nil {
		if m.counters[index].Load() != nil {
			return EINVAL // a counter, not a PERF_COUNT_SW_BPF_OUTPUT event
		}
		return ENOENT
	}
	if r.cpu != cpu {
		return EOPNOTSUPP
	}
	if err := r.write(frags); err != nil {
		return err
	}
	if rd := r.reader; rd != nil {
		rd.wake()
	}
	return nil
}

// Lookup is ENOTSUPP: perf event descriptors cannot be read back.
func (m *perfArray) Lookup(key, value []byte) error {
	if err := m.check("lookup", key, value, 4); err != nil {
		return err
	}
	return m.unsupported("lookup", ENOTSUPP)
}

// Update with a perf event descriptor is EOPNOTSUPP: rings are installed
// by NewPerfReader.
func (m *perfArray) Update(key, value []byte, flags uint64) error {
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
		return m.errorf(EINVAL, "update: perf event arrays take only BPF_ANY")
	}
	if uint64(native.Uint32(key)) >= m.max {
		return E2BIG
	}
	return m.errorf(EOPNOTSUPP, "update: there are no perf event descriptors in user space: use NewPerfReader")
}

// Delete removes the ring at key from the array (E2BIG past the end,
// ENOENT if empty); its reader no longer receives samples from that CPU.
func (m *perfArray) Delete(key []byte) error {
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
	ring, counter := m.rings[i].Swap(nil), m.counters[i].Swap(nil)
	if ring == nil && counter == nil {
		return ENOENT
	}
	return nil
}

// NextKey is array order.
func (m *perfArray) NextKey(key, next []byte) error {
	if err := m.checkNext(key, next); err != nil {
		return err
	}
	return arrayNextKey(key, next, m.max)
}

// LookupAndDelete is ENOTSUPP.
func (m *perfArray) LookupAndDelete(key, value []byte) error {
	return m.unsupported("lookup and delete", ENOTSUPP)
}

// Regions: programs get no pointers into perf rings.
func (m *perfArray) Regions() []Region { return nil }

// Close unmaps the array; readers keep their rings until they close.
func (m *perfArray) Close() error {
	for i := range m.rings {
		m.rings[i].Store(nil)
	}
	return m.free()
}

// PerfRecord is a sample or a loss report read from a perf event array,
// as cilium/ebpf's perf.Record.
type PerfRecord struct {
	// CPU is the ring the record came from.
	CPU int
	// RawSample is the sample, including the kernel's padding to 8 bytes
	// (4 bytes of size precede it in the ring, so the raw data of n bytes
	// is padded to roundUp8(n+4)-4).
	RawSample []byte
	// LostSamples, when non-zero, says this record reports that many
	// samples lost because the ring was full; RawSample is empty.
	LostSamples uint64
	// Remaining is the bytes left in this CPU's ring.
	Remaining int
}

// PerfReader reads the samples programs write to a perf event array, as
// cilium/ebpf's perf.Reader does, with one ring per CPU.
type PerfReader struct {
	array    *perfArray
	rings    []*perfRing
	mu       sync.Mutex // serialises reads
	next     int        // ring to look at first
	notify   chan struct{}
	waiting  atomic.Int32
	deadline atomic.Int64
	kick     chan struct{} // SetDeadline wakes a waiting Read
	closed   chan struct{}
	once     sync.Once
	paused   atomic.Bool
}

// NewPerfReader creates a ring of perCPUBuffer bytes (rounded up to a
// power-of-two number of pages, as perf.NewReader does) for every CPU of m
// (Spec.CPUs) and installs them in the array, replacing what was there.
func NewPerfReader(m Map, perCPUBuffer int) (*PerfReader, error) {
	a, ok := m.(*perfArray)
	if !ok {
		return nil, wrongType("perf reader", m, PerfEventArray)
	}
	if a.closed.Load() {
		return nil, a.errorf(EBADF, "perf reader: map is closed")
	}
	if perCPUBuffer < 1 {
		return nil, a.errorf(EINVAL, "perf reader: buffer size %d", perCPUBuffer)
	}
	cpus := a.spec.CPUs
	if uint64(cpus) > a.max {
		return nil, a.errorf(E2BIG, "perf reader: %d CPUs but max_entries %d", cpus, a.max)
	}
	ps := uint64(pageSize())
	size := roundUpPow2((uint64(perCPUBuffer)+ps-1)/ps) * ps
	if size > 1<<31 {
		return nil, a.errorf(EINVAL, "perf reader: buffer size %d too large", perCPUBuffer)
	}
	r := &PerfReader{array: a, notify: make(chan struct{}, 1), kick: make(chan struct{}, 1), closed: make(chan struct{})}
	for cpu := range cpus {
		data, err := mem.Alloc(int(size))
		if err != nil {
			r.freeRings()
			return nil, fmt.Errorf("perf reader: %w", err)
		}
		r.rings = append(r.rings, &perfRing{cpu: cpu, data: data, mask: size - 1, reader: r})
	}
	r.install()
	return r, nil
}

func (r *PerfReader) install() {
	for _, ring := range r.rings {
		r.array.rings[ring.cpu].Store(ring)
	}
}

func (r *PerfReader) uninstall() {
	for _, ring := range r.rings {
		r.array.rings[ring.cpu].CompareAndSwap(ring, nil)
	}
}

func (r *PerfReader) freeRings() {
	for _, ring := range r.rings {
		ring.mu.Lock()
		if !ring.dead {
			ring.dead = true
			_ = mem.Free(ring.data)
			ring.data = nil
		}
		ring.mu.Unlock()
	}
}

func (r *PerfReader) wake() {
	if r.waiting.Load() != 0 {
		select {
		case r.notify <- struct{}{}:
		default:
		}
	}
}

// SetDeadline makes Read give up with os.ErrDeadlineExceeded at t, also
// a Read already waiting; the zero time removes the deadline.
func (r *PerfReader) SetDeadline(t time.Time) {
	if t.IsZero() {
		r.deadline.Store(0)
	} else {
		r.deadline.Store(t.UnixNano())
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Read returns the next record of any CPU.
func (r *PerfReader) Read() (PerfRecord, error) {
	var rec PerfRecord
	err := r.ReadInto(&rec)
	return rec, err
}

func (r *PerfReader) poll(rec *PerfRecord) (bool, error) {
	for i := range r.rings {
		ring := r.rings[(r.next+i)%len(r.rings)]
		ok, err := ring.next(rec)
		if ok || err != nil {
			r.next = (r.next + i + 1) % len(r.rings)
			return ok, err
		}
	}
	return false, nil
}

// ReadInto reads the next record into rec, reusing its RawSample storage.
func (r *PerfReader) ReadInto(rec *PerfRecord) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-r.closed:
			return os.ErrClosed
		default:
		}
		if len(r.rings) == 0 {
			return os.ErrClosed
		}
		if ok, err := r.poll(rec); ok || err != nil {
			return err
		}
		r.waiting.Add(1)
		if ok, err := r.poll(rec); ok || err != nil {
			r.waiting.Add(-1)
			return err
		}
		var expired <-chan time.Time
		if d := r.deadline.Load(); d != 0 {
			wait := time.Until(time.Unix(0, d))
			if wait <= 0 {
				r.waiting.Add(-1)
				return os.ErrDeadlineExceeded
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			expired = timer.C
		}
		select {
		case <-r.notify:
		case <-r.kick:
		case <-expired:
			r.waiting.Add(-1)
			return os.ErrDeadlineExceeded
		case <-r.closed:
			r.waiting.Add(-1)
			return os.ErrClosed
		}
		r.waiting.Add(-1)
	}
}

// Pause removes the reader's rings from the array: programs' output then
// fails with ENOENT, as after perf.Reader.Pause.
func (r *PerfReader) Pause() error {
	r.paused.Store(true)
	r.uninstall()
	return nil
}

// Resume installs the rings again.
func (r *PerfReader) Resume() error {
	select {
	case <-r.closed:
		return os.ErrClosed
	default:
	}
	if r.array.closed.Load() {
		return r.array.errorf(EBADF, "perf reader: map is closed")
	}
	r.paused.Store(false)
	r.install()
	return nil
}

// Close uninstalls and frees the rings; pending reads fail with
// os.ErrClosed.
func (r *PerfReader) Close() error {
	r.once.Do(func() {
		close(r.closed)
		if !r.array.closed.Load() {
			r.uninstall()
		}
		r.mu.Lock()
		r.freeRings()
		r.mu.Unlock()
	})
	return nil
}

// wrongType is the error of a constructor given a map of another type.
func wrongType(what string, m Map, want Type) error {
	if m == nil {
		return fmt.Errorf("%s: nil map: %w", what, EINVAL)
	}
	s := m.Spec()
	return fmt.Errorf("%s: %s %q is not a %s: %w", what, s.Type, s.Name, want, EINVAL)
}
