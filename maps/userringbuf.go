package maps

import (
	"sync"
	"sync/atomic"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// User ring buffers (BPF_MAP_TYPE_USER_RINGBUF), after kernel/bpf/ringbuf.c
// and libbpf's user_ring_buffer: the ring of ringbuf.go with the roles
// swapped. Go produces (UserRingBufWriter, as libbpf's
// user_ring_buffer__reserve/submit/discard), programs consume with
// bpf_user_ringbuf_drain (UserRingBuffer.Drain). Records have the layout
// of ringbuf.go: an 8-byte header (length | BUSY | DISCARD, then 4 unused
// bytes) and the sample, rounded up to 8.
//
// The data is twice max_entries, as in ringbuf.go, so a sample that starts
// near the end is contiguous. Positions are Go memory. The headers are in
// the data, where a program writing through a sample's dynptr cannot
// reach them (the verifier bounds dynptr accesses by the sample size) but
// an unverified one may: Drain checks every header it reads, as
// __bpf_user_ringbuf_peek does (a record must fit between the consumer and
// the producer, in the ring, and in a dynptr), and fails with EINVAL or
// E2BIG otherwise, leaving the consumer where it was, as Linux does.
const (
	// UserRingBufMaxSamples bounds the samples one Drain visits
	// (BPF_MAX_USER_RINGBUF_SAMPLES).
	UserRingBufMaxSamples = 128 * 1024
	// DynptrMaxSize is the largest sample a dynptr can describe
	// (DYNPTR_MAX_SIZE, include/linux/bpf.h): its size field has 24 bits.
	DynptrMaxSize = 1<<24 - 1
)

type userRingBuf struct {
	base
	size, mask uint64
	dataOff    uint64

	mu         sync.Mutex // producers: one Reserve at a time
	cons, prod atomic.Uint64
	busy       atomic.Int32 // a Drain is running (rb->busy)
}

func newUserRingBuf(spec Spec) (*userRingBuf, error) {
	ps := uint64(pageSize())
	m := &userRingBuf{size: uint64(spec.MaxEntries), dataOff: ps}
	m.mask = m.size - 1
	if err := m.init(spec, ps-headerSize+2*m.size); err != nil {
		return nil, err
	}
	m.put64(hdrData, m.addr(m.dataOff))
	m.put32(hdrMask, uint32(m.mask))
	return m, nil
}

// Drain is bpf_user_ringbuf_drain without the callback's plumbing: for
// each submitted sample in order, fn gets its address and size; fn's
// result 0 goes on, anything else stops after that sample. Discarded
// samples are skipped and not counted. The result is the number of
// samples given to fn, or a negative errno: -EINVAL for flags other than
// RingBufNoWakeup|RingBufForceWakeup or a header that does not fit,
// -E2BIG for a sample larger than a dynptr or the ring, -EBUSY while
// another Drain runs (the kernel's rb->busy), -EBADF once closed.
func (m *userRingBuf) Drain(flags uint64, fn func(addr uint64, size uint32) uint64) int64 {
	if flags&^(RingBufNoWakeup|RingBufForceWakeup) != 0 {
		return -int64(EINVAL)
	}
	if m.closed.Load() {
		return -int64(EBADF)
	}
	if !m.busy.CompareAndSwap(0, 1) {
		return -int64(EBUSY)
	}
	defer m.busy.Store(0)
	var samples, discarded int64
	var ret uint64
	for samples = 0; samples < UserRingBufMaxSamples && ret == 0; samples++ {
		addr, size, errno := m.peek()
		switch errno {
		case 0:
		case enodata:
			return samples - discarded
		case EAGAIN:
			discarded++
			continue
		default:
			return -int64(errno)
		}
		ret = fn(addr, size)
		m.cons.Add((uint64(size) + rbHdrSize + 7) &^ 7)
	}
	return samples - discarded
}

// enodata is __bpf_user_ringbuf_peek's "nothing to read" (ENODATA); it
// never leaves Drain.
const enodata Errno = 61

// peek is __bpf_user_ringbuf_peek: the next sample's address and size,
// EAGAIN after stepping over a discarded one, enodata when there is none
// (or the next is still BUSY).
func (m *userRingBuf) peek() (uint64, uint32, Errno) {
	prod, cons := m.prod.Load(), m.cons.Load()
	if prod%8 != 0 {
		return 0, 0, EINVAL
	}
	if cons >= prod {
		return 0, 0, enodata
	}
	h := m.hdr + m.dataOff + cons&m.mask
	hl := mem.AtomicLoad32(h)
	size := hl &^ (rbBusy | rbDiscard)
	total := (uint64(size) + rbHdrSize + 7) &^ 7
	switch {
	case total > prod-cons:
		return 0, 0, EINVAL
	case total > m.size:
		return 0, 0, E2BIG
	case size > DynptrMaxSize:
		return 0, 0, E2BIG
	}
	if hl&rbDiscard != 0 {
		m.cons.Store(cons + total)
		return 0, 0, EAGAIN
	}
	if hl&rbBusy != 0 {
		return 0, 0, enodata
	}
	return h + rbHdrSize, size, 0
}

// Lookup is ENOTSUPP, as are the other element operations
// (user_ringbuf_map_ops has only the ring's own).
func (m *userRingBuf) Lookup(key, value []byte) error { return m.unsupported("lookup", ENOTSUPP) }

// Update is ENOTSUPP.
func (m *userRingBuf) Update(key, value []byte, flags uint64) error {
	return m.unsupported("update", ENOTSUPP)
}

// Delete is ENOTSUPP.
func (m *userRingBuf) Delete(key []byte) error { return m.unsupported("delete", ENOTSUPP) }

// NextKey is ENOTSUPP.
func (m *userRingBuf) NextKey(key, next []byte) error { return m.unsupported("next key", ENOTSUPP) }

// LookupAndDelete is ENOTSUPP.
func (m *userRingBuf) LookupAndDelete(key, value []byte) error {
	return m.unsupported("lookup and delete", ENOTSUPP)
}

// Regions is the data area (twice max_entries): the samples programs
// read and write through their dynptrs.
func (m *userRingBuf) Regions() []Region {
	return []Region{{Data: m.mapping[m.dataOff : m.dataOff+2*m.size], Writable: true}}
}

// Close unmaps the ring. No program may run against it any more
// (Map.Close), so no Drain is in progress.
func (m *userRingBuf) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.free()
}

// UserRingBufWriter produces samples into a user ring buffer from Go, as
// libbpf's struct user_ring_buffer does. Samples are reserved in order
// and read by bpf_user_ringbuf_drain in that order once submitted; a
// reserved sample not yet submitted or discarded holds back those after
// it. Reserve takes a lock, so several goroutines may produce.
type UserRingBufWriter struct {
	rb *userRingBuf
}

// NewUserRingBufWriter returns a producer for m, which must be a
// UserRingBuf map.
func NewUserRingBufWriter(m Map) (*UserRingBufWriter, error) {
	rb, ok := m.(*userRingBuf)
	if !ok {
		return nil, wrongType("user ring buffer writer", m, UserRingBuf)
	}
	if rb.closed.Load() {
		return nil, rb.errorf(EBADF, "user ring buffer writer: map is closed")
	}
	return &UserRingBufWriter{rb: rb}, nil
}

// UserRingBufSample is a reserved sample: fill Data (its length is the
// size reserved), then Submit or Discard it, once.
type UserRingBufSample struct {
	// Data is Go memory, copied into the ring by Submit, so a sample
	// outliving its map cannot touch unmapped memory.
	Data []byte
	rb   *userRingBuf
	h    uint64 // offset of the record header in the mapping
	done bool
}

// Reserve is user_ring_buffer__reserve: room for size bytes. E2BIG when
// the record (size, 8-byte header, rounded up to 8) is larger than the
// ring or size than a dynptr allows, ENOSPC when the ring has not that
// much free, EBADF once the map is closed.
func (w *UserRingBufWriter) Reserve(size int) (*UserRingBufSample, error) {
	m := w.rb
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed.Load() {
		return nil, m.errorf(EBADF, "reserve: map is closed")
	}
	if size < 0 || size > DynptrMaxSize {
		return nil, m.errorf(E2BIG, "reserve %d bytes: a sample holds 0 to %d (DYNPTR_MAX_SIZE)", size, DynptrMaxSize)
	}
	total := (uint64(size) + rbHdrSize + 7) &^ 7
	if total > m.size {
		return nil, m.errorf(E2BIG, "reserve %d bytes: the record takes %d, the ring has %d", size, total, m.size)
	}
	prod, cons := m.prod.Load(), m.cons.Load()
	if m.size-(prod-cons) < total {
		return nil, m.errorf(ENOSPC, "reserve %d bytes: %d of %d free", size, m.size-(prod-cons), m.size)
	}
	h := m.dataOff + prod&m.mask
	native.PutUint32(m.mapping[h+4:], 0)
	mem.AtomicStore32(m.hdr+h, uint32(size)|rbBusy)
	m.prod.Store(prod + total)
	return &UserRingBufSample{Data: make([]byte, size), rb: m, h: h}, nil
}

// Submit is user_ring_buffer__submit: copy Data into the ring and make
// the sample visible to bpf_user_ringbuf_drain. EINVAL if the sample was
// already submitted or discarded, EBADF once the map is closed.
func (s *UserRingBufSample) Submit() error { return s.commit(false) }

// Discard is user_ring_buffer__discard: drain skips the sample.
func (s *UserRingBufSample) Discard() error { return s.commit(true) }

func (s *UserRingBufSample) commit(discard bool) error {
	m := s.rb
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.done {
		return m.errorf(EINVAL, "commit: sample already submitted or discarded")
	}
	if m.closed.Load() {
		return m.errorf(EBADF, "commit: map is closed")
	}
	s.done = true
	l := uint32(len(s.Data))
	if discard {
		l |= rbDiscard
	} else {
		copy(m.mapping[s.h+rbHdrSize:], s.Data)
	}
	mem.AtomicStore32(m.hdr+s.h, l)
	return nil
}

// Write reserves len(data) bytes, copies data and submits them.
func (w *UserRingBufWriter) Write(data []byte) error {
	s, err := w.Reserve(len(data))
	if err != nil {
		return err
	}
	copy(s.Data, data)
	return s.Submit()
}

// Free is the ring's free bytes: what Reserve may take, headers included.
func (w *UserRingBufWriter) Free() int {
	m := w.rb
	return int(m.size - (m.prod.Load() - m.cons.Load()))
}
